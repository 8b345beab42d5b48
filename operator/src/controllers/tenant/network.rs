//! The tenant's NetworkPolicies. One policy isolates a namespace: it selects
//! every pod, for ingress and egress, so whatever it does not allow is
//! denied. When active it allows the same namespace, DNS, OpenBao and the
//! platform's database (PostgreSQL); when
//! frozen it allows nothing, and the freeze policy marks the freeze. No rule
//! names another namespace, so there is no path dev<->prod and none between
//! tenants; nothing else beyond the namespace is reachable.
//!
//! One policy, not a deny-all and an allow policy per peer: policies only
//! ever add what is allowed, so the union is the same, and a tenant costs
//! fewer objects to write, watch and store.

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

use super::{FREEZE_POLICY, ISOLATION_POLICY, Platform, meta};
use crate::api::authorization::Environment;

/// Every pod, ingress and egress, with these rules and nothing else.
fn isolating(
    name: &str,
    ns: &str,
    tenant: &str,
    env: Environment,
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Vec<NetworkPolicyEgressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta(name, ns, tenant, env),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: (!ingress.is_empty()).then_some(ingress),
            egress: (!egress.is_empty()).then_some(egress),
        }),
    }
}

fn port(protocol: &str, port: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(port.into())),
        ..Default::default()
    }
}

pub(super) fn network_policies(
    ns: &str,
    tenant: &str,
    env: Environment,
    platform: &Platform,
) -> Vec<NetworkPolicy> {
    let same_namespace = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..Default::default()
    };
    let dns = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".into(),
                "kube-system".into(),
            )])),
            ..Default::default()
        }),
        pod_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("k8s-app".into(), "kube-dns".into())])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut egress = vec![
        NetworkPolicyEgressRule {
            to: Some(vec![same_namespace.clone()]),
            ..Default::default()
        },
        NetworkPolicyEgressRule {
            to: Some(vec![dns]),
            ports: Some(vec![port("UDP", 53), port("TCP", 53)]),
        },
    ];
    // OpenBao and the database, each by its endpoints' addresses and port,
    // and nothing else beyond the namespace; one not configured, no rule.
    for (cidrs, port_number) in [
        (&platform.openbao_cidrs, platform.openbao_port),
        (&platform.database_cidrs, platform.database_port),
    ] {
        if cidrs.is_empty() {
            continue;
        }
        egress.push(NetworkPolicyEgressRule {
            to: Some(
                cidrs
                    .iter()
                    .map(|cidr| NetworkPolicyPeer {
                        ip_block: Some(IPBlock {
                            cidr: cidr.clone(),
                            except: None,
                        }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ports: Some(vec![port("TCP", port_number)]),
        });
    }
    let ingress = vec![NetworkPolicyIngressRule {
        from: Some(vec![same_namespace]),
        ..Default::default()
    }];
    vec![isolating(
        ISOLATION_POLICY,
        ns,
        tenant,
        env,
        ingress,
        egress,
    )]
}

/// A frozen namespace: the isolation policy allows nothing, both ways, and
/// the freeze policy (which denies everything too) marks the freeze.
pub(super) fn frozen_network_policies(
    ns: &str,
    tenant: &str,
    env: Environment,
) -> Vec<NetworkPolicy> {
    [ISOLATION_POLICY, FREEZE_POLICY]
        .into_iter()
        .map(|name| isolating(name, ns, tenant, env, vec![], vec![]))
        .collect()
}
