//! Pure builders: from an authorization (and today's date) to the objects
//! of its tenant domain. No I/O here; the controller applies what these return.
//!
//! Nothing built here carries an ownerReference to the authorization: a
//! garbage-collection cascade (a deleted CR, a removed CRD) must never delete
//! a tenant namespace or its isolation policies. Everything is found by labels.

use std::collections::BTreeMap;

use jiff::civil::Date;
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, ResourceQuota, ResourceQuotaSpec, ServiceAccount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::api::authorization::{
    Environment, EnvironmentQuota, InteractiveAccess, Member, MemberStatus, OperatorAuthorization,
};
use crate::api::labels;

mod network;
mod rbac;

pub use crate::naming::{BUREAU_GROUP, WORKLOAD_SERVICE_ACCOUNT, namespace_name};

use network::{frozen_network_policies, network_policies};
pub use rbac::{cluster_roles, observer_role};
use rbac::{inventory_binding, role_bindings};

/// ClusterRole for members who develop (bound in dev only).
pub const DEVELOPER_ROLE: &str = "publicdata-tenant-developer";
/// ClusterRole for developers' sessions into dev's pods (exec, cp, attach,
/// port-forward): bound in dev only, and only under `interactiveAccess:
/// Audited`.
pub const INTERACTIVE_ROLE: &str = "publicdata-tenant-interactive";
/// ClusterRoles for members who only see workload status (and logs, in dev):
/// this, with `-dev` or `-prod` (`observer_role`).
pub const OBSERVER_ROLE: &str = "publicdata-tenant-observer";
/// ClusterRole for the bureau's auditors.
pub const AUDITOR_ROLE: &str = "publicdata-bureau-auditor";

/// The labels of every object of a tenant environment.
pub fn tenant_labels(tenant: &str, env: Environment) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
        (labels::TENANT.to_string(), tenant.to_string()),
        (labels::ENVIRONMENT.to_string(), env.as_str().to_string()),
    ])
}

fn meta(name: &str, namespace: &str, tenant: &str, env: Environment) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(tenant_labels(tenant, env)),
        ..Default::default()
    }
}

/// Whether a member may have access today, and why: training completed
/// on or before today and, with a training period, not older than that; a
/// confidentiality agreement in force through today.
pub fn eligibility(member: &Member, today: Date, training_valid_days: Option<u32>) -> MemberStatus {
    let denied = |reason: String| MemberStatus {
        user: member.user.clone(),
        access: false,
        reason,
    };
    let lapses = training_lapses(member, training_valid_days);
    match (member.training_completed, member.confidentiality_until) {
        (None, _) => denied("security training not completed".into()),
        (Some(t), _) if t > today => denied(format!(
            "security training recorded for a future date ({t})"
        )),
        (Some(t), _) if lapses.is_some_and(|l| l <= today) => denied(format!(
            "security training of {t} lapsed on {} (renewed every {} days): record a newer training",
            lapses.unwrap_or(t),
            training_valid_days.unwrap_or_default()
        )),
        (_, None) => denied("no confidentiality agreement on record".into()),
        (_, Some(c)) if c < today => denied(format!("confidentiality agreement ended on {c}")),
        (Some(_), Some(c)) => MemberStatus {
            user: member.user.clone(),
            access: true,
            reason: match lapses {
                Some(l) => format!(
                    "trained (until {}); confidentiality agreement in force until {c}",
                    l.yesterday().unwrap_or(l)
                ),
                None => format!("trained; confidentiality agreement in force until {c}"),
            },
        },
    }
}

/// The first day a member's training no longer counts, with a training period.
pub fn training_lapses(member: &Member, training_valid_days: Option<u32>) -> Option<Date> {
    let days = training_valid_days?;
    member
        .training_completed?
        .checked_add(jiff::Span::new().days(i64::from(days)))
        .ok()
}

