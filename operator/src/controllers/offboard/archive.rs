//! Offboarding, before anything is deleted: the inventory and the archive,
//! the log volumes kept and, once their claims are gone, re-homed.

use std::collections::BTreeMap;

use jiff::ToSpan;
use jiff::civil::Date;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota,
    Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::*;
use crate::api::authorization::{Environment, KeptItem, OperatorAuthorization};
use crate::api::labels;
use crate::records;
use crate::vault::{self, SecretsBackend};

/// One entry of the inventory.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub kind: String,
    pub name: String,
    pub digest: String,
}

fn digest_of<T: Serialize>(value: &T) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(value).unwrap_or_default(),
    ))
}

async fn list_kind<K>(
    client: &Client,
    ns: &str,
    kind: &'static str,
    out: &mut Vec<Item>,
) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    for mut obj in objects::<K>(client, std::slice::from_ref(&ns.to_string()), kind).await? {
        // The digest covers what the object is, not bookkeeping that changes.
        obj.meta_mut().resource_version = None;
        out.push(Item {
            kind: kind.into(),
            name: format!("{ns}/{}", obj.name_any()),
            digest: digest_of(&obj),
        });
    }
    Ok(())
}

/// Everything of the tenant about to be deleted, with digests.
pub async fn inventory(
    client: &Client,
    backend: &dyn SecretsBackend,
    tenant: &str,
    namespaces: &[String],
) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let namespaces_api: Api<Namespace> = Api::all(client.clone());
    for ns in namespaces {
        // A namespace that is not there holds nothing to inventory (and the
        // operator may not even list in it: its read of a tenant's Secrets is
        // bound inside the tenant's namespaces).
        let exists = namespaces_api
            .get_opt(ns)
            .await
            .map_err(|source| Error::List {
                kind: "Namespace",
                namespace: ns.clone(),
                source,
            })?
            .is_some();
        if !exists {
            continue;
        }
        list_kind::<Deployment>(client, ns, "Deployment", &mut items).await?;
        list_kind::<StatefulSet>(client, ns, "StatefulSet", &mut items).await?;
        list_kind::<ReplicaSet>(client, ns, "ReplicaSet", &mut items).await?;
        list_kind::<Job>(client, ns, "Job", &mut items).await?;
        list_kind::<CronJob>(client, ns, "CronJob", &mut items).await?;
        list_kind::<Pod>(client, ns, "Pod", &mut items).await?;
        list_kind::<Service>(client, ns, "Service", &mut items).await?;
        list_kind::<ConfigMap>(client, ns, "ConfigMap", &mut items).await?;
        list_kind::<Secret>(client, ns, "Secret", &mut items).await?;
        list_kind::<PersistentVolumeClaim>(client, ns, "PersistentVolumeClaim", &mut items).await?;
        list_kind::<ServiceAccount>(client, ns, "ServiceAccount", &mut items).await?;
        list_kind::<Role>(client, ns, "Role", &mut items).await?;
        list_kind::<RoleBinding>(client, ns, "RoleBinding", &mut items).await?;
        list_kind::<NetworkPolicy>(client, ns, "NetworkPolicy", &mut items).await?;
        list_kind::<ResourceQuota>(client, ns, "ResourceQuota", &mut items).await?;
        list_kind::<LimitRange>(client, ns, "LimitRange", &mut items).await?;
        items.push(Item {
            kind: "Namespace".into(),
            name: ns.clone(),
            digest: digest_of(ns),
        });
    }
    // The environments' areas, and the tenant's own mount from before them
    // if it is still there.
    let mut mounts: Vec<String> = [Environment::Dev, Environment::Prod]
        .into_iter()
        .map(|e| vault::area_mount(tenant, e))
        .collect();
    mounts.push(vault::legacy_mount_path(tenant));
    for mount in mounts {
        let found = backend
            .find(vault::Existing::SecretsMount(&mount))
            .await
            .map_err(Error::Vault)?;
        if found.is_none() {
            continue;
        }
        for (path, digest) in backend.inventory_kv2(&mount).await.map_err(Error::Vault)? {
            items.push(Item {
                kind: "OpenBaoSecret".into(),
                name: path,
                digest,
            });
        }
        items.push(Item {
            kind: "OpenBaoMount".into(),
            name: mount.clone(),
            digest: digest_of(&mount),
        });
    }
    for env in [Environment::Dev, Environment::Prod] {
        let name = vault::identity_name(tenant, env);
        if backend
            .find(vault::Existing::Identity(&name))
            .await
            .map_err(Error::Vault)?
            .is_some()
        {
            items.push(Item {
                kind: "OpenBaoIdentity".into(),
                digest: digest_of(&name),
                name,
            });
        }
    }
    items.sort();
    Ok(items)
}

