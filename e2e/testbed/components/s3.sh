# An S3-compatible object store with Object Lock, as the platform's archive
# store outside the cluster: the Versity S3 Gateway (Apache-2.0, one Go
# binary built from its module) with its posix backend, objects as files
# under the state and their locks in extended attributes, enforced by the
# gateway (a delete or overwrite of a locked object is refused). On the host
# end of the node's link, exposed in the cluster as the Service s3.s3-system
# (a selector-less Service with an EndpointSlice, like OpenBao).
# shellcheck shell=bash

S3_PORT=7070
S3_BUCKET=publicdata-records

s3_start() {
  mkdir -p "$state/s3/data"
  local key secret
  key="testbed$(openssl rand -hex 6)"
  secret="$(openssl rand -hex 20)"
  printf 'S3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\n' "$key" "$secret" >"$state/s3/credentials"
  chmod 600 "$state/s3/credentials"
  start s3 "$VERSITYGW_BIN/versitygw" --access "$key" --secret "$secret" \
    --port "$TB_HOST_IP:$S3_PORT" --region us-east-1 posix "$state/s3/data"
  wait_for s3 60 s3_answers
  # Object Lock can only be enabled when a bucket is created.
  s3_request PUT "/$S3_BUCKET" -H "x-amz-bucket-object-lock-enabled: true" >/dev/null \
    || die "creating the bucket $S3_BUCKET with Object Lock failed (see $state/logs/s3.log)"
}

# Any answer (an anonymous request is refused with 403) means it listens.
s3_answers() {
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$TB_HOST_IP:$S3_PORT/")" =~ ^(200|403)$ ]]
}

# s3_request METHOD PATH CURL_ARGS...: a request signed with the test bed's key.
s3_request() {
  local method="$1" path="$2"; shift 2
  # shellcheck disable=SC1091
  source "$state/s3/credentials"
  curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X "$method" "$@" "http://$TB_HOST_IP:$S3_PORT$path"
}

s3_configure() {
  host_service s3-system s3 "$S3_PORT"
}
