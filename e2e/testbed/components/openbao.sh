# OpenBao (`bao server -dev`) on the host end of the node's link, exposed in
# the cluster as the Service openbao.openbao-system (a selector-less Service
# with an EndpointSlice), the way a platform exposes an external Vault.
# shellcheck shell=bash

openbao_start() {
  local root_token="$1" cfg="$state/openbao.hcl"
  # The dev server takes an extra config file: the default lease TTLs (which
  # otherwise are 32 days) and the audit devices.
  cat >"$cfg" <<HCL
default_lease_ttl = "1h"
max_lease_ttl = "24h"
HCL
  openbao_audit_config >>"$cfg"
  # SSL_CERT_FILE: the test bed's CA is what OpenBao's http audit device
  # trusts (it has no CA option of its own).
  SSL_CERT_FILE="$state/pki/ca.crt" start openbao "$BAO" server -dev \
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

# OpenBao's audit devices, declared in its configuration (OpenBao refuses to
# enable them through its API): a file, always, which is the complete record
# and lets OpenBao serve while any other device fails; with "operator", also
# an http device to the operator's intake of operation logs. OpenBao tests a
# device when it is declared and will not start with one that does not
# answer, so the http device is added once the intake is up.
openbao_audit_config() {
  cat <<HCL
audit "file" "file" {
  options { file_path = "$state/logs/openbao-audit.log" }
}
HCL
  if [[ "${1:-}" == operator ]]; then
    cat <<HCL
audit "http" "operator" {
  options {
    uri = "https://$TB_NODE_IP:$TB_OPLOG_NODE_PORT/v1/openbao"
    headers = "{\\"Authorization\\": [\\"Bearer $(cat "$state/audit/oplog.token")\\"]}"
  }
}
HCL
  fi
}

# openbao_audit_to_operator on|off: declares (or removes) the http device to
# the operator's intake, has OpenBao reload its configuration (SIGHUP), and
# waits until its list of devices says so.
openbao_audit_to_operator() {
  local cfg="$state/openbao.hcl" want="$1" pid
  sed -i '/^audit /,$d' "$cfg"
  if [[ "$want" == on ]]; then openbao_audit_config operator >>"$cfg"; else openbao_audit_config >>"$cfg"; fi
  pid="$(pid_of openbao)"
  [[ -n "$pid" ]] && ours "$pid" || die "OpenBao is not running"
  local deadline=$((SECONDS + 60)) listed
  while ((SECONDS < deadline)); do
    kill -HUP "$pid"
    sleep 1
    listed="$(bao audit list 2>/dev/null | grep -c '^operator/' || true)"
    if [[ "$want" == on && "$listed" == 1 ]] || [[ "$want" == off && "$listed" == 0 ]]; then
      log "OpenBao's audit device to the operator: $want"
      return 0
    fi
  done
  tail -n 5 "$state/logs/openbao.log" >&2
  die "OpenBao did not turn its audit device to the operator $want within 60s"
}
