//! Offboarding's irreversible part and its check: OpenBao and the
//! namespaces wiped (only what carries this authorization's mark), the exit
//! review, the certificate.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::*;
use crate::api::authorization::{DisposalCertificate, Environment, KeptItem};
use crate::api::labels;
use crate::vault::{self, Existing, SecretsBackend};

/// Step 2: OpenBao data destroyed, identities, roles and leases gone: only
/// what carries this authorization's mark (`owner`); a mount, identity or
/// policy someone else made under the same name is left alone and named in
/// the returned lines. What the operator made before the platform's shared
/// workload mount (the tenant's own auth mount, KV mount and policies) goes
/// the same way if it is still there.
pub async fn wipe_openbao(
    backend: &dyn SecretsBackend,
    data_plane: Option<&vault::DataPlane>,
    workloads: &vault::Workloads,
    tenant: &str,
    owner: &str,
) -> Result<Vec<String>, Error> {
    let mut untouched = Vec::new();
    let mut mine = |result: Result<vault::Change, vault::Error>| match result {
        Ok(_) => Ok(()),
        Err(vault::Error::NotOurs { what, .. }) => {
            untouched.push(what);
            Ok(())
        }
        Err(e) => Err(Error::Vault(e)),
    };
    backend
        .disable_kubernetes_auth(&vault::legacy_auth_mount(tenant))
        .await
        .map_err(Error::Vault)?;
    for env in [Environment::Dev, Environment::Prod] {
        // The identity first: its tokens are refused for good.
        mine(
            backend
                .delete_identity(&vault::identity_name(tenant, env), owner)
                .await,
        )?;
        backend
            .delete_kubernetes_role(&workloads.auth_mount, &vault::workload_role(tenant, env))
            .await
            .map_err(Error::Vault)?;
        if let Some(plane) = data_plane {
            let role = crate::database::tenant_role(tenant, env);
            backend
                .revoke_leases(&format!("{}/creds/{role}", plane.mount))
                .await
                .map_err(Error::Vault)?;
            // No new users; those made are gone with their leases above.
            mine(
                backend
                    .delete_database_role(&plane.mount, &role, owner)
                    .await,
            )?;
        }
        mine(
            backend
                .disable_kv2_mount(&vault::area_mount(tenant, env), owner)
                .await,
        )?;
    }
    mine(
        backend
            .disable_kv2_mount(&vault::legacy_mount_path(tenant), owner)
            .await,
    )?;
    for policy in crate::naming::legacy_policies(tenant) {
        mine(backend.delete_policy(&policy, owner).await)?;
    }
    Ok(untouched)
}

/// Step 2b: this authorization's namespaces deleted, each after its mark was
/// checked again; returns true once all are gone (finalized).
pub async fn delete_namespaces(
    client: &Client,
    tenant: &str,
    credit_code: &str,
    namespaces: &[String],
) -> Result<bool, Error> {
    use crate::controllers::authorization::decide::{Ownership, ownership};
    let api: Api<Namespace> = Api::all(client.clone());
    let mut gone = true;
    for ns in namespaces {
        let err = |source| Error::DeleteNamespace {
            name: ns.clone(),
            source,
        };
        let found = api.get_opt(ns).await.map_err(err)?;
        match ownership(found.as_ref(), tenant, credit_code) {
            Ownership::Absent | Ownership::Taken(_) => {}
            Ownership::Terminating => gone = false,
            Ownership::Ours | Ownership::Orphaned { .. } => {
                gone = false;
                api.delete(ns, &Default::default()).await.map_err(err)?;
            }
        }
    }
    Ok(gone)
}

/// The PersistentVolumes that were bound to claims of the tenant's
/// namespaces, except the log volumes the archive keeps, with their reclaim
/// policy: `Delete` ones are on their way out, any other outlives the tenant.
pub async fn volumes_of(
    client: &Client,
    namespaces: &[String],
) -> Result<Vec<(String, String)>, Error> {
    let all = Api::<PersistentVolume>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::List {
            kind: "PersistentVolume",
            namespace: String::new(),
            source,
        })?;
    Ok(all
        .items
        .iter()
        .filter(|pv| !pv.labels().contains_key(ARCHIVED_TENANT))
        .filter_map(|pv| {
            let spec = pv.spec.as_ref()?;
            let claim_ns = spec.claim_ref.as_ref()?.namespace.as_deref()?;
            namespaces.iter().any(|n| n == claim_ns).then(|| {
                (
                    pv.name_any(),
                    spec.persistent_volume_reclaim_policy
                        .clone()
                        .unwrap_or_else(|| "Retain".into()),
                )
            })
        })
        .collect())
}

