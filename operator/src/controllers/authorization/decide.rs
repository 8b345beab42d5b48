//! Decide: pure functions from what was observed (and, after acting, what the
//! actions returned) to the step to take, the conditions, the audit records
//! and the events. No I/O; every rule is a unit test below.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;

use super::observe::Observed;
use super::report::{Actor, Note, Record};
use crate::api::authorization::{
    MemberStatus, OperatorAuthorization, OperatorAuthorizationStatus, Phase, VaultStatus,
    credit_code_is_valid,
};
use crate::api::condition::{Desired, reasons, types};
use crate::api::labels;
use crate::lifecycle::{self, Action, Facts, Freeze};
use crate::naming::owner_mark;

/// Whose a namespace is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// It does not exist: the operator may create it.
    Absent,
    /// The operator made it for this authorization.
    Ours,
    /// The operator made it for this authorization's tenant and unit, whose
    /// earlier authorization was deleted without offboarding: adopted again.
    Orphaned { since: String },
    /// Ours, and being deleted.
    Terminating,
    /// Someone else's: never adopted, never deleted.
    Taken(String),
}

/// Whose the namespace `ns` is, for the authorization of `tenant` by the unit
/// with `credit_code`. A namespace made before the owner mark existed is
/// recognised by the operator's labels alone.
pub fn ownership(ns: Option<&Namespace>, tenant: &str, credit_code: &str) -> Ownership {
    let Some(ns) = ns else {
        return Ownership::Absent;
    };
    let labels_ = ns.labels();
    let annotations = ns.annotations();
    let managed = labels_.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGER);
    let tenant_label = labels_.get(labels::TENANT).map(String::as_str);
    let mark = annotations.get(labels::OWNER);
    let expected = owner_mark(tenant, credit_code);
    if !managed || tenant_label != Some(tenant) {
        return Ownership::Taken(format!(
            "namespace {} exists and was not made by the operator for authorization {tenant}",
            ns.name_any()
        ));
    }
    if mark.is_some_and(|m| *m != expected) {
        return Ownership::Taken(format!(
            "namespace {} was made for another unit ({})",
            ns.name_any(),
            mark.map(String::as_str).unwrap_or_default()
        ));
    }
    if ns.metadata.deletion_timestamp.is_some() {
        return Ownership::Terminating;
    }
    match labels_.get(labels::ORPHANED) {
        Some(_) => Ownership::Orphaned {
            since: annotations
                .get(labels::ORPHANED_AT)
                .cloned()
                .unwrap_or_default(),
        },
        None => Ownership::Ours,
    }
}

/// Why nothing is provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    /// The audit action recorded the first time.
    pub record: &'static str,
    pub message: String,
}

/// The step the reconciler takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Report why nothing is done until the spec or the cluster changes.
    Refuse(Refusal),
    /// Not yet in force: report and wait.
    Wait,
    /// A final record: nothing more, ever.
    Done,
    Provision,
    Freeze(Freeze),
    Offboard {
        then: Phase,
    },
}

/// The decision, before acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub phase: Phase,
    pub step: Step,
    /// Conditions known before acting (renewal, expiry, names).
    pub conditions: Vec<Desired>,
    /// The next day the facts change by themselves.
    pub next_change: Option<Date>,
    /// When the domain was frozen for expiry (kept once set).
    pub expired_at: Option<Timestamp>,
}

/// Whether the bureau set the validity: the API server stamps the annotation
/// only on a bureau member's change (see the admission policies).
pub fn validity_by_bureau(oa: &OperatorAuthorization) -> bool {
    oa.annotations()
        .get(labels::VALIDITY_SET_BY)
        .is_some_and(|by| !by.is_empty())
}

