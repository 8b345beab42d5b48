#!/usr/bin/env bash
# The operator at scale: for each N (default 1000), a fresh test bed, the
# release build of the operator as a host process, and `bench` (e2e/src/bin/
# bench.rs): a burst of N authorizations with suspensions timed under its
# backlog, the operator's writes counted from the API server's and OpenBao's
# own audit logs, a no-op resync, peak memory, etcd size, optionally a steady
# arrival of one tenant a second (BENCH_STEADY=SECONDS), and the kube-rs
# server-side-apply floor (BENCH_FLOOR=0 leaves it out). BENCH_DATA_PLANE=off runs
# the operator without PostgreSQL (no database roles per tenant). Prints one table per N. Figures, not assertions:
# see docs/performance.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
counts=("$@")
[[ ${#counts[@]} -gt 0 ]] || counts=(1000)
resync="${BENCH_RESYNC:-60}"

cargo build --locked --release -q -p publicdata-operator --bin publicdata-operator
cargo build --locked --release -q -p e2e --bin bench
export PUBLICDATA_TESTBED_DIR="$repo/.testbed/bench"
# The operator runs as a host process here, with no intake for the API
# server's audit webhook: leave the webhook out (its retries are not the
# operator's load). The audit log file stays: it is what the writes are counted from.
export TESTBED_AUDIT_WEBHOOK=off
trap 'e2e/testbed/testbed.sh down >/dev/null 2>&1 || true' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; operator: release build, resync ${resync}s; $(date -u +%F)"
for n in "${counts[@]}"; do
  e2e/testbed/testbed.sh down >/dev/null 2>&1 || true
  e2e/testbed/testbed.sh up >/dev/null
  RESYNC="${resync}s" OPERATOR_DATA_PLANE="${BENCH_DATA_PLANE:-on}" e2e/testbed/testbed.sh operator start "$repo/target/release/publicdata-operator" 2>/dev/null
  echo
  echo "N=$n"
  # shellcheck disable=SC1091
  (source "$PUBLICDATA_TESTBED_DIR/testbed.env" && RUST_LIB_BACKTRACE=0 target/release/bench --tenants "$n" --resync "$resync" --steady "${BENCH_STEADY:-0}" \
    $([[ "${BENCH_FLOOR:-1}" == 0 ]] && echo --no-floor))
done
