//! Offboarding, in one place: freeze, archive, wipe,
//! review, certify. Every step is idempotent and reads the world as it finds
//! it, so an operator killed at any point resumes and converges; nothing is
//! reported done before the exit review passed. The steps themselves are in
//! [`steps`]; this module orders them and reports each.

mod archive;
mod wipe;

pub use archive::*;
pub use wipe::*;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use crate::api::authorization::{
    DisposalCertificate, Environment, OperatorAuthorizationStatus, Phase, RecordsArchive, State,
};
use crate::api::condition::{Desired, reasons, types};
use crate::context::{Context, FIELD_MANAGER};
use crate::controllers::authorization::Error as ReconcileError;
use crate::controllers::authorization::act::freeze_domain;
use crate::controllers::authorization::decide::Ownership;
use crate::controllers::authorization::decide::integrity::actions;
use crate::controllers::authorization::observe::Observed;
use crate::controllers::authorization::report::{
    Actor, Note, Record, publish, record, record_once, state_reason, trail_of, write_status,
};
use crate::failpoint;
use crate::oplog;
use crate::records;
use crate::vault;

/// Where offboarded tenants' archives and log volumes live.
pub const ARCHIVE_NAMESPACE: &str = "publicdata-archive";
/// Label marking a tenant's log volumes (kept on offboarding).
pub const DATA_CLASS: &str = "publicdata.io/data-class";
/// Annotation: keep at least until (YYYY-MM-DD).
pub const RETAIN_UNTIL: &str = "publicdata.io/retain-until";
/// Label on an archived log volume: the tenant it came from.
pub const ARCHIVED_TENANT: &str = "publicdata.io/archived-tenant";
/// Label on an archive's ConfigMaps: the uid of the authorization it records.
pub const ARCHIVED_UID: &str = "publicdata.io/archived-uid";
/// Annotation on an archive's index: the inventory's SHA-256.
pub const INVENTORY_DIGEST: &str = "publicdata.io/inventory-digest";
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
    #[error("key records: {0}")]
    Records(#[source] crate::records::Error),
    #[error("{0}")]
    Database(#[source] crate::database::Error),
}

/// Runs the offboarding of an authorization ending as `then`, from wherever
/// an earlier run stopped.
pub async fn run(ctx: &Context, o: &Observed, then: Phase) -> Result<Action, ReconcileError> {
    let oa = &o.oa;
    let status = &o.status;
    let tenant = oa.name_any();
    let why = match (then, &o.exit) {
        (Phase::Expired, _) => format!("validity ended on {}", oa.spec.validity.not_after),
        (Phase::Terminated, Some(exit)) if oa.spec.state != State::Terminated => format!(
            "early exit {} accepted under decision {}, effective {}",
            exit.request, exit.decision, exit.effective_date
        ),
        _ => state_reason(oa),
    };
    let outcome = then.as_str();
    let uid = oa.uid().unwrap_or_default();
    let owner = crate::naming::owner_mark(&tenant, &oa.spec.unit.credit_code);
    // Only this authorization's own namespaces: one someone else made under
    // the same name is never inventoried nor deleted.
    let namespaces: Vec<String> = o
        .namespaces
        .iter()
        .filter(|(_, own)| !matches!(own, Ownership::Taken(_)))
        .map(|(n, _)| n.clone())
        .collect();
    // Each step's status starts from `status`, which carries what earlier
    // steps of this pass wrote (the records' place, once archived).
    let set_step = |status: &OperatorAuthorizationStatus, name: &'static str| {
        let conditions = vec![
            Desired::new(
                types::READY,
                false,
                reasons::ENDED,
                format!("{outcome}: {why}; offboarding: {name}"),
            ),
            Desired::new(types::DEGRADED, false, reasons::AS_EXPECTED, name),
        ];
        let status = status.clone();
        async move {
            write_status(ctx, oa, &status, Phase::Offboarding, conditions, |s| {
                s.offboarding = Some(name.to_string());
                s.early_exit = o.exit.clone();
            })
            .await
        }
    };

    record_once(
        ctx,
        oa,
        actions::OFFBOARDING_STARTED,
        format!("{outcome}: {why}"),
        "Started",
    )
    .await?;
    failpoint::hit("offboard:start");

    // 1. Freeze.
    let (_, incomplete) = freeze_domain(ctx, o).await?;
    if let Some(e) = incomplete {
        let conditions = vec![
            Desired::new(
                types::READY,
                false,
                reasons::ENDED,
                format!("{outcome}: offboarding waits for the freeze to complete"),
            ),
            Desired::new(
                types::DEGRADED,
                true,
                reasons::FREEZE_INCOMPLETE,
                format!("retrying: {e}"),
            ),
        ];
        write_status(ctx, oa, status, Phase::Offboarding, conditions, |_| {}).await?;
        return Err(e);
    }
    set_step(status, "Frozen").await?;
    failpoint::hit("offboard:frozen");

    // 2. Archive (inventory with digests, audit trail, key records locked in
    // the records store), retain log volumes. Nothing is wiped before the
    // key records are written and read back.
    let Some(store) = ctx.records.as_deref() else {
        let message = "no records store is configured (chart value records.s3): the key \
                       records would have nowhere to go, so nothing is wiped yet";
        let conditions = vec![
            Desired::new(
                types::READY,
                false,
                reasons::ENDED,
                format!("{outcome}: offboarding waits for a records store"),
            ),
            Desired::new(types::DEGRADED, true, "RecordsStoreMissing", message),
        ];
        write_status(ctx, oa, status, Phase::Offboarding, conditions, |_| {}).await?;
        return Ok(Action::requeue(std::time::Duration::from_secs(300)));
    };
    let trail = trail_of(ctx, oa).await?;
    let (inventory, digest, archived) = archive(
        &ctx.client,
        ctx.vault.as_ref(),
        store,
        oa,
        &trail,
        &namespaces,
        FIELD_MANAGER,
        o.now,
    )
    .await
    .map_err(ReconcileError::Offboard)?;
    record_once(
        ctx,
        oa,
        "RecordsArchived",
        format!(
            "key records at {}: manifest sha256 {}, {} object(s), locked {} until {}",
            archived.location,
            archived.digest,
            archived.manifest.objects.len(),
            archived.manifest.mode,
            archived.manifest.retain_until
        ),
        "Success",
    )
    .await?;
    let kept = retain_logs(&ctx.client, &tenant, &namespaces, o.today)
        .await
        .map_err(ReconcileError::Offboard)?;
    record_once(
        ctx,
        oa,
        "DomainArchived",
        format!(
            "inventory {inventory} (sha256 {digest}); {} log volume(s) retained",
            kept.len()
        ),
        "Success",
    )
    .await?;
    // From here on every status carries where the records are.
    let mut archived_status = status.clone();
    archived_status.records = Some(RecordsArchive {
        location: archived.location.clone(),
        manifest_digest: archived.digest.clone(),
        mode: archived.manifest.mode.clone(),
        retain_until: archived.manifest.retain_until.clone(),
        certificate_digest: status
            .records
            .as_ref()
            .and_then(|r| r.certificate_digest.clone()),
        verified: false,
    });
    let status = &archived_status;
    set_step(status, "Archived").await?;
    failpoint::hit("offboard:archived");

    // 3. Wipe: OpenBao, then the namespaces (until the controller manager has finalized them).
    let untouched = wipe_openbao(
        ctx.vault.as_ref(),
        ctx.settings.data_plane.as_ref(),
        &ctx.settings.workloads,
        &tenant,
        &owner,
    )
    .await
    .map_err(ReconcileError::Offboard)?;
    failpoint::hit("offboard:openbao-wiped");
    if let Some(plane) = &ctx.database {
        for env in [Environment::Dev, Environment::Prod] {
            let role = crate::database::tenant_role(&tenant, env);
            let dropped = async {
                // Whatever an earlier version granted it in the other
                // database first: a role holding grants cannot be dropped.
                plane.not_of(env).forget(&role).await?;
                plane.of(env).drop_role(&role, &tenant).await
            };
            dropped
                .await
                .map_err(|e| ReconcileError::Offboard(Error::Database(e)))?;
        }
    }
    let gone = delete_namespaces(&ctx.client, &tenant, &oa.spec.unit.credit_code, &namespaces)
        .await
        .map_err(ReconcileError::Offboard)?;
    if !gone {
        set_step(status, "Wiping").await?;
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }
    failpoint::hit("offboard:namespaces-gone");
    // Volumes with reclaim policy Delete go after their claims: wait for the
    // provisioner, so the review judges the end state, not a deletion under way.
    let deleting: Vec<String> = volumes_of(&ctx.client, &namespaces)
        .await
        .map_err(ReconcileError::Offboard)?
        .into_iter()
        .filter(|(_, policy)| policy == "Delete")
        .map(|(name, _)| name)
        .collect();
    if !deleting.is_empty() {
        set_step(status, "Wiping").await?;
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }
    let rehomed = rehome_logs(&ctx.client, &tenant)
        .await
        .map_err(ReconcileError::Offboard)?;
    if !rehomed {
        set_step(status, "Wiping").await?;
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }

    // 4. Exit review.
    let trail = trail_of(ctx, oa).await?;
    let mut review = review(
        &ctx.client,
        ctx.vault.as_ref(),
        ctx.database.as_deref(),
        ctx.settings.data_plane.as_ref(),
        &ctx.settings.workloads,
        &trail,
        &tenant,
        &owner,
        &namespaces,
    )
    .await
    .map_err(ReconcileError::Offboard)?;
    let left: Vec<&str> = review
        .iter()
        .filter(|l| l.starts_with("LEFT"))
        .map(String::as_str)
        .collect();
    if !left.is_empty() {
        let message = format!("exit review: {}", left.join("; "));
        let conditions = vec![
            Desired::new(
                types::READY,
                false,
                reasons::ENDED,
                format!("{outcome}: offboarding incomplete"),
            ),
            Desired::new(types::DEGRADED, true, "ExitReviewFailed", message.clone()),
        ];
        let first = !status.conditions.iter().any(|c| {
            c.type_ == types::DEGRADED && c.reason == "ExitReviewFailed" && c.message == message
        });
        if first {
            record(
                ctx,
                oa,
                Record::new(
                    "ExitReviewFailed",
                    message.clone(),
                    "Stopped: no certificate until it is dealt with",
                    Actor::State,
                ),
            )
            .await?;
        }
        // the offboarding stops in a state that names it, and goes on
        // by itself once what is left is dealt with.
        write_status(ctx, oa, status, Phase::Offboarding, conditions, |s| {
            s.offboarding = Some("ExitReviewFailed".into());
        })
        .await?;
        if first {
            publish(
                ctx,
                oa,
                &Note::warning(
                    "ExitReviewFailed",
                    "Offboard",
                    format!("{message}; offboarding waits until it is dealt with"),
                ),
            )
            .await;
        }
        return Err(ReconcileError::ReviewFailed(message));
    }

    // 5. The certificate: in the status and in the audit log.
    review.extend(
        untouched
            .iter()
            .map(|what| format!("ok: {what} is not this authorization's: untouched")),
    );
    for (ns, own) in &o.namespaces {
        if let Ownership::Taken(_) = own {
            review.push(format!(
                "ok: namespace {ns} is not this authorization's: untouched"
            ));
        }
    }
    let counts = inventory_counts(&ctx.client, &tenant, &uid)
        .await
        .map_err(ReconcileError::Offboard)?;
    // The certificate joins the key records, locked like them. One archived
    // before a restart is the certificate: it is never written twice.
    let certificate_key = format!("{}certificate.json", records::prefix(&tenant, &uid));
    let certificate = match store
        .get(&certificate_key)
        .await
        .map_err(|e| ReconcileError::Offboard(Error::Records(e)))?
        .and_then(|stored| serde_json::from_slice::<DisposalCertificate>(&stored.bytes).ok())
    {
        Some(archived) => archived,
        None => {
            // The operation logs taken in for the tenant, as
            // they are in the store now, locked like the key records.
            let mut kept = kept;
            kept.extend(
                oplog::kept(
                    store,
                    &tenant,
                    &uid,
                    archived.manifest.retain_until.get(..10).unwrap_or_default(),
                )
                .await
                .map_err(|e| ReconcileError::Offboard(Error::Records(e)))?,
            );
            certificate(outcome, &inventory, &digest, &counts, kept, review)
        }
    };
    let certificate_json = serde_json::to_string(&certificate).unwrap_or_default();
    let until = archived
        .manifest
        .retain_until
        .parse()
        .unwrap_or(jiff::Timestamp::MAX);
    let certificate_digest =
        records::put_verified(store, &certificate_key, certificate_json.as_bytes(), until)
            .await
            .and(records::verify(store, &tenant, &uid).await.map(|_| ()))
            .map(|()| {
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                    certificate_json.as_bytes(),
                ))
            })
            .map_err(|e| ReconcileError::Offboard(Error::Records(e)))?;
    record_once(
        ctx,
        oa,
        actions::DOMAIN_DISPOSED,
        format!(
            "disposal certificate sha256 {}: {certificate_json}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                certificate_json.as_bytes()
            ))
        ),
        "Success",
    )
    .await?;
    let conditions = vec![
        Desired::new(
            types::READY,
            false,
            reasons::ENDED,
            format!("{outcome}: {why}; domain disposed, record kept"),
        ),
        Desired::new(types::DEGRADED, false, reasons::AS_EXPECTED, "offboarded"),
    ];
    write_status(ctx, oa, status, then, conditions, |s| {
        s.offboarding = Some("Done".into());
        s.disposal = Some(certificate.clone());
        if let Some(r) = s.records.as_mut() {
            r.certificate_digest = Some(certificate_digest.clone());
            r.verified = true;
        }
        s.namespaces = Vec::new();
        s.members = Vec::new();
    })
    .await?;
    publish(
        ctx,
        oa,
        &Note::normal(
            "Disposed",
            "Offboard",
            format!("{outcome}: domain wiped, logs kept; certificate in status.disposal"),
        ),
    )
    .await;
    Ok(Action::await_change())
}
