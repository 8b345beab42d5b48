-- The platform's side in PostgreSQL for publicdata-operator's data plane:
-- run once by a superuser in the data's database, on install and on upgrade
-- (every step is idempotent):
--
--   psql -d publicdata -v openbao_role=openbao -f postgres-setup.sql
--
-- OpenBao's database secrets engine makes every tenant environment's
-- short-lived users with the same statements (the operator's OpenBao policy
-- pins them, so whoever holds the operator's token runs no SQL of its own):
--
--   CREATE ROLE "{{name}}" WITH LOGIN ...; SELECT publicdata_platform.enroll('{{name}}')
--
-- The connection's username template is {{.RoleName}}.{{random 17}}, and the
-- role's credentials are read only by the workloads of the namespace it is
-- named after (the platform's publicdata-workload policy), so the name a user
-- is made with begins with its tenant environment. enroll makes the user a
-- member of that tenant role, and only of a role the operator made for a
-- tenant (NOLOGIN, no attribute, the operator's comment on it).

CREATE SCHEMA IF NOT EXISTS publicdata_platform;
REVOKE ALL ON SCHEMA publicdata_platform FROM PUBLIC;
GRANT USAGE ON SCHEMA publicdata_platform TO :"openbao_role";

CREATE OR REPLACE FUNCTION publicdata_platform.enroll(username text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $enroll$
DECLARE
  -- <tenant>-<dev|prod>.<random>: a tenant id is a DNS label.
  tenant_role text := substring(username FROM '^([a-z][-a-z0-9]*-(dev|prod))\.[A-Za-z0-9]+$');
  tenant text := substring(tenant_role FROM '^(.*)-(dev|prod)$');
BEGIN
  IF tenant_role IS NULL OR NOT EXISTS (
    SELECT 1 FROM pg_roles r
     WHERE r.rolname = tenant_role
       AND NOT r.rolcanlogin AND NOT r.rolsuper AND NOT r.rolcreaterole
       AND NOT r.rolcreatedb AND NOT r.rolreplication AND NOT r.rolbypassrls
       AND shobj_description(r.oid, 'pg_authid') = 'publicdata-operator tenant ' || tenant
  ) THEN
    RAISE EXCEPTION 'publicdata_platform.enroll: % is not named after a tenant role the operator made', username;
  END IF;
  EXECUTE format('GRANT %I TO %I', tenant_role, username);
END
$enroll$;

REVOKE ALL ON FUNCTION publicdata_platform.enroll(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION publicdata_platform.enroll(text) TO :"openbao_role";

-- What PostgreSQL grants PUBLIC by default, taken back in this database: a
-- tenant user may connect only where its role is granted CONNECT, makes no
-- temporary table, creates nothing in `public`, and makes no large object
-- (a large object granted to PUBLIC is read by any other user of the
-- database, whatever its grants). What a user owns anyway is dropped with
-- it (publicdata_platform.retire).
DO $revoke$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
END
$revoke$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.lo_creat(integer), pg_catalog.lo_create(oid),
  pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lo_import(text),
  pg_catalog.lo_import(text, oid) FROM PUBLIC;

-- What OpenBao runs when a user's lease ends: its sessions ended, whatever
-- it owns in this database dropped (large objects included), then the user.
-- Only a user named after a tenant role the operator made; one already gone
-- is fine (a revocation tried again).
CREATE OR REPLACE FUNCTION publicdata_platform.retire(username text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $retire$
BEGIN
  IF substring(username FROM '^([a-z][-a-z0-9]*-(dev|prod))\.[A-Za-z0-9]+$') IS NULL THEN
    RAISE EXCEPTION 'publicdata_platform.retire: % is not a tenant user', username;
  END IF;
  PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = username;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = username) THEN
    RETURN;
  END IF;
  -- DROP OWNED needs the privileges of the user: its maker may take them.
  IF NOT pg_has_role(current_user, username, 'USAGE') THEN
    EXECUTE format('GRANT %I TO %I', username, current_user);
  END IF;
  EXECUTE format('DROP OWNED BY %I', username);
  EXECUTE format('DROP ROLE %I', username);
END
$retire$;

REVOKE ALL ON FUNCTION publicdata_platform.retire(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION publicdata_platform.retire(text) TO :"openbao_role";
