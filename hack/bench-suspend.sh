#!/usr/bin/env bash
# Suspension benchmark on the real node: a fresh test bed, the release build
# of the operator, RUNS tenants (default 20) with 5 running pods each, each
# suspended by the bureau; prints p50/p99 of the access cut and of the time
# until the tenant's last container is gone. Figures, not assertions.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
runs="${1:-20}"
cargo build --locked --release -q -p publicdata-operator --bin publicdata-operator
cargo build --locked --release -q -p e2e --bin bench_suspend
export PUBLICDATA_TESTBED_DIR="$repo/.testbed/bench"
trap 'e2e/testbed/testbed.sh down >/dev/null 2>&1 || true' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; operator: release build"
e2e/testbed/testbed.sh down >/dev/null 2>&1 || true
e2e/testbed/testbed.sh up >/dev/null
e2e/testbed/testbed.sh operator start "$repo/target/release/publicdata-operator" 2>/dev/null
target/release/bench_suspend "$runs"