/// The name of the archive of one authorization: its tenant id and the
/// start of its uid, so a name used again after an offboarding gets an archive
/// of its own.
pub fn archive_name(tenant: &str, uid: &str) -> String {
    let short: String = uid.chars().filter(|c| *c != '-').take(8).collect();
    format!("{tenant}-{short}-offboarding")
}

/// Largest part of an archive file in one ConfigMap (a ConfigMap holds at most
/// 1 MiB, keys and metadata included).
pub const PAGE_BYTES: usize = 512 * 1024;

/// Splits `text` into pages of at most `limit` bytes, on line boundaries
/// where it can (a single longer line is split on a character boundary).
pub fn pages(text: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut page = String::new();
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        while !rest.is_empty() {
            if page.len() + rest.len() <= limit {
                page.push_str(rest);
                break;
            }
            if page.is_empty() {
                let mut cut = limit.min(rest.len());
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push(rest[..cut].to_string());
                rest = &rest[cut..];
            } else {
                out.push(std::mem::take(&mut page));
            }
        }
    }
    if !page.is_empty() || out.is_empty() {
        out.push(page);
    }
    out
}

/// Makes sure the archive namespace exists.
pub async fn ensure_archive_namespace(client: &Client, manager: &str) -> Result<(), Error> {
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        // No managed-by label: the chart may own this namespace too.
        "metadata": {"name": ARCHIVE_NAMESPACE, "labels": {"app.kubernetes.io/part-of": labels::MANAGER}}
    }))
    .map_err(|e| Error::Archive(kube::Error::SerdeError(e)))?;
    Api::<Namespace>::all(client.clone())
        .patch(
            ARCHIVE_NAMESPACE,
            &PatchParams::apply(manager),
            &Patch::Apply(&ns),
        )
        .await
        .map_err(Error::Archive)?;
    Ok(())
}

/// Step 1: the archive, written once. If its index exists (a restart after
/// it was written), it is returned as it is: the inventory describes the
/// domain before anything was deleted. The inventory and the audit trail are
/// paged over as many ConfigMaps as they need (the parts first, the index
/// naming each part and its digest last), so no size stops an offboarding.
/// Returns (index path, inventory digest).
#[allow(clippy::too_many_arguments)]
pub async fn archive(
    client: &Client,
    backend: &dyn SecretsBackend,
    store: &dyn records::Store,
    oa: &OperatorAuthorization,
    trail: &[crate::audit::Record],
    namespaces: &[String],
    manager: &str,
    now: jiff::Timestamp,
) -> Result<(String, String, records::Archived), Error> {
    let tenant = &oa.name_any();
    let uid = &oa.uid().unwrap_or_default();
    ensure_archive_namespace(client, manager).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ARCHIVE_NAMESPACE);
    let name = archive_name(tenant, uid);
    let path = format!("{ARCHIVE_NAMESPACE}/{name}");
    if let Some(cm) = cms.get_opt(&name).await.map_err(Error::Archive)? {
        let digest = cm
            .annotations()
            .get(INVENTORY_DIGEST)
            .cloned()
            .unwrap_or_default();
        let archived = match records::verify(store, tenant, uid).await {
            Ok(archived) => archived,
            // An archive begun before key records went to a store (an
            // offboarding under way across an upgrade): write them now, with
            // the inventory as its parts hold it.
            Err(records::Error::Missing { key }) if key.ends_with(records::MANIFEST) => {
                let mut files = key_records(client, oa, namespaces).await?;
                files.push((
                    "inventory.json",
                    part_text(&cms, &cm, "inventory.json").await?,
                ));
                files.push(("audit-trail.jsonl", trail_text(trail).into_bytes()));
                let until = records::years_after(now, records::KEY_RECORD_YEARS);
                records::write(store, tenant, uid, &files, until)
                    .await
                    .map_err(Error::Records)?
            }
            Err(e) => return Err(Error::Records(e)),
        };
        return Ok((path, digest, archived));
    }
    let items = inventory(client, backend, tenant, namespaces).await?;
    let inventory_json = serde_json::to_string_pretty(&items).unwrap_or_default();
    let digest = hex::encode(Sha256::digest(inventory_json.as_bytes()));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for item in &items {
        *counts.entry(item.kind.as_str()).or_insert(0) += 1;
    }
    let trail_jsonl = trail_text(trail);
    let labels_ =
        json!({labels::MANAGED_BY: labels::MANAGER, ARCHIVED_TENANT: tenant, ARCHIVED_UID: uid});
    let mut parts = Vec::new();
    for (file, text) in [
        ("inventory.json", inventory_json.clone()),
        ("audit-trail.jsonl", trail_jsonl.clone()),
    ] {
        for (n, page) in pages(&text, PAGE_BYTES).into_iter().enumerate() {
            let part = format!("{name}-{}-{n}", file.split('.').next().unwrap_or(file));
            let cm: ConfigMap = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": part, "labels": labels_},
                "data": {file: page},
            }))
            .map_err(|e| Error::Archive(kube::Error::SerdeError(e)))?;
            // Applied, not created: a restart may find a part written already.
            cms.patch(
                &part,
                &PatchParams::apply(manager).force(),
                &Patch::Apply(&cm),
            )
            .await
            .map_err(Error::Archive)?;
            parts.push(json!({"configMap": part, "key": file, "sha256": hex::encode(Sha256::digest(page.as_bytes()))}));
        }
    }
    // The key records, locked in the store, before the index: an index
    // means everything of the archive is written.
    let mut files = key_records(client, oa, namespaces).await?;
    files.push(("inventory.json", inventory_json.into_bytes()));
    files.push(("audit-trail.jsonl", trail_jsonl.into_bytes()));
    let until = records::years_after(now, records::KEY_RECORD_YEARS);
    let archived = records::write(store, tenant, uid, &files, until)
        .await
        .map_err(Error::Records)?;
    let index: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": labels_,
            "annotations": {INVENTORY_DIGEST: digest},
        },
        "data": {
            "parts.json": serde_json::to_string_pretty(&parts).unwrap_or_default(),
            "counts.json": serde_json::to_string(&counts).unwrap_or_default(),
        },
    }))
    .map_err(|e| Error::Archive(kube::Error::SerdeError(e)))?;
    cms.create(&PostParams::default(), &index)
        .await
        .map_err(Error::Archive)?;
    Ok((path, digest, archived))
}

