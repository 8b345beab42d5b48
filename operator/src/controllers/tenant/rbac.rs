//! The tenants' roles (ClusterRoles shared by every tenant namespace) and each
//! namespace's RoleBindings: members by eligibility and role, the bureau's
//! auditors, and the operator's own inventory binding.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    AUDITOR_ROLE, BUREAU_GROUP, DEVELOPER_ROLE, INTERACTIVE_ROLE, INVENTORY_BINDING,
    INVENTORY_CLUSTER_ROLE, OBSERVER_ROLE, meta,
};
use crate::api::authorization::{Environment, InteractiveAccess, Member, MemberRole};
use crate::api::labels;
use crate::api::workloads::SUMMARY_CONFIG_MAP;

pub(super) fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..Default::default()
    }
}

pub(super) const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// The roles of tenant namespaces, the same in every tenant: ClusterRoles the
/// chart ships (generated from here), which each tenant namespace binds with
/// RoleBindings, so they grant nothing outside it. One set for all tenants,
/// not a copy per namespace: a tenant costs fewer objects, and a rule changes
/// in one place. No role grants Secrets to members, in either environment:
/// credentials come from OpenBao, to workloads.
pub fn cluster_roles() -> Vec<ClusterRole> {
    [Environment::Dev, Environment::Prod]
        .into_iter()
        .map(|env| role(&observer_role(env), observer_rules(env)))
        .chain([
            // The bureau's auditors read everything in the namespace.
            role(AUDITOR_ROLE, vec![rule(&["*"], &["*"], READ)]),
            // Edit workloads in dev, where data is masked and sampled.
            role(DEVELOPER_ROLE, developer_rules()),
            // Sessions into dev's pods, each kept in the operation log.
            role(
                INTERACTIVE_ROLE,
                vec![rule(
                    &[""],
                    &["pods/exec", "pods/portforward", "pods/attach"],
                    &["get", "create"],
                )],
            ),
        ])
        .collect()
}

/// The observer role of an environment.
pub fn observer_role(env: Environment) -> String {
    format!("{OBSERVER_ROLE}-{}", env.as_str())
}

fn role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/part-of".to_string(),
                labels::MANAGER.to_string(),
            )])),
            ..Default::default()
        },
        rules: Some(rules),
        ..Default::default()
    }
}

/// See workloads and their status, and pods, events and logs in dev only;
/// no exec, attach, port-forward or Secrets.
fn observer_rules(env: Environment) -> Vec<PolicyRule> {
    // Pods, events and logs in dev show masked samples. In prod a log line,
    // a termination message (pod status) or a probe's output (an event) can
    // carry raw data, which never reaches a person: members read
    // the operator's summary of their prod workloads instead, and the rest
    // is for the bureau's auditors.
    let observed: &[&str] = match env {
        Environment::Dev => &[
            "pods",
            "pods/log",
            "services",
            "events",
            "persistentvolumeclaims",
            "resourcequotas",
            "limitranges",
        ],
        Environment::Prod => &[
            "services",
            "persistentvolumeclaims",
            "resourcequotas",
            "limitranges",
        ],
    };
    let mut rules = vec![
        rule(&[""], observed, READ),
        rule(&["publicdata.io"], TENANT_REQUESTS, READ),
    ];
    match env {
        Environment::Dev => rules.extend([
            rule(
                &["apps"],
                &["deployments", "statefulsets", "replicasets"],
                READ,
            ),
            rule(&["batch"], &["jobs", "cronjobs"], READ),
            rule(&["events.k8s.io"], &["events"], READ),
        ]),
        // Not even the workload controllers: a Job's conditions quote its
        // pods' exit codes, an indexed Job lists which indexes failed.
        Environment::Prod => rules.push(PolicyRule {
            resource_names: Some(vec![SUMMARY_CONFIG_MAP.to_string()]),
            ..rule(&[""], &["configmaps"], &["get"])
        }),
    }
    rules
}

/// The tenant's own requests to the bureau.
const TENANT_REQUESTS: &[&str] = &[
    "datascenarios",
    "exportrequests",
    "annualreports",
    "exitrequests",
    "renewalrequests",
];

fn developer_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &[""],
            &["pods", "services", "configmaps", "persistentvolumeclaims"],
            WRITE,
        ),
        rule(
            &[""],
            &["pods/log", "events", "resourcequotas", "limitranges"],
            READ,
        ),
        rule(
            &["apps"],
            &[
                "deployments",
                "statefulsets",
                "replicasets",
                "deployments/scale",
                "statefulsets/scale",
            ],
            WRITE,
        ),
        rule(&["batch"], &["jobs", "cronjobs"], WRITE),
        // File and edit the tenant's data scenarios (approving is refused by
        // admission policy).
        rule(&["publicdata.io"], TENANT_REQUESTS, WRITE),
    ]
}

pub(super) fn binding(
    name: &str,
    role: &str,
    ns: &str,
    tenant: &str,
    env: Environment,
    subjects: Vec<Subject>,
) -> RoleBinding {
    RoleBinding {
        metadata: meta(name, ns, tenant, env),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(subjects),
    }
}

/// The operator's own ServiceAccount, bound in one tenant namespace to the
/// ClusterRole that reads its Secrets (for the inventory).
pub(super) fn inventory_binding(
    ns: &str,
    tenant: &str,
    env: Environment,
    sa_ns: &str,
    sa: &str,
) -> RoleBinding {
    RoleBinding {
        metadata: meta(INVENTORY_BINDING, ns, tenant, env),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: INVENTORY_CLUSTER_ROLE.into(),
        },
        subjects: Some(vec![Subject {
            api_group: None,
            kind: "ServiceAccount".into(),
            name: sa.into(),
            namespace: Some(sa_ns.into()),
        }]),
    }
}

pub(super) fn user(name: &str) -> Subject {
    Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "User".into(),
        name: name.into(),
        namespace: None,
    }
}

/// Bindings: eligible developers edit dev (and open sessions into its pods,
/// when the authorization allows them); every other eligible member
/// observes; the bureau audits. A member who is not eligible is in no binding.
pub(super) fn role_bindings(
    ns: &str,
    tenant: &str,
    env: Environment,
    eligible: &[&Member],
    interactive: InteractiveAccess,
) -> Vec<RoleBinding> {
    let users = |pred: &dyn Fn(&Member) -> bool| {
        let mut names: Vec<String> = eligible
            .iter()
            .filter(|m| pred(m))
            .map(|m| m.user.clone())
            .collect();
        names.sort();
        names.dedup();
        names.iter().map(|n| user(n)).collect::<Vec<_>>()
    };
    let is_dev_editor = |m: &Member| env == Environment::Dev && m.role == MemberRole::Developer;
    let developers = users(&is_dev_editor);
    let observers = users(&|m: &Member| !is_dev_editor(m));
    let auditors = vec![Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "Group".into(),
        name: BUREAU_GROUP.into(),
        namespace: None,
    }];
    let mut out = vec![
        binding(
            "members-observe",
            &observer_role(env),
            ns,
            tenant,
            env,
            observers,
        ),
        binding("bureau-audit", AUDITOR_ROLE, ns, tenant, env, auditors),
    ];
    if env == Environment::Dev {
        if interactive == InteractiveAccess::Audited {
            out.push(binding(
                "members-interactive",
                INTERACTIVE_ROLE,
                ns,
                tenant,
                env,
                developers.clone(),
            ));
        }
        out.push(binding(
            "members-develop",
            DEVELOPER_ROLE,
            ns,
            tenant,
            env,
            developers,
        ));
    }
    out
}
