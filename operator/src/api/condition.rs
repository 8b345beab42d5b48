//! `status.conditions` in the shape of `metav1.Condition`, and the rule that
//! `lastTransitionTime` moves only when a condition's status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::Schema;
use schemars::generate::SchemaGenerator;
use serde_json::json;

/// Condition types, one constant each.
pub mod types {
    /// Everything the authorization asks for is in place and in force.
    pub const READY: &str = "Ready";
    /// Namespaces, isolation policies, quotas and RBAC are applied.
    pub const PROVISIONED: &str = "Provisioned";
    /// OpenBao mount, policies and Kubernetes-auth roles are applied.
    pub const VAULT_CONFIGURED: &str = "VaultConfigured";
    /// The tenant's PostgreSQL roles exist and hold exactly the columns its
    /// active scenarios grant (only with a data plane).
    pub const DATABASE_CONFIGURED: &str = "DatabaseConfigured";
    /// The validity ends within six months.
    pub const RENEWAL_DUE: &str = "RenewalDue";
    /// The cluster DNS keeps tenant pods' names in the cluster: it forwards
    /// upstream only for pods outside the tenant namespaces.
    pub const DNS_CONTAINED: &str = "DnsContained";
    /// Every listed member is eligible for access.
    pub const MEMBERS_ELIGIBLE: &str = "MembersEligible";
    /// The domain is closed: no member binding, no traffic, no pod, no OpenBao
    /// token or login. True only when every part of that holds.
    pub const FROZEN: &str = "Frozen";
    /// Something the operator must do is not done yet (e.g. OpenBao unreachable
    /// during a freeze); it keeps retrying.
    pub const DEGRADED: &str = "Degraded";
    /// The validity passed: the domain is frozen and offboarded after the
    /// grace period, unless the bureau renews it first.
    pub const EXPIRING: &str = "Expiring";
    /// Every namespace the authorization names is free or already its own.
    pub const NAMES_AVAILABLE: &str = "NamesAvailable";
    /// Whether the unit exits early, and when.
    pub const EARLY_EXIT: &str = "EarlyExit";
    /// The unit is in good standing in its annual reports and evaluations.
    pub const ANNUAL_EVALUATION: &str = "AnnualEvaluation";
    /// The emergency plan is on record, its last drill passed within a year.
    pub const EMERGENCY_PLAN_READY: &str = "EmergencyPlanReady";
    /// The status was written by someone other than the operator, claiming
    /// a step its audit chain does not hold; it was rewritten (sticky: the
    /// evidence stays).
    pub const STATUS_TAMPERED: &str = "StatusTampered";
}

/// Condition reasons, one constant each.
pub mod reasons {
    pub const PROVISIONED: &str = "Provisioned";
    pub const APPLY_FAILED: &str = "ApplyFailed";
    pub const VAULT_CONFIGURED: &str = "VaultConfigured";
    pub const VAULT_FAILED: &str = "VaultFailed";
    pub const DATABASE_CONFIGURED: &str = "DatabaseConfigured";
    pub const DATABASE_FAILED: &str = "DatabaseFailed";
    pub const DNS_CONTAINED: &str = "Contained";
    pub const DNS_NOT_CONTAINED: &str = "ForwardsTenantNames";
    pub const DNS_NOT_CHECKED: &str = "NotChecked";
    pub const NOT_STARTED: &str = "ValidityNotStarted";
    pub const WITHIN_VALIDITY: &str = "WithinValidity";
    pub const RENEWAL_WINDOW: &str = "RenewalWindowOpen";
    pub const EXPIRED: &str = "Expired";
    pub const SUSPENDED: &str = "Suspended";
    pub const ENDED: &str = "AuthorizationEnded";
    pub const ALL_ELIGIBLE: &str = "AllMembersEligible";
    pub const SOME_INELIGIBLE: &str = "SomeMembersIneligible";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const AWAITING: &str = "Awaiting";
    pub const FROZEN: &str = "Frozen";
    pub const FREEZE_INCOMPLETE: &str = "OpenBaoNotFrozen";
    pub const DATABASE_NOT_FROZEN: &str = "DatabaseNotFrozen";
    pub const RESUMED: &str = "Resumed";
    pub const AS_EXPECTED: &str = "AsExpected";
    pub const GRACE_PERIOD: &str = "GracePeriod";
    pub const AWAITING_BUREAU: &str = "AwaitingBureauDecision";
    pub const NAME_TAKEN: &str = "NameTaken";
    pub const NAMES_FREE: &str = "NamesFree";
    /// The status claimed what the audit chain does not hold.
    pub const FORGED_STATUS: &str = "ForgedStatus";
    /// The audit log cannot take records: access is widened by nothing
    /// until it is repaired (restrictions go ahead, their records held).
    pub const AUDIT_LOG_DAMAGED: &str = "AuditLogDamaged";
    pub const PLAN_ON_FILE: &str = "PlanOnFile";
    pub const RENEWAL_REQUESTED: &str = "RenewalRequested";
    pub const RENEWAL_APPROVED: &str = "RenewalApproved";
    pub const RENEWAL_REJECTED: &str = "RenewalRejected";
    pub const END_NEAR: &str = "EndNear";
    pub const NO_EXIT: &str = "NoExit";
    pub const EXIT_REQUESTED: &str = "ExitRequested";
    pub const EXIT_SCHEDULED: &str = "ExitScheduled";
    pub const EXIT_REJECTED: &str = "ExitRejected";
    pub const EVALUATION_PASSED: &str = "Passed";
    pub const NO_REPORT_DUE: &str = "NoReportDueYet";
    pub const REPORT_DUE_SOON: &str = "ReportDueSoon";
    pub const REPORT_OVERDUE: &str = "ReportOverdue";
    pub const AWAITING_EVALUATION: &str = "AwaitingEvaluation";
    pub const RECTIFICATION: &str = "Rectification";
    pub const AWAITING_REEVALUATION: &str = "AwaitingReevaluation";
    pub const RECTIFICATION_OVERDUE: &str = "RectificationOverdue";
    pub const EVALUATION_FAILED: &str = "EvaluationFailed";
    pub const NO_EMERGENCY_PLAN: &str = "NoEmergencyPlan";
    pub const NO_DRILL_YET: &str = "NoDrillYet";
    pub const DRILL_OVERDUE: &str = "DrillOverdue";
    pub const LAST_DRILL_FAILED: &str = "LastDrillFailed";
}

