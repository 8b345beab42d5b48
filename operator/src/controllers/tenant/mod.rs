//! Pure builders: from an authorization (and today's date) to the objects
//! of its tenant domain. No I/O here; the controller applies what these return.
//!
//! Nothing built here carries an ownerReference to the authorization: a
//! garbage-collection cascade (a deleted CR, a removed CRD) must never delete
//! a tenant namespace or its isolation policies. Everything is found by labels.

use std::collections::BTreeMap;

use jiff::civil::Date;
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
    ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::api::authorization::{
    Environment, EnvironmentQuota, Member, MemberStatus, OperatorAuthorization,
};
use crate::api::labels;

mod network;
mod rbac;

pub use crate::naming::{BUREAU_GROUP, WORKLOAD_SERVICE_ACCOUNT, namespace_name};

use network::{frozen_network_policies, network_policies};
use rbac::{inventory_binding, role_bindings, roles};

/// Role for members who develop (dev only).
pub const DEVELOPER_ROLE: &str = "tenant-developer";
/// Role for members who only see workload status and logs.
pub const OBSERVER_ROLE: &str = "tenant-observer";
/// Role for the bureau's auditors.
pub const AUDITOR_ROLE: &str = "bureau-auditor";

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
/// on or before today, and a confidentiality agreement in force through today.
pub fn eligibility(member: &Member, today: Date) -> MemberStatus {
    let denied = |reason: String| MemberStatus {
        user: member.user.clone(),
        access: false,
        reason,
    };
    match (member.training_completed, member.confidentiality_until) {
        (None, _) => denied("security training not completed".into()),
        (Some(t), _) if t > today => denied(format!(
            "security training recorded for a future date ({t})"
        )),
        (_, None) => denied("no confidentiality agreement on record".into()),
        (_, Some(c)) if c < today => denied(format!("confidentiality agreement ended on {c}")),
        (Some(_), Some(c)) => MemberStatus {
            user: member.user.clone(),
            access: true,
            reason: format!("trained; confidentiality agreement in force until {c}"),
        },
    }
}

