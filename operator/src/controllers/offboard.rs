//! Offboarding: after the freeze, archive, wipe,
//! review, certify. Every step is idempotent and reads the world as it finds
//! it, so an operator killed at any point resumes and converges; nothing is
//! reported done before the exit review passed.
//!
//! 1. archive: an inventory of everything about to be deleted (objects by kind
//!    and name, volumes, OpenBao paths, each with a digest) and the tenant's
//!    audit trail, in a ConfigMap of the archive namespace, written once;
//!    log volumes (PVCs labelled `publicdata.io/data-class=logs`) set to
//!    Retain with a retain-until date at least six months ahead.
//! 2. wipe: the KV mount disabled (every version destroyed), the policies
//!    deleted (the auth mount went with the freeze), the namespaces deleted and
//!    waited for until the controller manager has finalized them.
//! 3. re-home the retained log volumes to claims in the archive namespace.
//! 4. review: no namespace, binding, OpenBao mount, role or policy of the
//!    tenant is left.

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

use crate::api::authorization::{DisposalCertificate, KeptItem, OperatorAuthorization};
use crate::api::labels;
use crate::controllers::tenant;
use crate::vault::{self, Existing, SecretsBackend};

/// Where offboarded tenants' archives and log volumes live.
pub const ARCHIVE_NAMESPACE: &str = "publicdata-archive";
/// Label marking a tenant's log volumes (kept on offboarding).
pub const DATA_CLASS: &str = "publicdata.io/data-class";
/// Annotation: keep at least until (YYYY-MM-DD).
pub const RETAIN_UNTIL: &str = "publicdata.io/retain-until";
/// Label on an archived log volume: the tenant it came from.
pub const ARCHIVED_TENANT: &str = "publicdata.io/archived-tenant";
/// Log volumes are kept at least this many months (R-28 says no less than 6).
pub const LOG_RETENTION_MONTHS: i64 = 6;

/// Errors of offboarding, named after the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("listing {kind} in {namespace}: {source}")]
    List {
        kind: &'static str,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the archive: {0}")]
    Archive(#[source] kube::Error),
    #[error("reading the audit trail: {0}")]
    Trail(#[source] crate::audit::Error),
    #[error("retaining log volume {name}: {source}")]
    RetainVolume {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting namespace {name}: {source}")]
    DeleteNamespace {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("OpenBao: {0}")]
    Vault(#[source] vault::Error),
}

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
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::List {
            kind,
            namespace: ns.into(),
            source,
        })?;
    for mut obj in list.items {
        // The digest covers what the object is, not bookkeeping that changes.
        obj.meta_mut().managed_fields = None;
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
    let mount = vault::mount_path(tenant);
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
    for policy in tenant_policies(tenant) {
        items.push(Item {
            kind: "OpenBaoPolicy".into(),
            name: policy.clone(),
            digest: digest_of(&policy),
        });
    }
    items.sort();
    Ok(items)
}

/// Every OpenBao policy the operator may have made for a tenant: per
/// environment, its own and its scenario grants.
pub fn tenant_policies(tenant: &str) -> Vec<String> {
    use crate::api::authorization::Environment;
    [Environment::Dev, Environment::Prod]
        .into_iter()
        .flat_map(|e| [vault::env_name(tenant, e), vault::grants_name(tenant, e)])
        .collect()
}

/// The name of a tenant's archive ConfigMap.
pub fn archive_name(tenant: &str) -> String {
    format!("{tenant}-offboarding")
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

/// Step 1: the archive, written once. If it exists (a restart after it was
/// written), it is returned as it is: the inventory describes the domain
/// before anything was deleted. Returns (configmap path, inventory digest).
pub async fn archive(
    client: &Client,
    backend: &dyn SecretsBackend,
    audit: &dyn crate::audit::Sink,
    tenant: &str,
    namespaces: &[String],
    manager: &str,
) -> Result<(String, String), Error> {
    ensure_archive_namespace(client, manager).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ARCHIVE_NAMESPACE);
    let name = archive_name(tenant);
    let path = format!("{ARCHIVE_NAMESPACE}/{name}");
    if let Some(cm) = cms.get_opt(&name).await.map_err(Error::Archive)? {
        let digest = cm
            .annotations()
            .get("publicdata.io/inventory-digest")
            .cloned()
            .unwrap_or_default();
        return Ok((path, digest));
    }
    let items = inventory(client, backend, tenant, namespaces).await?;
    let inventory_json = serde_json::to_string_pretty(&items).unwrap_or_default();
    let digest = hex::encode(Sha256::digest(inventory_json.as_bytes()));
    let trail: Vec<String> = audit
        .trail(tenant)
        .map_err(Error::Trail)?
        .iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .collect();
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": {labels::MANAGED_BY: labels::MANAGER, ARCHIVED_TENANT: tenant},
            "annotations": {"publicdata.io/inventory-digest": digest},
        },
        "data": {"inventory.json": inventory_json, "audit-trail.jsonl": trail.join("\n")},
    }))
    .map_err(|e| Error::Archive(kube::Error::SerdeError(e)))?;
    cms.create(&PostParams::default(), &cm)
        .await
        .map_err(Error::Archive)?;
    Ok((path, digest))
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

