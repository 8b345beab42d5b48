//! What the operator last applied, and whether it still stands.
//!
//! Every object the operator applies carries the digest of its desired form
//! in the annotation [`APPLIED_DIGEST`]. The cache keeps, per object, the
//! resourceVersion and digest of the last state it knows: from the answer to
//! its own apply, and from a metadata-only watch of its objects (label
//! selected, managed fields read once and dropped). An object is applied
//! again only when its desired digest changed, or when someone else changed
//! it since (a newer resourceVersion whose managed fields name another
//! manager), or when it is gone. So a resync of an unchanged domain writes
//! nothing, and a NetworkPolicy edited by hand is put back by the reconcile
//! its watch event triggers.
//!
//! Until a kind's watch has listed everything once, the cache answers
//! "unknown" for it, and the reconciler applies, and prunes by listing, as if
//! it had no cache.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::context::FIELD_MANAGER;

/// The annotation with the digest of the desired form of an applied object.
pub const APPLIED_DIGEST: &str = "publicdata.io/applied-digest";

/// The kinds the operator applies to tenant namespaces, and the namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    NetworkPolicy,
    ResourceQuota,
    LimitRange,
    ServiceAccount,
    Role,
    RoleBinding,
    PersistentVolumeClaim,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Namespace,
        Kind::NetworkPolicy,
        Kind::ResourceQuota,
        Kind::LimitRange,
        Kind::ServiceAccount,
        Kind::Role,
        Kind::RoleBinding,
        Kind::PersistentVolumeClaim,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// An object's place: kind, namespace ("" for a namespace), name.
pub type Key = (Kind, String, String);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    resource_version: u64,
    digest: String,
    /// Only the operator has changed it (status subresources aside).
    clean: bool,
}

/// What a watch event means for the reconciler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The echo of the operator's own apply, an older state, or one only the
    /// operator made: nothing to do.
    Known,
    /// Changed by someone else since the operator's last apply: reconcile.
    Changed,
}

/// The cache. Shared by the reconciler and the watches. Ordered by key, so
/// the objects of one kind in one namespace are one range, whatever the
/// number of tenants.
#[derive(Debug, Default)]
pub struct Applied {
    entries: Mutex<BTreeMap<Key, Entry>>,
    synced: [AtomicBool; 8],
}

/// The digest of an object's desired form (without the digest annotation):
/// the first 16 hex digits of the SHA-256 of its JSON. k8s-openapi keeps maps
/// sorted, so the same object always gives the same digest.
pub fn digest<K: Serialize>(obj: &K) -> String {
    let bytes = serde_json::to_vec(obj).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))[..16].to_string()
}

/// Puts the digest of `obj`'s desired form on it, and returns the digest.
pub fn stamp<K: Resource + Serialize>(obj: &mut K) -> String {
    let annotations = &mut obj.meta_mut().annotations;
    if let Some(a) = annotations.as_mut() {
        a.remove(APPLIED_DIGEST);
        if a.is_empty() {
            *annotations = None;
        }
    }
    let d = digest(obj);
    obj.meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(APPLIED_DIGEST.into(), d.clone());
    d
}

/// Whether only the operator changed the object: every managed-fields entry
/// outside a subresource (a quota's status, say) is the operator's. A claim
/// is also bound by the controller manager and placed by the scheduler
/// (its volume, their annotations): that is not someone else's change.
fn clean(kind: Kind, meta: &ObjectMeta) -> bool {
    let binds = |manager: Option<&str>| {
        kind == Kind::PersistentVolumeClaim
            && matches!(manager, Some("kube-controller-manager" | "kube-scheduler"))
    };
    meta.managed_fields.as_ref().is_some_and(|fields| {
        fields
            .iter()
            .filter(|f| f.subresource.as_deref().unwrap_or_default().is_empty())
            .all(|f| f.manager.as_deref() == Some(FIELD_MANAGER) || binds(f.manager.as_deref()))
    })
}

fn version(meta: &ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref()?.parse().ok()
}

/// The cache key of an object of `kind`.
pub fn key(kind: Kind, meta: &ObjectMeta) -> Key {
    (
        kind,
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

impl Applied {
    /// Whether `key`'s current state is the one with `digest`, applied by
    /// the operator and unchanged since. None: the kind is not listed yet.
    pub fn up_to_date(&self, key: &Key, digest: &str) -> Option<bool> {
        if !self.is_synced(key.0) {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            entries
                .get(key)
                .is_some_and(|e| e.clean && e.digest == digest),
        )
    }

    /// Whether someone other than the operator changed the object since the
    /// operator last wrote it (the cache saw it, with another manager).
    pub fn changed_by_others(&self, key: &Key) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(key).is_some_and(|e| !e.clean)
    }

    /// The names of kind `kind` the cache knows in namespace `ns`. None: the
    /// kind is not listed yet.
    pub fn names_in(&self, kind: Kind, ns: &str) -> Option<Vec<String>> {
        if !self.is_synced(kind) {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let first = (kind, ns.to_string(), String::new());
        Some(
            entries
                .range(first..)
                .map(|(key, _)| key)
                .take_while(|(k, n, _)| *k == kind && n == ns)
                .map(|(_, _, name)| name.clone())
                .collect(),
        )
    }

    /// Records the answer to the operator's own apply.
    pub fn applied(&self, kind: Kind, meta: &ObjectMeta, digest: &str) {
        let Some(resource_version) = version(meta) else {
            return self.forget(&key(kind, meta));
        };
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(key(kind, meta)).or_insert(Entry {
            resource_version: 0,
            digest: String::new(),
            clean: false,
        });
        if entry.resource_version <= resource_version {
            *entry = Entry {
                resource_version,
                digest: digest.into(),
                clean: true,
            };
        }
    }

    /// Forgets an object (deleted by the operator, or its state unknown).
    pub fn forget(&self, key: &Key) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key);
    }

    /// A watch saw the object in this state.
    pub fn seen(&self, kind: Kind, meta: &ObjectMeta) -> Seen {
        let key = key(kind, meta);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(resource_version) = version(meta) else {
            entries.remove(&key);
            return Seen::Changed;
        };
        if entries
            .get(&key)
            .is_some_and(|e| e.resource_version >= resource_version)
        {
            return Seen::Known;
        }
        let digest = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_DIGEST))
            .cloned()
            .unwrap_or_default();
        let clean = clean(kind, meta);
        entries.insert(
            key,
            Entry {
                resource_version,
                digest,
                clean,
            },
        );
        // A state only the operator made (its own apply, seen before or
        // after the answer came back) asks for nothing.
        if clean { Seen::Known } else { Seen::Changed }
    }

    /// A watch saw the object deleted.
    pub fn deleted(&self, kind: Kind, meta: &ObjectMeta) {
        self.forget(&key(kind, meta));
    }

    /// A watch (re)listed every object of `kind`: what it did not list is gone.
    pub fn relisted(&self, kind: Kind, listed: &std::collections::HashSet<Key>) {
        {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.retain(|k, _| k.0 != kind || listed.contains(k));
        }
        self.synced[kind.index()].store(true, Ordering::Release);
    }

    /// The watch of `kind` restarts: until it has listed again, nothing is known.
    pub fn unsynced(&self, kind: Kind) {
        self.synced[kind.index()].store(false, Ordering::Release);
    }

    fn is_synced(&self, kind: Kind) -> bool {
        self.synced[kind.index()].load(Ordering::Acquire)
    }

    /// How many objects the cache knows (for the metrics).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether the cache knows no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
