# Shared helpers of the test bed: state, processes, health waits, the slot.
# Sourced by testbed.sh and the component files in components/.
# shellcheck shell=bash

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
state="${PUBLICDATA_TESTBED_DIR:-$repo/.testbed/default}"
mkdir -p "$(dirname "$state")"
state="$(cd "$(dirname "$state")" && pwd)/$(basename "$state")"
# Slots: each running test bed owns one, which names its network namespace,
# its addresses and its cgroup (see slot_claim).
slots_dir="/run/publicdata-testbed"

log() { echo "testbed: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- processes ---------------------------------------------------------------

# start NAME BINARY ARGS...: runs it in its own session, logs to logs/NAME.log,
# records "NAME PID" in the pids file.
start() {
  local name="$1"; shift
  setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
  echo "$name $!" >>"$state/pids"
}

# start_on_node NAME BINARY ARGS...: the same, inside the node's network
# namespace (nsenter enters only the network namespace: mounts stay shared,
# so what the kubelet mounts, containerd sees).
start_on_node() {
  local name="$1"; shift
  start "$name" nsenter --net="/run/netns/$TB_NETNS" -- "$@"
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

# stop_pid NAME PID: TERM, up to 10 s, then KILL. PostgreSQL gets INT, its
# fast shutdown (TERM would wait for every client to leave).
stop_pid() {
  local name="$1" pid="$2"
  ours "$pid" || return 0
  if [[ "$name" == postgres ]]; then kill -INT "$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
  for _ in $(seq 1 100); do ours "$pid" || break; sleep 0.1; done
  if ours "$pid"; then log "$name ($pid) ignored TERM; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  log "stopped $name ($pid)"
}

# Stops every process in the pids file, in reverse start order.
stop_processes() {
  [[ -f "$state/pids" ]] || return 0
  local lines; mapfile -t lines < <(tac "$state/pids")
  local line
  for line in "${lines[@]}"; do stop_pid "${line%% *}" "${line##* }"; done
  rm -f "$state/pids"
}

pid_of() { [[ -f "$state/pids" ]] && awk -v n="$1" '$1==n {print $2}' "$state/pids" | tail -n1; }

# wait_for NAME SECONDS COMMAND...: polls until COMMAND succeeds; on timeout,
# or when the component has exited, prints its log and fails.
# host_service NAMESPACE NAME PORT: a server on the host end of the node's
# link as an in-cluster Service NAME.NAMESPACE:PORT (a selector-less Service
# with an EndpointSlice), the way a platform exposes something outside the
# cluster. Creates the namespace if it is not there.
host_service() {
  local ns="$1" name="$2" port="$3"
  "$KUBECTL" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: $ns}
---
apiVersion: v1
kind: Service
metadata:
  name: $name
  namespace: $ns
  labels: {app.kubernetes.io/name: $name}
spec:
  ports: [{name: http, port: $port, targetPort: $port, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $name-external
  namespace: $ns
  labels:
    kubernetes.io/service-name: $name
    endpointslice.kubernetes.io/managed-by: testbed.publicdata.io
addressType: IPv4
ports: [{name: http, port: $port, protocol: TCP}]
endpoints: [{addresses: ["$TB_HOST_IP"]}]
YAML
}

wait_for() {
  local name="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "$name did not become healthy within ${secs}s; its log:"
      tail -n 60 "$state/logs/$name.log" >&2 2>/dev/null || true
      die "$name failed to start"
    fi
    local pid; pid="$(pid_of "$name")"
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited; its log:"
      tail -n 60 "$state/logs/$name.log" >&2 || true
      die "$name failed to start"
    fi
    sleep 0.2
  done
}

# --- the slot ----------------------------------------------------------------
# A test bed owns slot N (1..60) from `up` to `down`; it gives every address a
# distinct, fixed value, so nothing races for ports:
#   127.213.N.1          etcd, the controller manager, the scheduler (loopback)
#   10.213.N.1           the host end of the node's link: kube-apiserver, OpenBao
#   10.213.N.2           the node (its network namespace publicdata-tbN)
#   10.213.N.9           the "outside world": a server the test bed runs, which
#                        tenant pods must not reach
#   10.214.N.0/24        pods;   10.0.0.0/24 Services (inside the node only)
# Nothing routes or NATs these ranges to the uplink.

# slot_claim: the slot of this state directory, claimed atomically (mkdir).
slot_claim() {
  mkdir -p "$slots_dir"
  local n owner
  for n in $(seq 1 60); do
    owner="$(cat "$slots_dir/$n/owner" 2>/dev/null || true)"
    if [[ "$owner" == "$state" ]]; then echo "$n"; return 0; fi
  done
  # A slot whose test bed no longer runs (a killed session, a removed
  # checkout) is taken over, after removing what that test bed left.
  for n in $(seq 1 60); do
    owner="$(cat "$slots_dir/$n/owner" 2>/dev/null || true)"
    if [[ -n "$owner" ]] && slot_abandoned "$n" "$owner"; then
      log "slot $n: its test bed ($owner) no longer runs; removing what it left"
      (state="$owner"; slot_vars "$n"; containerd_cleanup; kubelet_cleanup; network_cleanup) >&2
      echo "$state" >"$slots_dir/$n/owner"
      echo "$n"; return 0
    fi
  done
  for n in $(seq 1 60); do
    if mkdir "$slots_dir/$n" 2>/dev/null; then
      echo "$state" >"$slots_dir/$n/owner"
      echo "$n"; return 0
    fi
  done
  die "no free test-bed slot in $slots_dir"
}

# slot_abandoned N OWNER: no process of OWNER's test bed runs, and the slot
# is not being set up right now (claimed over a minute ago).
slot_abandoned() {
  local n="$1" owner="$2" name pid
  [[ -n "$(find "$slots_dir/$n/owner" -mmin +1 2>/dev/null)" ]] || return 1
  if [[ -f "$owner/pids" ]]; then
    while read -r name pid; do
      [[ -r "/proc/$pid/cmdline" ]] || continue
      tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$owner/" && return 1
    done <"$owner/pids"
  fi
  return 0
}

# slot_of_state: the slot this state directory holds, if any.
slot_of_state() {
  local n
  for n in $(seq 1 60); do
    [[ "$(cat "$slots_dir/$n/owner" 2>/dev/null || true)" == "$state" ]] && { echo "$n"; return 0; }
  done
  return 1
}

slot_release() {
  local n="$1"
  [[ "$(cat "$slots_dir/$n/owner" 2>/dev/null || true)" == "$state" ]] && rm -rf "${slots_dir:?}/$n"
  # The last test bed of the machine takes with it the host paths the
  # kubelet, containerd, runc and CNI make at fixed places.
  if [[ -z "$(find "$slots_dir" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ]]; then
    remove_host_paths
    rmdir "$slots_dir" 2>/dev/null
  fi
  return 0
}

# Paths outside the state that the node's parts create wherever they run:
# `ip netns` (/run/netns, a mount), containerd's shim sockets
# (/run/containerd/s), the CNI result cache, the kubelet's device-plugin
# directory and container log links.
host_paths=(/run/netns /run/containerd /var/lib/cni /var/lib/kubelet /var/log/containers)

# Before the first test bed of the machine: which of them are not there yet
# (so that the last one's `down` removes exactly those).
record_host_paths() {
  mkdir -p "$slots_dir"
  [[ -f "$slots_dir/created" ]] && return 0
  local p
  : >"$slots_dir/created.tmp"
  for p in "${host_paths[@]}"; do
    [[ -e "$p" ]] || echo "$p" >>"$slots_dir/created.tmp"
  done
  mv "$slots_dir/created.tmp" "$slots_dir/created"
}

remove_host_paths() {
  local p
  [[ -f "$slots_dir/created" ]] || return 0
  while read -r p; do
    case "$p" in
      /run/netns)
        # Only if no namespace is left in it; `ip netns` mounted it on itself.
        [[ -z "$(ls -A /run/netns 2>/dev/null)" ]] || continue
        while mountpoint -q /run/netns; do umount /run/netns 2>/dev/null || break; done
        rmdir /run/netns 2>/dev/null || true ;;
      /run/containerd | /var/lib/cni | /var/lib/kubelet | /var/log/containers)
        rm -rf "$p" ;;
    esac
  done <"$slots_dir/created"
  rm -f "$slots_dir/created"
}

# slot_vars N: the addresses and names of slot N, as shell variables.
slot_vars() {
  local n="$1"
  TB_SLOT="$n"
  TB_LOOP="127.213.$n.1"
  TB_HOST_IP="10.213.$n.1"
  TB_NODE_IP="10.213.$n.2"
  TB_OUTSIDE_IP="10.213.$n.9"
  TB_POD_CIDR="10.214.$n.0/24"
  TB_SERVICE_CIDR="10.0.0.0/24"
  TB_DNS_IP="10.0.0.10"
  TB_NETNS="publicdata-tb$n"
  TB_VETH_HOST="pdtb$n-host"
  TB_NODE_NAME="testbed-node"
  TB_RUN="$slots_dir/$n/run"
  TB_CGROUP="publicdata-tb$n"
  # The operator's intake of operation logs, as the API server and OpenBao
  # on the host reach it: a NodePort on the node.
  TB_OPLOG_NODE_PORT=30891
}

# --- certificates ------------------------------------------------------------

# cert NAME SUBJECT EXTENSIONS: a key and a certificate signed by the test
# bed's CA, in pki/NAME.{key,crt}.
cert() {
  local name="$1" subj="$2" ext="$3" pki="$state/pki" ca="${4:-ca}"
  openssl req -newkey rsa:2048 -nodes -subj "$subj" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" \
    -CAcreateserial -days 3650 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext" "$pki/$ca.srl"
}

# kubeconfig FILE USER: a kubeconfig for the API server with pki/USER.{crt,key}.
kubeconfig() {
  local file="$1" user="$2" pki="$state/pki"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: https://$TB_HOST_IP:6443
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$user.crt")
    client-key-data: $(base64 -w0 <"$pki/$user.key")
contexts:
- name: testbed
  context: {cluster: testbed, user: $user}
current-context: testbed
EOF
  chmod 600 "$file"
}
