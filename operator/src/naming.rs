//! The names of everything the operator makes for a tenant, in one place, so
//! that the Kubernetes builders, the OpenBao builders, offboarding and the
//! exit review agree on them without importing each other.

use crate::api::authorization::Environment;

/// The group of the bureau's people: auditors read everything.
pub const BUREAU_GROUP: &str = "publicdata:bureau";
/// The ServiceAccount workloads run as, in each tenant namespace.
pub const WORKLOAD_SERVICE_ACCOUNT: &str = "workload";

/// The namespace of one environment of a tenant.
pub fn namespace_name(tenant: &str, env: Environment) -> String {
    format!("{tenant}-{}", env.as_str())
}

/// The tenant's KV v2 mount.
pub fn mount_path(tenant: &str) -> String {
    format!("tenants/{tenant}")
}

/// The name of an environment's own policy in OpenBao.
pub fn env_name(tenant: &str, env: Environment) -> String {
    format!("tenant-{tenant}-{}", env.as_str())
}

/// The name of an environment's scenario-grants policy in OpenBao.
pub fn grants_name(tenant: &str, env: Environment) -> String {
    format!("{}-grants", env_name(tenant, env))
}

/// The tenant's Kubernetes auth mount in OpenBao (without the `auth/` prefix).
pub fn auth_mount(tenant: &str) -> String {
    format!("k8s-{tenant}")
}

/// Every OpenBao policy the operator may have made for a tenant: per
/// environment, its own and its scenario grants.
pub fn tenant_policies(tenant: &str) -> Vec<String> {
    [Environment::Dev, Environment::Prod]
        .into_iter()
        .flat_map(|e| [env_name(tenant, e), grants_name(tenant, e)])
        .collect()
}

/// The mark the operator leaves on what it makes for an authorization: the
/// tenant id and the unit's credit code. A namespace, mount or policy without
/// it was not made for this authorization and is neither adopted nor deleted.
pub fn owner_mark(tenant: &str, credit_code: &str) -> String {
    format!("publicdata-operator tenant={tenant} unit={credit_code}")
}
