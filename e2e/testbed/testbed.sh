#!/usr/bin/env bash
# The local test bed: a real control plane and a real OpenBao, as local processes.
#
#   testbed.sh up      build or find the binaries, start etcd, kube-apiserver,
#                      kube-controller-manager and OpenBao on free loopback ports,
#                      configure OpenBao's Kubernetes auth, write kubeconfig + env file
#   testbed.sh down    stop exactly the processes `up` started (by pid) and remove the state
#   testbed.sh status  say what runs, and where
#   testbed.sh env     print the env file (source it to use kubectl and bao)
#   testbed.sh operator start BINARY | operator stop
#                      run the operator against the test bed (CRDs, admission
#                      policies and its least-privilege OpenBao token set up first)
#
# State (certificates, data, logs, pids, kubeconfig, env file) lives in
# $PUBLICDATA_TESTBED_DIR, by default <repo>/.testbed/default. Several test beds can
# run side by side in different directories (the tests use .testbed/test).
# Any component that fails to build or start fails `up` with its log: nothing is skipped.
# TESTBED_APISERVER_EXTRA_ARGS adds flags to kube-apiserver (feature gates, audit log).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
state="${PUBLICDATA_TESTBED_DIR:-$repo/.testbed/default}"
mkdir -p "$(dirname "$state")"
state="$(cd "$(dirname "$state")" && pwd)/$(basename "$state")"