/// Decides the step from the observed facts.
pub fn plan(o: &Observed, grace: Duration) -> Plan {
    let oa = &o.oa;
    let status = &o.status;
    if !credit_code_is_valid(&oa.spec.unit.credit_code) {
        return Plan {
            phase: Phase::Pending,
            step: Step::Refuse(Refusal {
                reason: reasons::INVALID_SPEC,
                record: "ProvisioningRefused",
                message: format!(
                    "unit.creditCode {} has a wrong check character (GB 32100-2015); nothing is provisioned until it is corrected",
                    oa.spec.unit.credit_code
                ),
            }),
            conditions: Vec::new(),
            next_change: None,
            expired_at: None,
        };
    }
    let provisioned = status.phase == Some(Phase::Active)
        || status
            .conditions
            .iter()
            .any(|c| c.type_ == types::PROVISIONED && c.status == "True");
    let expired_at = status.expired_at.as_ref().map(|t| t.0);
    let decision = lifecycle::decide(&Facts {
        state: oa.spec.state,
        validity: oa.spec.validity.clone(),
        validity_by_bureau: validity_by_bureau(oa),
        today: o.today,
        now: o.now,
        phase: status.phase,
        provisioned,
        offboarded: status.disposal.is_some(),
        expired_at,
        grace,
    });
    let mut conditions = vec![renewal(oa, decision.renewal_due)];
    let mut plan_expired_at = None;
    let step = match decision.action {
        Action::Nothing if status.disposal.is_some() => Step::Done,
        Action::Nothing => Step::Wait,
        Action::Provision => {
            conditions.push(Desired::new(
                types::EXPIRING,
                false,
                reasons::WITHIN_VALIDITY,
                format!("in force until {}", oa.spec.validity.not_after),
            ));
            let taken: Vec<&str> = o
                .namespaces
                .iter()
                .filter_map(|(_, own)| match own {
                    Ownership::Taken(why) => Some(why.as_str()),
                    _ => None,
                })
                .collect();
            if taken.is_empty() {
                conditions.push(Desired::new(
                    types::NAMES_AVAILABLE,
                    true,
                    reasons::NAMES_FREE,
                    "every namespace of the authorization is its own",
                ));
                Step::Provision
            } else {
                let message = format!(
                    "{}; nothing is provisioned, adopted or deleted until the name is free (rename the \
                     authorization or remove the namespace)",
                    taken.join("; ")
                );
                conditions.push(Desired::new(
                    types::NAMES_AVAILABLE,
                    false,
                    reasons::NAME_TAKEN,
                    message.clone(),
                ));
                Step::Refuse(Refusal {
                    reason: reasons::NAME_TAKEN,
                    record: "ProvisioningRefused",
                    message,
                })
            }
        }
        Action::Freeze(cause) => {
            if let Freeze::Expired { offboard_at } = cause {
                plan_expired_at = Some(expired_at.unwrap_or(o.now));
                conditions.push(expiring(oa, offboard_at));
            }
            Step::Freeze(cause)
        }
        Action::Offboard { then } => Step::Offboard { then },
    };
    Plan {
        phase: decision.phase,
        step,
        conditions,
        next_change: decision.next_change,
        expired_at: plan_expired_at,
    }
}

fn renewal(oa: &OperatorAuthorization, due: bool) -> Desired {
    let from = lifecycle::renewal_due_from(&oa.spec.validity);
    if due {
        Desired::new(
            types::RENEWAL_DUE,
            true,
            reasons::RENEWAL_WINDOW,
            format!(
                "the authorization ends on {}; renewal was due from {from} (R-6)",
                oa.spec.validity.not_after
            ),
        )
    } else {
        Desired::new(
            types::RENEWAL_DUE,
            false,
            reasons::WITHIN_VALIDITY,
            format!("renewal is due from {from}"),
        )
    }
}

fn expiring(oa: &OperatorAuthorization, offboard_at: Option<Timestamp>) -> Desired {
    let end = oa.spec.validity.not_after;
    match offboard_at {
        Some(at) => Desired::new(
            types::EXPIRING,
            true,
            reasons::GRACE_PERIOD,
            format!(
                "the validity ended on {end}: the domain is frozen, and offboarded (wiped, logs kept) at {at} \
                 unless the bureau renews the authorization first (R-7)"
            ),
        ),
        None => Desired::new(
            types::EXPIRING,
            true,
            reasons::AWAITING_BUREAU,
            format!(
                "the validity ended on {end}, an end the bureau did not set itself: the domain is frozen and \
                 nothing is wiped until the bureau renews, revokes or terminates the authorization"
            ),
        ),
    }
}

