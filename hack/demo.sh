#!/usr/bin/env bash
# The main job, in one command: start the local control plane, the node and
# OpenBao (building them once), build the operator's image and install it with
# its Helm chart as a platform would, apply examples/ (with a sample workload of
# the example tenant), and show what a user wants to see.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export PUBLICDATA_TESTBED_DIR="${PUBLICDATA_TESTBED_DIR:-$repo/.testbed/default}"

start=$SECONDS
e2e/testbed/testbed.sh up >/dev/null
# shellcheck disable=SC1091
source "$PUBLICDATA_TESTBED_DIR/testbed.env"
e2e/testbed/testbed.sh operator stop
echo "== hack/image.sh: the operator's image, built without Docker"
hack/image.sh
echo "== helm upgrade --install publicdata-operator charts/publicdata-operator (testbed.sh operator install)"
e2e/testbed/testbed.sh operator install "$repo/target/image/publicdata-operator.tar"
kubectl -n publicdata-system get pods -o wide
echo "leader (holds the Lease): $(kubectl -n publicdata-system get lease publicdata-operator -o jsonpath='{.spec.holderIdentity}')"
echo

echo "== kubectl apply --server-side -f examples/datasets.yaml -f examples/authorization.yaml"
# Right after the CRDs are (re)installed the API server may answer "There can be
# a delay between when CustomResourceDefinitions are created and when they are
# available" for a moment: retry that, nothing else.
for _ in $(seq 1 60); do
  if out="$(kubectl apply --server-side -f examples/datasets.yaml -f examples/authorization.yaml 2>&1)"; then
    echo "$out"; break
  fi
  grep -q "There can be a delay" <<<"$out" || { echo "$out" >&2; exit 1; }
  sleep 0.5
done
kubectl wait --for condition=Ready --timeout=90s -f examples/authorization.yaml >/dev/null

kubectl apply --server-side -f examples/scenario.yaml >/dev/null
kubectl apply --server-side -f examples/workload.yaml >/dev/null
kubectl -n harbor-analytics-dev rollout status deployment/sample-etl --timeout=120s >/dev/null

echo
echo "== the node"
kubectl get nodes -o wide

echo
echo "== the authorizations"
kubectl get operatorauthorizations
echo
echo "== the dataset catalog"
kubectl wait --for condition=DataReady --timeout=60s publicdataset/enterprise-registry >/dev/null
kubectl get publicdatasets
echo "-- in PostgreSQL: the registry's raw rows (prod may be granted columns of these), then dev's masked sample"
cols="credit_code, registered_capital, legal_representative_id, legal_representative_phone"
psql -X -q "$POSTGRES_ADMIN_URL" -c "SELECT $cols FROM market.enterprise_registry ORDER BY 1 LIMIT 3" \
  -c "SELECT $cols FROM publicdata_sample.\"enterprise-registry\" ORDER BY 1 LIMIT 3"
echo
echo "== the tenant domain: namespaces, isolation, quotas, RBAC"
kubectl get namespaces -l publicdata.io/tenant=harbor-analytics -L publicdata.io/environment,pod-security.kubernetes.io/enforce
for ns in harbor-analytics-dev harbor-analytics-prod; do
  echo "-- $ns"
  kubectl -n "$ns" get networkpolicies,resourcequotas,limitranges,serviceaccounts,rolebindings -o wide
done
echo
echo "== a sample workload of the tenant, running in dev (examples/workload.yaml)"
kubectl -n harbor-analytics-dev get pods -o wide
pod="$(kubectl -n harbor-analytics-dev get pods -l app=sample-etl -o jsonpath='{.items[0].metadata.name}')"
echo "-- from that pod: OpenBao (allowed by the tenant's policy), then the outside world (refused)"
kubectl -n harbor-analytics-dev exec "$pod" -- sh -c \
  "timeout 3 wget -q -O - $OPENBAO_CLUSTER_ADDR/v1/sys/health >/dev/null && echo 'OpenBao: reachable'; \
   timeout 3 wget -q -O - $TESTBED_OUTSIDE_URL 2>&1 || echo 'outside world: refused by the NetworkPolicy'"
echo
echo "== data scenarios (approvals by the bureau and each owning agency still to come)"
kubectl get datascenarios -n harbor-analytics-dev
kubectl -n harbor-analytics-dev get datascenario commuter-flows \
  -o jsonpath='{range .status.conditions[*]}{.type}={.status}: {.message}{"\n"}{end}'
echo
echo "== members (R-16): who got access, and why"
kubectl get oa harbor-analytics -o jsonpath='{range .status.members[*]}{.user}{"\t"}{.access}{"\t"}{.reason}{"\n"}{end}'
echo
echo "== OpenBao: the tenant's KV areas, identities and roles (the policy is the platform's)"
bao secrets list | grep -E '^(Path|areas/harbor-analytics-)'
bao list auth/publicdata-workloads/role | grep -E '^(Keys|-|harbor-analytics-)'
bao read -field=metadata identity/entity/name/publicdata-harbor-analytics-prod
echo
echo "== the bureau's view: kubectl publicdata status harbor-analytics (docs/bureau.md)"
cargo build --locked --release -q -p kubectl-publicdata
PATH="$repo/target/release:$PATH" kubectl publicdata status harbor-analytics
echo
echo "== events"
kubectl get events -n default --field-selector involvedObject.kind=OperatorAuthorization,involvedObject.name=harbor-analytics
echo
echo "== the audit log, verified against its checkpoint signed in OpenBao (docs/records.md)"
PATH="$repo/target/release:$PATH" kubectl publicdata audit verify --as zhao.lei --as-group publicdata:bureau
echo
echo "== the public register of authorized units, as JSON (docs/records.md)"
register="$(kubectl -n publicdata-system get pods -l app.kubernetes.io/name=publicdata-operator \
  --field-selector=status.phase=Running -o jsonpath='{.items[0].status.podIP}')"
curl -fsS "http://$register:8090/register.json"; echo
echo "(the page: http://$register:8090/ from this machine)"
echo
echo "Done in $((SECONDS - start))s. To use the test bed in your shell:"
echo "  source $PUBLICDATA_TESTBED_DIR/testbed.env"
echo "Operator logs: kubectl -n publicdata-system logs deploy/publicdata-operator. Stop everything with: make down"