/// The first day on which some member's eligibility changes by itself (a
/// training date reached or lapsed, an agreement ended), so the controller
/// can come back.
pub fn next_eligibility_change(
    members: &[Member],
    today: Date,
    training_valid_days: Option<u32>,
) -> Option<Date> {
    members
        .iter()
        .flat_map(|m| {
            [
                m.training_completed.filter(|t| *t > today),
                training_lapses(m, training_valid_days).filter(|d| *d > today),
                m.confidentiality_until
                    .and_then(|c| c.tomorrow().ok())
                    .filter(|d| *d > today),
            ]
        })
        .flatten()
        .min()
}

/// Everything of one environment of a tenant, in the order it is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentObjects {
    pub env: Environment,
    pub namespace: Namespace,
    pub service_account: ServiceAccount,
    pub network_policies: Vec<NetworkPolicy>,
    pub resource_quota: ResourceQuota,
    pub limit_range: LimitRange,
    pub role_bindings: Vec<RoleBinding>,
    /// The environment's log volume, when the platform gives one.
    pub log_volume: Option<PersistentVolumeClaim>,
}

/// The log volume the operator makes in each tenant environment: the one
/// claim kept (retained, re-homed to the archive namespace) at offboarding.
/// Only the operator may label a claim `publicdata.io/data-class=logs`
/// (policy `publicdata-tenant-marks`), so a tenant cannot have a volume of
/// its data kept by calling it logs.
pub const LOG_VOLUME: &str = "logs";

/// How big the log volumes are, and of which storage class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogVolume {
    /// A quantity, e.g. `1Gi`.
    pub size: String,
    /// Empty: the cluster's default class.
    pub storage_class: String,
}

/// What the tenant domains need to know of the platform: where tenant
/// workloads may open connections beyond their namespace and DNS (the
/// secrets backend, by address and port, and nothing else), who the
/// operator is, and how long a member's security training counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Platform {
    /// CIDRs of the OpenBao/Vault endpoints as pods reach them (after a
    /// Service's address translation: the endpoints, not the ClusterIP).
    /// Empty: workloads cannot reach OpenBao at all.
    pub openbao_cidrs: Vec<String>,
    /// The TCP port OpenBao listens on at those addresses.
    pub openbao_port: u16,
    /// CIDRs of the platform's PostgreSQL as pods reach it (the addresses
    /// behind its Service). Empty: workloads cannot reach the database.
    pub database_cidrs: Vec<String>,
    /// The TCP port PostgreSQL listens on at those addresses.
    pub database_port: u16,
    /// The operator's own ServiceAccount (namespace, name) when it runs in
    /// the cluster: each tenant namespace binds it to the ClusterRole that
    /// lets it read that namespace's Secrets for the offboarding inventory,
    /// so it reads no Secret anywhere else.
    pub operator_service_account: Option<(String, String)>,
    /// Days a member's security training counts (R-16: trained before the
    /// job, and again periodically): from the day after, the member has no
    /// access until a newer training is recorded. None: it never lapses.
    pub training_valid_days: Option<u32>,
    /// The log volume of each environment; None: none is made.
    pub log_volume: Option<LogVolume>,
}

/// The ClusterRole (shipped by the chart) of the operator's own work inside
/// one tenant namespace, bound there and nowhere else: the freeze (workload
/// controllers scaled or suspended, pods stopped), the offboarding inventory
/// and export artifacts (Secrets and ConfigMaps read, never copied). The
/// operator's cluster-wide role has none of it.
pub const INVENTORY_CLUSTER_ROLE: &str = "publicdata-operator-tenant";
/// The RoleBinding of that ClusterRole in each tenant namespace.
pub const INVENTORY_BINDING: &str = "publicdata-operator";

/// The NetworkPolicy that isolates a tenant namespace: ingress from and egress
/// to the same namespace, egress to DNS and to OpenBao; nothing else. Frozen,
/// it allows nothing.
pub const ISOLATION_POLICY: &str = "tenant-isolation";

/// Whether the domain is in use or frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Active,
    /// Suspended or being offboarded: members have no binding, the only
    /// NetworkPolicies deny everything, the quota admits no pod.
    Frozen,
}

