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

# Catalog data granted by the environment's approved scenarios.
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-00}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-01}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-02}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-03}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-04}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-05}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-06}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-07}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-08}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-09}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-10}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-11}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-12}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-13}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-14}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-15}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-16}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-17}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-18}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-19}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-20}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-21}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-22}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-23}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-24}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-25}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-26}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-27}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-28}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-29}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-30}}" {
  capabilities = ["read"]
}
path "@CATALOG_MOUNT@/data/{{identity.entity.metadata.catalog-31}}" {
  capabilities = ["read"]
}
