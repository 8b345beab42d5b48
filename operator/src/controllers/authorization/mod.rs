//! The OperatorAuthorization reconciler, as a pipeline:
//!
//! ```text
//! observe (read) -> decide (pure) -> act (apply, OpenBao) -> report (audit, status, events)
//! ```
//!
//! [`observe`] reads the authorization and whose its namespaces are;
//! [`decide`] turns that into a step and, after acting, into conditions,
//! audit records and events, without I/O (unit-tested); [`act`] applies the
//! tenant's objects and OpenBao; [`report`] writes the audit records first,
//! then the status (only when it changed), then events. Offboarding is
//! orchestrated in [`crate::controllers::offboard`].

pub mod act;
pub mod decide;
pub mod lane;
pub mod observe;
pub mod report;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use jiff::civil::Date;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{info, instrument, warn};

use crate::api::authorization::{Environment, OperatorAuthorization, Phase};
use crate::api::condition::{Desired, reasons, types};
use crate::api::labels;
use crate::audit;
use crate::controllers::applied::{self, Kind, Seen};
use crate::controllers::{offboard, tenant};
use crate::lifecycle::Freeze;
use crate::vault;
use decide::{Step, ready_reason_is};
use report::{Actor, Note, Record, publish, publish_all, record, record_all, write_status};

use crate::context::Context;

