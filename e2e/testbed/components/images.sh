# Images without Docker, built with umoci into OCI layouts (cached by
# content) and imported into the node's containerd. Nothing is ever pulled:
#   testbed.local/pause:3.10    the pod sandbox: upstream's pause.c from the
#                               k8s.io/kubernetes module, compiled static
#   testbed.local/probe:1       busybox (Debian's busybox-static): sh, nc,
#                               wget, nslookup, httpd, and Debian's psql:
#                               what the tests run in pods
#   testbed.local/coredns:<v>   the CoreDNS binary built by build.sh
# shellcheck shell=bash

PAUSE_IMAGE="testbed.local/pause:3.10"
PROBE_IMAGE="testbed.local/probe:1"
COREDNS_IMAGE="testbed.local/coredns:$COREDNS_VERSION"

# oci_image NAME TAG FILES_DIR USER ENTRYPOINT...: an OCI layout holding one
# image whose only layer is FILES_DIR; prints the layout's directory.
oci_image() {
  local name="$1" tag="$2" files="$3" user="$4"; shift 4
  local key; key="$( (cd "$files" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$user $*") | sha256sum | cut -c1-12)"
  local layout="$IMAGES_CACHE/$name-$tag-$key"
  if [[ -f "$layout/index.json" ]]; then echo "$layout"; return; fi
  local tmp="$layout.tmp.$$" bundle
  bundle="$(mktemp -d)"
  rm -rf "$tmp"
  umoci init --layout "$tmp" >&2
  umoci new --image "$tmp:$tag" >&2
  umoci unpack --image "$tmp:$tag" "$bundle/b" >&2
  cp -a "$files/." "$bundle/b/rootfs/"
  umoci repack --image "$tmp:$tag" "$bundle/b" >&2
  local ep=() a
  for a in "$@"; do ep+=(--config.entrypoint "$a"); done
  umoci config --image "$tmp:$tag" --config.user "$user" "${ep[@]}" \
    --architecture amd64 --os linux >&2
  umoci gc --layout "$tmp" >&2
  rm -rf "$bundle"
  rm -rf "$layout"; mv "$tmp" "$layout"
  echo "$layout"
}

# import_image LAYOUT TAG REPOSITORY: into the node's containerd, as REPOSITORY:TAG.
import_image() {
  local layout="$1" tag="$2" repo_name="$3" tar
  tar="$(mktemp --suffix .tar)"
  tar -C "$layout" -cf "$tar" .
  # ctr warns on every call that cgroup v1 is deprecated: keep it in a log.
  if ! ctr_k8s images import --base-name "$repo_name" "$tar" >>"$state/logs/images.log" 2>&1; then
    tail -n 20 "$state/logs/images.log" >&2
    die "importing $repo_name:$tag into containerd failed"
  fi
  rm -f "$tar"
  # The listing first, then the search: `grep -q` in a pipe stops reading at
  # the first match, and under pipefail ctr's broken pipe failed the check.
  local listed; listed="$(ctr_k8s images ls -q 2>>"$state/logs/images.log")"
  grep -qxF "$repo_name:$tag" <<<"$listed" || die "image $repo_name:$tag was not imported"
}

images_build_and_import() {
  local work; work="$(mktemp -d)"
  # pause
  mkdir -p "$work/pause"
  gcc -Os -static -o "$work/pause/pause" "$PAUSE_SRC" 2>/dev/null \
    || die "compiling pause.c failed: gcc and static libc (Debian: gcc, libc6-dev) are needed"
  strip "$work/pause/pause"
  import_image "$(oci_image pause 3.10 "$work/pause" 65535 /pause)" 3.10 testbed.local/pause
  # probe: busybox and its applets
  mkdir -p "$work/probe/bin" "$work/probe/tmp" "$work/probe/etc"
  cp /bin/busybox "$work/probe/bin/busybox"
  local applet
  for applet in sh ash cat echo env hostname httpd id kill ls mkdir nc nslookup ping ps \
      rm sed sleep test timeout true false wget grep head tail tr cut date touch printf seq wc awk ip netstat base64; do
    ln -sf busybox "$work/probe/bin/$applet"
  done
  # psql (Debian's, with the shared libraries it loads), for workloads that
  # query the public data with the credentials OpenBao gives them.
  cp "$POSTGRES_BIN/psql" "$work/probe/bin/psql"
  local lib
  for lib in $(ldd "$POSTGRES_BIN/psql" | awk '$3 ~ /^\// {print $3} $1 ~ /^\/lib|^\/usr/ {print $1}'); do
    mkdir -p "$work/probe$(dirname "$lib")"
    cp -L "$lib" "$work/probe$lib"
  done
  echo "nobody:x:65534:65534:nobody:/tmp:/bin/sh" >"$work/probe/etc/passwd"
  echo "nobody:x:65534:" >"$work/probe/etc/group"
  chmod 1777 "$work/probe/tmp"
  import_image "$(oci_image probe 1 "$work/probe" 65534 /bin/sh)" 1 testbed.local/probe
  # coredns
  mkdir -p "$work/coredns"
  cp "$COREDNS_BIN/coredns" "$work/coredns/coredns"
  import_image "$(oci_image coredns "$COREDNS_VERSION" "$work/coredns" 65534 /coredns)" \
    "$COREDNS_VERSION" testbed.local/coredns
  rm -rf "$work"
}