/// The NetworkPolicy a frozen namespace gets, besides the isolation policy
/// allowing nothing: it denies everything, and marks the freeze.
pub const FREEZE_POLICY: &str = "freeze-deny-all";

/// Builds the objects of every environment of the authorization.
pub fn build(
    oa: &OperatorAuthorization,
    today: Date,
    platform: &Platform,
) -> Vec<EnvironmentObjects> {
    build_in(oa, today, Mode::Active, platform)
}

/// Builds the objects of every environment, in the given mode. Objects of the
/// other mode that are absent here (member bindings, allow policies, the
/// freeze policy) are pruned by the controller.
pub fn build_in(
    oa: &OperatorAuthorization,
    today: Date,
    mode: Mode,
    platform: &Platform,
) -> Vec<EnvironmentObjects> {
    let tenant = oa.name_any();
    let eligible: Vec<&Member> = oa
        .spec
        .members
        .iter()
        .filter(|m| eligibility(m, today, platform.training_valid_days).access)
        .collect();
    let mut envs = oa.spec.environments.clone();
    envs.sort();
    envs.dedup();
    envs.into_iter()
        .map(|env| {
            let ns = namespace_name(&tenant, env);
            let quota = match env {
                Environment::Dev => oa.spec.quotas.dev.clone(),
                Environment::Prod => oa.spec.quotas.prod.clone(),
            }
            .unwrap_or_default();
            EnvironmentObjects {
                env,
                namespace: namespace(&tenant, &oa.spec.unit.credit_code, env),
                service_account: ServiceAccount {
                    metadata: meta(WORKLOAD_SERVICE_ACCOUNT, &ns, &tenant, env),
                    // Workloads mount a projected token with the OpenBao audience
                    // explicitly; nothing gets the API token by default.
                    automount_service_account_token: Some(false),
                    ..Default::default()
                },
                network_policies: match mode {
                    Mode::Active => network_policies(&ns, &tenant, env, platform),
                    Mode::Frozen => frozen_network_policies(&ns, &tenant, env),
                },
                resource_quota: match mode {
                    Mode::Active => resource_quota(&ns, &tenant, env, &quota),
                    Mode::Frozen => resource_quota(
                        &ns,
                        &tenant,
                        env,
                        &EnvironmentQuota {
                            pods: Some(0),
                            ..quota
                        },
                    ),
                },
                limit_range: limit_range(&ns, &tenant, env),
                log_volume: platform
                    .log_volume
                    .as_ref()
                    .map(|v| log_volume(&ns, &tenant, env, v)),
                role_bindings: {
                    let mut bindings = match mode {
                        Mode::Active => {
                            role_bindings(&ns, &tenant, env, &eligible, oa.spec.interactive_access)
                        }
                        Mode::Frozen => {
                            role_bindings(&ns, &tenant, env, &[], InteractiveAccess::Disabled)
                                .into_iter()
                                .filter(|b| b.metadata.name.as_deref() == Some("bureau-audit"))
                                .collect()
                        }
                    };
                    // Kept when frozen: offboarding inventories a frozen domain.
                    if let Some((sa_ns, sa)) = &platform.operator_service_account {
                        bindings.push(inventory_binding(&ns, &tenant, env, sa_ns, sa));
                    }
                    bindings
                },
            }
        })
        .collect()
}

fn namespace(tenant: &str, credit_code: &str, env: Environment) -> Namespace {
    let mut labels = tenant_labels(tenant, env);
    // Pod Security `restricted`: no privileged pods, no host access.
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".into(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".into(),
        );
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(namespace_name(tenant, env)),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                labels::OWNER.to_string(),
                crate::naming::owner_mark(tenant, credit_code),
            )])),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Default quota of an environment.
pub fn default_quota(env: Environment) -> (Quantity, Quantity, i32, Quantity) {
    match env {
        Environment::Dev => (
            Quantity("2".into()),
            Quantity("4Gi".into()),
            10,
            Quantity("10Gi".into()),
        ),
        Environment::Prod => (
            Quantity("4".into()),
            Quantity("8Gi".into()),
            20,
            Quantity("50Gi".into()),
        ),
    }
}