/// The finalizer that lets the operator orphan (never wipe) a domain whose
/// authorization is deleted before it was offboarded.
pub const FINALIZER: &str = "publicdata.io/domain-protection";
/// The longest retry delay after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Errors of the reconciler, named after the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("configuring OpenBao: {0}")]
    Vault(#[source] vault::Error),
    #[error("{0}")]
    Database(#[source] crate::database::Error),
    #[error("writing status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("marking the domain orphaned: {0}")]
    MarkOrphaned(#[source] kube::Error),
    #[error("offboarding: {0}")]
    Offboard(#[source] offboard::Error),
    #[error("exit review found leftovers: {0}")]
    ReviewFailed(String),
    #[error("writing the audit log: {0}")]
    Audit(#[source] audit::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// A low-cardinality label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Apply { .. } => "apply",
            Self::Vault(e) => e.label(),
            Self::Database(e) => e.label(),
            Self::WriteStatus(_) => "write_status",
            Self::MarkOrphaned(_) => "mark_orphaned",
            Self::Audit(_) => "audit",
            Self::Offboard(_) => "offboard",
            Self::ReviewFailed(_) => "review_failed",
            Self::Finalizer(_) => "finalizer",
        }
    }
}

/// Reconciles one authorization.
#[instrument(skip_all, fields(authorization = %oa.name_any()))]
pub async fn reconcile(oa: Arc<OperatorAuthorization>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = oa.name_any();
    // The queue and the freeze lane never work on one authorization at once.
    let lock = ctx.locks.of(&name);
    let _held = lock.lock().await;
    let started = Instant::now();
    let api: Api<OperatorAuthorization> = Api::all(ctx.client.clone());
    // The cache can lag behind this operator's own last status write; acting
    // on a stale status could redo a finished step or record it twice, so
    // every reconcile starts from the object as the API server has it now.
    let oa = match api.get_opt(&name).await {
        Ok(Some(fresh)) => Arc::new(fresh),
        Ok(None) => {
            ctx.locks.forget(&name);
            return Ok(Action::await_change());
        }
        Err(source) => {
            return Err(Error::Apply {
                kind: "OperatorAuthorization",
                name,
                source,
            });
        }
    };
    // The finalizer goes on in the same pass as the first provisioning (one
    // reconcile for a new tenant, not two): a merge patch that only applies
    // to the version just read.
    let oa = if oa.metadata.deletion_timestamp.is_none()
        && !oa.finalizers().iter().any(|f| f == FINALIZER)
    {
        let mut finalizers = oa.finalizers().to_vec();
        finalizers.push(FINALIZER.into());
        let patch = json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": oa.resource_version(),
        }});
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(patched) => Arc::new(patched),
            Err(source) => {
                return Err(Error::Apply {
                    kind: "OperatorAuthorization",
                    name,
                    source,
                });
            }
        }
    } else {
        oa
    };
    let result = finalizer(&api, FINALIZER, oa, |event| async {
        match event {
            Finalizer::Apply(oa) => apply(&oa, &ctx).await,
            Finalizer::Cleanup(oa) => orphan(&oa, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(Box::new(other)),
    });
    ctx.metrics
        .observe(started.elapsed(), result.as_ref().err().map(Error::label));
    if result.is_ok() {
        let mut map = ctx
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.remove(&name);
    }
    result
}

/// observe -> decide -> act -> report.
async fn apply(oa: &OperatorAuthorization, ctx: &Context) -> Result<Action, Error> {
    let mut o = observe::observe(ctx, oa).await?;
    if !o.forged.is_empty() {
        report::repair_forged(ctx, oa, &mut o.status, &o.forged).await?;
    }
    let plan = decide::plan(&o, ctx.settings.expiry_grace);
    let status = &o.status;
    // R-6, R-19: a renewal due, filed or decided, the end near; a report due
    // soon or late, a rectification, a failed evaluation: said once, to the
    // unit (an event) and in the audit trail.
    for c in plan.announce.iter().filter(|_| plan.step != Step::Done) {
        record(
            ctx,
            oa,
            Record::new(
                c.type_,
                c.message.clone(),
                c.reason.to_string(),
                Actor::Spec,
            ),
        )
        .await?;
        let note = if c.ok && c.type_ == types::ANNUAL_EVALUATION {
            Note::normal(c.reason, "Evaluate", c.message.clone())
        } else {
            Note::warning(c.reason, "Remind", c.message.clone())
        };
        publish(ctx, oa, &note).await;
    }
    // Nothing widens access, and nothing is wiped, while the audit log cannot
    // take records; a freeze (below, and before an offboarding) never waits.
    if let (Step::Provision | Step::Offboard { .. }, Err(problem)) =
        (&plan.step, ctx.audit.health())
    {
        return wait_for_audit_log(ctx, &o, plan, problem).await;
    }
    match plan.step {
        Step::Done => Ok(Action::await_change()),
        Step::Refuse(refusal) => {
            let mut conditions = plan.conditions;
            conditions.push(Desired::new(
                types::READY,
                false,
                refusal.reason,
                refusal.message.clone(),
            ));
            let first = !ready_reason_is(status, refusal.reason);
            if first {
                record(
                    ctx,
                    oa,
                    Record::new(
                        refusal.record,
                        refusal.message.clone(),
                        format!("Refused: {}", refusal.reason),
                        Actor::Spec,
                    ),
                )
                .await?;
            }
            let phase = status.phase.unwrap_or(Phase::Pending);
            write_status(ctx, oa, status, phase, conditions, |_| {}).await?;
            if first {
                publish(
                    ctx,
                    oa,
                    &Note::warning(refusal.reason, "Validate", refusal.message),
                )
                .await;
            }
            Ok(Action::requeue(ctx.settings.resync))
        }
        Step::Wait => {
            let mut conditions = plan.conditions;
            conditions.push(Desired::new(
                types::READY,
                false,
                reasons::NOT_STARTED,
                format!(
                    "the authorization is in force from {}",
                    oa.spec.validity.not_before
                ),
            ));
            write_status(ctx, oa, status, plan.phase, conditions, |_| {}).await?;
            Ok(requeue_until(
                plan.next_change,
                o.today,
                ctx.settings.resync,
            ))
        }
        Step::Provision => {
            let (done, failure) = act::provision(ctx, &o).await?;
            let (phase, out) = decide::provisioned(oa, status, &report::state_reason(oa), &done);
            record_all(ctx, oa, out.records).await?;
            let conditions = plan.conditions.into_iter().chain(out.conditions).collect();
            write_status(ctx, oa, status, phase, conditions, |s| {
                s.namespaces = done.namespaces.clone();
                s.members = done.members.clone();
                s.vault = done.vault.clone().ok();
                s.expired_at = None;
                s.offboard_after = None;
            })
            .await?;
            publish_all(ctx, oa, &out.notes).await;
            if let Some(e) = failure {
                return Err(e);
            }
            let member_change = tenant::next_eligibility_change(
                &oa.spec.members,
                o.today,
                ctx.settings.platform.training_valid_days,
            );
            let next = [plan.next_change, member_change]
                .into_iter()
                .flatten()
                .min();
            Ok(requeue_until(next, o.today, ctx.settings.resync))
        }
        Step::Freeze(cause) => {
            let (done, incomplete) = act::freeze_domain(ctx, &o).await?;
            let out = decide::frozen(status, cause, &report::state_reason(oa), &done);
            record_all(ctx, oa, out.records).await?;
            let conditions = plan.conditions.into_iter().chain(out.conditions).collect();
            let offboard_at = match cause {
                Freeze::Expired { offboard_at } => offboard_at,
                Freeze::Suspended => None,
            };
            write_status(ctx, oa, status, plan.phase, conditions, |s| {
                s.namespaces = done.namespaces.clone();
                s.expired_at = plan.expired_at.map(Time);
                s.offboard_after = offboard_at.map(Time);
            })
            .await?;
            publish_all(ctx, oa, &out.notes).await;
            if let Some(e) = incomplete {
                return Err(e);
            }
            let until_offboard = offboard_at
                .and_then(|at| at.duration_since(o.now).try_into().ok())
                .map(|d: Duration| d + Duration::from_secs(1));
            Ok(Action::requeue(
                until_offboard.map_or(ctx.settings.resync, |d| d.min(ctx.settings.resync)),
            ))
        }
        Step::Offboard { then } => offboard::run(ctx, &o, then).await,
    }
}

/// Provisioning or offboarding while the audit log is damaged: a revocation
/// still freezes the domain at once; then Ready is False with the reason,
/// said once as an event, until the log is repaired and the operator restarted.
async fn wait_for_audit_log(
    ctx: &Context,
    o: &observe::Observed,
    plan: decide::Plan,
    problem: audit::Problem,
) -> Result<Action, Error> {
    let (oa, status) = (&o.oa, &o.status);
    let mut conditions = plan.conditions;
    let what = if let Step::Offboard { then } = plan.step {
        let (done, incomplete) = act::freeze_domain(ctx, o).await?;
        let out = decide::frozen(status, Freeze::Suspended, &report::state_reason(oa), &done);
        record_all(ctx, oa, out.records).await?;
        conditions.extend(
            out.conditions
                .into_iter()
                .filter(|c| c.type_ != types::READY),
        );
        publish_all(ctx, oa, &out.notes).await;
        if let Some(e) = incomplete {
            return Err(e);
        }
        format!(
            "{then:?} by the bureau: the domain is frozen; its offboarding (archive, wipe) waits"
        )
    } else {
        "provisioning and every new grant of access wait; a suspension or revocation still goes ahead".into()
    };
    let message = format!(
        "the audit log is damaged ({problem}): {what} until it is repaired and the operator restarted"
    );
    let first = !ready_reason_is(status, reasons::AUDIT_LOG_DAMAGED);
    conditions.push(Desired::new(
        types::READY,
        false,
        reasons::AUDIT_LOG_DAMAGED,
        message.clone(),
    ));
    let phase = status.phase.unwrap_or(Phase::Pending);
    write_status(ctx, oa, status, phase, conditions, |_| {}).await?;
    if first {
        publish(
            ctx,
            oa,
            &Note::warning(reasons::AUDIT_LOG_DAMAGED, "Wait", message),
        )
        .await;
    }
    Ok(Action::requeue(ctx.settings.resync))
}

/// The authorization whose dev namespace `ns` is.
fn tenant_of_dev(ns: String) -> Option<ObjectRef<OperatorAuthorization>> {
    let tenant = ns.strip_suffix(&format!("-{}", Environment::Dev.as_str()))?;
    Some(ObjectRef::new(tenant))
}

/// Requeue at the next day the facts change by themselves, or after `resync`.
fn requeue_until(next: Option<Date>, today: Date, resync: Duration) -> Action {
    let until = next
        .and_then(|d| today.until(d).ok())
        .and_then(|span| span.total(jiff::Unit::Second).ok())
        .map(|s| Duration::from_secs(s.max(1.0) as u64));
    Action::requeue(until.map_or(resync, |u| u.min(resync)))
}

/// The authorization is being deleted. If it was not offboarded, its domain
/// is orphaned: namespaces and OpenBao data stay, flagged, and are never
/// wiped as a side effect of a deletion (a removed CRD deletes every CR).
async fn orphan(oa: &OperatorAuthorization, ctx: &Context) -> Result<Action, Error> {
    let tenant = oa.name_any();
    let phase = oa.status.as_ref().and_then(|s| s.phase);
    if phase.is_some_and(Phase::is_final) {
        return Ok(Action::await_change());
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let selector = format!(
        "{}={},{}={}",
        labels::TENANT,
        tenant,
        labels::MANAGED_BY,
        labels::MANAGER
    );
    let now = jiff::Timestamp::now().to_string();
    let namespaces = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::MarkOrphaned)?;
    // Already orphaned (a retry after the finalizer's removal failed): say nothing twice.
    if !namespaces.items.is_empty()
        && namespaces
            .items
            .iter()
            .all(|ns| ns.labels().contains_key(labels::ORPHANED))
    {
        return Ok(Action::await_change());
    }
    for ns in namespaces {
        let patch = json!({"metadata": {
            "labels": {labels::ORPHANED: "true"},
            "annotations": {labels::ORPHANED_AT: now},
        }});
        api.patch(
            &ns.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::MarkOrphaned)?;
    }
    let message = format!(
        "authorization {tenant} deleted before offboarding: its domain is kept and labelled {}=true, never wiped; \
         re-apply the authorization to adopt it again, or offboard it explicitly",
        labels::ORPHANED
    );
    record(
        ctx,
        oa,
        Record::new(
            "DomainOrphaned",
            message.clone(),
            "Kept: namespaces and OpenBao data not deleted",
            Actor::Spec,
        ),
    )
    .await?;
    warn!(tenant = %tenant, "{message}");
    publish(ctx, oa, &Note::warning("DomainOrphaned", "Orphan", message)).await;
    Ok(Action::await_change())
}

/// The retry delay after `failures` consecutive failures: 1 s doubling, at most 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(8).saturating_sub(1)).min(MAX_BACKOFF)
}

