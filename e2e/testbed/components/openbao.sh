# OpenBao (`bao server -dev`) on the host end of the node's link, exposed in
# the cluster as the Service openbao.openbao-system (a selector-less Service
# with an EndpointSlice), the way a platform exposes an external Vault.
# shellcheck shell=bash

openbao_start() {
  local root_token="$1" cfg="$state/openbao.hcl"
  # The dev server takes an extra config file; it only sets the default lease
  # TTLs, which otherwise are 32 days.
  cat >"$cfg" <<'HCL'
default_lease_ttl = "1h"
max_lease_ttl = "24h"
HCL
  start openbao "$BAO" server -dev \
    -dev-listen-address "$TB_HOST_IP:8200" \
    -dev-root-token-id "$root_token" \
    -config "$cfg"
  wait_for openbao 60 curl -fsS "http://$TB_HOST_IP:8200/v1/sys/health"
}

# OpenBao's Kubernetes auth method, configured against this API server: a
# reviewer ServiceAccount bound to system:auth-delegator lets OpenBao call
# TokenReview for every login. Then the in-cluster Service.
openbao_configure() {
  local api="https://$TB_HOST_IP:6443"
  "$KUBECTL" create namespace openbao-system >/dev/null
  "$KUBECTL" -n openbao-system create serviceaccount token-reviewer >/dev/null
  "$KUBECTL" create clusterrolebinding openbao-token-reviewer \
    --clusterrole system:auth-delegator --serviceaccount openbao-system:token-reviewer >/dev/null
  local jwt
  jwt="$("$KUBECTL" -n openbao-system create token token-reviewer --duration 8760h)"
  echo "$jwt" >"$state/reviewer.jwt"
  chmod 600 "$state/reviewer.jwt"
  "$BAO" auth enable kubernetes >/dev/null
  "$BAO" write auth/kubernetes/config \
    kubernetes_host="$api" \
    kubernetes_ca_cert=@"$state/pki/ca.crt" \
    token_reviewer_jwt="$jwt" \
    disable_local_ca_jwt=true >/dev/null
  host_service openbao-system openbao 8200
}
