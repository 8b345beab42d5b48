# The operator's own OpenBao/Vault policy: least privilege, and nothing else.
# It manages tenant areas and tenant auth, and never reads tenant data.

# One KV v2 mount per tenant, at tenants/<tenant>.
path "sys/mounts/tenants/*" {
  capabilities = ["create", "read", "update"]
}

# Policies tenant-<tenant>-<env> (vaultrs uses the sys/policy endpoint).
path "sys/policy/tenant-*" {
  capabilities = ["create", "read", "update"]
}

# Kubernetes-auth roles tenant-<tenant>-<env>.
path "auth/kubernetes/role/tenant-*" {
  capabilities = ["create", "read", "update"]
}

# Its own token, to stay alive.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
