#!/usr/bin/env bash
# Builds the operator's OCI image without Docker, with umoci:
#   the release binary, the shared libraries it links (glibc, libgcc: no musl
#   target here), CA certificates, an /etc/passwd with the non-root user
#   65532; nothing else (no shell, no package manager). The root filesystem
#   can be mounted read-only: the operator writes only its audit log, on a volume.
#
#   hack/image.sh [OUT_DIR]   -> OUT_DIR/publicdata-operator.tar (an OCI archive)
#                                and OUT_DIR/layout (the OCI layout)
# The image reference is $IMAGE (default: the chart's default repository and
# the crate's version). Dockerfile builds the same image for those who build
# with Docker.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
out="${1:-$repo/target/image}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
image="${IMAGE:-ghcr.io/publicdata-io/publicdata-operator:$version}"
tag="${image##*:}"

for tool in umoci ldd; do
  command -v "$tool" >/dev/null || { echo "image: $tool is needed (Debian: umoci, libc-bin)" >&2; exit 1; }
done
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || { echo "image: CA certificates are needed (Debian: ca-certificates)" >&2; exit 1; }

# CARGO_FEATURES=failpoints builds the test image (hack/test.sh); releases never have it.
cargo build --locked --release -q -p publicdata-operator --bin publicdata-operator \
  ${CARGO_FEATURES:+--features "$CARGO_FEATURES"}
bin="$repo/target/release/publicdata-operator"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/files"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/var/lib/publicdata-operator"
install -m 0755 "$bin" "$root/usr/local/bin/publicdata-operator"
strip --strip-debug "$root/usr/local/bin/publicdata-operator"
# The shared libraries, at the paths the binary asks for.
while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done < <(ldd "$bin" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | grep '^/')
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
echo "nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin" >"$root/etc/passwd"
echo "nonroot:x:65532:" >"$root/etc/group"
chmod 1777 "$root/tmp"
chown 65532:65532 "$root/var/lib/publicdata-operator"

layout="$work/layout"
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
cp -a "$root/." "$work/bundle/rootfs/"
umoci repack --image "$layout:$tag" "$work/bundle"
umoci config --image "$layout:$tag" \
  --architecture amd64 --os linux \
  --config.user 65532:65532 \
  --config.entrypoint /usr/local/bin/publicdata-operator \
  --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --config.env PUBLICDATA_IMAGE=1 \
  --config.workingdir / \
  --config.label "org.opencontainers.image.title=publicdata-operator" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.source=https://github.com/publicdata-io/publicdata-operator" \
  --config.label "org.opencontainers.image.licenses=Apache-2.0"
umoci gc --layout "$layout"

mkdir -p "$out"
rm -rf "$out/layout"
cp -a "$layout" "$out/layout"
tar -C "$layout" -cf "$out/publicdata-operator.tar" .
echo "$image" >"$out/image-ref"
size="$(du -sh "$out/publicdata-operator.tar" | cut -f1)"
echo "image: $image ($size) -> $out/publicdata-operator.tar" >&2
