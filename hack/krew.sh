#!/usr/bin/env bash
# Packages `kubectl publicdata` as its krew release would (an archive of the
# binary and LICENSE), renders .krew.yaml for that archive, and installs it
# with krew itself into a scratch KREW_ROOT: krew checks the manifest and the
# archive's SHA-256, and the installed plugin must then answer as kubectl
# finds it. Needs no cluster. Output in target/krew/.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

eval "$(e2e/testbed/build.sh)"
version="v$(cargo metadata --no-deps --format-version 1 --locked \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "kubectl-publicdata"))')"
out="$repo/target/krew"
rm -rf "$out"; mkdir -p "$out/archive"

cargo build --release --locked -q -p kubectl-publicdata
install -m 0755 target/release/kubectl-publicdata "$out/archive/kubectl-publicdata"
cp LICENSE "$out/archive/LICENSE"
archive="$out/kubectl-publicdata-linux-amd64.tar.gz"
tar -C "$out/archive" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -czf "$archive" kubectl-publicdata LICENSE
sha="$(sha256sum "$archive" | cut -d' ' -f1)"

# What the krew-release-bot does at a tag: the version, and the archive's URL and digest.
python3 - .krew.yaml "$version" "$sha" >"$out/publicdata.yaml" <<'PY'
import re, sys
template, version, sha = sys.argv[1:]
text = open(template).read()
if not text.strip():
    sys.exit(".krew.yaml is empty")
def uri_and_sha(m):
    url = m.group(1).replace("{{ .TagName }}", version)
    return f"uri: {url}\n    sha256: {sha}"
text = re.sub(r'\{\{ addURIAndSha "([^"]+)" \.TagName \}\}', uri_and_sha, text)
text = text.replace("{{ .TagName }}", version)
if "{{" in text:
    sys.exit("unrendered template left in .krew.yaml")
sys.stdout.write(text)
PY

export KREW_ROOT="$out/root"
"$KREW_BIN/krew" install --manifest="$out/publicdata.yaml" --archive="$archive" </dev/null
# (`krew list` wants the central index, which this check never fetches: read the receipt.)
grep -q "name: publicdata" "$KREW_ROOT/receipts/publicdata.yaml" || { echo "krew kept no receipt of publicdata" >&2; exit 1; }
installed="$("$KREW_ROOT/bin/kubectl-publicdata" --version)"
[[ "$installed" == "kubectl-publicdata ${version#v}" ]] || { echo "installed plugin says: $installed" >&2; exit 1; }
# kubectl finds it on the PATH krew tells users to set.
PATH="$KREW_ROOT/bin:$PYTOOLS_BIN:$PATH" kubectl plugin list 2>/dev/null | grep -q "$KREW_ROOT/bin/kubectl-publicdata" \
  || { echo "kubectl does not find the krew-installed plugin" >&2; exit 1; }
echo "krew: installed publicdata $version from $out/publicdata.yaml (archive sha256 $sha)"