/// The ephemeral storage of an environment's containers together.
const EPHEMERAL_STORAGE: &str = "20Gi";

/// How many objects of each kind an environment may hold (R-10: one tenant
/// cannot take what the cluster shares). No NodePort or LoadBalancer
/// Service at all: the network policies keep a tenant inside, and such a
/// Service would open a port on every node.
pub const OBJECT_COUNTS: &[(&str, u32)] = &[
    ("services", 10),
    ("services.nodeports", 0),
    ("services.loadbalancers", 0),
    ("configmaps", 60),
    ("secrets", 20),
    ("replicationcontrollers", 0),
    ("count/deployments.apps", 20),
    ("count/statefulsets.apps", 10),
    ("count/jobs.batch", 50),
    ("count/cronjobs.batch", 10),
    ("count/datascenarios.publicdata.io", 20),
    ("count/exportrequests.publicdata.io", 200),
    ("count/exitrequests.publicdata.io", 5),
    ("count/renewalrequests.publicdata.io", 20),
    ("count/annualreports.publicdata.io", 20),
];

fn resource_quota(ns: &str, tenant: &str, env: Environment, q: &EnvironmentQuota) -> ResourceQuota {
    let (cpu, memory, pods, storage) = default_quota(env);
    let cpu = q.cpu.clone().unwrap_or(cpu);
    let memory = q.memory.clone().unwrap_or(memory);
    let hard = BTreeMap::from([
        ("requests.cpu".to_string(), cpu.clone()),
        ("limits.cpu".to_string(), cpu),
        ("requests.memory".to_string(), memory.clone()),
        ("limits.memory".to_string(), memory),
        (
            "pods".to_string(),
            Quantity(q.pods.unwrap_or(pods).to_string()),
        ),
        (
            "requests.storage".to_string(),
            q.storage.clone().unwrap_or(storage),
        ),
        ("persistentvolumeclaims".to_string(), Quantity("10".into())),
        // Ephemeral storage: container writable layers, logs and emptyDirs
        // take the node's disk, shared with every tenant.
        (
            "requests.ephemeral-storage".to_string(),
            Quantity(EPHEMERAL_STORAGE.into()),
        ),
        (
            "limits.ephemeral-storage".to_string(),
            Quantity(EPHEMERAL_STORAGE.into()),
        ),
    ]);
    // Objects by count: each takes from a pool the whole cluster shares
    // (Service IPs, node ports, etcd), which one tenant must not exhaust.
    let hard = hard
        .into_iter()
        .chain(
            OBJECT_COUNTS
                .iter()
                .map(|(resource, count)| (resource.to_string(), Quantity(count.to_string()))),
        )
        .collect();
    ResourceQuota {
        metadata: meta("tenant-quota", ns, tenant, env),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn log_volume(ns: &str, tenant: &str, env: Environment, v: &LogVolume) -> PersistentVolumeClaim {
    let mut metadata = meta(LOG_VOLUME, ns, tenant, env);
    metadata.labels.get_or_insert_with(Default::default).insert(
        crate::controllers::offboard::DATA_CLASS.into(),
        "logs".into(),
    );
    PersistentVolumeClaim {
        metadata,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: (!v.storage_class.is_empty()).then(|| v.storage_class.clone()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(v.size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Defaults for containers that set no requests or limits, so the quota can
/// account for them.
fn limit_range(ns: &str, tenant: &str, env: Environment) -> LimitRange {
    let q = |cpu: &str, mem: &str, disk: &str| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(mem.into())),
            ("ephemeral-storage".to_string(), Quantity(disk.into())),
        ])
    };
    LimitRange {
        metadata: meta("tenant-defaults", ns, tenant, env),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".into(),
                default: Some(q("500m", "512Mi", "1Gi")),
                default_request: Some(q("100m", "128Mi", "64Mi")),
                ..Default::default()
            }],
        }),
    }
}

#[cfg(test)]
mod tests;
