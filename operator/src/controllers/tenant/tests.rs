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
        database_cidrs: vec![],
        database_port: 5432,
        operator_service_account: None,
        training_valid_days: Some(365),
        log_volume: None,
    }
}

#[test]
fn each_environment_gets_one_log_volume_marked_by_the_operator_frozen_or_not() {
    assert!(
        build(&example(), date(2026, 11, 26), &egress())
            .iter()
            .all(|e| e.log_volume.is_none()),
        "no log volume unless the platform gives one"
    );
    let platform = Platform {
        log_volume: Some(LogVolume {
            size: "1Gi".into(),
            storage_class: "local-path".into(),
        }),
        ..egress()
    };
    for mode in [Mode::Active, Mode::Frozen] {
        for env in build_in(&example(), date(2026, 11, 26), mode, &platform) {
            let claim = env.log_volume.expect("a log volume");
            assert_eq!(claim.metadata.name.as_deref(), Some(LOG_VOLUME));
            assert_eq!(claim.metadata.namespace, env.namespace.metadata.name);
            let labels = claim.metadata.labels.unwrap();
            assert_eq!(labels[crate::controllers::offboard::DATA_CLASS], "logs");
            let spec = claim.spec.unwrap();
            assert_eq!(spec.storage_class_name.as_deref(), Some("local-path"));
            assert_eq!(spec.volume_name, None, "bound by the cluster, not named");
            assert_eq!(
                spec.resources.unwrap().requests.unwrap()["storage"],
                Quantity("1Gi".into())
            );
        }
    }
}

#[test]
fn an_in_cluster_operator_reads_secrets_only_in_tenant_namespaces_even_when_frozen() {
    let platform = Platform {
        operator_service_account: Some(("publicdata-system".into(), "publicdata-operator".into())),
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

/// The one isolation policy of an environment.
fn isolation(e: &EnvironmentObjects) -> &k8s_openapi::api::networking::v1::NetworkPolicySpec {
    let names: Vec<_> = e
        .network_policies
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    assert_eq!(names, [ISOLATION_POLICY], "one policy isolates a namespace");
    e.network_policies[0].spec.as_ref().unwrap()
}

#[test]
fn one_policy_denies_by_default_allows_the_namespace_and_dns_and_names_no_other_namespace() {
    let envs = build(&example(), date(2026, 11, 26), &egress());
    let spec = isolation(&envs[0]);
    // Every pod, both directions: what no rule allows is denied.
    assert_eq!(spec.pod_selector, Some(Default::default()));
    assert_eq!(spec.policy_types.as_deref().unwrap(), ["Ingress", "Egress"]);
    // Ingress: from pods of the same namespace only.
    let ingress = spec.ingress.as_ref().unwrap();
    assert_eq!(ingress.len(), 1);
    let from = ingress[0].from.as_ref().unwrap();
    assert_eq!(from.len(), 1);
    assert!(from[0].namespace_selector.is_none() && from[0].ip_block.is_none());
    assert_eq!(from[0].pod_selector, Some(Default::default()));
    assert!(ingress[0].ports.is_none());
    // Egress: the same namespace, then DNS on port 53, then OpenBao.
    let egress = spec.egress.as_ref().unwrap();
    assert_eq!(egress.len(), 3);
    assert_eq!(
        egress[0].to.as_ref().unwrap()[0].pod_selector,
        Some(Default::default())
    );
    assert!(
        egress[0].to.as_ref().unwrap()[0]
            .namespace_selector
            .is_none()
    );
    let dns_ports: Vec<_> = egress[1]
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.protocol.clone().unwrap(), p.port.clone().unwrap()))
        .collect();
    assert_eq!(
        dns_ports,
        [
            ("UDP".to_string(), IntOrString::Int(53)),
            ("TCP".to_string(), IntOrString::Int(53))
        ]
    );
    let json = serde_json::to_string(&envs[0].network_policies).unwrap();
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
        let rules = isolation(env).egress.as_ref().unwrap();
        let blocks: Vec<_> = rules
            .iter()
            .filter(|r| r.to.iter().flatten().any(|p| p.ip_block.is_some()))
            .collect();
        assert_eq!(blocks.len(), 1, "one rule names addresses: OpenBao's");
        let peers = blocks[0].to.as_ref().unwrap();
        assert_eq!(peers.len(), 1);
        let block = peers[0].ip_block.as_ref().unwrap();
        assert_eq!(block.cidr, "10.213.1.1/32");
        assert!(block.except.is_none());
        assert!(peers[0].namespace_selector.is_none() && peers[0].pod_selector.is_none());
        let ports = blocks[0].ports.as_ref().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, Some(IntOrString::Int(8200)));
        assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
        // Every egress rule names its peers: none allows every destination.
        assert!(
            rules
                .iter()
                .all(|r| r.to.as_ref().is_some_and(|t| !t.is_empty()))
        );
    }
    let json = serde_json::to_string(&envs[0].network_policies).unwrap();
    assert!(!json.contains("0.0.0.0/0"));
    // Without a configured OpenBao, no rule names an address at all.
    let none = build(&example(), date(2026, 11, 26), &Platform::default());
    for env in &none {
        let rules = isolation(env).egress.as_ref().unwrap();
        assert_eq!(rules.len(), 2);
        assert!(
            rules
                .iter()
                .flat_map(|r| r.to.iter().flatten())
                .all(|p| p.ip_block.is_none())
        );
    }
}