/// An authorization's audit trail as JSON lines.
fn trail_text(trail: &[crate::audit::Record]) -> String {
    trail
        .iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of `file` as an archive's index names its parts, joined again.
async fn part_text(cms: &Api<ConfigMap>, index: &ConfigMap, file: &str) -> Result<Vec<u8>, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Part {
        config_map: String,
        key: String,
    }
    let parts: Vec<Part> = index
        .data
        .as_ref()
        .and_then(|d| d.get("parts.json"))
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let mut text = String::new();
    for part in parts.iter().filter(|p| p.key == file) {
        let cm = cms.get(&part.config_map).await.map_err(Error::Archive)?;
        if let Some(page) = cm.data.as_ref().and_then(|d| d.get(file)) {
            text.push_str(page);
        }
    }
    Ok(text.into_bytes())
}

/// The key records of an authorization besides the inventory and the audit
/// trail: the authorization (terms, members and their standing, the
/// history of its phases), and what was filed and decided under it in its
/// namespaces: scenarios with their approvals, exports with their decisions,
/// annual reports, exit and renewal requests. As the API has them, without
/// managed fields.
pub async fn key_records(
    client: &Client,
    oa: &OperatorAuthorization,
    namespaces: &[String],
) -> Result<Vec<(&'static str, Vec<u8>)>, Error> {
    use crate::api::{AnnualReport, DataScenario, ExitRequest, ExportRequest, RenewalRequest};
    let mut granted = oa.clone();
    granted.metadata.managed_fields = None;
    let authorization = serde_json::to_vec_pretty(&granted).unwrap_or_default();
    let scenarios = objects::<DataScenario>(client, namespaces, "DataScenario").await?;
    let exports = objects::<ExportRequest>(client, namespaces, "ExportRequest").await?;
    let filings = json!({
        "annualReports": objects::<AnnualReport>(client, namespaces, "AnnualReport").await?,
        "exitRequests": objects::<ExitRequest>(client, namespaces, "ExitRequest").await?,
        "renewalRequests": objects::<RenewalRequest>(client, namespaces, "RenewalRequest").await?,
    });
    Ok(vec![
        ("authorization.json", authorization),
        (
            "scenarios.json",
            serde_json::to_vec_pretty(&scenarios).unwrap_or_default(),
        ),
        (
            "exports.json",
            serde_json::to_vec_pretty(&exports).unwrap_or_default(),
        ),
        (
            "filings.json",
            serde_json::to_vec_pretty(&filings).unwrap_or_default(),
        ),
    ])
}

