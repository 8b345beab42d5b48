#!/usr/bin/env bash
# The platform's side in OpenBao (or Vault) for publicdata-operator, run by
# the platform team with an admin token: once at install, again on upgrade
# (every step is idempotent). The operator itself writes no policy and
# enables no auth mount; this script does both, once.
#
#   openbao-setup.sh platform
#       Enables the workload auth mount (Kubernetes auth, max token TTL 4h),
#       then renders and writes the platform's templated policy
#       publicdata-workload (files/openbao-workload-policy.hcl) and the
#       operator's own policy publicdata-operator
#       (files/openbao-operator-policy.hcl), both naming that mount's
#       accessor. Bind publicdata-operator to the operator's login role.
#   openbao-setup.sh recipient CREDIT_CODE
#       The bureau admits a recipient of approved exports: writes the policy
#       recipient-<credit code, lower case> (read on its deliveries only).
#
# Environment (defaults in brackets):
#   BAO                 the CLI [bao; `vault` works too], which reads
#                       BAO_ADDR/VAULT_ADDR and BAO_TOKEN/VAULT_TOKEN
#   WORKLOAD_MOUNT      the workload auth mount [publicdata-workloads]
#   CATALOG_MOUNT       the catalog's KV v2 mount [catalog]
#   DATABASE_MOUNT      the database secrets engine [database]
#   DATABASE_CONNECTION its connection to PostgreSQL's raw database
#                       [publicdata], which the platform configures with the
#                       username template {{.RoleName}}.{{random 17}}
#                       (docs/data-plane.md)
#   SAMPLE_CONNECTION   its connection to the samples database, configured
#                       the same way [$DATABASE_CONNECTION-sample]
#   KUBERNETES_HOST     the API server as OpenBao reaches it (platform; required)
#   KUBERNETES_CA_FILE  its CA bundle (platform; required): the operator may
#                       configure the mount with exactly this host and CA
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BAO="${BAO:-bao}"
WORKLOAD_MOUNT="${WORKLOAD_MOUNT:-publicdata-workloads}"
CATALOG_MOUNT="${CATALOG_MOUNT:-catalog}"
DATABASE_MOUNT="${DATABASE_MOUNT:-database}"
DATABASE_CONNECTION="${DATABASE_CONNECTION:-publicdata}"
SAMPLE_CONNECTION="${SAMPLE_CONNECTION:-$DATABASE_CONNECTION-sample}"

die() { echo "openbao-setup: $*" >&2; exit 1; }

# The text of an HCL string: backslashes, quotes and newlines escaped.
hcl_string() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/\\n}"
  printf '%s' "$s"
}

# The catalog's templated paths of the workload policy: for each slot and
# depth, one path of that many segments, each a metadata value
# catalog-NN-D-I (the operator's vault::catalog_key; CATALOG_SLOTS 32,
# CATALOG_DEPTH 6).
catalog_paths() {
  local slot nn depth i path
  for ((slot = 0; slot < 32; slot++)); do
    printf -v nn '%02d' "$slot"
    for ((depth = 1; depth <= 6; depth++)); do
      path="$CATALOG_MOUNT/data"
      for ((i = 1; i <= depth; i++)); do
        path+="/{{identity.entity.metadata.catalog-$nn-$depth-$i}}"
      done
      printf 'path "%s" {\n  capabilities = ["read"]\n}\n' "$path"
    done
  done
}

platform() {
  [[ -n "${KUBERNETES_HOST:-}" ]] || die "set KUBERNETES_HOST (the API server as OpenBao reaches it)"
  [[ -r "${KUBERNETES_CA_FILE:-}" ]] || die "set KUBERNETES_CA_FILE (its CA bundle)"
  if ! "$BAO" read -field=type "sys/auth/$WORKLOAD_MOUNT" >/dev/null 2>&1; then
    "$BAO" auth enable -path="$WORKLOAD_MOUNT" \
      -description="publicdata-operator workloads (configured by the operator)" kubernetes >/dev/null
  fi
  [[ "$("$BAO" read -field=type "sys/auth/$WORKLOAD_MOUNT")" == kubernetes ]] \
    || die "auth/$WORKLOAD_MOUNT exists and is not a Kubernetes auth mount"
  # Whatever a role says, no workload token outlives 4 hours.
  "$BAO" auth tune -max-lease-ttl=4h -default-lease-ttl=1h "$WORKLOAD_MOUNT/" >/dev/null
  local accessor ca text
  accessor="$("$BAO" read -field=accessor "sys/auth/$WORKLOAD_MOUNT")"
  [[ -n "$accessor" ]] || die "auth/$WORKLOAD_MOUNT has no accessor"
  ca="$(hcl_string "$(<"$KUBERNETES_CA_FILE")")"
  text="$(<"$here/openbao-workload-policy.hcl")"
  text="${text//@WORKLOAD_ACCESSOR@/$accessor}"
  text="${text//@CATALOG_MOUNT@/$CATALOG_MOUNT}"
  text="${text//@DATABASE_MOUNT@/$DATABASE_MOUNT}"
  text="${text//@CATALOG_PATHS@/$(catalog_paths)}"
  printf '%s\n' "$text" | "$BAO" policy write publicdata-workload - >/dev/null
  text="$(<"$here/openbao-operator-policy.hcl")"
  text="${text//@WORKLOAD_ACCESSOR@/$accessor}"
  text="${text//@WORKLOAD_MOUNT@/$WORKLOAD_MOUNT}"
  text="${text//@DATABASE_MOUNT@/$DATABASE_MOUNT}"
  text="${text//@DATABASE_CONNECTION@/$DATABASE_CONNECTION}"
  text="${text//@SAMPLE_CONNECTION@/$SAMPLE_CONNECTION}"
  text="${text//@KUBERNETES_HOST@/$(hcl_string "$KUBERNETES_HOST")}"
  text="${text//@KUBERNETES_CA@/$ca}"
  printf '%s\n' "$text" | "$BAO" policy write publicdata-operator - >/dev/null
  echo "openbao-setup: auth/$WORKLOAD_MOUNT ($accessor), policies publicdata-workload and publicdata-operator written"
}

recipient() {
  local code="${1:?usage: openbao-setup.sh recipient CREDIT_CODE}"
  [[ "$code" =~ ^[0-9A-Z]{18}$ ]] || die "$code is not a unified social credit code (18 digits and capitals)"
  local text
  text="$(<"$here/openbao-recipient-policy.hcl")"
  printf '%s\n' "${text//@CREDIT_CODE@/$code}" | "$BAO" policy write "recipient-${code,,}" - >/dev/null
  echo "openbao-setup: policy recipient-${code,,} written"
}

case "${1:-}" in
  platform) platform ;;
  recipient) shift; recipient "$@" ;;
  *) die "usage: openbao-setup.sh platform | recipient CREDIT_CODE" ;;
esac
