# The operator's own OpenBao/Vault policy: least privilege, and nothing else.
# It manages tenant areas and workload identities and roles, and never reads
# tenant data. It writes no policy text: every role it writes carries the
# platform's templated policy publicdata-workload and nothing else.
#
# A template: files/openbao-setup.sh renders it (@WORKLOAD_MOUNT@, the
# workload auth mount; @WORKLOAD_ACCESSOR@, its accessor; @KUBERNETES_HOST@
# and @KUBERNETES_CA@, the API server OpenBao reviews workload tokens at;
# @DATABASE_MOUNT@, the database secrets engine, and @DATABASE_CONNECTION@,
# its connection) and writes it as the policy
# publicdata-operator.

# One KV v2 mount per tenant environment, at areas/<namespace>; disabled
# (every version destroyed) at offboarding. Only KV, with no other settings.
path "sys/mounts/areas/*" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "type" = ["kv"]
    "options" = []
    "description" = []
  }
}
# The offboarding inventory lists secret paths and reads their metadata
# (versions, times) for digests; never the data.
path "areas/+/metadata/*" {
  capabilities = ["list", "read"]
}

# The workload auth mount, which the platform enabled: read, its description
# (naming the reviewer token it was configured with) and its configuration.
# The configuration may only point at this API server with this CA: the
# reviewer token rotates, nothing else moves.
path "sys/auth/@WORKLOAD_MOUNT@" {
  capabilities = ["read", "sudo"]
}
path "sys/auth/@WORKLOAD_MOUNT@/tune" {
  capabilities = ["update", "sudo"]
  allowed_parameters = {
    "description" = []
  }
}
path "auth/@WORKLOAD_MOUNT@/config" {
  capabilities = ["create", "read", "update"]
  allowed_parameters = {
    "kubernetes_host" = ["@KUBERNETES_HOST@"]
    "kubernetes_ca_cert" = ["@KUBERNETES_CA@"]
    "token_reviewer_jwt" = []
    "disable_local_ca_jwt" = []
  }
}
# One role per tenant environment, named after its namespace, bound to its
# workload ServiceAccount. Its only policy is the platform's
# publicdata-workload (sent as that one string: a list, another name, or
# "a,b" is refused), never the default policy (its cubbyhole and response
# wrapping are places to leave data for another token), its login named
# after the ServiceAccount.
path "auth/@WORKLOAD_MOUNT@/role/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
  allowed_parameters = {
    "bound_service_account_names" = ["workload"]
    "bound_service_account_namespaces" = []
    "audience" = []
    "alias_name_source" = ["serviceaccount_name"]
    "token_policies" = ["publicdata-workload"]
    "token_no_default_policy" = ["true"]
    "token_ttl" = []
    "token_max_ttl" = []
  }
}
# One identity per tenant environment, publicdata-<namespace>: its metadata
# (the owner mark, the catalog paths granted) and whether it is disabled (a
# freeze); deleted at a resume and at offboarding. Never its policies. The
# operator never makes one here (an identity is the entity OpenBao makes for
# a login's alias); a write to a name that does not exist would make an
# entity with no login, which the operator deletes as it finds it.
path "identity/entity/name/publicdata-*" {
  capabilities = ["read", "update", "delete"]
  allowed_parameters = {
    "metadata" = []
    "disabled" = []
  }
}
# The login of a tenant environment in the workload mount (its alias,
# <namespace>/workload), written on its own: OpenBao makes an entity for a
# new one. Never attached to an entity (canonical_id): the same write moves
# an existing login to another entity, which would give that entity's
# tokens the other login's namespace.
path "identity/entity-alias" {
  capabilities = ["update"]
  allowed_parameters = {
    "name" = []
    "mount_accessor" = ["@WORKLOAD_ACCESSOR@"]
  }
}
# The entity a login's alias belongs to, found by the alias, and named
# publicdata-<namespace>; nothing else is written by id.
path "identity/lookup/entity" {
  capabilities = ["update"]
  allowed_parameters = {
    "alias_name" = []
    "alias_mount_accessor" = ["@WORKLOAD_ACCESSOR@"]
  }
}
path "identity/entity/id/*" {
  capabilities = ["update"]
  allowed_parameters = {
    "name" = ["publicdata-*"]
  }
}
# A freeze and an offboarding revoke the database credentials of a tenant
# environment (the users dropped, their sessions ended), after listing them.
path "sys/leases/lookup/@DATABASE_MOUNT@/creds/*" {
  capabilities = ["list", "sudo"]
}
path "sys/leases/revoke-prefix/@DATABASE_MOUNT@/creds/*" {
  capabilities = ["update", "sudo"]
}

