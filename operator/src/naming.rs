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

/// The KV v2 mount of one environment: `areas/<namespace>`. Keyed on the
/// namespace, so the platform's one templated policy can name it from the
/// login's ServiceAccount namespace alone.
pub fn area_mount(tenant: &str, env: Environment) -> String {
    format!("areas/{}", namespace_name(tenant, env))
}

/// The Kubernetes-auth role of one environment in the platform's workload
/// auth mount, and the OpenBao database role its users come from: the
/// namespace's name.
pub fn workload_role(tenant: &str, env: Environment) -> String {
    namespace_name(tenant, env)
}

/// The OpenBao identity (entity) the workloads of one environment log in as.
pub fn identity_name(tenant: &str, env: Environment) -> String {
    format!("publicdata-{}", namespace_name(tenant, env))
}

/// The alias of that identity in the workload auth mount: OpenBao's
/// Kubernetes auth names a login `<namespace>/<service account>` (with
/// `alias_name_source=serviceaccount_name`).
pub fn identity_alias(tenant: &str, env: Environment) -> String {
    format!("{}/{WORKLOAD_SERVICE_ACCOUNT}", namespace_name(tenant, env))
}

/// The KV v2 mount of a tenant made before per-environment areas
/// (`tenants/<tenant>`): wiped at offboarding if it is still there.
pub fn legacy_mount_path(tenant: &str) -> String {
    format!("tenants/{tenant}")
}

/// The tenant's own Kubernetes auth mount from before the platform's shared
/// workload mount (without the `auth/` prefix): disabled if still there.
pub fn legacy_auth_mount(tenant: &str) -> String {
    format!("k8s-{tenant}")
}

/// The policies the operator wrote for a tenant before the platform's
/// templated policies: deleted if still there.
pub fn legacy_policies(tenant: &str) -> Vec<String> {
    [Environment::Dev, Environment::Prod]
        .into_iter()
        .flat_map(|e| {
            let own = format!("tenant-{tenant}-{}", e.as_str());
            [format!("{own}-grants"), own]
        })
        .collect()
}

/// The mark the operator leaves on what it makes for an authorization: the
/// tenant id and the unit's credit code. A namespace, mount or policy without
/// it was not made for this authorization and is neither adopted nor deleted.
pub fn owner_mark(tenant: &str, credit_code: &str) -> String {
    format!("publicdata-operator tenant={tenant} unit={credit_code}")
}