/// The first day on which some member's eligibility changes by itself (a
/// training date reached, an agreement ended), so the controller can come back.
pub fn next_eligibility_change(members: &[Member], today: Date) -> Option<Date> {
    members
        .iter()
        .flat_map(|m| {
            [
                m.training_completed.filter(|t| *t > today),
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
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
}

/// What the tenant domains need to know of the platform: where tenant
/// workloads may open connections beyond their namespace and DNS (the
/// secrets backend, by address and port, and nothing else), and who the
/// operator is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Platform {
    /// CIDRs of the OpenBao/Vault endpoints as pods reach them (after a
    /// Service's address translation: the endpoints, not the ClusterIP).
    /// Empty: workloads cannot reach OpenBao at all.
    pub openbao_cidrs: Vec<String>,
    /// The TCP port OpenBao listens on at those addresses.
    pub openbao_port: u16,
    /// The operator's own ServiceAccount (namespace, name) when it runs in
    /// the cluster: each tenant namespace binds it to the ClusterRole that
    /// lets it read that namespace's Secrets for the offboarding inventory,
    /// so it reads no Secret anywhere else.
    pub operator_service_account: Option<(String, String)>,
}

/// The ClusterRole (shipped by the chart) that lets the operator read a
/// tenant namespace's Secrets and ConfigMaps: for the offboarding inventory
/// and export artifacts only.
pub const INVENTORY_CLUSTER_ROLE: &str = "publicdata-operator-tenant-reader";
/// The RoleBinding of that ClusterRole in each tenant namespace.
pub const INVENTORY_BINDING: &str = "publicdata-operator-inventory";

/// The NetworkPolicy that lets a namespace's pods reach OpenBao.
pub const OPENBAO_EGRESS_POLICY: &str = "allow-openbao-egress";

/// Whether the domain is in use or frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Active,
    /// Suspended or being offboarded: members have no binding, the only
    /// NetworkPolicies deny everything, the quota admits no pod.
    Frozen,
}

/// The NetworkPolicy a frozen namespace gets, besides `default-deny-all`.
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
        .filter(|m| eligibility(m, today).access)
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
                roles: roles(&ns, &tenant, env),
                role_bindings: {
                    let mut bindings = match mode {
                        Mode::Active => role_bindings(&ns, &tenant, env, &eligible),
                        Mode::Frozen => role_bindings(&ns, &tenant, env, &[])
                            .into_iter()
                            .filter(|b| b.metadata.name.as_deref() == Some("bureau-audit"))
                            .collect(),
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

/// Default deny in both directions; then only same-namespace traffic, DNS,
/// and OpenBao (workloads log in there to read the data they were granted).
/// No rule names another namespace, so there is no path dev<->prod and none
/// between tenants; nothing else beyond the namespace is reachable.
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
    ]);
    ResourceQuota {
        metadata: meta("tenant-quota", ns, tenant, env),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Defaults for containers that set no requests or limits, so the quota can
/// account for them.
fn limit_range(ns: &str, tenant: &str, env: Environment) -> LimitRange {
    let q = |cpu: &str, mem: &str| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(mem.into())),
        ])
    };
    LimitRange {
        metadata: meta("tenant-defaults", ns, tenant, env),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".into(),
                default: Some(q("500m", "512Mi")),
                default_request: Some(q("100m", "128Mi")),
                ..Default::default()
            }],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::rbac::READ;
    use super::*;
    use jiff::civil::date;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn example() -> OperatorAuthorization {
        let text = include_str!("../../../../examples/authorization.yaml");
        serde_yaml::from_str(text).unwrap()
    }

    fn egress() -> Platform {
        Platform {
            openbao_cidrs: vec!["10.213.1.1/32".into()],
            openbao_port: 8200,
            operator_service_account: None,
        }
    }

    #[test]
    fn an_in_cluster_operator_reads_secrets_only_in_tenant_namespaces_even_when_frozen() {
        let platform = Platform {
            operator_service_account: Some((
                "publicdata-system".into(),
                "publicdata-operator".into(),
            )),
            ..egress()
        };
        for mode in [Mode::Active, Mode::Frozen] {
            for env in build_in(&example(), date(2026, 11, 26), mode, &platform) {
                let b = env
                    .role_bindings
                    .iter()
                    .find(|b| b.metadata.name.as_deref() == Some(INVENTORY_BINDING))
                    .expect("the inventory binding");
                assert_eq!(b.role_ref.kind, "ClusterRole");
                assert_eq!(b.role_ref.name, INVENTORY_CLUSTER_ROLE);
                let subjects = b.subjects.as_ref().unwrap();
                assert_eq!(subjects.len(), 1);
                assert_eq!(subjects[0].kind, "ServiceAccount");
                assert_eq!(subjects[0].namespace.as_deref(), Some("publicdata-system"));
            }
        }
        // Run on the host (no ServiceAccount): no such binding.
        assert!(
            build(&example(), date(2026, 11, 26), &egress())
                .iter()
                .all(|e| e
                    .role_bindings
                    .iter()
                    .all(|b| b.metadata.name.as_deref() != Some(INVENTORY_BINDING)))
        );
    }

    fn subjects(b: &RoleBinding) -> Vec<String> {
        b.subjects
            .iter()
            .flatten()
            .map(|s| format!("{}:{}", s.kind, s.name))
            .collect()
    }

    #[test]
    fn two_environments_with_everything_labelled_and_no_owner_reference() {
        let envs = build(&example(), date(2026, 11, 26), &egress());
        assert_eq!(
            envs.iter().map(|e| e.env).collect::<Vec<_>>(),
            [Environment::Dev, Environment::Prod]
        );
        for e in &envs {
            let ns = e.namespace.metadata.name.clone().unwrap();
            assert_eq!(ns, format!("harbor-analytics-{}", e.env.as_str()));
            let labels = e.namespace.metadata.labels.clone().unwrap();
            assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
            assert_eq!(labels[labels::TENANT], "harbor-analytics");
            let metas = std::iter::once(&e.namespace.metadata)
                .chain(std::iter::once(&e.service_account.metadata))
                .chain(e.network_policies.iter().map(|o| &o.metadata))
                .chain(std::iter::once(&e.resource_quota.metadata))
                .chain(std::iter::once(&e.limit_range.metadata))
                .chain(e.roles.iter().map(|o| &o.metadata))
                .chain(e.role_bindings.iter().map(|o| &o.metadata));
            for m in metas {
                assert!(
                    m.owner_references.is_none(),
                    "{:?} must not be garbage-collectable",
                    m.name
                );
                assert_eq!(
                    m.labels.as_ref().unwrap()[labels::MANAGED_BY],
                    labels::MANAGER
                );
            }
        }
    }

    #[test]
    fn network_policies_deny_by_default_and_name_no_other_namespace() {
        let envs = build(&example(), date(2026, 11, 26), &egress());
        let nps = &envs[0].network_policies;
        let deny = nps[0].spec.as_ref().unwrap();
        assert_eq!(deny.policy_types.as_deref().unwrap(), ["Ingress", "Egress"]);
        assert!(deny.ingress.is_none() && deny.egress.is_none());
        let json = serde_json::to_string(nps).unwrap();
        assert!(
            !json.contains("harbor-analytics-prod"),
            "dev must not name prod"
        );
        // The only namespace selector is kube-system, for DNS on port 53.
        assert_eq!(json.matches("namespaceSelector").count(), 1);
        assert!(json.contains("kube-system"));
    }

    #[test]
    fn workloads_reach_openbao_only_at_its_configured_address_and_port() {
        let envs = build(&example(), date(2026, 11, 26), &egress());
        for env in &envs {
            let np = env
                .network_policies
                .iter()
                .find(|np| np.metadata.name.as_deref() == Some(OPENBAO_EGRESS_POLICY))
                .expect("an OpenBao egress policy");
            let spec = np.spec.as_ref().unwrap();
            assert_eq!(spec.policy_types.as_deref().unwrap(), ["Egress"]);
            assert!(spec.ingress.is_none());
            let rules = spec.egress.as_ref().unwrap();
            assert_eq!(rules.len(), 1);
            let peers = rules[0].to.as_ref().unwrap();
            assert_eq!(peers.len(), 1);
            let block = peers[0].ip_block.as_ref().unwrap();
            assert_eq!(block.cidr, "10.213.1.1/32");
            assert!(peers[0].namespace_selector.is_none() && peers[0].pod_selector.is_none());
            let ports = rules[0].ports.as_ref().unwrap();
            assert_eq!(ports.len(), 1);
            assert_eq!(ports[0].port, Some(IntOrString::Int(8200)));
            assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
        }
        // No rule anywhere allows egress to every address.
        let json = serde_json::to_string(&envs[0].network_policies).unwrap();
        assert!(!json.contains("0.0.0.0/0"));
        // Without a configured OpenBao, there is no such policy at all.
        let none = build(&example(), date(2026, 11, 26), &Platform::default());
        assert!(none.iter().all(|e| {
            e.network_policies
                .iter()
                .all(|np| np.metadata.name.as_deref() != Some(OPENBAO_EGRESS_POLICY))
        }));
        // A frozen domain keeps only the deny policies.
        let frozen = build_in(&example(), date(2026, 11, 26), Mode::Frozen, &egress());
        assert!(frozen.iter().all(|e| {
            e.network_policies
                .iter()
                .all(|np| np.metadata.name.as_deref() != Some(OPENBAO_EGRESS_POLICY))
        }));
    }

    #[test]
    fn only_eligible_members_are_bound_and_developers_edit_only_dev() {
        let envs = build(&example(), date(2026, 11, 26), &egress());
        let dev = &envs[0];
        let prod = &envs[1];
        let by_name = |e: &EnvironmentObjects, n: &str| {
            e.role_bindings
                .iter()
                .find(|b| b.metadata.name.as_deref() == Some(n))
                .cloned()
        };
        // wang.fang is trained; li.ming is not.
        assert_eq!(
            subjects(&by_name(dev, "members-develop").unwrap()),
            ["User:wang.fang"]
        );
        assert_eq!(
            subjects(&by_name(prod, "members-observe").unwrap()),
            ["User:wang.fang"]
        );
        assert!(
            by_name(prod, "members-develop").is_none(),
            "no developer role in prod"
        );
        assert_eq!(
            subjects(&by_name(prod, "bureau-audit").unwrap()),
            ["Group:publicdata:bureau"]
        );
        let all: String = envs
            .iter()
            .map(|e| serde_json::to_string(&e.role_bindings).unwrap())
            .collect();
        assert!(!all.contains("li.ming"));
    }

    #[test]
    fn no_member_role_grants_secrets_and_prod_grants_no_exec() {
        let envs = build(&example(), date(2026, 11, 26), &egress());
        for e in &envs {
            for role in e
                .roles
                .iter()
                .filter(|r| r.metadata.name.as_deref() != Some(AUDITOR_ROLE))
            {
                for r in role.rules.iter().flatten() {
                    let res = r.resources.clone().unwrap_or_default();
                    assert!(
                        !res.iter().any(|x| x == "secrets" || x == "*"),
                        "{:?}",
                        role.metadata.name
                    );
                    if e.env == Environment::Prod {
                        assert!(!res.iter().any(|x| x.contains("exec")
                            || x.contains("portforward")
                            || x.contains("attach")));
                        assert!(r.verbs.iter().all(|v| READ.contains(&v.as_str())));
                    }
                }
            }
        }
    }

    #[test]
    fn eligibility_needs_training_and_a_confidentiality_agreement_in_force() {
        let mut m = example().spec.members[0].clone();
        let today = date(2026, 11, 26);
        assert!(eligibility(&m, today).access);
        m.confidentiality_until = Some(date(2026, 11, 25));
        let s = eligibility(&m, today);
        assert!(
            !s.access && s.reason.contains("ended on 2026-11-25"),
            "{}",
            s.reason
        );
        m.confidentiality_until = Some(date(2026, 11, 26));
        assert!(
            eligibility(&m, today).access,
            "the last day is still in force"
        );
        m.training_completed = None;
        assert!(
            eligibility(&m, today)
                .reason
                .contains("training not completed")
        );
        m.training_completed = Some(date(2026, 12, 1));
        assert!(!eligibility(&m, today).access);
        assert_eq!(
            next_eligibility_change(&[m], today),
            Some(date(2026, 11, 27))
        );
    }

    #[test]
    fn quotas_take_the_spec_or_safe_defaults() {
        let mut oa = example();
        oa.spec.quotas = Default::default();
        let envs = build(&oa, date(2026, 11, 26), &egress());
        let hard = |e: &EnvironmentObjects| e.resource_quota.spec.clone().unwrap().hard.unwrap();
        assert_eq!(hard(&envs[0])["pods"], Quantity("10".into()));
        assert_eq!(hard(&envs[1])["requests.memory"], Quantity("8Gi".into()));
        let envs = build(&example(), date(2026, 11, 26), &egress());
        assert_eq!(hard(&envs[1])["requests.storage"], Quantity("50Gi".into()));
    }

    #[test]
    fn a_frozen_domain_denies_all_traffic_admits_no_pod_and_binds_only_auditors() {
        let envs = build_in(&example(), date(2026, 11, 26), Mode::Frozen, &egress());
        for e in &envs {
            let names: Vec<_> = e
                .network_policies
                .iter()
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            assert_eq!(names, ["default-deny-all", FREEZE_POLICY]);
            for np in &e.network_policies {
                let spec = np.spec.as_ref().unwrap();
                assert!(spec.ingress.is_none() && spec.egress.is_none());
            }
            let hard = e.resource_quota.spec.clone().unwrap().hard.unwrap();
            assert_eq!(hard["pods"], Quantity("0".into()));
            let bindings: Vec<_> = e.role_bindings.iter().map(subjects).collect();
            assert_eq!(bindings, [vec!["Group:publicdata:bureau".to_string()]]);
        }
    }

    #[test]
    fn only_listed_environments_are_built() {
        let mut oa = example();
        oa.spec.environments = vec![Environment::Prod];
        let envs = build(&oa, date(2026, 11, 26), &egress());
        assert_eq!(envs.len(), 1);
        assert_eq!(envs[0].env, Environment::Prod);
    }
}
