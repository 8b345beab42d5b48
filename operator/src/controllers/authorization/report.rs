//! Report: what the decision and the actions mean to the people watching —
//! audit records (written first), the status (only when it changed) and
//! events.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

use super::Error;
use crate::api::authorization::{
    OperatorAuthorization, OperatorAuthorizationStatus, Phase, PhaseChange, State,
};
use crate::api::condition::{self, Desired};
use crate::api::labels;
use crate::audit;
use crate::context::{Context, FIELD_MANAGER};

/// Who an audit record names as the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// Whoever last changed the spec (provisioning, member changes).
    Spec,
    /// Whoever changed the state (freeze, resume, offboarding).
    State,
}

/// One audit record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub action: &'static str,
    pub reason: String,
    pub outcome: String,
    pub actor: Actor,
}

impl Record {
    pub fn new(
        action: &'static str,
        reason: String,
        outcome: impl Into<String>,
        actor: Actor,
    ) -> Self {
        Self {
            action,
            reason,
            outcome: outcome.into(),
            actor,
        }
    }
}

/// One event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

impl Note {
    pub fn normal(reason: &'static str, action: &'static str, note: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason,
            action,
            note: note.into(),
        }
    }

    pub fn warning(reason: &'static str, action: &'static str, note: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason,
            action,
            note: note.into(),
        }
    }
}

/// Who last changed the spec, as the API server recorded it: the field manager
/// of the newest managedFields entry that owns a field under `spec`.
pub fn spec_actor(oa: &OperatorAuthorization) -> Option<String> {
    oa.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref().unwrap_or("").is_empty())
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.get("f:spec").is_some())
        })
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))
        .and_then(|m| m.manager.clone())
}

/// Who changed the state: the API server's stamp (see the admission policies).
pub fn state_actor(oa: &OperatorAuthorization) -> Option<String> {
    oa.annotations()
        .get(labels::STATE_CHANGED_BY)
        .cloned()
        .or_else(|| spec_actor(oa))
}

/// The bureau's reason and decision for the current state.
pub fn state_reason(oa: &OperatorAuthorization) -> String {
    match &oa.spec.state_change {
        Some(c) => format!("{} (decision {})", c.reason, c.decision),
        None => "no reason recorded".into(),
    }
}

/// Appends one audit record. Written before the status that reports the
/// action, so a crash between the two repeats a record rather than losing one.
pub async fn record(ctx: &Context, oa: &OperatorAuthorization, r: Record) -> Result<(), Error> {
    let actor = match r.actor {
        Actor::Spec => spec_actor(oa),
        Actor::State => state_actor(oa),
    };
    let entry = audit::Entry {
        tenant: oa.name_any(),
        object: format!("OperatorAuthorization/{}", oa.name_any()),
        action: r.action.into(),
        reason: r.reason,
        outcome: r.outcome,
        actor,
        uid: oa.uid(),
        delivery: None,
    };
    audit::append(&ctx.audit, entry)
        .await
        .map_err(Error::Audit)?;
    Ok(())
}

/// Appends every record, in order.
pub async fn record_all(
    ctx: &Context,
    oa: &OperatorAuthorization,
    records: Vec<Record>,
) -> Result<(), Error> {
    for r in records {
        record(ctx, oa, r).await?;
    }
    Ok(())
}

/// This authorization's audit trail: the records of its tenant id since it
/// was created. A name used again after an offboarding starts afresh; the
/// earlier authorization's records stay in the log and in its own archive.
pub async fn trail_of(
    ctx: &Context,
    oa: &OperatorAuthorization,
) -> Result<Vec<audit::Record>, Error> {
    let trail = audit::trail(&ctx.audit, &oa.name_any())
        .await
        .map_err(Error::Audit)?;
    Ok(since_creation(trail, oa))
}

/// The records of this authorization: those carrying its uid, and those of
/// other controllers (no uid) written since it was created. (Creation times
/// have whole seconds, so a name offboarded and used again within the same
/// second is told apart by the uid alone.)
pub fn since_creation(trail: Vec<audit::Record>, oa: &OperatorAuthorization) -> Vec<audit::Record> {
    let uid = oa.uid();
    let created = oa.metadata.creation_timestamp.as_ref().map(|t| t.0);
    trail
        .into_iter()
        .filter(|r| match (&r.entry.uid, &uid) {
            (Some(theirs), Some(ours)) => theirs == ours,
            _ => match created {
                Some(created) => r
                    .time
                    .parse::<jiff::Timestamp>()
                    .map_or(true, |t| t >= created),
                None => true,
            },
        })
        .collect()
}

