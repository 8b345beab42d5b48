#!/usr/bin/env bash
# The one command that runs every test: formatting and lints, unit tests, then
# the e2e tests against a test bed it starts itself (.testbed/test) and stops
# at the end. `make test` and .ci/run call this. Set KEEP_TESTBED=1 to leave the
# test bed running afterwards (the next run reuses it).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

section() { printf '\n== %s\n' "$*"; }
# A failing test prints its error chain, not a page of backtrace (panics still
# show theirs when RUST_BACKTRACE asks for it).
export RUST_LIB_BACKTRACE=0
# A clean clone in CI builds once: incremental artifacts would only take disk
# the test bed's node needs.
if [[ "${CI:-}" == true ]]; then
  export CARGO_INCREMENTAL=0
fi

section "format"
cargo fmt --all --check

section "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

section "unit tests (and generated CRDs in sync with the types)"
cargo test --workspace --locked --exclude e2e
cargo test --locked -p e2e --lib

section "e2e tests, built before the test bed takes the machine's memory"
cargo test --locked -p e2e --tests --no-run
# The bureau's kubectl plugin, which plugin.rs runs from target/debug.
cargo build --locked -p kubectl-publicdata

section "the plugin's krew manifest, installed by krew"
hack/krew.sh

section "test bed"
export PUBLICDATA_TESTBED_DIR="$repo/.testbed/test"
if [[ "${KEEP_TESTBED:-0}" != 1 ]]; then
  trap 'e2e/testbed/testbed.sh down' EXIT
fi
e2e/testbed/testbed.sh up >/dev/null

section "the operator, installed by its chart (image, Helm, its own RBAC, OpenBao login by ServiceAccount)"
e2e/testbed/testbed.sh operator stop
# The test image has the failpoints the offboarding crash test arms.
CARGO_FEATURES=failpoints hack/image.sh
# Short-lived OpenBao tokens (20 s): every test below runs across several of
# the operator's fresh logins.
# A 30 s grace period after expiry: the expiry test sees a live domain freeze,
# wait, and only then be offboarded.
# A ten-year training period: examples/ carry fixed training dates, which must
# not lapse under the tests; the lapse itself is tested with members trained
# just over and just under ten years ago.
# A 20 s resync: the drift test sees a tenant policy edited in OpenBao put back
# within one resync.
OPERATOR_TOKEN_TTL=20s OPERATOR_EXPIRY_GRACE=30s OPERATOR_RESYNC=20s OPERATOR_TRAINING_VALID_DAYS=3650 \
  e2e/testbed/testbed.sh operator install "$repo/target/image/publicdata-operator.tar"

section "e2e tests, against the chart-installed operator under its own RBAC"
# Every file of e2e/tests is named below: a new one left out fails here.
for f in e2e/tests/*.rs; do
  grep -q -- "--test $(basename "$f" .rs)\b" "$0" || { echo "e2e/tests/$(basename "$f") is not run by $0" >&2; exit 1; }
done
cargo test --locked -p e2e --test testbed --test authorization --test freeze --test scenario \
  --test export --test isolation --test suspension_node --test workload_credentials \
  --test offboard_node --test safety --test plugin --test gitops --test evaluation --test exit --test renewal --test register --test records \
  --test data_plane --test side_doors --test attacks -- --nocapture
# These disturb every tenant on the test bed (OpenBao paused; the audit log torn
# and damaged, with the operator stopped meanwhile; a CRD removed,
# which deletes every authorization; the operator aborted at each offboarding
# step, killed, upgraded, uninstalled): each alone, in this order.
cargo test --locked -p e2e --test openbao_outage
cargo test --locked -p e2e --test audit_damage -- --test-threads=1
cargo test --locked -p e2e --test crd_reinstall
cargo test --locked -p e2e --test offboard -- --nocapture
cargo test --locked -p e2e --test chart -- --test-threads=1 --nocapture
