//! Decide, after acting: from what the actions returned to the conditions,
//! the audit records and the events. Pure, like the rest of [`super`].

use kube::ResourceExt;

use super::super::report::{Actor, Note, Record};
use crate::api::authorization::{
    MemberStatus, OperatorAuthorization, OperatorAuthorizationStatus, Phase, VaultStatus,
};
use crate::api::condition::{Desired, reasons, types};
use crate::lifecycle::Freeze;

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
    /// The OpenBao identities the freeze disabled.
    pub identities: String,
    /// What the freeze did in PostgreSQL, for the record (empty: no data
    /// plane).
    pub database: String,
    /// PostgreSQL's error, if its part failed.
    pub database_error: Option<String>,
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
    let not_yet: Vec<String> = [
        done.vault_error
            .as_ref()
            .map(|e| format!("OpenBao not yet (tokens may still be valid): {e}")),
        done.database_error
            .as_ref()
            .map(|e| format!("PostgreSQL not yet (database sessions may still be open): {e}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (frozen, degraded) = match not_yet.is_empty().then_some(()).ok_or(not_yet.join("; ")) {
        Ok(()) => (
            Desired::new(types::FROZEN, true, reasons::FROZEN, frozen_message),
            Desired::new(
                types::DEGRADED,
                false,
                reasons::AS_EXPECTED,
                "frozen on Kubernetes and OpenBao",
            ),
        ),
        Err(e) => {
            let reason = if done.vault_error.is_some() {
                reasons::FREEZE_INCOMPLETE
            } else {
                reasons::DATABASE_NOT_FROZEN
            };
            (
                Desired::new(
                    types::FROZEN,
                    false,
                    reason,
                    format!("Kubernetes side frozen; {e}"),
                ),
                Desired::new(types::DEGRADED, true, reason, format!("retrying: {e}")),
            )
        }
    };
    let was_frozen = has_true(status, types::FROZEN);
    let was_degraded = has_true(status, types::DEGRADED);
    let mut out = Outcome::default();
    if let Freeze::Expired { .. } = cause
        && status.expired_at.is_none()
    {
        out.records.push(Record::new(
            super::integrity::actions::VALIDITY_EXPIRED,
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
                "{reason}; namespaces {}; OpenBao identities {} disabled (their tokens and logins refused), roles deleted, database leases revoked; {}{}",
                done.namespaces.join(", "),
                done.identities,
                done.stopped,
                done.database
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
            if done.vault_error.is_some() {
                "Failure: OpenBao"
            } else {
                "Failure: PostgreSQL"
            },
            Actor::State,
        ));
        out.notes.push(Note::warning(
            frozen.reason,
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
    /// Whether the cluster's DNS keeps tenant pods' names in the cluster,
    /// and why; `None` when it was not (yet) checked.
    pub dns: Option<Result<String, String>>,
    pub namespaces: Vec<String>,
    /// The Kubernetes side's error, if it failed.
    pub kubernetes_error: Option<String>,
    /// OpenBao: what is configured, or its error.
    pub vault: Result<VaultStatus, String>,
    /// PostgreSQL, when the platform has a data plane: the tenant's roles and
    /// what they may select, or the error.
    pub database: Option<Result<Vec<String>, String>>,
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
                "KV mounts {}, login at auth/{}/login with roles {}",
                v.areas.join(", "),
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
    let database_condition = done.database.as_ref().map(|d| match d {
        Ok(granted) => Desired::new(
            types::DATABASE_CONFIGURED,
            true,
            reasons::DATABASE_CONFIGURED,
            if granted.is_empty() {
                "roles made; no column granted".to_string()
            } else {
                granted.join("; ")
            },
        ),
        Err(e) => Desired::new(
            types::DATABASE_CONFIGURED,
            false,
            reasons::DATABASE_FAILED,
            e.clone(),
        ),
    });
    let dns_condition = match &done.dns {
        Some(Ok(why)) => Desired::new(
            types::DNS_CONTAINED,
            true,
            reasons::DNS_CONTAINED,
            why.clone(),
        ),
        Some(Err(why)) => Desired::new(
            types::DNS_CONTAINED,
            false,
            reasons::DNS_NOT_CONTAINED,
            format!("tenant pods can send data out in DNS names: {why}"),
        ),
        None => Desired::new(
            types::DNS_CONTAINED,
            false,
            reasons::DNS_NOT_CHECKED,
            "the operator has not read the cluster DNS's Corefile (--dns-corefile)",
        ),
    };
    let database_ok = done.database.as_ref().is_none_or(|d| d.is_ok());
    let ready_now = done.kubernetes_error.is_none() && done.vault.is_ok() && database_ok;
    let ready = if ready_now {
        Desired::new(
            types::READY,
            true,
            reasons::PROVISIONED,
            "the tenant domain is provisioned and in force",
        )
    } else {
        let why = [
            Some(&provisioned),
            Some(&vault_condition),
            database_condition.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter(|c| !c.ok)
        .map(|c| c.message.clone())
        .collect::<Vec<_>>();
        Desired::new(
            types::READY,
            false,
            if done.kubernetes_error.is_some() {
                reasons::APPLY_FAILED
            } else if done.vault.is_err() {
                reasons::VAULT_FAILED
            } else {
                reasons::DATABASE_FAILED
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
                Ok(v) => (v.areas.join(", "), v.roles.join(", ")),
                Err(_) => (String::new(), String::new()),
            };
            out.records.push(Record::new(
                action,
                format!(
                    "generation {}: namespaces {}; OpenBao mounts {mount}, roles {roles}",
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
    let dns_was_refused = status.conditions.iter().any(|c| {
        c.type_ == types::DNS_CONTAINED
            && c.status == "False"
            && c.reason == reasons::DNS_NOT_CONTAINED
    });
    if dns_condition.reason == reasons::DNS_NOT_CONTAINED && !dns_was_refused {
        out.notes.push(Note::warning(
            reasons::DNS_NOT_CONTAINED,
            "CheckDns",
            dns_condition.message.clone(),
        ));
    }
    out.conditions = vec![
        ready,
        provisioned,
        vault_condition,
        members_condition,
        dns_condition,
    ];
    out.conditions.extend(database_condition);
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