/// What a freeze did, as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeOutcome {
    pub namespaces: Vec<String>,
    /// The audit text for the pods it stopped.
    pub stopped: String,
    /// Whether it stopped any pod this time.
    pub stopped_any: bool,
    /// OpenBao's error, if its part failed.
    pub vault_error: Option<String>,
    pub auth_mount: String,
}

/// The result of a decision and its actions: the status to write, the
/// records to append first and the events to publish after.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    pub conditions: Vec<Desired>,
    pub records: Vec<Record>,
    pub notes: Vec<Note>,
}

fn has_true(status: &OperatorAuthorizationStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Whether the Ready condition already says `reason` (so an event about it
/// was published when it first did).
pub fn ready_reason_is(status: &OperatorAuthorizationStatus, reason: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == types::READY && c.reason == reason)
}

/// The report of a freeze, for suspension and expiry alike.
pub fn frozen(
    status: &OperatorAuthorizationStatus,
    cause: Freeze,
    why: &str,
    done: &FreezeOutcome,
) -> Outcome {
    let (ready_reason, ready_message, frozen_message) = match cause {
        Freeze::Suspended => (
            reasons::SUSPENDED,
            format!("suspended: {why}"),
            format!("suspended by the bureau: {why}"),
        ),
        Freeze::Expired { .. } => (
            reasons::EXPIRED,
            "the validity ended: frozen (see condition Expiring)".to_string(),
            "frozen at the end of the validity (R-7)".to_string(),
        ),
    };
    let (frozen, degraded) = match &done.vault_error {
        None => (
            Desired::new(types::FROZEN, true, reasons::FROZEN, frozen_message),
            Desired::new(
                types::DEGRADED,
                false,
                reasons::AS_EXPECTED,
                "frozen on Kubernetes and OpenBao",
            ),
        ),
        Some(e) => (
            Desired::new(
                types::FROZEN,
                false,
                reasons::FREEZE_INCOMPLETE,
                format!("Kubernetes side frozen; OpenBao not yet (tokens may still be valid): {e}"),
            ),
            Desired::new(
                types::DEGRADED,
                true,
                reasons::FREEZE_INCOMPLETE,
                format!("retrying: {e}"),
            ),
        ),
    };
    let was_frozen = has_true(status, types::FROZEN);
    let was_degraded = has_true(status, types::DEGRADED);
    let mut out = Outcome::default();
    if let Freeze::Expired { .. } = cause
        && status.expired_at.is_none()
    {
        out.records.push(Record::new(
            "ValidityExpired",
            "the validity ended without renewal: the domain is frozen (R-7)".into(),
            "Frozen",
            Actor::Spec,
        ));
        out.notes.push(Note::warning(
            reasons::EXPIRED,
            "Expire",
            "the validity ended without renewal: the domain is frozen (R-7); see condition Expiring",
        ));
    }
    if frozen.ok && !was_frozen {
        let reason = match cause {
            Freeze::Suspended => why.to_string(),
            Freeze::Expired { .. } => "validity ended".to_string(),
        };
        out.records.push(Record::new(
            "TenantFrozen",
            format!(
                "{reason}; namespaces {}; OpenBao auth mount {} disabled (its tokens revoked); {}",
                done.namespaces.join(", "),
                done.auth_mount,
                done.stopped
            ),
            "Success",
            Actor::State,
        ));
        out.notes.push(Note::warning(
            reasons::FROZEN,
            "Freeze",
            frozen.message.clone(),
        ));
    } else if done.stopped_any {
        // Pods that appeared while frozen (a controller racing the freeze).
        out.records.push(Record::new(
            "FrozenPodsStopped",
            done.stopped.clone(),
            "Success",
            Actor::State,
        ));
    }
    if !frozen.ok && !was_degraded {
        out.records.push(Record::new(
            "TenantFreezeIncomplete",
            frozen.message.clone(),
            "Failure: OpenBao",
            Actor::State,
        ));
        out.notes.push(Note::warning(
            reasons::FREEZE_INCOMPLETE,
            "Freeze",
            frozen.message.clone(),
        ));
    }
    out.conditions = vec![
        Desired::new(types::READY, false, ready_reason, ready_message),
        frozen,
        degraded,
    ];
    out
}

/// What provisioning did, as the report needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionOutcome {
    pub namespaces: Vec<String>,
    /// The Kubernetes side's error, if it failed.
    pub kubernetes_error: Option<String>,
    /// OpenBao: what is configured, or its error.
    pub vault: Result<VaultStatus, String>,
    /// Each member's access today.
    pub members: Vec<MemberStatus>,
    /// Whether `DomainProvisioned` is already in the audit trail (a leader
    /// killed between the record and the status write).
    pub provisioned_recorded: bool,
    /// Namespaces adopted again from an orphaned domain, with since when.
    pub adopted: Vec<(String, String)>,
}