/// Every object of kind `K` in `namespaces`, without managed fields.
async fn objects<K>(
    client: &Client,
    namespaces: &[String],
    kind: &'static str,
) -> Result<Vec<K>, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let mut out = Vec::new();
    for ns in namespaces {
        let list = Api::<K>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .map_err(|source| Error::List {
                kind,
                namespace: ns.clone(),
                source,
            })?;
        out.extend(list.items.into_iter().map(|mut o| {
            o.meta_mut().managed_fields = None;
            o
        }));
    }
    Ok(out)
}

/// Step 1b: log volumes kept (reclaim policy Retain), labelled with the tenant
/// and a retain-until date at least six months ahead. Returns what is kept.
pub async fn retain_logs(
    client: &Client,
    tenant: &str,
    namespaces: &[String],
    today: Date,
) -> Result<Vec<KeptItem>, Error> {
    let until = today
        .checked_add(LOG_RETENTION_MONTHS.months())
        .unwrap_or(today)
        .to_string();
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let mut kept = Vec::new();
    for ns in namespaces {
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let logs = pvcs
            .list(&ListParams::default().labels(&format!("{DATA_CLASS}=logs")))
            .await
            .map_err(|source| Error::List {
                kind: "PersistentVolumeClaim",
                namespace: ns.clone(),
                source,
            })?;
        for pvc in logs {
            let Some(volume) = pvc.spec.as_ref().and_then(|s| s.volume_name.clone()) else {
                continue;
            };
            // A claim names the volume it wants; the volume names the claim
            // it is bound to. Only a volume bound to this very claim (its
            // namespace, name and uid) is touched: a claim naming another
            // namespace's volume gets nothing kept.
            let bound_here = pvs
                .get_opt(&volume)
                .await
                .map_err(|source| Error::RetainVolume {
                    name: volume.clone(),
                    source,
                })?
                .and_then(|pv| pv.spec.and_then(|s| s.claim_ref))
                .is_some_and(|c| claim_is(&c, ns, &pvc));
            if !bound_here {
                tracing::warn!(
                    volume = %volume,
                    claim = %format!("{ns}/{}", pvc.name_any()),
                    "a log claim names a volume that is not bound to it: not kept"
                );
                continue;
            }
            let patch = json!({
                "metadata": {
                    "labels": {ARCHIVED_TENANT: tenant, DATA_CLASS: "logs"},
                    "annotations": {RETAIN_UNTIL: until, "publicdata.io/archived-from": format!("{ns}/{}", pvc.name_any())},
                },
                "spec": {"persistentVolumeReclaimPolicy": "Retain"},
            });
            pvs.patch(&volume, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|source| Error::RetainVolume {
                    name: volume.clone(),
                    source,
                })?;
        }
    }
    // Also report volumes retained by an earlier, interrupted run.
    let retained = pvs
        .list(&ListParams::default().labels(&format!("{ARCHIVED_TENANT}={tenant}")))
        .await
        .map_err(|source| Error::List {
            kind: "PersistentVolume",
            namespace: String::new(),
            source,
        })?;
    for pv in retained {
        let until = pv
            .annotations()
            .get(RETAIN_UNTIL)
            .cloned()
            .unwrap_or_else(|| until.clone());
        kept.push(KeptItem {
            what: format!(
                "log volume {} (from {})",
                pv.name_any(),
                pv.annotations()
                    .get("publicdata.io/archived-from")
                    .cloned()
                    .unwrap_or_default()
            ),
            location: format!(
                "PersistentVolume {} -> {ARCHIVE_NAMESPACE}/{tenant}-{}",
                pv.name_any(),
                pv.name_any()
            ),
            until,
        });
    }
    Ok(kept)
}

/// Whether a volume's `claimRef` is this claim: its namespace, name and uid.
fn claim_is(
    claim_ref: &k8s_openapi::api::core::v1::ObjectReference,
    ns: &str,
    pvc: &PersistentVolumeClaim,
) -> bool {
    claim_ref.namespace.as_deref() == Some(ns)
        && claim_ref.name.as_deref() == Some(pvc.name_any().as_str())
        && claim_ref.uid.is_some()
        && claim_ref.uid == pvc.metadata.uid
}