/// Step 4: the exit review. Each line says what was checked and the result;
/// the review passes when no line starts with "LEFT". Every question is
/// answered from the API server and OpenBao as they are; an answer that is
/// not a clear yes or no (a 403, say) fails the review loudly.
#[allow(clippy::too_many_arguments)]
pub async fn review(
    client: &Client,
    backend: &dyn SecretsBackend,
    database: Option<&crate::database::Plane>,
    data_plane: Option<&vault::DataPlane>,
    workloads: &vault::Workloads,
    audit: &[crate::audit::Record],
    tenant: &str,
    owner: &str,
    namespaces: &[String],
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let list_err = |kind: &'static str| {
        move |source| Error::List {
            kind,
            namespace: String::new(),
            source,
        }
    };
    let selector = format!("{}={tenant}", labels::TENANT);
    let left_namespaces: Vec<String> = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(list_err("Namespace"))?
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    out.push(if left_namespaces.is_empty() {
        "ok: no namespace of the tenant".to_string()
    } else {
        format!("LEFT: namespaces {left_namespaces:?}")
    });
    let bindings = Api::<RoleBinding>::all(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(list_err("RoleBinding"))?;
    out.push(if bindings.items.is_empty() {
        "ok: no RoleBinding of the tenant".to_string()
    } else {
        format!("LEFT: {} RoleBindings", bindings.items.len())
    });
    // Volumes outlive their namespace when their reclaim policy is Retain:
    // only the log volumes the archive kept may remain.
    let volumes: Vec<String> = volumes_of(client, namespaces)
        .await?
        .into_iter()
        .map(|(name, policy)| format!("{name} ({policy})"))
        .collect();
    out.push(if volumes.is_empty() {
        "ok: no PersistentVolume of the tenant's claims, but the archived log volumes".to_string()
    } else {
        format!("LEFT: PersistentVolumes {volumes:?} still hold the tenant's data")
    });
    let mut checks: Vec<(Existing<'_>, String)> = Vec::new();
    let areas: Vec<String> = [Environment::Dev, Environment::Prod]
        .into_iter()
        .map(|e| vault::area_mount(tenant, e))
        .chain([vault::legacy_mount_path(tenant)])
        .collect();
    let identities: Vec<String> = [Environment::Dev, Environment::Prod]
        .into_iter()
        .map(|e| vault::identity_name(tenant, e))
        .collect();
    let roles: Vec<String> = [Environment::Dev, Environment::Prod]
        .into_iter()
        .map(|e| vault::workload_role(tenant, e))
        .collect();
    let legacy_auth = vault::legacy_auth_mount(tenant);
    let legacy_policies = crate::naming::legacy_policies(tenant);
    for area in &areas {
        checks.push((
            Existing::SecretsMount(area),
            format!("OpenBao KV mount {area}"),
        ));
    }
    for name in &identities {
        checks.push((
            Existing::Identity(name),
            format!("OpenBao identity {name} (its tokens)"),
        ));
    }
    for name in &roles {
        checks.push((
            Existing::Role(&workloads.auth_mount, name),
            format!("OpenBao role auth/{}/role/{name}", workloads.auth_mount),
        ));
    }
    checks.push((
        Existing::AuthMount(&legacy_auth),
        format!("OpenBao auth mount auth/{legacy_auth} (roles, tokens, leases)"),
    ));
    for name in &legacy_policies {
        checks.push((Existing::Policy(name), format!("OpenBao policy {name}")));
    }
    for (what, label) in checks {
        out.push(openbao_line(backend, what, &label, owner).await?);
    }
    if let Some(plane) = data_plane {
        for env in [Environment::Dev, Environment::Prod] {
            let name = crate::database::tenant_role(tenant, env);
            let label = format!("OpenBao database role {}/roles/{name}", plane.mount);
            out.push(
                openbao_line(
                    backend,
                    Existing::DatabaseRole(&plane.mount, &name),
                    &label,
                    owner,
                )
                .await?,
            );
        }
    }
    if let Some(db) = database {
        let (roles, sessions) = db.left_of(tenant).await.map_err(Error::Database)?;
        out.push(if roles.is_empty() && sessions == 0 {
            "ok: no PostgreSQL role or session of the tenant".to_string()
        } else {
            format!("LEFT: PostgreSQL roles {roles:?} with {sessions} sessions")
        });
    }
    out.push(deliveries_line(backend, audit, tenant).await?);
    Ok(out)
}

/// One OpenBao line of the review: absent, left (ours), or someone else's.
async fn openbao_line(
    backend: &dyn SecretsBackend,
    what: Existing<'_>,
    label: &str,
    owner: &str,
) -> Result<String, Error> {
    let found = backend.find(what).await.map_err(Error::Vault)?;
    Ok(match found {
        None => format!("ok: no {label}"),
        // Auth mounts and roles carry no owner mark: k8s-<tenant> and the
        // workload role <namespace> are the operator's.
        Some(_) if matches!(what, Existing::AuthMount(_) | Existing::Role(..)) => {
            format!("LEFT: {label}")
        }
        Some(mark) if matches!(what, Existing::DatabaseRole(..)) => {
            if vault::database_role_ours(&mark, owner) {
                format!("LEFT: {label}")
            } else {
                format!("ok: {label} exists but is not this authorization's: untouched")
            }
        }
        Some(mark) if vault::marked_by(&mark, owner) => format!("LEFT: {label}"),
        Some(_) => format!("ok: {label} exists but is not this authorization's: untouched"),
    })
}

/// The tenant's deliveries: every product that left must be an approved
/// export on record (R-24). They stay with their recipients.
async fn deliveries_line(
    backend: &dyn SecretsBackend,
    audit: &[crate::audit::Record],
    tenant: &str,
) -> Result<String, Error> {
    use crate::controllers::export::DELIVERY_MOUNT;
    let mine: Vec<String> = backend
        .inventory_kv2(DELIVERY_MOUNT)
        .await
        .map_err(Error::Vault)?
        .into_iter()
        .map(|(path, _)| path)
        // deliveries/<recipient>/<tenant>/<export>
        .filter(|p| p.split('/').nth(2) == Some(tenant))
        .collect();
    let unrecorded: Vec<&String> = mine
        .iter()
        .filter(|p| {
            !audit.iter().any(|r| {
                r.entry.action == "ExportDelivered" && r.entry.reason.starts_with(p.as_str())
            })
        })
        .collect();
    Ok(if unrecorded.is_empty() {
        format!(
            "ok: {} deliveries, each an approved export on record, kept for their recipients",
            mine.len()
        )
    } else {
        format!("LEFT: deliveries without an approved export on record: {unrecorded:?}")
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::owner_mark;
    use crate::vault::memory::Memory;
    use crate::vault::{self, SecretsBackend};

    const TENANT: &str = "acme";

    fn owner() -> String {
        owner_mark(TENANT, "91310000MA1K4CM92X")
    }

    async fn provisioned() -> Memory {
        let backend = Memory::default();
        let desired = vault::build(
            TENANT,
            &owner(),
            &[crate::api::authorization::Environment::Dev],
            &vault::Workloads::default(),
        );
        vault::apply(&backend, &desired).await.unwrap();
        backend
    }

    #[tokio::test]
    async fn the_wipe_removes_what_carries_the_mark_and_nothing_else() {
        let backend = provisioned().await;
        // Someone else's policy under one of the tenant's old names, and the
        // operator's own from before the platform's templated policies.
        backend.with_state(|s| {
            s.policies.insert(
                "tenant-acme-prod-grants".into(),
                "# the finance team's policy".into(),
            );
            s.policies.insert(
                "tenant-acme-dev".into(),
                format!("# {}: environment dev.", owner()),
            );
            s.auth.insert("k8s-acme".into());
        });
        let plane = vault::DataPlane {
            mount: "database".into(),
            connection: "platform".into(),
            sample_connection: "platform-sample".into(),
        };
        let untouched = wipe_openbao(
            &backend,
            Some(&plane),
            &vault::Workloads::default(),
            TENANT,
            &owner(),
        )
        .await
        .unwrap();
        assert_eq!(untouched, ["policy tenant-acme-prod-grants"]);
        let policy = |name: &str| backend.with_state(|s| s.policies.contains_key(name));
        assert!(!policy("tenant-acme-dev"));
        assert!(
            policy("tenant-acme-prod-grants"),
            "someone else's policy stays"
        );
        backend.with_state(|s| {
            assert!(s.mounts.is_empty() && s.auth.is_empty());
            assert!(s.identities.is_empty() && s.roles.is_empty());
            assert_eq!(
                s.revoked,
                ["database/creds/acme-dev", "database/creds/acme-prod"]
            );
        });
    }

    #[tokio::test]
    async fn a_mount_made_for_another_unit_is_neither_adopted_nor_wiped() {
        let other = owner_mark(TENANT, "91110000802100433B");
        let backend = Memory::default();
        backend
            .ensure_kv2_mount("areas/acme-dev", &other)
            .await
            .unwrap();
        let desired = vault::build(
            TENANT,
            &owner(),
            &[crate::api::authorization::Environment::Dev],
            &vault::Workloads::default(),
        );
        let refused = vault::apply(&backend, &desired).await.unwrap_err();
        assert!(matches!(refused, vault::Error::NotOurs { .. }), "{refused}");
        let untouched = wipe_openbao(
            &backend,
            None,
            &vault::Workloads::default(),
            TENANT,
            &owner(),
        )
        .await
        .unwrap();
        assert_eq!(untouched, ["mount areas/acme-dev"]);
        let line = openbao_line(
            &backend,
            Existing::SecretsMount("areas/acme-dev"),
            "KV mount areas/acme-dev",
            &owner(),
        )
        .await
        .unwrap();
        assert!(
            line.starts_with("ok: KV mount areas/acme-dev exists but is not this authorization's"),
            "{line}"
        );
    }

    #[tokio::test]
    async fn the_review_names_what_is_left_and_what_is_gone() {
        let backend = provisioned().await;
        let identity = Existing::Identity("publicdata-acme-dev");
        let role = Existing::Role("publicdata-workloads", "acme-dev");
        for what in [identity, role] {
            let left = openbao_line(&backend, what, "it", &owner()).await.unwrap();
            assert_eq!(left, "LEFT: it");
        }
        wipe_openbao(
            &backend,
            None,
            &vault::Workloads::default(),
            TENANT,
            &owner(),
        )
        .await
        .unwrap();
        for what in [identity, role] {
            let gone = openbao_line(&backend, what, "it", &owner()).await.unwrap();
            assert_eq!(gone, "ok: no it");
        }
    }

    #[tokio::test]
    async fn every_delivery_must_be_an_approved_export_on_record() {
        let backend = Memory::default();
        let data = std::collections::BTreeMap::from([("artifact".to_string(), "x".to_string())]);
        for path in [
            "91310000MA1K4CM92X/acme/report",
            "91310000MA1K4CM92X/other/report",
        ] {
            backend
                .write_kv2_once("o", crate::controllers::export::DELIVERY_MOUNT, path, &data)
                .await
                .unwrap();
        }
        let none = deliveries_line(&backend, &[], TENANT).await.unwrap();
        assert!(
            none.starts_with("LEFT: deliveries without an approved export on record"),
            "{none}"
        );
        assert!(
            none.contains("acme/report") && !none.contains("other/report"),
            "{none}"
        );
        let record = crate::audit::Record {
            seq: 1,
            time: String::new(),
            entry: crate::audit::Entry {
                tenant: TENANT.into(),
                object: "ExportRequest/acme-dev/report".into(),
                action: "ExportDelivered".into(),
                reason: "deliveries/91310000MA1K4CM92X/acme/report, digest d, to X".into(),
                outcome: "Success".into(),
                actor: None,
                uid: None,
                delivery: None,
            },
            prev: String::new(),
            hash: String::new(),
        };
        let ok = deliveries_line(&backend, &[record], TENANT).await.unwrap();
        assert!(ok.starts_with("ok: 1 deliveries"), "{ok}");
    }
}
