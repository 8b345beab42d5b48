#!/usr/bin/env bash
# Provisioning benchmark: for each N (default 10 100 1000), a fresh test bed,
# the release build of the operator, N authorizations applied at once; prints
# time from apply to Ready (p50, p99), throughput, the operator's peak RSS and
# API writes per tenant. Figures, not assertions: see README "Benchmarks".
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
counts=("$@")
[[ ${#counts[@]} -gt 0 ]] || counts=(10 100 1000)

cargo build --locked --release -q -p publicdata-operator --bin publicdata-operator
cargo build --locked --release -q -p e2e --bin bench_provision
export PUBLICDATA_TESTBED_DIR="$repo/.testbed/bench"
trap 'e2e/testbed/testbed.sh down >/dev/null 2>&1 || true' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; operator: release build"
for n in "${counts[@]}"; do
  e2e/testbed/testbed.sh down >/dev/null 2>&1 || true
  e2e/testbed/testbed.sh up >/dev/null
  e2e/testbed/testbed.sh operator start "$repo/target/release/publicdata-operator" 2>/dev/null
  target/release/bench_provision "$n"
done