/// Step 2: OpenBao data destroyed, policies and auth deleted.
pub async fn wipe_openbao(backend: &dyn SecretsBackend, tenant: &str) -> Result<(), Error> {
    backend
        .disable_kubernetes_auth(&vault::auth_mount(tenant))
        .await
        .map_err(Error::Vault)?;
    backend
        .disable_kv2_mount(&vault::mount_path(tenant))
        .await
        .map_err(Error::Vault)?;
    for policy in tenant_policies(tenant) {
        backend.delete_policy(&policy).await.map_err(Error::Vault)?;
    }
    Ok(())
}

/// Step 2b: namespaces deleted; returns true once all are gone (finalized).
pub async fn delete_namespaces(client: &Client, namespaces: &[String]) -> Result<bool, Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut gone = true;
    for ns in namespaces {
        match api
            .get_opt(ns)
            .await
            .map_err(|source| Error::DeleteNamespace {
                name: ns.clone(),
                source,
            })? {
            None => {}
            Some(n) => {
                gone = false;
                if n.metadata.deletion_timestamp.is_none() {
                    api.delete(ns, &Default::default())
                        .await
                        .map_err(|source| Error::DeleteNamespace {
                            name: ns.clone(),
                            source,
                        })?;
                }
            }
        }
    }
    Ok(gone)
}

/// Step 3: retained log volumes, released by their deleted claims, are bound
/// to claims in the archive namespace.
pub async fn rehome_logs(client: &Client, tenant: &str) -> Result<(), Error> {
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
    Ok(())
}

/// Step 4: the exit review. Each line says what was checked and the result;
/// the review passes when no line starts with "LEFT".
pub async fn review(
    client: &Client,
    backend: &dyn SecretsBackend,
    tenant: &str,
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let selector = format!("{}={tenant}", labels::TENANT);
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::List {
            kind: "Namespace",
            namespace: String::new(),
            source,
        })?;
    out.push(if namespaces.items.is_empty() {
        "ok: no namespace of the tenant".to_string()
    } else {
        format!(
            "LEFT: namespaces {:?}",
            namespaces
                .items
                .iter()
                .map(|n| n.name_any())
                .collect::<Vec<_>>()
        )
    });
    let bindings = Api::<RoleBinding>::all(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::List {
            kind: "RoleBinding",
            namespace: String::new(),
            source,
        })?;
    out.push(if bindings.items.is_empty() {
        "ok: no RoleBinding of the tenant".to_string()
    } else {
        format!("LEFT: {} RoleBindings", bindings.items.len())
    });
    let checks = [
        (
            Existing::SecretsMount(&vault::mount_path(tenant)),
            format!("OpenBao KV mount {}", vault::mount_path(tenant)),
        ),
        (
            Existing::AuthMount(&vault::auth_mount(tenant)),
            format!(
                "OpenBao auth mount auth/{} (roles, tokens, leases)",
                vault::auth_mount(tenant)
            ),
        ),
    ];
    for (what, label) in checks {
        let exists = backend.exists(what).await.map_err(Error::Vault)?;
        out.push(if exists {
            format!("LEFT: {label}")
        } else {
            format!("ok: no {label}")
        });
    }
    for name in tenant_policies(tenant) {
        let exists = backend
            .exists(Existing::Policy(&name))
            .await
            .map_err(Error::Vault)?;
        out.push(if exists {
            format!("LEFT: OpenBao policy {name}")
        } else {
            format!("ok: no OpenBao policy {name}")
        });
    }
    Ok(out)
}

/// The certificate, from the archived inventory and what was kept.
pub fn certificate(
    outcome: &str,
    inventory_path: &str,
    inventory_digest: &str,
    inventory_counts: &BTreeMap<String, usize>,
    kept: Vec<KeptItem>,
    review: Vec<String>,
) -> DisposalCertificate {
    let mut kept = kept;
    kept.push(KeptItem {
        what: "inventory and audit trail of the tenant".into(),
        location: format!("ConfigMap {inventory_path}"),
        until: "permanent".into(),
    });
    kept.push(KeptItem {
        what: "the operator's audit log (hash-chained, every record of the tenant)".into(),
        location: "the operator's audit volume".into(),
        until: "permanent".into(),
    });
    kept.push(KeptItem {
        what: "this OperatorAuthorization, in its final phase".into(),
        location: "cluster".into(),
        until: "permanent".into(),
    });
    DisposalCertificate {
        completed_at: jiff::Timestamp::now().to_string(),
        outcome: outcome.into(),
        deleted: inventory_counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect(),
        kept,
        inventory: inventory_path.into(),
        inventory_digest: inventory_digest.into(),
        review,
    }
}

/// Counts by kind from the archived inventory.
pub async fn inventory_counts(
    client: &Client,
    tenant: &str,
) -> Result<BTreeMap<String, usize>, Error> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ARCHIVE_NAMESPACE)
        .get(&archive_name(tenant))
        .await
        .map_err(Error::Archive)?;
    let text = cm
        .data
        .and_then(|d| d.get("inventory.json").cloned())
        .unwrap_or_default();
    let items: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
    let mut counts = BTreeMap::new();
    for item in items {
        *counts
            .entry(item["kind"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    Ok(counts)
}

/// The tenant's namespace names for its listed environments.
pub fn namespaces_of(oa: &OperatorAuthorization) -> Vec<String> {
    let tenant = oa.name_any();
    let mut envs = oa.spec.environments.clone();
    envs.sort();
    envs.dedup();
    envs.into_iter()
        .map(|e| tenant::namespace_name(&tenant, e))
        .collect()
}