/// Whether this authorization's audit trail already holds `action` (so a
/// step redone after a crash does not record it twice).
pub async fn recorded(
    ctx: &Context,
    oa: &OperatorAuthorization,
    action: &str,
) -> Result<bool, Error> {
    Ok(trail_of(ctx, oa)
        .await?
        .iter()
        .any(|r| r.entry.action == action))
}

/// Records `action` once per tenant.
pub async fn record_once(
    ctx: &Context,
    oa: &OperatorAuthorization,
    action: &'static str,
    reason: String,
    outcome: &str,
) -> Result<(), Error> {
    if !recorded(ctx, oa, action).await? {
        record(ctx, oa, Record::new(action, reason, outcome, Actor::State)).await?;
    }
    Ok(())
}

/// How many phase changes the status keeps (the audit log keeps them all).
const HISTORY_KEPT: usize = 100;

/// The bureau's decision behind a change of phase from `from` to `to`: its
/// state decision for a suspension, a resumption and the offboarding it
/// orders; its validity decision for a renewal out of Expiring. None for
/// what the operator does on its own (provisioning, an expiry).
pub fn decision_behind(
    oa: &OperatorAuthorization,
    from: Option<Phase>,
    to: Phase,
) -> Option<String> {
    let state = || oa.spec.state_change.as_ref().map(|c| c.decision.clone());
    let validity = || oa.spec.validity_change.as_ref().map(|c| c.decision.clone());
    match (from, to) {
        (_, Phase::Suspended) => state(),
        (Some(Phase::Suspended), Phase::Active) => state(),
        (Some(Phase::Expiring), Phase::Active) => validity(),
        (_, Phase::Offboarding | Phase::Revoked | Phase::Terminated)
            if oa.spec.state != State::Active =>
        {
            state()
        }
        _ => None,
    }
}

/// Writes the status when it differs from what is there (so an unchanged
/// authorization causes no write).
pub async fn write_status(
    ctx: &Context,
    oa: &OperatorAuthorization,
    current: &OperatorAuthorizationStatus,
    phase: Phase,
    conditions: Vec<Desired>,
    fill: impl FnOnce(&mut OperatorAuthorizationStatus),
) -> Result<(), Error> {
    let now = Time(jiff::Timestamp::now());
    let mut next = current.clone();
    if current.phase != Some(phase) {
        next.history.push(PhaseChange {
            phase,
            since: now.0.to_string(),
            decision: decision_behind(oa, current.phase, phase),
        });
        let over = next.history.len().saturating_sub(HISTORY_KEPT);
        next.history.drain(..over);
    }
    next.phase = Some(phase);
    next.observed_generation = oa.metadata.generation;
    next.conditions = condition::merge(
        &current.conditions,
        &conditions,
        oa.metadata.generation,
        &now,
    );
    fill(&mut next);
    if &next == current {
        return Ok(());
    }
    let api: Api<OperatorAuthorization> = Api::all(ctx.client.clone());
    crate::controllers::apply_status(&api, &oa.name_any(), &next)
        .await
        .map_err(Error::WriteStatus)?;
    ctx.metrics.wrote("kubernetes", 1);
    Ok(())
}

/// A status that claimed what the audit chain does not hold (someone else
/// wrote it): recorded, written back with the claims taken back and a
/// sticky `StatusTampered` condition, and said as a warning event. The
/// claims are nulled with a merge patch, since fields another manager set
/// are not removed by the operator's server-side apply.
pub async fn repair_forged(
    ctx: &Context,
    oa: &OperatorAuthorization,
    status: &mut OperatorAuthorizationStatus,
    forged: &[String],
) -> Result<(), Error> {
    let writers: Vec<String> = oa
        .managed_fields()
        .iter()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .filter_map(|m| m.manager.clone())
        .filter(|m| m != FIELD_MANAGER)
        .collect();
    let written_by = if writers.is_empty() {
        "the operator's own identity (outside the operator)".to_string()
    } else {
        writers.join(", ")
    };
    let message = format!(
        "status written by {written_by} claimed {}; rewritten from the spec and the audit chain",
        forged.join("; ")
    );
    record(
        ctx,
        oa,
        Record::new(
            super::decide::integrity::actions::STATUS_TAMPERED,
            message.clone(),
            "Rewritten",
            Actor::Spec,
        ),
    )
    .await?;
    status.conditions = condition::merge(
        &status.conditions,
        &[Desired::new(
            condition::types::STATUS_TAMPERED,
            true,
            condition::reasons::FORGED_STATUS,
            message.clone(),
        )],
        oa.metadata.generation,
        &Time(jiff::Timestamp::now()),
    );
    let patch = json!({"status": {
        "phase": status.phase,
        "offboarding": status.offboarding,
        "expiredAt": status.expired_at,
        "offboardAfter": status.offboard_after,
        "disposal": status.disposal,
        "earlyExit": status.early_exit,
        "conditions": status.conditions,
    }});
    Api::<OperatorAuthorization>::all(ctx.client.clone())
        .patch_status(
            &oa.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::WriteStatus)?;
    ctx.metrics.wrote("kubernetes", 1);
    publish(
        ctx,
        oa,
        &Note::warning(condition::reasons::FORGED_STATUS, "Verify", message),
    )
    .await;
    Ok(())
}