#[test]
fn workloads_reach_the_database_only_at_its_configured_address_and_port() {
    let platform = Platform {
        database_cidrs: vec!["10.213.1.1/32".into()],
        database_port: 5432,
        ..egress()
    };
    for env in &build(&example(), date(2026, 11, 26), &platform) {
        let rules = isolation(env).egress.as_ref().unwrap();
        let ports: Vec<_> = rules
            .iter()
            .filter(|r| r.to.iter().flatten().any(|p| p.ip_block.is_some()))
            .map(|r| {
                let ports = r.ports.as_ref().unwrap();
                assert_eq!(ports.len(), 1);
                assert_eq!(r.to.as_ref().unwrap().len(), 1);
                ports[0].port.clone().unwrap()
            })
            .collect();
        // OpenBao's rule, then the database's: each its own port.
        assert_eq!(ports, [IntOrString::Int(8200), IntOrString::Int(5432)]);
    }
    // Frozen: neither.
    let frozen = build_in(&example(), date(2026, 11, 26), Mode::Frozen, &platform);
    assert!(frozen.iter().all(|e| e.network_policies.iter().all(|np| {
        np.spec
            .as_ref()
            .is_some_and(|s| s.egress.is_none() && s.ingress.is_none())
    })));
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
fn no_member_role_grants_secrets_and_prod_grants_no_exec_and_no_logs() {
    let roles = cluster_roles();
    let names: Vec<_> = roles
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "publicdata-tenant-observer-dev",
            "publicdata-tenant-observer-prod",
            AUDITOR_ROLE,
            DEVELOPER_ROLE,
            INTERACTIVE_ROLE
        ]
    );
    let rules = |name: &str| {
        roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .and_then(|r| r.rules.clone())
            .unwrap()
    };
    for role in roles
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
        }
    }
    for r in rules(&observer_role(Environment::Prod)) {
        let res = r.resources.clone().unwrap_or_default();
        assert!(!res.iter().any(|x| x.contains("exec")
            || x.contains("portforward")
            || x.contains("attach")
            || x.starts_with("pods")
            || x == "events"));
        assert!(r.verbs.iter().all(|v| READ.contains(&v.as_str())));
        // ConfigMaps: the workload summary alone.
        if res.iter().any(|x| x == "configmaps") {
            assert_eq!(
                r.resource_names.as_deref(),
                Some(&[crate::api::workloads::SUMMARY_CONFIG_MAP.to_string()][..])
            );
        }
    }
    // Prod binds only its observer role and the auditors'; the developer
    // role is bound in dev alone.
    let envs = build(&example(), date(2026, 11, 26), &egress());
    for e in &envs {
        let bound: Vec<_> = e.role_bindings.iter().map(|b| b.role_ref.clone()).collect();
        assert!(bound.iter().all(|r| r.kind == "ClusterRole"));
        let names: Vec<_> = bound.iter().map(|r| r.name.as_str()).collect();
        match e.env {
            Environment::Prod => {
                assert_eq!(names, ["publicdata-tenant-observer-prod", AUDITOR_ROLE])
            }
            Environment::Dev => assert_eq!(
                names,
                [
                    "publicdata-tenant-observer-dev",
                    AUDITOR_ROLE,
                    INTERACTIVE_ROLE,
                    DEVELOPER_ROLE
                ]
            ),
        }
    }
}

