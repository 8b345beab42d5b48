#!/usr/bin/env bash
# The main job, in one command: build or find the test bed's binaries, start
# the local control plane and OpenBao, and show how to reach them.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

e2e/testbed/testbed.sh up >/dev/null
# shellcheck disable=SC1091
source "${PUBLICDATA_TESTBED_DIR:-$repo/.testbed/default}/testbed.env"

echo
echo "== the control plane"
kubectl version
kubectl get --raw '/readyz?verbose' | tail -n 3
kubectl get namespaces
echo
echo "== OpenBao"
bao status
bao auth list
echo
echo "The test bed is up. To use it in your shell:"
echo "  source ${PUBLICDATA_TESTBED_DIR}/testbed.env"
echo "Stop it with: make down"