# What the operator made before the workload mount and the templated
# policies, removed at offboarding if still there: a tenant's KV mount
# tenants/<tenant>, its auth mount k8s-<tenant>, its policies tenant-*.
# Removed only: never made or written.
path "sys/mounts/tenants/*" {
  capabilities = ["read", "delete"]
}
path "tenants/+/metadata/*" {
  capabilities = ["list", "read"]
}
path "sys/auth/k8s-*" {
  capabilities = ["read", "delete", "sudo"]
}
path "sys/policy/tenant-*" {
  capabilities = ["read", "delete"]
}

# The data plane: one role per tenant environment in the database secrets
# engine (prod's through the connection @DATABASE_CONNECTION@ to the raw
# database, dev's through @SAMPLE_CONNECTION@ to the samples database, both
# configured by the platform),
# written at provisioning and deleted at offboarding. Never its creds. Every
# role has the same statements, pinned here (the operator's DATABASE_CREATION
# and DATABASE_REVOCATION): the user is made, then the platform's
# publicdata_platform.enroll (files/postgres-setup.sql) makes it a member of
# the tenant role its name begins with. No other SQL, no rollback or renew
# statements, no other connection, no longer lease.
path "@DATABASE_MOUNT@/roles/*" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "db_name" = ["@DATABASE_CONNECTION@", "@SAMPLE_CONNECTION@"]
    "creation_statements" = ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; SELECT publicdata_platform.enroll('{{name}}')"]
    "revocation_statements" = ["SELECT publicdata_platform.retire('{{name}}')"]
    "default_ttl" = ["15m"]
    "max_ttl" = ["1h"]
  }
}

# Deliveries of approved exports: the KV v2 mount `deliveries`, written only by
# the operator. Recipients read theirs with a policy the bureau writes
# (files/openbao-recipient-policy.hcl).
path "sys/mounts/deliveries" {
  capabilities = ["create", "read", "update"]
}
path "deliveries/data/*" {
  capabilities = ["create", "read", "update"]
}
# The exit review lists a tenant's deliveries (metadata only) to check each
# is an approved export on record.
path "deliveries/metadata/*" {
  capabilities = ["list", "read"]
}

# The export scan looks for raw values of catalog fields marked Sensitive in
# an artifact, so it reads the catalog's raw data (the KV v2 mount `catalog`).
# It never copies them anywhere; findings carry no values.
path "catalog/data/*" {
  capabilities = ["read"]
}

# Its own token, to stay alive.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# The audit chain's anchor: checkpoints of its head, signed by a transit key
# that never leaves OpenBao (created not exportable; this policy cannot read
# it out, change its config or delete it), and kept in the operator's KV v2
# mount `publicdata-records` (written, never deleted: KV keeps every version).
path "sys/mounts/publicdata-transit" {
  capabilities = ["create", "read", "update"]
}
path "publicdata-transit/keys/audit-checkpoint" {
  capabilities = ["create", "read", "update"]
}
path "publicdata-transit/sign/audit-checkpoint" {
  capabilities = ["update"]
}
# Deliveries' fingerprints: each delivery's key is a keyed hash, by the
# transit key export-fingerprint (made on first use, not exportable), of the
# export's uid. The key never leaves OpenBao; the trace derives a delivery's
# key again, with the version on record.
path "publicdata-transit/keys/export-fingerprint" {
  capabilities = ["create", "read", "update"]
}
path "publicdata-transit/hmac/export-fingerprint" {
  capabilities = ["update"]
}
path "sys/mounts/publicdata-records" {
  capabilities = ["create", "read", "update"]
}
# The checkpoint: written with check-and-set on the version read here, never
# deleted, destroyed or its history configured (no delete capability, no
# destroy/, no metadata write). Each checkpoint is also locked in the records
# store, so one written back to an older head shows as a rollback.
path "publicdata-records/data/audit/checkpoint" {
  capabilities = ["create", "read", "update"]
}
path "publicdata-records/metadata/audit/checkpoint" {
  capabilities = ["read"]
}
