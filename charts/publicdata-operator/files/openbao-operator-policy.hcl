# The operator's own OpenBao/Vault policy: least privilege, and nothing else.
# It manages tenant areas and tenant auth, and never reads tenant data.

# One KV v2 mount per tenant, at tenants/<tenant>; disabled (every version
# destroyed) at offboarding.
path "sys/mounts/tenants/*" {
  capabilities = ["create", "read", "update", "delete"]
}
# The offboarding inventory lists secret paths and reads their metadata
# (versions, times) for digests; never the data.
path "tenants/+/metadata/*" {
  capabilities = ["list", "read"]
}

# One Kubernetes auth mount per tenant, at auth/k8s-<tenant>: enabled at
# provisioning, disabled (which revokes every token issued through it) at freeze.
path "sys/auth" {
  capabilities = ["read"]
}
path "sys/auth/k8s-*" {
  capabilities = ["create", "read", "update", "delete", "sudo"]
}
# Its config and its roles (dev, prod).
path "auth/k8s-*" {
  capabilities = ["create", "read", "update", "list"]
}

# Policies tenant-<tenant>-<env> (vaultrs uses the sys/policy endpoint).
path "sys/policy/tenant-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# The data plane: one role per tenant environment in the database secrets
# engine (mount `database`, its connection configured by the platform),
# written at provisioning and deleted at offboarding. Never its creds.
path "database/roles/*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Deliveries of approved exports: the KV v2 mount `deliveries`, written only by
# the operator, and one read policy per recipient (recipient-<credit code>).
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
path "sys/policy/recipient-*" {
  capabilities = ["create", "read", "update"]
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
