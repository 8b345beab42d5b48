#!/usr/bin/env bash
# Data-plane benchmark on the real node: a fresh test bed (with PostgreSQL and
# OpenBao's database secrets engine), the release build of the operator, RUNS
# tenants (default 20): the time from a scenario's last approval to the first
# successful query from prod, and from a suspension to a held database session
# ended by the server; p50/p99. Figures, not assertions.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
runs="${1:-20}"
cargo build --locked --release -q -p publicdata-operator --bin publicdata-operator
cargo build --locked --release -q -p e2e --bin bench_data_plane
export PUBLICDATA_TESTBED_DIR="$repo/.testbed/bench"
trap 'e2e/testbed/testbed.sh down >/dev/null 2>&1 || true' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; operator: release build; $(date -u +%F)"
e2e/testbed/testbed.sh down >/dev/null 2>&1 || true
e2e/testbed/testbed.sh up >/dev/null
e2e/testbed/testbed.sh operator start "$repo/target/release/publicdata-operator" 2>/dev/null
# shellcheck disable=SC1091
source "$PUBLICDATA_TESTBED_DIR/testbed.env"
target/release/bench_data_plane "$runs"