/// `"True"` or `"False"`.
pub fn status_str(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

/// A condition as the controller wants it, before it is merged with the
/// existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Desired {
    pub fn new(
        type_: &'static str,
        ok: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            ok,
            reason,
            message: message.into(),
        }
    }
}

/// Merges the desired conditions into the existing ones: a condition keeps
/// its `lastTransitionTime` unless its status changes; conditions of other
/// types are kept as they are. The result is sorted by type, so an unchanged
/// input gives an identical output.
pub fn merge(
    existing: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for d in desired {
        let status = status_str(d.ok).to_string();
        let previous = existing.iter().find(|c| c.type_ == d.type_);
        let last_transition_time = match previous {
            Some(p) if p.status == status => p.last_transition_time.clone(),
            _ => now.clone(),
        };
        out.push(Condition {
            type_: d.type_.to_string(),
            status,
            reason: d.reason.to_string(),
            message: d.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// The schema of a `conditions` list: a list-map keyed on `type`, so
/// server-side apply merges conditions by type.
pub fn conditions_schema(_: &mut SchemaGenerator) -> Schema {
    let schema = json!({
        "type": "array",
        "description": "The latest observations of the object's state, one per type.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {"type": "string", "maxLength": 316,
                         "description": "The condition, e.g. Ready, Frozen, Expiring."},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"],
                           "description": "Whether the condition holds: True, False or Unknown."},
                "reason": {"type": "string", "maxLength": 1024,
                           "description": "Why, in one CamelCase word a program can match."},
                "message": {"type": "string", "maxLength": 32768,
                            "description": "Why, in words a person reads."},
                "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0,
                                       "description": "The generation of the object this condition was set for."},
                "lastTransitionTime": {"type": "string", "format": "date-time",
                                       "description": "When the status last changed (not when the message did)."}
            }
        }
    });
    // The literal is an object, so this cannot fail; a failure would yield a
    // permissive schema rather than a panic.
    Schema::try_from(schema).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let t0 = time("2026-01-01T00:00:00Z");
        let t1 = time("2026-01-02T00:00:00Z");
        let first = merge(
            &[],
            &[Desired::new(types::READY, false, reasons::AWAITING, "wait")],
            Some(1),
            &t0,
        );
        assert_eq!(first[0].last_transition_time, t0);
        // Same status, new message: time kept.
        let second = merge(
            &first,
            &[Desired::new(
                types::READY,
                false,
                reasons::APPLY_FAILED,
                "boom",
            )],
            Some(2),
            &t1,
        );
        assert_eq!(second[0].last_transition_time, t0);
        assert_eq!(second[0].message, "boom");
        assert_eq!(second[0].observed_generation, Some(2));
        // Status flips: time moves.
        let third = merge(
            &second,
            &[Desired::new(types::READY, true, reasons::PROVISIONED, "ok")],
            Some(2),
            &t1,
        );
        assert_eq!(third[0].last_transition_time, t1);
        assert_eq!(third[0].status, "True");
    }

    #[test]
    fn other_conditions_are_kept_and_order_is_stable() {
        let t0 = time("2026-01-01T00:00:00Z");
        let a = merge(
            &[],
            &[
                Desired::new(types::READY, true, reasons::PROVISIONED, ""),
                Desired::new(types::PROVISIONED, true, reasons::PROVISIONED, ""),
            ],
            Some(1),
            &t0,
        );
        let b = merge(
            &a,
            &[Desired::new(
                types::RENEWAL_DUE,
                false,
                reasons::WITHIN_VALIDITY,
                "",
            )],
            Some(1),
            &t0,
        );
        let kinds: Vec<_> = b.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(kinds, ["Provisioned", "Ready", "RenewalDue"]);
        assert_eq!(merge(&b, &[], Some(1), &t0), b);
    }
}
