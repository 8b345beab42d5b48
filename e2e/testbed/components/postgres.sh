# PostgreSQL: where the public data lives, outside the cluster like OpenBao.
# Debian's server, run by the test bed as the `postgres` user with its data in
# the state directory, on the host end of the node's link, exposed in the
# cluster as the Service postgres.postgres-system. Connections over TCP log in
# with a password (SCRAM); the Unix socket, in a directory only root and
# postgres can enter, is for the test bed itself.
#
# Roles made here, as a platform would:
#   postgres            the superuser (password in postgres/superuser.password)
#   publicdata_operator the operator: owns the masked views, makes and drops
#                       tenant roles (CREATEROLE), grants columns
#   openbao             OpenBao's database secrets engine: makes and drops the
#                       short-lived users (CREATEROLE), nothing else; it
#                       enrolls them in their tenant role with the function
#                       of charts/publicdata-operator/files/postgres-setup.sql
# and the database `publicdata`, into which the example catalog's synthetic
# tables are loaded (examples/data/catalog.sql); and `publicdata_sample`,
# dev's samples, which the operator fills (dev's users connect only there,
# prod's never do).
# shellcheck shell=bash

POSTGRES_PORT=5432
POSTGRES_DB=publicdata
POSTGRES_SAMPLE_DB=publicdata_sample

postgres_as() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# psql as the superuser over the socket: postgres_sql [PSQL_ARGS...]
postgres_sql() {
  "$POSTGRES_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$state/postgres/run" -p "$POSTGRES_PORT" -U postgres "$@"
}

postgres_start() {
  local dir="$state/postgres"
  mkdir -p "$dir/run"
  local role
  for role in postgres publicdata_operator openbao; do
    openssl rand -hex 20 >"$dir/$role.password"
  done
  chmod 600 "$dir"/*.password
  chown -R postgres:postgres "$dir"
  chmod 700 "$dir"
  postgres_as "$POSTGRES_BIN/initdb" -D "$dir/data" -U postgres --pwfile="$dir/postgres.password" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
    >"$state/logs/postgres-initdb.log" 2>&1 \
    || { tail -n 30 "$state/logs/postgres-initdb.log" >&2; die "initdb failed"; }
  # Pods reach it through the Service from the pod network; nothing else
  # reaches its address.
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$dir/data/pg_hba.conf"
  start postgres setpriv --reuid=postgres --regid=postgres --init-groups \
    "$POSTGRES_BIN/postgres" -D "$dir/data" -c listen_addresses="$TB_HOST_IP" -c port="$POSTGRES_PORT" \
    -c unix_socket_directories="$dir/run" -c log_connections=on -c log_disconnections=on \
    -c password_encryption=scram-sha-256
  wait_for postgres 60 "$POSTGRES_BIN/pg_isready" -q -h "$dir/run" -p "$POSTGRES_PORT"
  # A password file for the superuser over TCP (POSTGRES_ADMIN_URL).
  printf '%s:%s:*:postgres:%s\n' "$TB_HOST_IP" "$POSTGRES_PORT" "$(cat "$dir/postgres.password")" >"$dir/pgpass"
  chmod 600 "$dir/pgpass"
  postgres_sql -d postgres -v db="$POSTGRES_DB" -v sample_db="$POSTGRES_SAMPLE_DB" \
    -v op="$(cat "$dir/publicdata_operator.password")" -v bao="$(cat "$dir/openbao.password")" <<'SQL'
CREATE ROLE publicdata_operator LOGIN CREATEROLE PASSWORD :'op';
CREATE ROLE openbao LOGIN CREATEROLE PASSWORD :'bao';
-- Both end sessions of the users they make or manage (not a superuser's).
GRANT pg_signal_backend TO publicdata_operator, openbao;
CREATE DATABASE :"db" OWNER postgres;
CREATE DATABASE :"sample_db" OWNER postgres;
-- The server's own databases are nobody's meeting place: PUBLIC may not
-- connect (a tenant user could NOTIFY or make a large object there).
REVOKE ALL ON DATABASE postgres FROM PUBLIC;
REVOKE ALL ON DATABASE template1 FROM PUBLIC;
SQL
  # Nobody but the roles the operator grants reads anything: PUBLIC may not
  # even connect or create in the public schema (postgres-setup.sql takes
  # back the rest of what PUBLIC gets by default).
  local db
  for db in "$POSTGRES_DB" "$POSTGRES_SAMPLE_DB"; do
    postgres_sql -d "$db" -v db="$db" <<'SQL'
GRANT CONNECT, CREATE ON DATABASE :"db" TO publicdata_operator WITH GRANT OPTION;
GRANT CONNECT ON DATABASE :"db" TO openbao;
SQL
    # The platform's functions, which every tenant user is made and dropped with.
    postgres_sql -d "$db" -v openbao_role=openbao \
      -f "$repo/charts/publicdata-operator/files/postgres-setup.sql" >/dev/null \
      || die "charts/publicdata-operator/files/postgres-setup.sql failed in $db"
  done
  postgres_sql -d "$POSTGRES_DB" -f "$repo/examples/data/catalog.sql" >/dev/null \
    || die "loading examples/data/catalog.sql into PostgreSQL failed"
}

# The Service, and OpenBao's database secrets engine with its connection to
# PostgreSQL as the `openbao` role: the platform's part. The operator writes
# one role per tenant environment there.
postgres_configure() {
  host_service postgres-system postgres "$POSTGRES_PORT"
  "$BAO" secrets enable database >/dev/null
  local connection db
  for connection in publicdata:"$POSTGRES_DB" publicdata-sample:"$POSTGRES_SAMPLE_DB"; do
    db="${connection#*:}" connection="${connection%%:*}"
    "$BAO" write "database/config/$connection" \
      plugin_name=postgresql-database-plugin \
      connection_url="postgresql://{{username}}:{{password}}@$TB_HOST_IP:$POSTGRES_PORT/$db?sslmode=disable" \
      username=openbao password="$(cat "$state/postgres/openbao.password")" \
      password_authentication=scram-sha-256 \
      username_template='{{.RoleName}}.{{random 17}}' \
      allowed_roles="*" verify_connection=true >/dev/null \
      || die "configuring OpenBao's database secrets engine ($connection) failed"
  done
}