/// The report of provisioning: conditions, what to record and announce.
pub fn provisioned(
    oa: &OperatorAuthorization,
    status: &OperatorAuthorizationStatus,
    why_state: &str,
    done: &ProvisionOutcome,
) -> (Phase, Outcome) {
    let tenant = oa.name_any();
    let mut out = Outcome::default();
    for (ns, since) in &done.adopted {
        out.records.push(Record::new(
            "DomainAdopted",
            format!("namespace {ns}, orphaned since {since}, adopted again by its re-applied authorization"),
            "Success",
            Actor::Spec,
        ));
    }
    let denied: Vec<String> = done
        .members
        .iter()
        .filter(|m| !m.access)
        .map(|m| format!("{}: {}", m.user, m.reason))
        .collect();
    let members_condition = if denied.is_empty() {
        Desired::new(
            types::MEMBERS_ELIGIBLE,
            true,
            reasons::ALL_ELIGIBLE,
            "every member is trained and under a confidentiality agreement",
        )
    } else {
        Desired::new(
            types::MEMBERS_ELIGIBLE,
            false,
            reasons::SOME_INELIGIBLE,
            format!("no access for {}", denied.join("; ")),
        )
    };
    let provisioned = match &done.kubernetes_error {
        None => Desired::new(
            types::PROVISIONED,
            true,
            reasons::PROVISIONED,
            format!(
                "namespaces {} isolated, with quotas and RBAC",
                done.namespaces.join(", ")
            ),
        ),
        Some(e) => Desired::new(types::PROVISIONED, false, reasons::APPLY_FAILED, e.clone()),
    };
    let vault_condition = match &done.vault {
        Ok(v) => Desired::new(
            types::VAULT_CONFIGURED,
            true,
            reasons::VAULT_CONFIGURED,
            format!(
                "KV mount {}, login at auth/{}/login with roles {}",
                v.mount,
                v.auth_mount,
                v.roles.join(", ")
            ),
        ),
        Err(e) => Desired::new(
            types::VAULT_CONFIGURED,
            false,
            reasons::VAULT_FAILED,
            e.clone(),
        ),
    };
    let ready_now = done.kubernetes_error.is_none() && done.vault.is_ok();
    let ready = if ready_now {
        Desired::new(
            types::READY,
            true,
            reasons::PROVISIONED,
            "the tenant domain is provisioned and in force",
        )
    } else {
        let why = [&provisioned, &vault_condition]
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.message.clone())
            .collect::<Vec<_>>();
        Desired::new(
            types::READY,
            false,
            if done.kubernetes_error.is_some() {
                reasons::APPLY_FAILED
            } else {
                reasons::VAULT_FAILED
            },
            why.join("; "),
        )
    };
    let was_ready = has_true(status, types::READY);
    let phase = if ready_now || status.phase == Some(Phase::Active) {
        Phase::Active
    } else {
        Phase::Pending
    };
    let generation_changed = status.observed_generation != oa.metadata.generation;
    let resuming = matches!(status.phase, Some(Phase::Suspended | Phase::Expiring));
    if ready_now && !resuming && (!was_ready || generation_changed) {
        let action = if was_ready {
            "DomainUpdated"
        } else {
            "DomainProvisioned"
        };
        if !(action == "DomainProvisioned" && done.provisioned_recorded) {
            let (mount, roles) = match &done.vault {
                Ok(v) => (v.mount.clone(), v.roles.join(", ")),
                Err(_) => (String::new(), String::new()),
            };
            out.records.push(Record::new(
                action,
                format!(
                    "generation {}: namespaces {}; OpenBao mount {mount}, roles {roles}",
                    oa.metadata.generation.unwrap_or_default(),
                    done.namespaces.join(", "),
                ),
                "Success",
                Actor::Spec,
            ));
        }
    } else if !ready_now && !ready_reason_is(status, ready.reason) {
        out.records.push(Record::new(
            "ProvisioningFailed",
            ready.message.clone(),
            format!("Failure: {}", ready.reason),
            Actor::Spec,
        ));
        out.notes.push(Note::warning(
            ready.reason,
            "Provision",
            ready.message.clone(),
        ));
    }
    if ready_now && resuming {
        let (action, text) = match status.phase {
            Some(Phase::Expiring) => (
                "TenantRenewed",
                format!(
                    "validity renewed until {}; member bindings, allow policies, quota, workloads and OpenBao auth restored",
                    oa.spec.validity.not_after
                ),
            ),
            _ => (
                "TenantResumed",
                format!(
                    "{why_state}; member bindings, allow policies, quota, workloads and OpenBao auth restored"
                ),
            ),
        };
        out.records
            .push(Record::new(action, text.clone(), "Success", Actor::State));
        out.notes
            .push(Note::normal(reasons::RESUMED, "Resume", text));
    }
    for m in &done.members {
        let before = status
            .members
            .iter()
            .find(|b| b.user == m.user)
            .map(|b| b.access);
        if before != Some(m.access) {
            let action = if m.access {
                "MemberAccessGranted"
            } else {
                "MemberAccessDenied"
            };
            let mut reason = format!("{}: {}", m.user, m.reason);
            if ready_now {
                reason.push_str(" (RBAC applied)");
            }
            let outcome = if ready_now { "Success" } else { "Pending" };
            out.records
                .push(Record::new(action, reason, outcome, Actor::Spec));
        }
    }
    for gone in status
        .members
        .iter()
        .filter(|b| b.access && !done.members.iter().any(|m| m.user == b.user))
    {
        out.records.push(Record::new(
            "MemberAccessRevoked",
            format!("{}: no longer a member", gone.user),
            "Success",
            Actor::Spec,
        ));
    }
    if ready_now && !was_ready {
        out.notes.push(Note::normal(
            reasons::PROVISIONED,
            "Provision",
            format!(
                "tenant domain {tenant} ready: {}",
                done.namespaces.join(", ")
            ),
        ));
    }
    out.conditions = vec![ready, provisioned, vault_condition, members_condition];
    // Once frozen, Frozen and Degraded say it is not any more.
    if ready_now && status.conditions.iter().any(|c| c.type_ == types::FROZEN) {
        out.conditions.push(Desired::new(
            types::FROZEN,
            false,
            reasons::RESUMED,
            "in force again",
        ));
    }
    if ready_now && status.conditions.iter().any(|c| c.type_ == types::DEGRADED) {
        out.conditions.push(Desired::new(
            types::DEGRADED,
            false,
            reasons::AS_EXPECTED,
            "provisioned",
        ));
    }
    (phase, out)
}

#[cfg(test)]
mod tests;