#[test]
fn eligibility_needs_training_and_a_confidentiality_agreement_in_force() {
    let mut m = example().spec.members[0].clone();
    let today = date(2026, 11, 26);
    assert!(eligibility(&m, today, None).access);
    m.confidentiality_until = Some(date(2026, 11, 25));
    let s = eligibility(&m, today, None);
    assert!(
        !s.access && s.reason.contains("ended on 2026-11-25"),
        "{}",
        s.reason
    );
    m.confidentiality_until = Some(date(2026, 11, 26));
    assert!(
        eligibility(&m, today, None).access,
        "the last day is still in force"
    );
    m.training_completed = None;
    assert!(
        eligibility(&m, today, None)
            .reason
            .contains("training not completed")
    );
    m.training_completed = Some(date(2026, 12, 1));
    assert!(!eligibility(&m, today, None).access);
    assert_eq!(
        next_eligibility_change(&[m], today, None),
        Some(date(2026, 11, 27))
    );
}

#[test]
fn a_training_lapses_after_its_period_and_the_member_loses_access_that_day() {
    let m = example().spec.members[0].clone();
    assert_eq!(m.training_completed, Some(date(2026, 11, 20)));
    let period = Some(365);
    let last_day = eligibility(&m, date(2027, 11, 19), period);
    assert!(last_day.access, "{}", last_day.reason);
    assert!(
        last_day.reason.contains("trained (until 2027-11-19)"),
        "{}",
        last_day.reason
    );
    let lapsed = eligibility(&m, date(2027, 11, 20), period);
    assert!(!lapsed.access);
    assert!(
        lapsed.reason.contains(
            "security training of 2026-11-20 lapsed on 2027-11-20 (renewed every 365 days)"
        ),
        "{}",
        lapsed.reason
    );
    assert!(
        eligibility(&m, date(2027, 11, 20), None).access,
        "no period: never lapses"
    );
    assert_eq!(
        next_eligibility_change(std::slice::from_ref(&m), date(2026, 11, 26), period),
        Some(date(2027, 11, 20)),
        "the controller comes back on the day it lapses"
    );
    // On that day the member's bindings are gone from the domain.
    let bound = |today| {
        build(&example(), today, &egress())
            .iter()
            .flat_map(|e| e.role_bindings.clone())
            .flat_map(|b| b.subjects.unwrap_or_default())
            .any(|s| s.name == m.user)
    };
    assert!(bound(date(2027, 11, 19)));
    assert!(!bound(date(2027, 11, 20)));
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
fn quotas_count_objects_and_ephemeral_storage_and_open_no_node_port() {
    for e in build(&example(), date(2026, 11, 26), &egress()) {
        let hard = e.resource_quota.spec.clone().unwrap().hard.unwrap();
        for (resource, count) in super::OBJECT_COUNTS {
            assert_eq!(hard[*resource], Quantity(count.to_string()), "{resource}");
        }
        assert_eq!(hard["services.nodeports"], Quantity("0".into()));
        assert_eq!(hard["services.loadbalancers"], Quantity("0".into()));
        assert!(hard.contains_key("requests.ephemeral-storage"));
        // A quota on ephemeral storage refuses a pod that states none, so the
        // namespace's defaults state it.
        let limits = &e.limit_range.spec.clone().unwrap().limits[0];
        assert!(
            limits
                .default
                .as_ref()
                .unwrap()
                .contains_key("ephemeral-storage")
        );
        assert!(
            limits
                .default_request
                .as_ref()
                .unwrap()
                .contains_key("ephemeral-storage")
        );
    }
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
        assert_eq!(names, [ISOLATION_POLICY, FREEZE_POLICY]);
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

#[test]
fn sessions_into_pods_are_bound_to_developers_in_dev_only_and_only_when_audited() {
    let bound = |oa: &OperatorAuthorization| -> Vec<(String, Vec<String>)> {
        build(oa, date(2026, 11, 26), &egress())
            .iter()
            .flat_map(|e| e.role_bindings.iter())
            .filter(|b| b.role_ref.name == super::INTERACTIVE_ROLE)
            .map(|b| (b.metadata.namespace.clone().unwrap(), subjects(b)))
            .collect()
    };
    let audited = example();
    assert_eq!(audited.spec.interactive_access, InteractiveAccess::Audited);
    let ns = format!("{}-dev", audited.metadata.name.clone().unwrap());
    assert_eq!(bound(&audited), [(ns, vec!["User:wang.fang".to_string()])]);
    let mut none = example();
    none.spec.interactive_access = InteractiveAccess::Disabled;
    assert!(bound(&none).is_empty());
    // The developer role itself grants no session.
    let roles = super::cluster_roles();
    let developer = roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(super::DEVELOPER_ROLE))
        .unwrap();
    let text = serde_json::to_string(developer).unwrap();
    assert!(!text.contains("exec") && !text.contains("portforward") && !text.contains("attach"));
}
