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
  # Service-account token signing keys.
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

kube_apiserver_start() {
  local pki="$state/pki" api="https://$TB_HOST_IP:6443"
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
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --service-account-issuer "$api" \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$TB_SERVICE_CIDR" \
    --allow-privileged=true --profiling=false \
    ${TESTBED_APISERVER_EXTRA_ARGS:-}
  wait_for kube-apiserver 120 curl -fsS --cacert "$pki/ca.crt" \
    --cert "$pki/admin.crt" --key "$pki/admin.key" "$api/readyz"
  kubeconfig "$state/kubeconfig" admin
  "$KUBECTL" --kubeconfig "$state/kubeconfig" create clusterrolebinding testbed-apiserver-kubelet \
    --clusterrole system:kubelet-api-admin --user kube-apiserver-kubelet-client >/dev/null
}