log() { echo "testbed: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- processes ---------------------------------------------------------------

# Start NAME BINARY ARGS...: runs it in its own session, logs to logs/NAME.log,
# records "NAME PID" in the pids file.
start() {
  local name="$1"; shift
  setsid "$@" >"$state/logs/$name.log" 2>&1 < /dev/null &
  echo "$name $!" >>"$state/pids"
}

# A pid belongs to us only if the process still runs with this state
# directory on its command line or in its environment (the operator gets
# PUBLICDATA_TESTBED_DIR): a reused pid is never killed.
ours() {
  local pid="$1"
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$state/" && return 0
  tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF -- "PUBLICDATA_TESTBED_DIR=$state"
}

stop_all() {
  [[ -f "$state/pids" ]] || return 0
  # Reverse start order: OpenBao and the controller manager before the API
  # server, the API server before etcd.
  local lines; mapfile -t lines < <(tac "$state/pids")
  local line name pid
  for line in "${lines[@]}"; do
    name="${line%% *}"; pid="${line##* }"
    if ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do ours "$pid" || break; sleep 0.1; done
      if ours "$pid"; then log "$name ($pid) ignored TERM; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
      log "stopped $name ($pid)"
    fi
  done
  rm -f "$state/pids"
}

# wait_for NAME SECONDS COMMAND...: polls until COMMAND succeeds; on timeout,
# prints the component's log and fails.
wait_for() {
  local name="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "$name did not become healthy within ${secs}s; its log:"
      tail -n 60 "$state/logs/$name.log" >&2 || true
      stop_all
      die "$name failed to start"
    fi
    local pid; pid="$(awk -v n="$name" '$1==n {print $2}' "$state/pids" | tail -n1)"
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited; its log:"
      tail -n 60 "$state/logs/$name.log" >&2 || true
      stop_all
      die "$name failed to start"
    fi
    sleep 0.2
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

running() {
  [[ -f "$state/pids" ]] || return 1
  local name pid
  # The control plane and OpenBao; the operator comes and goes on its own.
  while read -r name pid; do
    [[ "$name" == operator ]] && continue
    ours "$pid" || return 1
  done <"$state/pids"
}

# --- certificates ------------------------------------------------------------

make_pki() {
  local pki="$state/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=publicdata-testbed-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    cat >serving.ext <<EOF
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth
EOF
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile serving.ext -out apiserver.crt 2>/dev/null
    # The cluster admin: a client certificate in group system:masters.
    echo "extendedKeyUsage=clientAuth" >client.ext
    openssl req -newkey rsa:2048 -nodes -subj "/CN=admin/O=system:masters" \
      -keyout admin.key -out admin.csr 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out admin.crt 2>/dev/null
    # Service-account token signing keys.
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext ./*.srl
  )
}

write_kubeconfig() {
  local server="$1" pki="$state/pki"
  cat >"$state/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 <"$pki/admin.crt")
    client-key-data: $(base64 -w0 <"$pki/admin.key")
contexts:
- name: testbed
  context: {cluster: testbed, user: admin}
current-context: testbed
EOF
  chmod 600 "$state/kubeconfig"
}

# --- up / down ---------------------------------------------------------------

up() {
  if running; then
    log "already up in $state"
    cat "$state/testbed.env"
    return 0
  fi
  stop_all
  rm -rf "$state"
  mkdir -p "$state/logs" "$state/etcd"
  # Whatever fails from here on, nothing of this attempt keeps running.
  trap 'if [[ ! -f "$state/testbed.env" ]]; then stop_all; fi' EXIT

  local t0=$SECONDS
  local bins; bins="$("$here/build.sh")" || die "building the test bed's binaries failed (see above)"
  eval "$bins"
  local built=$((SECONDS - t0))
  local kubectl="$PYTOOLS_BIN/kubectl" bao="$PYTOOLS_BIN/bao"

  local t1=$SECONDS
  make_pki
  local pki="$state/pki"
  local etcd_port etcd_peer api_port kcm_port bao_port
  etcd_port="$(free_port)"; etcd_peer="$(free_port)"; api_port="$(free_port)"
  kcm_port="$(free_port)"; bao_port="$(free_port)"
  local api="https://127.0.0.1:$api_port"

  start etcd "$ETCD_BIN/etcd" \
    --name testbed --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "testbed=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync=true --log-level warn
  wait_for etcd 60 curl -fsS "http://127.0.0.1:$etcd_port/health"

  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --endpoint-reconciler-type none \
    --cert-dir "$pki" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer "$api" \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true --profiling=false \
    ${TESTBED_APISERVER_EXTRA_ARGS:-}
  wait_for kube-apiserver 120 curl -fsS --cacert "$pki/ca.crt" \
    --cert "$pki/admin.crt" --key "$pki/admin.key" "$api/readyz"
  write_kubeconfig "$api"
  export KUBECONFIG="$state/kubeconfig"

  # Controllers, and why each is on (see docs/testbed.md).
  local controllers=(
    namespace-controller                    # finishes namespace deletion (offboarding)
    garbage-collector-controller            # ownerReference cascades, foreground/orphan deletion
    serviceaccount-controller               # the `default` ServiceAccount of each namespace
    serviceaccount-token-controller         # legacy token Secrets when asked for
    root-ca-certificate-publisher-controller # kube-root-ca.crt in each namespace
    clusterrole-aggregation-controller      # fills the aggregated admin/edit/view ClusterRoles
    resourcequota-controller                # quota status; without it quota admission refuses pods
    deployment-controller                   # Deployment -> ReplicaSet
    replicaset-controller                   # ReplicaSet -> Pods (Pending: no kubelet)
    statefulset-controller                  # StatefulSet -> Pods
    job-controller                          # Job -> Pods, suspension
    cronjob-controller                      # CronJob -> Jobs, suspension
    ttl-after-finished-controller           # cleans finished Jobs
    persistentvolume-binder-controller      # PVC <-> PV binding, reclaim policy
    persistentvolume-protection-controller  # PV finalizer while bound
    persistentvolumeclaim-protection-controller # PVC finalizer while in use
  )
  start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$state/kubeconfig" \
    --authentication-kubeconfig "$state/kubeconfig" \
    --authorization-kubeconfig "$state/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --cert-dir "$pki/kcm" \
    --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=true \
    --leader-elect=false \
    --controllers "$(IFS=,; echo "${controllers[*]}")"
  wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$kcm_port/healthz"
  # The service-account controller has run once `default` has its ServiceAccount.
  wait_for kube-controller-manager 60 "$kubectl" get serviceaccount default -n default

  local root_token
  root_token="$(openssl rand -hex 16)"
  start openbao "$bao" server -dev \
    -dev-listen-address "127.0.0.1:$bao_port" \
    -dev-root-token-id "$root_token" \
    -config "$(write_bao_config)"
  export BAO_ADDR="http://127.0.0.1:$bao_port" BAO_TOKEN="$root_token"
  wait_for openbao 60 curl -fsS "$BAO_ADDR/v1/sys/health"
  configure_openbao_k8s_auth "$kubectl" "$bao" "$api"

  cat >"$state/testbed.env" <<EOF
# Written by e2e/testbed/testbed.sh up; source it to reach the test bed.
export PUBLICDATA_TESTBED_DIR="$state"
export KUBECONFIG="$state/kubeconfig"
export KUBE_APISERVER="$api"
export KUBE_CA_FILE="$pki/ca.crt"
export SERVICE_ACCOUNT_ISSUER="$api"
export BAO_ADDR="$BAO_ADDR"
export BAO_TOKEN="$root_token"
export VAULT_ADDR="$BAO_ADDR"
export VAULT_TOKEN="$root_token"
export OPENBAO_K8S_AUTH_PATH="kubernetes"
export PATH="$PYTOOLS_BIN:$K8S_BIN:$ETCD_BIN:\$PATH"
export TESTBED_K8S_VERSION="$K8S_VERSION"
export TESTBED_ETCD_VERSION="$ETCD_VERSION"
EOF
  chmod 600 "$state/testbed.env"
  log "binaries ready in ${built}s; components started and configured in $((SECONDS - t1))s"
  log "up: kube-apiserver $api, OpenBao $BAO_ADDR; state in $state"
  log "use it:  source $state/testbed.env && kubectl get namespaces"
}

# The dev server takes an extra config file; it only sets the default lease TTLs,
# which otherwise are 32 days.
write_bao_config() {
  local f="$state/openbao.hcl"
  cat >"$f" <<'EOF'
default_lease_ttl = "1h"
max_lease_ttl = "24h"
EOF
  echo "$f"
}

# OpenBao's Kubernetes auth method, configured against this API server: a
# reviewer ServiceAccount bound to system:auth-delegator lets OpenBao call
# TokenReview for every login.
configure_openbao_k8s_auth() {
  local kubectl="$1" bao="$2" api="$3"
  "$kubectl" create namespace openbao-system >/dev/null
  "$kubectl" -n openbao-system create serviceaccount token-reviewer >/dev/null
  "$kubectl" create clusterrolebinding openbao-token-reviewer \
    --clusterrole system:auth-delegator --serviceaccount openbao-system:token-reviewer >/dev/null
  local jwt
  jwt="$("$kubectl" -n openbao-system create token token-reviewer --duration 8760h)"
  echo "$jwt" >"$state/reviewer.jwt"
  chmod 600 "$state/reviewer.jwt"
  "$bao" auth enable kubernetes >/dev/null
  "$bao" write auth/kubernetes/config \
    kubernetes_host="$api" \
    kubernetes_ca_cert=@"$state/pki/ca.crt" \
    token_reviewer_jwt="$jwt" \
    disable_local_ca_jwt=true >/dev/null
}

# The operator, run against this test bed: CRDs and admission policies
# applied, an OpenBao token with only the operator's policy, logs to
# logs/operator.log, its pid in pids (so `down` stops it too).
operator_start() {
  local bin="${1:?usage: testbed.sh operator start BINARY}"
  running || die "the test bed is not up ($state)"
  # shellcheck disable=SC1091
  source "$state/testbed.env"
  if operator_pid >/dev/null; then log "operator already running (pid $(operator_pid))"; return 0; fi
  kubectl apply --server-side --force-conflicts -f "$repo/crds/" >/dev/null
  kubectl wait --for condition=established --timeout=60s -f "$repo/crds/" >/dev/null
  # Established is not the end: server-side apply of a custom resource needs
  # the API server's schema for it, which follows a moment later.
  local deadline=$((SECONDS + 60))
  until kubectl apply --server-side --dry-run=server -f "$repo/examples/datasets.yaml" \
      -f "$repo/examples/authorization.yaml" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "the CRDs are established but server-side apply of the examples keeps failing"
    sleep 0.5
  done
  kubectl apply --server-side --force-conflicts -f "$repo/charts/publicdata-operator/files/admission-policies.yaml" \
    -f "$repo/charts/publicdata-operator/files/bureau-rbac.yaml" >/dev/null
  bao policy write publicdata-operator "$repo/charts/publicdata-operator/files/openbao-operator-policy.hcl" >/dev/null
  if [[ ! -s "$state/operator.token" ]]; then
    bao token create -policy=publicdata-operator -no-default-policy -orphan -period=24h -field=token >"$state/operator.token"
    chmod 600 "$state/operator.token"
  fi
  echo "$bin" >"$state/operator.bin"
  local admin_port; admin_port="$(free_port)"
  echo "http://127.0.0.1:$admin_port" >"$state/operator.admin"
  PUBLICDATA_TESTBED_DIR="$state" KUBECONFIG="$state/kubeconfig" VAULT_ADDR="$BAO_ADDR" \
    ADMIN_ADDR="127.0.0.1:$admin_port" AUDIT_LOG="$state/audit.log" \
    VAULT_K8S_HOST="$KUBE_APISERVER" VAULT_K8S_CA_FILE="$KUBE_CA_FILE" VAULT_K8S_REVIEWER_JWT_FILE="$state/reviewer.jwt" \
    VAULT_TOKEN="$(cat "$state/operator.token")" RUST_LOG="${RUST_LOG:-info,kube=warn,vaultrs=off,rustify=off}" \
    setsid "$bin" >>"$state/logs/operator.log" 2>&1 </dev/null &
  echo "operator $!" >>"$state/pids"
  local pid=$!
  local deadline=$((SECONDS + 60))
  until curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      tail -n 30 "$state/logs/operator.log" >&2
      die "the operator did not become ready"
    fi
    sleep 0.2
  done
  log "operator ready (pid $pid), metrics at http://127.0.0.1:$admin_port/metrics, log: $state/logs/operator.log"
}

operator_pid() {
  [[ -f "$state/pids" ]] || return 1
  local pid; pid="$(awk '$1=="operator" {print $2}' "$state/pids" | tail -n1)"
  [[ -n "$pid" ]] && ours "$pid" && echo "$pid"
}

operator_stop() {
  local pid
  if pid="$(operator_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do ours "$pid" || break; sleep 0.1; done
    ours "$pid" && kill -KILL "$pid" 2>/dev/null
    log "operator stopped ($pid)"
  fi
  if [[ -f "$state/pids" ]]; then
    grep -v '^operator ' "$state/pids" >"$state/pids.tmp" || true
    mv "$state/pids.tmp" "$state/pids"
  fi
}

down() {
  if [[ ! -d "$state" ]]; then log "nothing to stop in $state"; return 0; fi
  stop_all
  rm -rf "$state"
  log "down: removed $state"
}

status() {
  if running; then
    log "up in $state"
    while read -r name pid; do log "  $name pid $pid"; done <"$state/pids"
    grep -E '^export (KUBE_APISERVER|BAO_ADDR)=' "$state/testbed.env" >&2
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
      *) echo "usage: $0 operator start BINARY | operator stop" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: $0 up|down|status|env|operator start BINARY|operator stop" >&2; exit 2 ;;
esac