/// Publishes an Event about the authorization; a failure is logged, never fatal.
pub async fn publish(ctx: &Context, oa: &OperatorAuthorization, note: &Note) {
    let type_ = if note.warning {
        EventType::Warning
    } else {
        EventType::Normal
    };
    super::super::publish(
        &ctx.recorder,
        oa,
        type_,
        note.reason,
        note.action,
        &note.note,
    )
    .await;
}

/// Publishes every event, in order.
pub async fn publish_all(ctx: &Context, oa: &OperatorAuthorization, notes: &[Note]) {
    for n in notes {
        publish(ctx, oa, n).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: &str, uid: Option<&str>, action: &str) -> audit::Record {
        audit::Record {
            seq: 1,
            time: time.into(),
            entry: audit::Entry {
                tenant: "acme".into(),
                object: "OperatorAuthorization/acme".into(),
                action: action.into(),
                reason: String::new(),
                outcome: String::new(),
                actor: None,
                uid: uid.map(String::from),
                delivery: None,
            },
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn a_name_used_again_in_the_same_second_has_a_history_of_its_own() {
        let mut oa: OperatorAuthorization =
            serde_yaml::from_str(include_str!("../../../../examples/authorization.yaml")).unwrap();
        oa.metadata.uid = Some("new".into());
        oa.metadata.creation_timestamp = Some(Time("2026-11-27T14:10:13Z".parse().unwrap()));
        let trail = vec![
            record("2026-11-27T14:10:13.48Z", Some("old"), "DomainDisposed"),
            record("2026-11-27T14:10:12Z", None, "ScenarioGranted"),
            record("2026-11-27T14:10:13.9Z", None, "ExportDelivered"),
            record("2026-11-27T14:10:14Z", Some("new"), "DomainProvisioned"),
        ];
        let mine: Vec<String> = since_creation(trail, &oa)
            .into_iter()
            .map(|r| r.entry.action)
            .collect();
        assert_eq!(mine, ["ExportDelivered", "DomainProvisioned"]);
    }

    #[test]
    fn the_history_names_the_bureau_decision_behind_each_change_it_caused() {
        use crate::api::authorization::StateChange;
        let mut oa: OperatorAuthorization =
            serde_yaml::from_str(include_str!("../../../../examples/authorization.yaml")).unwrap();
        let change = |d: &str| StateChange {
            reason: "r".into(),
            decision: d.into(),
        };
        // Provisioned: the operator's doing.
        assert_eq!(decision_behind(&oa, None, Phase::Active), None);
        assert_eq!(
            decision_behind(&oa, Some(Phase::Pending), Phase::Active),
            None
        );
        oa.spec.state = State::Suspended;
        oa.spec.state_change = Some(change("PDB-1"));
        assert_eq!(
            decision_behind(&oa, Some(Phase::Active), Phase::Suspended).as_deref(),
            Some("PDB-1")
        );
        oa.spec.state = State::Active;
        oa.spec.state_change = Some(change("PDB-2"));
        assert_eq!(
            decision_behind(&oa, Some(Phase::Suspended), Phase::Active).as_deref(),
            Some("PDB-2")
        );
        // An expiry is the calendar's; a renewal out of it is the bureau's.
        assert_eq!(
            decision_behind(&oa, Some(Phase::Active), Phase::Expiring),
            None
        );
        oa.spec.validity_change = Some(change("PDB-R"));
        assert_eq!(
            decision_behind(&oa, Some(Phase::Expiring), Phase::Active).as_deref(),
            Some("PDB-R")
        );
        // Offboarded after an expiry: nobody's decision; after a revocation: the bureau's.
        assert_eq!(
            decision_behind(&oa, Some(Phase::Expiring), Phase::Offboarding),
            None
        );
        oa.spec.state = State::Revoked;
        oa.spec.state_change = Some(change("PDB-3"));
        assert_eq!(
            decision_behind(&oa, Some(Phase::Offboarding), Phase::Revoked).as_deref(),
            Some("PDB-3")
        );
    }
}
