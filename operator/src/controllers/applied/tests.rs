use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::ResourceExt;

use super::*;

fn meta(rv: &str, digest: Option<&str>, managers: &[(&str, Option<&str>)]) -> ObjectMeta {
    ObjectMeta {
        name: Some("tenant-isolation".into()),
        namespace: Some("acme-dev".into()),
        resource_version: Some(rv.into()),
        annotations: digest.map(|d| BTreeMap::from([(APPLIED_DIGEST.to_string(), d.to_string())])),
        managed_fields: Some(
            managers
                .iter()
                .map(|(m, sub)| ManagedFieldsEntry {
                    manager: Some(m.to_string()),
                    subresource: sub.map(str::to_string),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

fn synced(cache: &Applied) {
    for kind in Kind::ALL {
        cache.relisted(kind, &HashSet::new());
    }
}

fn np_key() -> Key {
    (
        Kind::NetworkPolicy,
        "acme-dev".into(),
        "tenant-isolation".into(),
    )
}

#[test]
fn nothing_is_known_until_the_kind_is_listed() {
    let cache = Applied::default();
    cache.applied(Kind::NetworkPolicy, &meta("5", None, &[]), "d1");
    assert_eq!(cache.up_to_date(&np_key(), "d1"), None);
    assert_eq!(cache.names_in(Kind::NetworkPolicy, "acme-dev"), None);
    cache.relisted(Kind::NetworkPolicy, &HashSet::from([np_key()]));
    assert_eq!(cache.up_to_date(&np_key(), "d1"), Some(true));
}

#[test]
fn the_echo_of_an_own_apply_is_known_and_a_foreign_change_is_not() {
    let cache = Applied::default();
    synced(&cache);
    cache.applied(Kind::NetworkPolicy, &meta("10", Some("d1"), &[]), "d1");
    // The watch delivers the operator's own write, and an older state.
    let own = meta("10", Some("d1"), &[(FIELD_MANAGER, None)]);
    assert_eq!(cache.seen(Kind::NetworkPolicy, &own), Seen::Known);
    let older = meta("7", None, &[]);
    assert_eq!(cache.seen(Kind::NetworkPolicy, &older), Seen::Known);
    assert_eq!(cache.up_to_date(&np_key(), "d1"), Some(true));
    // Someone edits it by hand: the digest annotation is still there, but
    // another manager changed it.
    let edited = meta(
        "12",
        Some("d1"),
        &[(FIELD_MANAGER, None), ("kubectl-edit", None)],
    );
    assert_eq!(cache.seen(Kind::NetworkPolicy, &edited), Seen::Changed);
    assert_eq!(cache.up_to_date(&np_key(), "d1"), Some(false));
    assert!(cache.changed_by_others(&np_key()));
    // The operator applies it again; the answer makes it clean.
    cache.applied(Kind::NetworkPolicy, &meta("13", Some("d1"), &[]), "d1");
    assert_eq!(cache.up_to_date(&np_key(), "d1"), Some(true));
    assert!(!cache.changed_by_others(&np_key()));
}

#[test]
fn a_new_desired_form_or_a_deletion_means_apply_again() {
    let cache = Applied::default();
    synced(&cache);
    cache.applied(Kind::NetworkPolicy, &meta("10", Some("d1"), &[]), "d1");
    assert_eq!(cache.up_to_date(&np_key(), "d2"), Some(false));
    cache.deleted(Kind::NetworkPolicy, &meta("11", Some("d1"), &[]));
    assert_eq!(cache.up_to_date(&np_key(), "d1"), Some(false));
}

#[test]
fn after_a_restart_the_listing_trusts_objects_only_the_operator_changed() {
    let cache = Applied::default();
    let status_by_controller = meta(
        "20",
        Some("d1"),
        &[
            (FIELD_MANAGER, None),
            ("kube-controller-manager", Some("status")),
        ],
    );
    assert_eq!(
        cache.seen(Kind::NetworkPolicy, &status_by_controller),
        Seen::Known
    );
    cache.relisted(Kind::NetworkPolicy, &HashSet::from([np_key()]));
    assert_eq!(cache.up_to_date(&np_key(), "d1"), Some(true));
    // Labelled by hand while the operator was away: applied again.
    let labelled = meta(
        "21",
        Some("d1"),
        &[(FIELD_MANAGER, None), ("kubectl-label", None)],
    );
    assert_eq!(cache.seen(Kind::NetworkPolicy, &labelled), Seen::Changed);
    assert_eq!(cache.up_to_date(&np_key(), "d1"), Some(false));
    // No managed fields at all (a cache that dropped them): not trusted.
    let bare = ObjectMeta {
        managed_fields: None,
        ..meta("22", Some("d1"), &[])
    };
    assert_eq!(cache.seen(Kind::NetworkPolicy, &bare), Seen::Changed);
    assert_eq!(cache.up_to_date(&np_key(), "d1"), Some(false));
}

#[test]
fn a_relisting_forgets_what_is_gone_and_names_what_is_there() {
    let cache = Applied::default();
    synced(&cache);
    cache.applied(Kind::NetworkPolicy, &meta("10", Some("d1"), &[]), "d1");
    let other = ObjectMeta {
        name: Some("freeze-deny-all".into()),
        ..meta("11", Some("d9"), &[])
    };
    cache.applied(Kind::NetworkPolicy, &other, "d9");
    assert_eq!(
        cache.names_in(Kind::NetworkPolicy, "acme-dev"),
        Some(vec!["freeze-deny-all".into(), "tenant-isolation".into()])
    );
    assert_eq!(
        cache.names_in(Kind::NetworkPolicy, "acme-prod"),
        Some(vec![])
    );
    cache.relisted(Kind::NetworkPolicy, &HashSet::from([np_key()]));
    assert_eq!(
        cache.names_in(Kind::NetworkPolicy, "acme-dev"),
        Some(vec!["tenant-isolation".into()])
    );
}

#[test]
fn the_digest_ignores_its_own_annotation_and_follows_the_spec() {
    let mut np = NetworkPolicy {
        metadata: ObjectMeta {
            name: Some("x".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let first = stamp(&mut np);
    assert_eq!(np.annotations().get(APPLIED_DIGEST), Some(&first));
    assert_eq!(
        stamp(&mut np),
        first,
        "stamping twice gives the same digest"
    );
    np.metadata.labels = Some(BTreeMap::from([("a".to_string(), "b".to_string())]));
    assert_ne!(stamp(&mut np), first);
}

#[test]
fn the_names_in_a_namespace_are_those_of_that_kind_and_namespace_alone() {
    let cache = Applied::default();
    synced(&cache);
    let put = |kind: Kind, ns: &str, name: &str| {
        let m = ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..meta("3", Some("d"), &[])
        };
        cache.applied(kind, &m, "d");
    };
    // Neighbours in the key order: a namespace whose name extends this
    // one's, one just before it, and another kind in the same namespace.
    put(Kind::NetworkPolicy, "acme-dev", "b");
    put(Kind::NetworkPolicy, "acme-dev", "a");
    put(Kind::NetworkPolicy, "acme-dev-2", "c");
    put(Kind::NetworkPolicy, "acme-de", "d");
    put(Kind::RoleBinding, "acme-dev", "e");
    put(Kind::Namespace, "", "acme-dev");
    assert_eq!(
        cache.names_in(Kind::NetworkPolicy, "acme-dev"),
        Some(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        cache.names_in(Kind::RoleBinding, "acme-dev"),
        Some(vec!["e".into()])
    );
    assert_eq!(cache.names_in(Kind::Role, "acme-dev"), Some(vec![]));
    assert_eq!(
        cache.names_in(Kind::Namespace, ""),
        Some(vec!["acme-dev".into()])
    );
}