/// Step 3: retained log volumes, released by their deleted claims, are bound
/// to claims in the archive namespace. False: a volume is not released yet
/// (its claim went with the namespace a moment ago); try again shortly.
pub async fn rehome_logs(client: &Client, tenant: &str) -> Result<bool, Error> {
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ARCHIVE_NAMESPACE);
    let retained = pvs
        .list(&ListParams::default().labels(&format!("{ARCHIVED_TENANT}={tenant}")))
        .await
        .map_err(|source| Error::List {
            kind: "PersistentVolume",
            namespace: String::new(),
            source,
        })?;
    for pv in retained {
        let name = format!("{tenant}-{}", pv.name_any());
        let spec = pv.spec.clone().unwrap_or_default();
        let archive_claim = pvcs.get_opt(&name).await.map_err(Error::Archive)?;
        let archive_uid = archive_claim.as_ref().and_then(|c| c.metadata.uid.clone());
        let claim_ref = spec.claim_ref.clone().unwrap_or_default();
        // Bound to the archive claim already, or reserved for it (no uid yet).
        let claimed_here = claim_ref.namespace.as_deref() == Some(ARCHIVE_NAMESPACE)
            && claim_ref.name.as_deref() == Some(name.as_str())
            && (claim_ref.uid.is_none() || claim_ref.uid == archive_uid);
        let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
        if !claimed_here && !released {
            // Its claim went with the namespace: the binder marks it
            // Released in a moment (and only a released volume is re-homed:
            // the admission policy refuses the rest).
            return Ok(false);
        }
        if !claimed_here {
            // Reserve the volume for the archive claim; the old claim's uid
            // and resourceVersion must go, or the binder keeps it "Released".
            let patch = json!({"spec": {"claimRef": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": ARCHIVE_NAMESPACE, "name": name,
                "uid": null, "resourceVersion": null,
            }}});
            pvs.patch(
                &pv.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|source| Error::RetainVolume {
                name: pv.name_any(),
                source,
            })?;
        }
        if archive_claim.is_none() {
            let storage = spec
                .capacity
                .as_ref()
                .and_then(|c| c.get("storage").cloned())
                .map(|q| q.0)
                .unwrap_or_else(|| "1Gi".into());
            let claim: PersistentVolumeClaim = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {ARCHIVED_TENANT: tenant, DATA_CLASS: "logs"},
                             "annotations": pv.annotations()},
                "spec": {
                    "volumeName": pv.name_any(),
                    "storageClassName": spec.storage_class_name.clone().unwrap_or_default(),
                    "accessModes": spec.access_modes.clone().unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
                    "resources": {"requests": {"storage": storage}},
                }
            }))
            .map_err(|e| Error::Archive(kube::Error::SerdeError(e)))?;
            pvcs.create(&PostParams::default(), &claim)
                .await
                .map_err(Error::Archive)?;
        }
    }
    Ok(true)
}

/// Counts by kind from the archive's index.
pub async fn inventory_counts(
    client: &Client,
    tenant: &str,
    uid: &str,
) -> Result<BTreeMap<String, usize>, Error> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ARCHIVE_NAMESPACE)
        .get(&archive_name(tenant, uid))
        .await
        .map_err(Error::Archive)?;
    let text = cm
        .data
        .and_then(|d| d.get("counts.json").cloned())
        .unwrap_or_default();
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_keep_lines_whole_and_never_exceed_the_limit() {
        let text = "aaaa\nbbbb\ncc\n";
        assert_eq!(pages(text, 10), ["aaaa\nbbbb\n", "cc\n"]);
        assert_eq!(pages(text, 100), [text]);
        assert_eq!(pages("", 10), [""]);
        // A line longer than a page is cut, on a character boundary.
        let long = "é".repeat(10);
        let split = pages(&long, 5);
        assert!(split.iter().all(|p| p.len() <= 5));
        assert_eq!(split.concat(), long);
        let big = "x".repeat(100) + "\n";
        let many = big.repeat(50_000);
        let split = pages(&many, PAGE_BYTES);
        assert!(split.len() > 1 && split.iter().all(|p| p.len() <= PAGE_BYTES));
        assert_eq!(split.concat(), many);
    }

    #[test]
    fn a_name_used_again_gets_an_archive_of_its_own() {
        assert_eq!(
            archive_name("acme", "5e3c1a2b-0000-4000-8000-000000000000"),
            "acme-5e3c1a2b-offboarding"
        );
        assert_ne!(
            archive_name("acme", "5e3c1a2b-0000"),
            archive_name("acme", "77aa0000-0000")
        );
    }
}
