#!/usr/bin/env bash
# The local test bed: a real control plane, a real node and a real OpenBao,
# as local processes.
#
#   testbed.sh up      build or find the binaries, then start, in order:
#                        the node's network namespace and link   components/network.sh
#                        etcd                                     components/etcd.sh
#                        kube-apiserver                           components/kube-apiserver.sh
#                        kube-controller-manager                  components/kube-controller-manager.sh
#                        kube-scheduler                           components/kube-scheduler.sh
#                        OpenBao and its Kubernetes auth          components/openbao.sh
#                        the "outside world" server               components/outside.sh
#                        S3 with Object Lock (the records archive)  components/s3.sh
#                        PostgreSQL (the public data)             components/postgres.sh
#                        containerd (+ runc, CNI), the images     components/containerd.sh, images.sh
#                        kubelet                                  components/kubelet.sh
#                        kube-proxy                               components/kube-proxy.sh
#                        kube-router (NetworkPolicy)              components/kube-router.sh
#                        CoreDNS                                  components/coredns.sh
#                        local-path-provisioner (PVCs)            components/storage.sh
#                      and write a kubeconfig and an env file
#   testbed.sh down    stop exactly what `up` started and remove everything it
#                      made: processes, containers, mounts, cgroups, the network
#                      namespace (with its bridge, iptables rules and ipsets), state
#   testbed.sh status  say what runs, and where
#   testbed.sh env     print the env file (source it to use kubectl and bao)
#   testbed.sh operator start BINARY | operator stop
#                      run the operator on the host against the test bed (CRDs,
#                      admission policies and its least-privilege OpenBao token
#                      set up first)
#   testbed.sh operator install IMAGE_TAR | operator uninstall
#                      install it as a platform would: its image into the
#                      node, its Helm chart into publicdata-system, logging in
#                      to OpenBao with its ServiceAccount
#
# State (certificates, data, logs, pids, kubeconfig, env file) lives in
# $PUBLICDATA_TESTBED_DIR, by default <repo>/.testbed/default. Several test beds
# can run side by side in different directories: each holds a slot (lib.sh)
# that gives it its own addresses, network namespace and cgroup.
# Any component that fails to build or start fails `up` with its log: nothing
# is skipped. TESTBED_APISERVER_EXTRA_ARGS adds flags to kube-apiserver;
# TESTBED_AUDIT_WEBHOOK=off leaves out its audit webhook to the operator.
set -euo pipefail

# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
for f in "$here"/components/*.sh; do
  # shellcheck disable=SC1090
  source "$f"
done

running() {
  [[ -f "$state/pids" && -f "$state/testbed.env" ]] || return 1
  local name pid
  # Every component; the operator comes and goes on its own.
  while read -r name pid; do
    [[ "$name" == operator ]] && continue
    ours "$pid" || return 1
  done <"$state/pids"
}

# Stops everything and removes what the components made outside the state
# directory; the state (with the logs) stays until `down`.
teardown() {
  local n name
  # The node first, and its containers with it: a pod's open watches would
  # otherwise hold the API server's shutdown for a minute.
  for name in operator local-path-provisioner kube-router kube-proxy kubelet containerd; do
    stop_pid "$name" "$(pid_of "$name")"
  done
  if n="$(slot_of_state)"; then
    slot_vars "$n"
    containerd_cleanup
    kubelet_kill_containers
  fi
  stop_processes
  if n="$(slot_of_state)"; then
    slot_vars "$n"
    kubelet_cleanup
    network_cleanup
    slot_release "$n"
  fi
}

up() {
  if running; then
    log "already up in $state"
    cat "$state/testbed.env"
    return 0
  fi
  teardown
  rm -rf "$state"
  mkdir -p "$state/logs"
  # The kubelet taints the node with disk-pressure when the disk's free space
  # falls under its eviction floor (1% here, see components/kubelet.sh), and
  # then no pod starts: say so now rather than time out later. The bed itself
  # needs about 1 GiB above that floor (images, etcd, logs).
  # TESTBED_MIN_FREE_MIB overrides the figure.
  local size_kib free_kib need_kib
  read -r size_kib free_kib < <(df -Pk "$state" | awk 'NR == 2 {print $2, $4}')
  need_kib=$((${TESTBED_MIN_FREE_MIB:-$((size_kib / 100 / 1024 + 1024))} * 1024))
  if ((free_kib < need_kib)); then
    die "only $((free_kib / 1024)) MiB free on the disk holding $state, and the test bed needs $((need_kib / 1024)) MiB: below 1% the node is tainted with disk-pressure and runs no pod (cargo's target/ directories are the usual culprit)"
  fi
  # Whatever fails from here on, nothing of this attempt keeps running.
  trap 'if [[ ! -f "$state/testbed.env" ]]; then teardown; fi' EXIT

  local t0=$SECONDS
  local bins; bins="$("$here/build.sh")" || die "building the test bed's binaries failed (see above)"
  eval "$bins"
  KUBECTL="$PYTOOLS_BIN/kubectl" BAO="$PYTOOLS_BIN/bao"
  local built=$((SECONDS - t0)) t1=$SECONDS

  record_host_paths
  slot_vars "$(slot_claim)"
  network_start

  kube_apiserver_pki
  etcd_start
  kube_apiserver_start
  export KUBECONFIG="$state/kubeconfig"
  kube_controller_manager_start
  kube_scheduler_start

  local root_token; root_token="$(openssl rand -hex 16)"
  export BAO_ADDR="http://$TB_HOST_IP:8200" BAO_TOKEN="$root_token"
  openbao_start "$root_token"
  openbao_configure
  s3_start
  s3_configure
  postgres_start
  postgres_configure
  outside_start
  local t2=$SECONDS

  containerd_start
  images_build_and_import
  kubelet_start
  kube_proxy_start
  kube_router_start
  coredns_start
  storage_start

  write_env
  log "binaries ready in ${built}s; control plane and OpenBao in $((t2 - t1))s; node in $((SECONDS - t2))s"
  log "up: kube-apiserver https://$TB_HOST_IP:6443, OpenBao $BAO_ADDR, S3 http://$TB_HOST_IP:$S3_PORT, PostgreSQL $TB_HOST_IP:$POSTGRES_PORT, node $TB_NODE_NAME ($TB_NODE_IP); state in $state"
  log "use it:  source $state/testbed.env && kubectl get nodes"
}

write_env() {
  # Written whole or not at all: its presence means the bed is up.
  cat >"$state/testbed.env.tmp" <<EOF
# Written by e2e/testbed/testbed.sh up; source it to reach the test bed.
export PUBLICDATA_TESTBED_DIR="$state"
export KUBECONFIG="$state/kubeconfig"
export KUBE_APISERVER="https://$TB_HOST_IP:6443"
export KUBE_CA_FILE="$state/pki/ca.crt"
export SERVICE_ACCOUNT_ISSUER="https://$TB_HOST_IP:6443"
export BAO_ADDR="$BAO_ADDR"
export BAO_TOKEN="$BAO_TOKEN"
export VAULT_ADDR="$BAO_ADDR"
export VAULT_TOKEN="$BAO_TOKEN"
export OPENBAO_K8S_AUTH_PATH="kubernetes"
# OpenBao as pods see it: the Service, and the address behind it (what a
# NetworkPolicy egress rule names).
export OPENBAO_CLUSTER_ADDR="http://openbao.openbao-system.svc:8200"
export OPENBAO_EGRESS_CIDR="$TB_HOST_IP/32"
export OPENBAO_EGRESS_PORT="8200"
# The records archive: S3 with Object Lock, from the host and from pods, its
# bucket, and the file with the test bed's key (S3_ACCESS_KEY, S3_SECRET_KEY).
export S3_ENDPOINT="http://$TB_HOST_IP:$S3_PORT"
export S3_CLUSTER_ENDPOINT="http://s3.s3-system.svc:$S3_PORT"
export S3_BUCKET="$S3_BUCKET"
export S3_CREDENTIALS_FILE="$state/s3/credentials"
# The public data: PostgreSQL from the host and from pods (what a NetworkPolicy
# egress rule names), its database, and its roles' password files. psql as the
# superuser: psql "\$POSTGRES_ADMIN_URL".
export POSTGRES_HOST="$TB_HOST_IP"
export POSTGRES_PORT="$POSTGRES_PORT"
export POSTGRES_DB="$POSTGRES_DB"
# Dev's samples: a database of its own (dev's users connect only there).
export POSTGRES_SAMPLE_DB="$POSTGRES_SAMPLE_DB"
export POSTGRES_CLUSTER_HOST="postgres.postgres-system.svc"
export POSTGRES_EGRESS_CIDR="$TB_HOST_IP/32"
export POSTGRES_PASSWORD_DIR="$state/postgres"
export POSTGRES_ADMIN_URL="postgresql://postgres@$TB_HOST_IP:$POSTGRES_PORT/$POSTGRES_DB?passfile=$state/postgres/pgpass"
export PGCONNECT_TIMEOUT=5
# The platform's own audit logs: the API server's (policy in
# components/kube-audit-policy.yaml) and OpenBao's file device.
export KUBE_AUDIT_LOG="$state/logs/kube-apiserver-audit.log"
export OPENBAO_AUDIT_LOG="$state/logs/openbao-audit.log"
export TESTBED_OPLOG_URL="https://$TB_NODE_IP:$TB_OPLOG_NODE_PORT"
export TESTBED_SLOT="$TB_SLOT"
export TESTBED_NETNS="$TB_NETNS"
export TESTBED_NODE_NAME="$TB_NODE_NAME"
export TESTBED_NODE_IP="$TB_NODE_IP"
export TESTBED_HOST_IP="$TB_HOST_IP"
export TESTBED_POD_CIDR="$TB_POD_CIDR"
export TESTBED_OUTSIDE_URL="http://$TB_OUTSIDE_IP:8080/"
# The outside world's resolver (the cluster DNS's upstream) and its log of
# every name it was asked.
export TESTBED_OUTSIDE_DNS_LOG="$state/logs/outside-dns.log"
export TESTBED_LOOPBACK="$TB_LOOP"
export TESTBED_CONTAINERD_SOCK="$TB_RUN/containerd.sock"
export TESTBED_CGROUP="$TB_CGROUP"
export PROBE_IMAGE="$PROBE_IMAGE"
export PATH="$PYTOOLS_BIN:$K8S_BIN:$ETCD_BIN:$CONTAINERD_BIN:$HELM_BIN:\$PATH"
export TESTBED_K8S_VERSION="$K8S_VERSION"
export TESTBED_ETCD_VERSION="$ETCD_VERSION"
EOF
  chmod 600 "$state/testbed.env.tmp"
  mv "$state/testbed.env.tmp" "$state/testbed.env"
}

# The platform's side in OpenBao, as the chart's files/openbao-setup.sh
# does it for a real platform: the workload auth mount, the templated
# workload policy, the operator's policy.
openbao_platform() {
  KUBERNETES_HOST="$KUBE_APISERVER" KUBERNETES_CA_FILE="$KUBE_CA_FILE" \
    "$repo/charts/publicdata-operator/files/openbao-setup.sh" platform >/dev/null
}

# Tenant quotas count the project's kinds (count/exportrequests.publicdata.io
# ...). The cluster's quota controller finds a new CRD within 30 s; a quota
# made before then refuses every object of that kind ("status unknown for
# quota") until its next full sync, 5 minutes on. So the install is done
# when a fresh quota counts them, as a cluster that had the CRDs for a while
# would.
quota_counts_project_kinds() {
  local ns=publicdata-quota-probe deadline=$((SECONDS + 90))
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  until kubectl -n "$ns" get resourcequota probe -o jsonpath='{.status.used}' 2>/dev/null \
      | grep -q 'count/exportrequests.publicdata.io'; do
    ((SECONDS < deadline)) || die "the cluster's quota controller does not count exportrequests.publicdata.io after 90s"
    kubectl -n "$ns" delete resourcequota probe --ignore-not-found >/dev/null
    kubectl -n "$ns" create quota probe --hard=count/exportrequests.publicdata.io=1 >/dev/null
    sleep 2
  done
  kubectl delete namespace "$ns" --wait=false >/dev/null
}

# The operator, run on the host against this test bed: CRDs and admission
# policies applied, an OpenBao token with only the operator's policy, logs to
# logs/operator.log, its pid in pids (so `down` stops it too).
operator_start() {
  local bin="${1:?usage: testbed.sh operator start BINARY}"
  running || die "the test bed is not up ($state)"
  # shellcheck disable=SC1091
  source "$state/testbed.env"
  # shellcheck disable=SC1090
  source "$S3_CREDENTIALS_FILE"
  if operator_pid >/dev/null; then log "operator already running (pid $(operator_pid))"; return 0; fi
  [[ "$(cat "$state/operator.mode" 2>/dev/null)" == chart ]] \
    && die "the operator is installed by its chart here; \`testbed.sh operator uninstall\` first (two would fight)"
  echo host >"$state/operator.mode"
  kubectl apply --server-side --force-conflicts -f "$repo/crds/" >/dev/null
  kubectl wait --for condition=established --timeout=60s -f "$repo/crds/" >/dev/null
  quota_counts_project_kinds
  # Established is not the end: server-side apply of a custom resource needs
  # the API server's schema for it, which follows a moment later.
  local deadline=$((SECONDS + 60))
  until kubectl apply --server-side --dry-run=server -f "$repo/examples/datasets.yaml" \
      -f "$repo/examples/authorization.yaml" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "the CRDs are established but server-side apply of the examples keeps failing"
    sleep 0.5
  done
  kubectl apply --server-side --force-conflicts -f "$repo/charts/publicdata-operator/files/admission-policies.yaml" \
    -f "$repo/charts/publicdata-operator/files/bureau-rbac.yaml" \
    -f "$repo/charts/publicdata-operator/files/tenant-roles.yaml" >/dev/null
  openbao_platform
  if [[ ! -s "$state/operator.token" ]]; then
    bao token create -policy=publicdata-operator -no-default-policy -orphan -period=24h -field=token >"$state/operator.token"
    chmod 600 "$state/operator.token"
  fi
  echo "$bin" >"$state/operator.bin"
  local admin="$TESTBED_LOOPBACK:8081"
  echo "http://$admin" >"$state/operator.admin"
  # OPERATOR_DATA_PLANE=off: no PostgreSQL for this operator (a benchmark's choice).
  local data_plane=(DATABASE_HOST="$POSTGRES_HOST" DATABASE_PORT="$POSTGRES_PORT" DATABASE_NAME="$POSTGRES_DB"
    DATABASE_PASSWORD_FILE="$POSTGRES_PASSWORD_DIR/publicdata_operator.password")
  [[ "${OPERATOR_DATA_PLANE:-on}" == off ]] && data_plane=()
  PUBLICDATA_TESTBED_DIR="$state" KUBECONFIG="$state/kubeconfig" VAULT_ADDR="$BAO_ADDR" \
    ADMIN_ADDR="$admin" AUDIT_LOG="$state/audit.log" EXPIRY_GRACE="${OPERATOR_EXPIRY_GRACE:-30d}" \
    RESYNC="${OPERATOR_RESYNC:-${RESYNC:-5m}}" \
    RECORDS_S3_ENDPOINT="$S3_ENDPOINT" RECORDS_S3_BUCKET="$S3_BUCKET" \
    AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY" \
    VAULT_K8S_HOST="$KUBE_APISERVER" VAULT_K8S_CA_FILE="$KUBE_CA_FILE" VAULT_K8S_REVIEWER_JWT_FILE="$state/reviewer.jwt" \
    WORKLOAD_OPENBAO_CIDRS="$OPENBAO_EGRESS_CIDR" WORKLOAD_OPENBAO_PORT="$OPENBAO_EGRESS_PORT" \
    WORKLOAD_DATABASE_CIDRS="$POSTGRES_EGRESS_CIDR" WORKLOAD_DATABASE_PORT="$POSTGRES_PORT" \
    VAULT_TOKEN="$(cat "$state/operator.token")" RUST_LOG="${RUST_LOG:-info,kube=warn,vaultrs=off,rustify=off}" \
    setsid env "${data_plane[@]}" "$bin" >>"$state/logs/operator.log" 2>&1 </dev/null &
  echo "operator $!" >>"$state/pids"
  local pid=$!
  deadline=$((SECONDS + 60))
  until curl -fsS "http://$admin/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      tail -n 30 "$state/logs/operator.log" >&2
      die "the operator did not become ready"
    fi
    sleep 0.2
  done
  log "operator ready (pid $pid), metrics at http://$admin/metrics, log: $state/logs/operator.log"
}

# The operator as a platform runs it: its image imported into the node's
# containerd, installed with its Helm chart into publicdata-system, logging in
# to OpenBao with its ServiceAccount through the platform's Kubernetes auth
# mount (a role the test bed creates, as a platform would). HELM_ARGS adds
# flags (e.g. --set replicaCount=1); OPERATOR_TOKEN_TTL sets the TTL of the
# operator's OpenBao tokens (default 5m).
operator_install() {
  local tar="${1:?usage: testbed.sh operator install IMAGE_TAR (hack/image.sh builds it)}"
  running || die "the test bed is not up ($state)"
  # shellcheck disable=SC1091
  source "$state/testbed.env"
  [[ -f "$tar" ]] || die "no image archive at $tar"
  local ref; ref="$(cat "$(dirname "$tar")/image-ref")"
  slot_vars "$TESTBED_SLOT"
  CONTAINERD_BIN="$(dirname "$(command -v ctr)")"
  ctr_k8s images import --base-name "${ref%:*}" "$tar" >>"$state/logs/images.log" 2>&1 \
    || die "importing $ref into the node's containerd failed (see $state/logs/images.log)"
  # The platform's side in OpenBao: the workload auth mount and the two
  # policies (files/openbao-setup.sh), and a role of the platform's
  # Kubernetes auth mount bound to the chart's ServiceAccount.
  openbao_platform
  bao write auth/kubernetes/role/publicdata-operator \
    bound_service_account_names=publicdata-operator \
    bound_service_account_namespaces=publicdata-system \
    audience=openbao token_policies=publicdata-operator \
    token_ttl="${OPERATOR_TOKEN_TTL:-5m}" token_max_ttl="${OPERATOR_TOKEN_TTL:-5m}" >/dev/null
  # A rebuilt image keeps its tag: the archive's digest in a pod annotation
  # rolls the Deployment when the content changed.
  # What `operator start` applied with kubectl, Helm adopts (the documented
  # way: its ownership annotations and label).
  local f
  for f in "$repo/charts/publicdata-operator/files/admission-policies.yaml" \
      "$repo/charts/publicdata-operator/files/bureau-rbac.yaml" \
      "$repo/charts/publicdata-operator/files/tenant-roles.yaml"; do
    kubectl annotate --overwrite -f "$f" meta.helm.sh/release-name=publicdata-operator \
      meta.helm.sh/release-namespace=publicdata-system >/dev/null 2>&1 || true
    kubectl label --overwrite -f "$f" app.kubernetes.io/managed-by=Helm >/dev/null 2>&1 || true
  done
  local o
  for o in namespace/publicdata-archive clusterrolebinding/publicdata-agency-approvers; do
    kubectl annotate --overwrite "$o" meta.helm.sh/release-name=publicdata-operator \
      meta.helm.sh/release-namespace=publicdata-system >/dev/null 2>&1 || true
    kubectl label --overwrite "$o" app.kubernetes.io/managed-by=Helm >/dev/null 2>&1 || true
  done
  # The records store's key, as a platform hands it over: a Secret.
  # shellcheck disable=SC1090
  source "$S3_CREDENTIALS_FILE"
  kubectl create namespace publicdata-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl -n publicdata-system create secret generic publicdata-records-s3 \
    --from-literal=accessKeyId="$S3_ACCESS_KEY" --from-literal=secretAccessKey="$S3_SECRET_KEY" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  # The bearer token the API server's audit webhook and OpenBao's audit
  # device present to the operator's intake of operation logs.
  kubectl -n publicdata-system create secret generic publicdata-operation-logs \
    --from-file=token="$state/audit/oplog.token" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  # The operator's PostgreSQL password, as a platform hands it over.
  kubectl -n publicdata-system create secret generic publicdata-database \
    --from-file=password="$POSTGRES_PASSWORD_DIR/publicdata_operator.password" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl -n publicdata-system create secret tls publicdata-operation-logs-tls \
    --cert="$state/pki/oplog.crt" --key="$state/pki/oplog.key" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  # shellcheck disable=SC2086 # extra args are split on purpose
  helm upgrade --install publicdata-operator "$repo/charts/publicdata-operator" \
    --namespace publicdata-system --create-namespace \
    --set image.repository="${ref%:*}" --set image.tag="${ref##*:}" --set image.pullPolicy=Never \
    --set-string "podAnnotations.testbed\.publicdata\.io/image-digest=$(sha256sum "$tar" | cut -c1-16)" \
    --set openbao.address="$OPENBAO_CLUSTER_ADDR" \
    --set openbao.kubernetesHost="$KUBE_APISERVER" \
    --set "openbao.workloadEgress.cidrs={$OPENBAO_EGRESS_CIDR}" \
    --set openbao.workloadEgress.port="$OPENBAO_EGRESS_PORT" \
    --set "database.workloadEgress.cidrs={$POSTGRES_EGRESS_CIDR}" \
    --set database.workloadEgress.port="$POSTGRES_PORT" \
    --set database.host="$POSTGRES_CLUSTER_HOST" --set database.port="$POSTGRES_PORT" \
    --set database.name="$POSTGRES_DB" --set database.sampleName="$POSTGRES_SAMPLE_DB" \
    --set database.passwordSecret=publicdata-database \
    --set expiryGracePeriod="${OPERATOR_EXPIRY_GRACE:-30d}" \
    --set resync="${OPERATOR_RESYNC:-5m}" \
    --set trainingValidDays="${OPERATOR_TRAINING_VALID_DAYS:-365}" \
    --set records.s3.endpoint="$S3_CLUSTER_ENDPOINT" --set records.s3.bucket="$S3_BUCKET" \
    --set records.s3.credentialsSecret=publicdata-records-s3 \
    --set operationLogs.enabled=true --set operationLogs.tokenSecret=publicdata-operation-logs \
    --set operationLogs.tlsSecret=publicdata-operation-logs-tls \
    --set operationLogs.flushEvery="${OPERATOR_OPLOG_FLUSH_EVERY:-2s}" \
    --set operationLogs.service.type=NodePort --set operationLogs.service.nodePort="$TB_OPLOG_NODE_PORT" \
    --wait --timeout 180s ${HELM_ARGS:-} >"$state/logs/helm.log" 2>&1 \
    || { tail -n 30 "$state/logs/helm.log" >&2; kubectl -n publicdata-system get pods -o wide >&2 || true; \
         kubectl -n publicdata-system logs -l app.kubernetes.io/name=publicdata-operator --tail 20 >&2 || true; \
         die "helm install of the operator failed"; }
  # Helm waited for the rollout; wait for a running replica to hold the Lease.
  local holder="" deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    holder="$(kubectl -n publicdata-system get lease publicdata-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)"
    if [[ -n "$holder" ]] && [[ "$(kubectl -n publicdata-system get pod "$holder" \
        -o jsonpath='{.status.phase}{.metadata.deletionTimestamp}' 2>/dev/null)" == Running ]]; then
      break
    fi
    holder=""
    sleep 0.5
  done
  [[ -n "$holder" ]] || die "no replica of the operator took the Lease within 60s"
  # What the tests read: how it runs, the binary of the image (audit verify),
  # the leader's admin address (reached over the host's route to pods).
  # OpenBao's audit device to the intake, now that it answers.
  openbao_audit_to_operator on
  echo chart >"$state/operator.mode"
  echo "$repo/target/release/publicdata-operator" >"$state/operator.bin"
  echo "http://$(kubectl -n publicdata-system get pod "$holder" -o jsonpath='{.status.podIP}'):8080" >"$state/operator.admin"
  quota_counts_project_kinds
  log "operator installed by its chart: $holder leads"
}

operator_uninstall() {
  running || die "the test bed is not up ($state)"
  # shellcheck disable=SC1091
  source "$state/testbed.env"
  # OpenBao would fail to start again with a device that does not answer.
  openbao_audit_to_operator off
  helm uninstall publicdata-operator --namespace publicdata-system --wait --timeout 120s >/dev/null 2>&1 || true
  kubectl -n publicdata-system wait --for delete pod -l app.kubernetes.io/name=publicdata-operator --timeout 60s >/dev/null 2>&1 || true
  rm -f "$state/operator.mode"
  log "operator uninstalled (CRDs, tenants, archive and audit claim kept)"
}

operator_pid() {
  local pid; pid="$(pid_of operator)"
  [[ -n "$pid" ]] && ours "$pid" && echo "$pid"
}

operator_stop() {
  local pid
  if pid="$(operator_pid)"; then stop_pid operator "$pid"; fi
  if [[ -f "$state/pids" ]]; then
    grep -v '^operator ' "$state/pids" >"$state/pids.tmp" || true
    mv "$state/pids.tmp" "$state/pids"
  fi
}

down() {
  teardown
  if [[ -d "$state" ]]; then
    unmount_under "$state/"
    rm -rf "$state"
    log "down: removed $state"
  else
    log "nothing to stop in $state"
  fi
}

status() {
  if running; then
    log "up in $state"
    while read -r name pid; do log "  $name pid $pid"; done <"$state/pids"
    grep -E '^export (KUBE_APISERVER|BAO_ADDR|TESTBED_NODE_IP)=' "$state/testbed.env" >&2
  else
    log "not running ($state)"
    return 1
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) cat "$state/testbed.env" ;;
  operator)
    case "${2:-}" in
      start) operator_start "${3:-}" ;;
      stop) operator_stop ;;
      install) operator_install "${3:-}" ;;
      uninstall) operator_uninstall ;;
      *) echo "usage: $0 operator start BINARY | operator stop | operator install IMAGE_TAR | operator uninstall" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: $0 up|down|status|env|operator start BINARY|operator stop" >&2; exit 2 ;;
esac
