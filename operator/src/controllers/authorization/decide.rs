//! Decide: pure functions from what was observed (and, after acting, what the
//! actions returned) to the step to take, the conditions, the audit records
//! and the events. No I/O; every rule is a unit test below.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;

use super::observe::Observed;
use crate::api::authorization::{
    DrillResult, OperatorAuthorization, Phase, Validity, credit_code_is_valid,
};
use crate::api::condition::{Desired, reasons, types};
use crate::api::labels;
use crate::api::renewal::{RenewalRequestSpec, RenewalResult};
use crate::lifecycle::{self, Action, Facts, Freeze};
use crate::naming::owner_mark;
use crate::{early_exit, evaluation};
use jiff::ToSpan;

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
    // The mark is set when the operator creates the namespace, and never
    // added later (an admission policy refuses that to everyone): a
    // namespace without it was not made by the operator.
    let Some(mark) = mark else {
        return Ownership::Taken(format!(
            "namespace {} carries the operator's labels but not its owner mark {}: it was not made by the operator",
            ns.name_any(),
            labels::OWNER
        ));
    };
    if *mark != expected {
        return Ownership::Taken(format!(
            "namespace {} was made for another unit ({mark})",
            ns.name_any(),
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
    /// Conditions that newly warn (the annual standing, the renewal): said
    /// once, as an event and an audit record.
    pub announce: Vec<Desired>,
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
            announce: Vec::new(),
        };
    }
    let provisioned = status.phase == Some(Phase::Active)
        || status
            .conditions
            .iter()
            .any(|c| c.type_ == types::PROVISIONED && c.status == "True");
    let expired_at = status.expired_at.as_ref().map(|t| t.0);
    let (exit_condition, _) = early_exit::standing(&o.exits, o.today);
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
        exit_on: o.exit.as_ref().map(|a| a.effective_date),
    });
    let (plan_ready, drill_due) = emergency_plan(oa, o.today);
    let standing = evaluation::standing(&o.reports, &oa.spec.validity, o.today);
    let renewal_due = renewal(
        &oa.spec.validity,
        decision.renewal_due,
        &o.renewals,
        o.today,
    );
    let announce = [
        announcement(status, &standing.condition, standing.warns()),
        announcement(status, &renewal_due, renewal_due.ok),
    ]
    .into_iter()
    .flatten()
    .collect();
    let end_near = lifecycle::expiry_day(&oa.spec.validity)
        .checked_sub(END_NEAR_DAYS.days())
        .ok()
        .filter(|d| *d > o.today);
    let mut conditions = vec![
        renewal_due,
        plan_ready,
        standing.condition.clone(),
        exit_condition,
    ];
    let mut plan_expired_at = None;
    let step = match decision.action {
        Action::Nothing if status.disposal.is_some() => Step::Done,
        Action::Nothing => Step::Wait,
        Action::Provision => {
            let near = end_near.is_none();
            conditions.push(Desired::new(
                types::EXPIRING,
                false,
                if near {
                    reasons::END_NEAR
                } else {
                    reasons::WITHIN_VALIDITY
                },
                if near {
                    format!(
                        "in force until {}, less than {END_NEAR_DAYS} days away: at the end the domain is \
                         frozen unless the bureau renews it (R-7)",
                        oa.spec.validity.not_after
                    )
                } else {
                    format!("in force until {}", oa.spec.validity.not_after)
                },
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
        next_change: [
            decision.next_change,
            drill_due,
            standing.next_change,
            end_near,
        ]
        .into_iter()
        .flatten()
        .min(),
        expired_at: plan_expired_at,
        announce,
    }
}

/// A condition the bureau and the unit should hear of: once, when its
/// reason changes to one that `warns`.
fn announcement(
    status: &crate::api::authorization::OperatorAuthorizationStatus,
    now: &Desired,
    warns: bool,
) -> Option<Desired> {
    let before = status
        .conditions
        .iter()
        .find(|c| c.type_ == now.type_)
        .map(|c| c.reason.as_str());
    (warns && before != Some(now.reason)).then(|| now.clone())
}

/// How often the emergency plan is drilled, at least (R-31: 定期组织应急演练).
pub const DRILL_EVERY_DAYS: i64 = 365;

/// Whether the authorization's emergency plan is on record and drilled
/// and the day its last drill becomes overdue.
pub fn emergency_plan(oa: &OperatorAuthorization, today: Date) -> (Desired, Option<Date>) {
    let condition = |ok, reason, message: String| {
        Desired::new(types::EMERGENCY_PLAN_READY, ok, reason, message)
    };
    let Some(plan) = &oa.spec.emergency_plan else {
        return (
            condition(
                false,
                reasons::NO_EMERGENCY_PLAN,
                "no emergency plan on record (R-31: one plan per authorization): record \
                 spec.emergencyPlan with its reference and whom to call"
                    .into(),
            ),
            None,
        );
    };
    let first = plan
        .contacts
        .first()
        .map(|c| format!("; call {} ({}, {}) first", c.name, c.role, c.contact))
        .unwrap_or_default();
    let Some(last) = plan
        .drills
        .iter()
        .filter(|d| d.date <= today)
        .max_by_key(|d| d.date)
    else {
        return (
            condition(
                false,
                reasons::NO_DRILL_YET,
                format!("plan {}{first}; no drill held yet", plan.reference),
            ),
            None,
        );
    };
    let overdue = last
        .date
        .checked_add(jiff::Span::new().days(DRILL_EVERY_DAYS))
        .unwrap_or(today);
    let drilled = format!("last drill {} ({:?})", last.date, last.result);
    let ready = if last.result == DrillResult::Failed {
        condition(
            false,
            reasons::LAST_DRILL_FAILED,
            format!(
                "plan {}{first}; {drilled}: revise the plan and drill it again",
                plan.reference
            ),
        )
    } else if overdue <= today {
        condition(
            false,
            reasons::DRILL_OVERDUE,
            format!(
                "plan {}{first}; {drilled}, more than {DRILL_EVERY_DAYS} days ago: a drill is overdue since {overdue}",
                plan.reference
            ),
        )
    } else {
        condition(
            true,
            reasons::PLAN_ON_FILE,
            format!(
                "plan {}{first}; {drilled}; next drill due by {overdue}",
                plan.reference
            ),
        )
    };
    (ready, (overdue > today).then_some(overdue))
}

/// How long before the end the bureau and the unit hear that it is near.
pub const END_NEAR_DAYS: i64 = 30;

/// A renewal application as filed.
pub type RenewalFiled = crate::api::Filed<RenewalRequestSpec>;

/// Condition `RenewalDue`: due from six months before the end, with
/// the unit's application and the bureau's decision on it, and the end near.
pub fn renewal(validity: &Validity, due: bool, requests: &[RenewalFiled], today: Date) -> Desired {
    let from = lifecycle::renewal_due_from(validity);
    let end = validity.not_after;
    let said = |ok, reason, message: String| Desired::new(types::RENEWAL_DUE, ok, reason, message);
    // The newest application that would move the end.
    let open = requests
        .iter()
        .filter(|r| r.spec.not_after > end)
        .max_by_key(|r| r.filed);
    if let Some(r) = open {
        let timing = if r.filed <= from {
            format!("on time: due from {from}")
        } else {
            format!("late: renewal was due from {from}")
        };
        let filed = format!(
            "renewal {} to {} filed on {} ({timing})",
            r.name, r.spec.not_after, r.filed
        );
        return match &r.spec.decision {
            None => said(
                true,
                reasons::RENEWAL_REQUESTED,
                format!(
                    "{filed}; awaiting the bureau's decision; the authorization ends on {end} unless renewed"
                ),
            ),
            Some(d) if d.result == RenewalResult::Approved => said(
                true,
                reasons::RENEWAL_APPROVED,
                format!(
                    "{filed}; approved under decision {} on {}, but the validity still ends on {end}: \
                     the bureau extends it (`kubectl publicdata decide renewal` does both)",
                    d.decision, d.date
                ),
            ),
            Some(d) => said(
                true,
                reasons::RENEWAL_REJECTED,
                format!(
                    "{filed}; rejected under decision {} on {}: {}; the authorization ends on {end}",
                    d.decision, d.date, d.reason
                ),
            ),
        };
    }
    if !due {
        let renewed = validity
            .term_start
            .map(|t| format!("renewed: the current term runs from {t} to {end}; "))
            .unwrap_or_default();
        return said(
            false,
            reasons::WITHIN_VALIDITY,
            format!("{renewed}renewal is due from {from}"),
        );
    }
    let left = today.until(end).map(|s| s.get_days()).unwrap_or_default();
    if (0..END_NEAR_DAYS).contains(&i64::from(left)) {
        return said(
            true,
            reasons::END_NEAR,
            format!(
                "the authorization ends on {end}, in {left} days, and no renewal is filed: at the end the \
                 domain is frozen (R-7)"
            ),
        );
    }
    said(
        true,
        reasons::RENEWAL_WINDOW,
        format!(
            "the authorization ends on {end}; renewal was due from {from} (R-6): the unit files a \
             RenewalRequest in its dev namespace"
        ),
    )
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

pub mod integrity;
mod outcome;

pub use outcome::*;

#[cfg(test)]
mod tests;
