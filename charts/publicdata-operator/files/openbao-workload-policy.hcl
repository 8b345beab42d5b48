# publicdata-workload: the platform's one policy for every tenant workload,
# installed once (files/openbao-setup.sh renders @WORKLOAD_ACCESSOR@, the
# accessor of the workload auth mount, @CATALOG_MOUNT@ and @DATABASE_MOUNT@).
# The operator writes no policy: every role it writes carries this one.
#
# Everything is named from the login itself. The namespace is the one
# OpenBao's TokenReview vouched for when the workload logged in (the alias
# metadata of the workload auth mount), so a workload reaches its own
# environment's area and database users and nothing of any other. The
# catalog paths are the ones the operator listed in the identity's metadata
# for the environment's approved scenarios (catalog-00 ... catalog-31), and
# only under the catalog mount. A slot the identity has no value for names
# no path.

# The token's own life, which the `default` policy would otherwise give (the
# roles leave `default` out: its cubbyhole and response wrapping are places
# to leave data for another token): see, renew up to the role's maximum,
# give up.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
# Its leases (a database user's), renewed within the token's life.
path "sys/leases/renew" {
  capabilities = ["update"]
}

# The environment's own KV area.
path "areas/{{identity.entity.aliases.@WORKLOAD_ACCESSOR@.metadata.service_account_namespace}}/data/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "areas/{{identity.entity.aliases.@WORKLOAD_ACCESSOR@.metadata.service_account_namespace}}/metadata/*" {
  capabilities = ["read", "list", "delete"]
}

# Short-lived PostgreSQL users of the environment's own role.
path "@DATABASE_MOUNT@/creds/{{identity.entity.aliases.@WORKLOAD_ACCESSOR@.metadata.service_account_namespace}}" {
  capabilities = ["read"]
}

# Catalog data granted by the environment's approved scenarios: for each
# slot NN (00 ... 31) and each depth D (1 ... 6), the path whose segments are
# the metadata values catalog-NN-D-1 ... catalog-NN-D-D (OpenBao puts no "/"
# into a path from a template). files/openbao-setup.sh writes them here; the
# operator sets exactly the values of one depth per slot.
@CATALOG_PATHS@