/// Per-object exponential backoff on errors.
fn error_policy(oa: Arc<OperatorAuthorization>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = {
        let mut map = ctx
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = map.entry(oa.name_any()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = backoff(failures);
    warn!(error = %error, label = error.label(), failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Maps an object the operator made (found by its tenant label) to its authorization.
fn to_authorization<K: Resource>(obj: K) -> Option<ObjectRef<OperatorAuthorization>> {
    let tenant = obj.meta().labels.as_ref()?.get(labels::TENANT)?;
    Some(ObjectRef::new(tenant))
}

/// The metadata of the operator's objects of one kind, as a trigger: each
/// event updates the cache of what was applied; only changes the operator did
/// not make itself (and deletions) reach the reconciler.
fn children<K>(
    ctx: &Context,
    kind: Kind,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let managed =
        watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGER));
    let cache = ctx.applied.clone();
    let mut listed: HashSet<applied::Key> = HashSet::new();
    watcher(
        Api::<PartialObjectMeta<K>>::all(ctx.client.clone()),
        managed,
    )
    .default_backoff()
    .filter_map(move |event| {
        let out = match event {
            Ok(watcher::Event::Init) => {
                cache.unsynced(kind);
                listed.clear();
                None
            }
            Ok(watcher::Event::InitApply(o)) => {
                listed.insert(applied::key(kind, &o.metadata));
                (cache.seen(kind, &o.metadata) == Seen::Changed).then_some(Ok(o))
            }
            Ok(watcher::Event::InitDone) => {
                cache.relisted(kind, &std::mem::take(&mut listed));
                None
            }
            Ok(watcher::Event::Apply(o)) => {
                (cache.seen(kind, &o.metadata) == Seen::Changed).then_some(Ok(o))
            }
            Ok(watcher::Event::Delete(o)) => {
                cache.deleted(kind, &o.metadata);
                Some(Ok(o))
            }
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(out)
    })
}

/// What of an authorization the reconciler acts on, hashed: its spec (by
/// generation), labels, annotations and whether it is being deleted. Its
/// status (the operator's own writes) and finalizers (the operator adds its
/// own in the first pass) are left out, so they trigger no reconcile.
fn inputs(oa: &OperatorAuthorization) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    oa.metadata.generation.hash(&mut h);
    oa.metadata.labels.hash(&mut h);
    oa.metadata.annotations.hash(&mut h);
    oa.metadata.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Runs the controller until shutdown.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    // The authorizations, kept without their managed fields. Every one the
    // bureau ended or paused goes to the freeze lane as well; the queue only
    // hears of changes to what the reconciler reads (not of its own status
    // writes).
    let (reader, writer) = reflector::store();
    let (urgent, lane_rx) = tokio::sync::mpsc::unbounded_channel();
    let authorizations = watcher(
        Api::<OperatorAuthorization>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(|oa: &mut OperatorAuthorization| oa.managed_fields_mut().clear())
    .reflect(writer)
    .applied_objects()
    .inspect_ok(move |oa| lane::offer(&urgent, oa))
    .predicate_filter(inputs, Default::default());
    let controller = Controller::for_stream(authorizations, reader)
        .with_config(controller::Config::default().concurrency(ctx.settings.concurrency));
    // Ready once the authorizations are listed. The store's readiness signal
    // wakes only its last waiter (the controller waits on it too), so poll it
    // with a timeout instead of waiting once.
    let store = controller.store();
    let health = ctx.health.clone();
    tokio::spawn(async move {
        loop {
            match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await {
                Ok(Ok(())) => {
                    health.ready.store(true, Ordering::Relaxed);
                    info!("watches synced; ready");
                    break;
                }
                Ok(Err(_)) => break,
                Err(_) => {}
            }
        }
    });
    let lane = tokio::spawn(lane::run(ctx.clone(), lane_rx));
    controller
        .watches_stream(
            children::<Namespace>(&ctx, Kind::Namespace),
            to_authorization,
        )
        .watches_stream(
            children::<NetworkPolicy>(&ctx, Kind::NetworkPolicy),
            to_authorization,
        )
        .watches_stream(
            children::<ResourceQuota>(&ctx, Kind::ResourceQuota),
            to_authorization,
        )
        .watches_stream(
            children::<LimitRange>(&ctx, Kind::LimitRange),
            to_authorization,
        )
        .watches_stream(
            children::<ServiceAccount>(&ctx, Kind::ServiceAccount),
            to_authorization,
        )
        .watches_stream(children::<Role>(&ctx, Kind::Role), to_authorization)
        .watches_stream(
            children::<RoleBinding>(&ctx, Kind::RoleBinding),
            to_authorization,
        )
        .watches_stream(
            children::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(
                &ctx,
                Kind::PersistentVolumeClaim,
            ),
            to_authorization,
        )
        .watches(
            Api::<crate::api::DataScenario>::all(client.clone()),
            watcher::Config::default(),
            |ds: crate::api::DataScenario| Some(ObjectRef::new(&ds.spec.authorization)),
        )
        // A unit's annual reports and exit requests live in its dev
        // namespace, `<tenant>-dev`.
        .watches(
            Api::<crate::api::AnnualReport>::all(client.clone()),
            watcher::Config::default(),
            |r: crate::api::AnnualReport| tenant_of_dev(r.namespace()?),
        )
        .watches(
            Api::<crate::api::ExitRequest>::all(client.clone()),
            watcher::Config::default(),
            |r: crate::api::ExitRequest| tenant_of_dev(r.namespace()?),
        )
        .watches(
            Api::<crate::api::RenewalRequest>::all(client.clone()),
            watcher::Config::default(),
            |r: crate::api::RenewalRequest| tenant_of_dev(r.namespace()?),
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok(_) => {}
                // An orphaned domain's objects still carry their tenant label:
                // events on them map to an authorization that is gone.
                Err(kube::runtime::controller::Error::ObjectNotFound(obj)) => {
                    tracing::debug!(%obj, "event for an authorization that does not exist");
                }
                Err(e) => warn!(error = %e, "controller"),
            }
        })
        .await;
    lane.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_the_resync() {
        let secs: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 128, 128]);
        assert!(backoff(40) <= MAX_BACKOFF);
    }
}
