# kube-apiserver: on the host end of the node's link (10.213.N.1:6443), so the
# host, the node and pods (through the `kubernetes` Service) reach it.
# shellcheck shell=bash

kube_apiserver_pki() {
  local pki="$state/pki"
  mkdir -p "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=publicdata-testbed-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:$TB_HOST_IP,IP:10.0.0.1,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
  # The cluster admin: a client certificate in group system:masters.
  cert admin "/CN=admin/O=system:masters" "extendedKeyUsage=clientAuth"
  # How the API server authenticates to the kubelet (logs, exec); bound to
  # system:kubelet-api-admin once the server is up.
  cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
  # The front proxy (the aggregation layer, as kubeadm sets it up): a CA of
  # its own, so that no client certificate of the cluster CA can pass for
  # it, and the client certificate the API server forwards requests to
  # aggregated APIs with (the operator's audit API).
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=publicdata-testbed-front-proxy-ca" \
    -keyout "$pki/front-proxy-ca.key" -out "$pki/front-proxy-ca.crt" 2>/dev/null
  cert front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth" front-proxy-ca
  # Service-account token signing keys.
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# The API server's audit log, as a platform keeps it: a file with the policy
# beside this script, and a webhook backend to the operator's intake of
# operation logs (its NodePort on the node) over TLS, with the intake's bearer
# token (the API server sends a token over TLS only).
# Batches wait at most a second; while nothing answers (no operator yet) the
# backend drops batches after its retries and the API server goes on.
# TESTBED_AUDIT_WEBHOOK=off leaves the webhook out (the benchmarks run the
# operator as a host process, which has no intake: the API server would log
# every event it cannot send, and that load is not the operator's).
kube_apiserver_audit() {
  local dir="$state/audit"
  mkdir -p "$dir"
  [[ -s "$dir/oplog.token" ]] || (umask 077 && openssl rand -hex 24 >"$dir/oplog.token")
  cp "$here/components/kube-audit-policy.yaml" "$dir/policy.yaml"
  # The intake's serving certificate, for the address the senders use.
  cert oplog "/CN=publicdata-operation-logs" "subjectAltName=IP:$TB_NODE_IP
extendedKeyUsage=serverAuth"
  (umask 077 && cat >"$dir/webhook.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: operation-logs
  cluster:
    server: "https://$TB_NODE_IP:$TB_OPLOG_NODE_PORT/v1/kubernetes"
    certificate-authority: "$state/pki/ca.crt"
users:
- name: kube-apiserver
  user: {token: "$(cat "$dir/oplog.token")"}
contexts:
- name: default
  context: {cluster: operation-logs, user: kube-apiserver}
current-context: default
YAML
  )
}

kube_apiserver_start() {
  local pki="$state/pki" api="https://$TB_HOST_IP:6443"
  kube_apiserver_audit
  local webhook=(--audit-webhook-config-file "$state/audit/webhook.kubeconfig"
    --audit-webhook-mode batch --audit-webhook-batch-max-wait 1s
    --audit-webhook-initial-backoff 1s)
  [[ "${TESTBED_AUDIT_WEBHOOK:-on}" == off ]] && webhook=()
  # shellcheck disable=SC2086 # extra args are split on purpose
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://$TB_LOOP:2379" \
    --bind-address "$TB_HOST_IP" --advertise-address "$TB_HOST_IP" --secure-port 6443 \
    --cert-dir "$pki" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" \
    --proxy-client-key-file "$pki/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --service-account-issuer "$api" \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$TB_SERVICE_CIDR" \
    --allow-privileged=true --profiling=false \
    --audit-policy-file "$state/audit/policy.yaml" \
    --audit-log-path "$state/logs/kube-apiserver-audit.log" \
    --audit-log-maxsize 100 --audit-log-maxbackup 5 \
    "${webhook[@]}" \
    ${TESTBED_APISERVER_EXTRA_ARGS:-}
  wait_for kube-apiserver 120 curl -fsS --cacert "$pki/ca.crt" \
    --cert "$pki/admin.crt" --key "$pki/admin.key" "$api/readyz"
  kubeconfig "$state/kubeconfig" admin
  "$KUBECTL" --kubeconfig "$state/kubeconfig" create clusterrolebinding testbed-apiserver-kubelet \
    --clusterrole system:kubelet-api-admin --user kube-apiserver-kubelet-client >/dev/null
}
