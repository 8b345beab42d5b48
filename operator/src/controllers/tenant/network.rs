//! The tenant's NetworkPolicies: deny by default; same namespace, DNS and
//! OpenBao when active; nothing at all when frozen.

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

use super::{FREEZE_POLICY, OPENBAO_EGRESS_POLICY, Platform, meta};
use crate::api::authorization::Environment;

pub(super) fn network_policies(
    ns: &str,
    tenant: &str,
    env: Environment,
    egress: &Platform,
) -> Vec<NetworkPolicy> {
    let all_pods = LabelSelector::default();
    let same_namespace = NetworkPolicyPeer {
        pod_selector: Some(all_pods.clone()),
        ..Default::default()
    };
    let dns_peer = NetworkPolicyPeer {
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
    let dns_ports = ["UDP", "TCP"]
        .into_iter()
        .map(|protocol| NetworkPolicyPort {
            protocol: Some(protocol.into()),
            port: Some(IntOrString::Int(53)),
            ..Default::default()
        })
        .collect();
    let mut policies = vec![
        NetworkPolicy {
            metadata: meta("default-deny-all", ns, tenant, env),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(all_pods.clone()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ..Default::default()
            }),
        },
        NetworkPolicy {
            metadata: meta("allow-same-namespace", ns, tenant, env),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(all_pods.clone()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![same_namespace.clone()]),
                    ..Default::default()
                }]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![same_namespace]),
                    ..Default::default()
                }]),
            }),
        },
        NetworkPolicy {
            metadata: meta("allow-dns-egress", ns, tenant, env),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(all_pods),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![dns_peer]),
                    ports: Some(dns_ports),
                }]),
                ..Default::default()
            }),
        },
    ];
    if !egress.openbao_cidrs.is_empty() {
        policies.push(NetworkPolicy {
            metadata: meta(OPENBAO_EGRESS_POLICY, ns, tenant, env),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(
                        egress
                            .openbao_cidrs
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
                    ports: Some(vec![NetworkPolicyPort {
                        protocol: Some("TCP".into()),
                        port: Some(IntOrString::Int(egress.openbao_port.into())),
                        ..Default::default()
                    }]),
                }]),
                ..Default::default()
            }),
        });
    }
    policies
}

/// A frozen namespace: deny everything, both ways; nothing else (the allow
/// policies are pruned, since NetworkPolicies only ever add what is allowed).
pub(super) fn frozen_network_policies(
    ns: &str,
    tenant: &str,
    env: Environment,
) -> Vec<NetworkPolicy> {
    let deny = |name: &str| NetworkPolicy {
        metadata: meta(name, ns, tenant, env),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ..Default::default()
        }),
    };
    vec![deny("default-deny-all"), deny(FREEZE_POLICY)]
}
