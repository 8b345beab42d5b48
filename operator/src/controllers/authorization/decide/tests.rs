use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::date;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::authorization::State;
use crate::api::authorization::{OperatorAuthorizationStatus, VaultStatus};
use crate::api::condition::{self, status_str};

const GRACE: Duration = Duration::from_secs(3600);

fn authorization() -> OperatorAuthorization {
    serde_yaml::from_str(include_str!("../../../../../examples/authorization.yaml")).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn observed(oa: OperatorAuthorization, now: &str) -> Observed {
    let now = ts(now);
    Observed {
        status: oa.status.clone().unwrap_or_default(),
        namespaces: vec![
            ("harbor-analytics-dev".into(), Ownership::Absent),
            ("harbor-analytics-prod".into(), Ownership::Absent),
        ],
        reports: Vec::new(),
        exits: Vec::new(),
        exit: None,
        renewals: Vec::new(),
        today: now.to_zoned(jiff::tz::TimeZone::UTC).date(),
        now,
        oa,
        forged: Vec::new(),
    }
}

fn ns(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Namespace {
    let map = |kv: &[(&str, &str)]| {
        Some(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    let mut n = Namespace::default();
    n.metadata.name = Some("harbor-analytics-dev".into());
    n.metadata.labels = map(labels);
    n.metadata.annotations = map(annotations);
    n
}

fn with_status(mut o: Observed, f: impl FnOnce(&mut OperatorAuthorizationStatus)) -> Observed {
    f(&mut o.status);
    o
}

fn condition_of<'a>(conditions: &'a [Desired], type_: &str) -> &'a Desired {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no condition {type_} in {conditions:?}"))
}

const CODE: &str = "91310000MA1K4CM92X";
const MANAGED: (&str, &str) = (labels::MANAGED_BY, labels::MANAGER);
const TENANT: (&str, &str) = (labels::TENANT, "harbor-analytics");

#[test]
fn a_namespace_made_by_someone_else_is_taken_and_never_ours() {
    let t = "harbor-analytics";
    let mark = owner_mark(t, CODE);
    assert_eq!(ownership(None, t, CODE), Ownership::Absent);
    assert!(matches!(
        ownership(Some(&ns(&[], &[])), t, CODE),
        Ownership::Taken(_)
    ));
    // The operator's labels for another tenant.
    let other = ns(&[MANAGED, (labels::TENANT, "other")], &[]);
    assert!(matches!(
        ownership(Some(&other), t, CODE),
        Ownership::Taken(_)
    ));
    // The operator's labels without its mark: someone else's.
    assert!(matches!(
        ownership(Some(&ns(&[MANAGED, TENANT], &[])), t, CODE),
        Ownership::Taken(_)
    ));
    // Made for the same tenant id by another unit.
    let another_unit = ns(
        &[MANAGED, TENANT],
        &[(labels::OWNER, &owner_mark(t, "91110000802100433B"))],
    );
    assert!(matches!(
        ownership(Some(&another_unit), t, CODE),
        Ownership::Taken(_)
    ));
    assert_eq!(
        ownership(
            Some(&ns(&[MANAGED, TENANT], &[(labels::OWNER, &mark)])),
            t,
            CODE
        ),
        Ownership::Ours
    );
    let orphan = ns(
        &[MANAGED, TENANT, (labels::ORPHANED, "true")],
        &[
            (labels::OWNER, &mark),
            (labels::ORPHANED_AT, "2026-01-01T00:00:00Z"),
        ],
    );
    assert_eq!(
        ownership(Some(&orphan), t, CODE),
        Ownership::Orphaned {
            since: "2026-01-01T00:00:00Z".into()
        }
    );
}

#[test]
fn a_taken_name_refuses_provisioning_with_a_condition_that_names_it() {
    let mut o = observed(authorization(), "2027-03-01T10:00:00Z");
    o.namespaces[1].1 = Ownership::Taken(
        "namespace harbor-analytics-prod exists and was not made by the operator".into(),
    );
    let p = plan(&o, GRACE);
    let Step::Refuse(r) = &p.step else {
        panic!("expected a refusal, got {:?}", p.step)
    };
    assert_eq!(r.reason, reasons::NAME_TAKEN);
    assert!(
        r.message.contains("harbor-analytics-prod exists"),
        "{}",
        r.message
    );
    let names = condition_of(&p.conditions, types::NAMES_AVAILABLE);
    assert!(!names.ok && names.reason == reasons::NAME_TAKEN);
}

#[test]
fn a_live_domain_provisions_and_says_when_it_ends() {
    let p = plan(&observed(authorization(), "2027-03-01T10:00:00Z"), GRACE);
    assert_eq!(p.step, Step::Provision);
    let expiring = condition_of(&p.conditions, types::EXPIRING);
    assert!(!expiring.ok && expiring.message.contains("2030-12-31"));
}

#[test]
fn an_expiry_set_by_the_bureau_freezes_then_offboards_after_the_grace_period() {
    let mut oa = authorization();
    oa.metadata.annotations = Some(
        [(
            labels::VALIDITY_SET_BY.to_string(),
            "bureau-ann".to_string(),
        )]
        .into(),
    );
    oa.spec.validity.not_after = date(2027, 2, 28);
    let first = with_status(observed(oa.clone(), "2027-03-01T10:00:00Z"), |s| {
        s.phase = Some(Phase::Active)
    });
    let p = plan(&first, GRACE);
    assert_eq!(p.phase, Phase::Expiring);
    assert_eq!(
        p.step,
        Step::Freeze(Freeze::Expired {
            offboard_at: Some(ts("2027-03-01T11:00:00Z"))
        })
    );
    assert_eq!(p.expired_at, Some(ts("2027-03-01T10:00:00Z")));
    let expiring = condition_of(&p.conditions, types::EXPIRING);
    assert!(
        expiring.ok && expiring.reason == reasons::GRACE_PERIOD,
        "{expiring:?}"
    );
    assert!(
        expiring.message.contains("2027-03-01T11:00:00Z"),
        "{}",
        expiring.message
    );

    let over = with_status(observed(oa, "2027-03-01T11:00:00Z"), |s| {
        s.phase = Some(Phase::Expiring);
        s.expired_at = Some(Time(ts("2027-03-01T10:00:00Z")));
    });
    assert_eq!(
        plan(&over, GRACE).step,
        Step::Offboard {
            then: Phase::Expired
        }
    );
}

#[test]
fn an_expiry_nobody_in_the_bureau_set_freezes_and_waits_for_the_bureau() {
    let mut oa = authorization();
    oa.spec.validity.not_after = date(2027, 2, 28);
    let o = with_status(observed(oa, "2029-01-01T00:00:00Z"), |s| {
        s.phase = Some(Phase::Expiring);
        s.expired_at = Some(Time(ts("2027-03-01T10:00:00Z")));
    });
    let p = plan(&o, GRACE);
    assert_eq!(p.step, Step::Freeze(Freeze::Expired { offboard_at: None }));
    let expiring = condition_of(&p.conditions, types::EXPIRING);
    assert_eq!(expiring.reason, reasons::AWAITING_BUREAU);
}

#[test]
fn a_wrong_check_character_is_refused_before_anything_else() {
    let mut oa = authorization();
    oa.spec.unit.credit_code = "91310000MA1K4CM92Y".into();
    let p = plan(&observed(oa, "2027-03-01T10:00:00Z"), GRACE);
    assert!(matches!(
        p.step,
        Step::Refuse(Refusal {
            reason: reasons::INVALID_SPEC,
            ..
        })
    ));
}

#[test]
fn a_revocation_offboards_whatever_the_validity() {
    let mut oa = authorization();
    oa.spec.state = State::Revoked;
    let p = plan(&observed(oa, "2027-03-01T10:00:00Z"), GRACE);
    assert_eq!(
        p.step,
        Step::Offboard {
            then: Phase::Revoked
        }
    );
}

fn freeze_outcome(vault_error: Option<&str>) -> FreezeOutcome {
    FreezeOutcome {
        namespaces: vec!["t-dev".into(), "t-prod".into()],
        stopped: "1 workload controllers scaled to 0".into(),
        stopped_any: true,
        vault_error: vault_error.map(String::from),
        database: String::new(),
        database_error: None,
        identities: "publicdata-t-dev, publicdata-t-prod".into(),
    }
}

fn merged(
    status: &OperatorAuthorizationStatus,
    conditions: &[Desired],
) -> OperatorAuthorizationStatus {
    let mut next = status.clone();
    next.conditions = condition::merge(
        &status.conditions,
        conditions,
        Some(1),
        &Time(ts("2027-01-01T00:00:00Z")),
    );
    next
}

#[test]
fn a_freeze_is_recorded_and_announced_once_and_only_when_every_part_holds() {
    let status = OperatorAuthorizationStatus::default();
    let half = frozen(
        &status,
        Freeze::Suspended,
        "breach (decision D-1)",
        &freeze_outcome(Some("connection refused")),
    );
    let frozen_condition = condition_of(&half.conditions, types::FROZEN);
    assert!(!frozen_condition.ok, "never Frozen before OpenBao holds");
    assert_eq!(
        half.records.iter().map(|r| r.action).collect::<Vec<_>>(),
        ["FrozenPodsStopped", "TenantFreezeIncomplete"]
    );
    let status = merged(&status, &half.conditions);
    let whole = frozen(
        &status,
        Freeze::Suspended,
        "breach (decision D-1)",
        &freeze_outcome(None),
    );
    assert_eq!(whole.records[0].action, "TenantFrozen");
    assert!(whole.records[0].reason.contains("breach (decision D-1)"));
    assert_eq!(whole.notes[0].reason, reasons::FROZEN);
    let status = merged(&status, &whole.conditions);
    let again = frozen(
        &status,
        Freeze::Suspended,
        "breach (decision D-1)",
        &FreezeOutcome {
            stopped_any: false,
            ..freeze_outcome(None)
        },
    );
    assert!(
        again.records.is_empty() && again.notes.is_empty(),
        "{again:?}"
    );
    assert_eq!(
        status_str(condition_of(&again.conditions, types::FROZEN).ok),
        "True"
    );
}

#[test]
fn the_first_expiry_freeze_records_the_expiry() {
    let out = frozen(
        &OperatorAuthorizationStatus::default(),
        Freeze::Expired { offboard_at: None },
        "",
        &freeze_outcome(None),
    );
    assert_eq!(out.records[0].action, "ValidityExpired");
    assert_eq!(
        condition_of(&out.conditions, types::READY).reason,
        reasons::EXPIRED
    );
}

fn provision_outcome() -> ProvisionOutcome {
    ProvisionOutcome {
        dns: Some(Ok("contained".into())),
        namespaces: vec!["t-dev".into()],
        kubernetes_error: None,
        vault: Ok(VaultStatus {
            areas: vec!["areas/t-dev".into()],
            auth_mount: "publicdata-workloads".into(),
            roles: vec!["auth/publicdata-workloads/role/t-dev".into()],
            identities: vec!["publicdata-t-dev".into()],
            policies: vec!["publicdata-workload".into()],
        }),
        members: vec![],
        database: None,
        provisioned_recorded: false,
        adopted: vec![],
    }
}

#[test]
fn provisioning_is_recorded_once_and_a_failure_is_reported_not_hidden() {
    let oa = authorization();
    let status = OperatorAuthorizationStatus::default();
    let (phase, out) = provisioned(&oa, &status, "", &provision_outcome());
    assert_eq!(phase, Phase::Active);
    assert_eq!(out.records[0].action, "DomainProvisioned");
    // A successor that finds the record already written does not repeat it.
    let (_, again) = provisioned(
        &oa,
        &status,
        "",
        &ProvisionOutcome {
            provisioned_recorded: true,
            ..provision_outcome()
        },
    );
    assert!(again.records.is_empty());
    let (phase, failed) = provisioned(
        &oa,
        &status,
        "",
        &ProvisionOutcome {
            vault: Err("403 permission denied".into()),
            ..provision_outcome()
        },
    );
    assert_eq!(phase, Phase::Pending);
    assert_eq!(failed.records[0].action, "ProvisioningFailed");
    let ready = condition_of(&failed.conditions, types::READY);
    assert!(!ready.ok && ready.message.contains("403 permission denied"));
}

#[test]
fn a_renewal_after_expiry_is_recorded_as_a_renewal() {
    let oa = authorization();
    let status = OperatorAuthorizationStatus {
        phase: Some(Phase::Expiring),
        ..Default::default()
    };
    let (_, out) = provisioned(&oa, &status, "", &provision_outcome());
    assert_eq!(out.records[0].action, "TenantRenewed");
    assert!(out.records[0].reason.contains("2030-12-31"));
}

#[test]
fn the_emergency_plan_is_ready_with_a_passed_drill_within_a_year_and_says_why_not() {
    use crate::api::authorization::{Drill, DrillResult};
    let condition = |oa: &OperatorAuthorization, today| emergency_plan(oa, today);
    let mut oa = authorization();
    // The example: plan on file, drilled on 2026-10-15.
    let (ready, due) = condition(&oa, date(2026, 11, 27));
    assert!(ready.ok, "{}", ready.message);
    assert_eq!(ready.reason, condition::reasons::PLAN_ON_FILE);
    assert!(
        ready
            .message
            .contains("call Chen Jing (unit security officer, +86 571 8800 0042) first")
            && ready.message.contains("last drill 2026-10-15 (Passed)"),
        "{}",
        ready.message
    );
    assert_eq!(
        due,
        Some(date(2027, 10, 15)),
        "the controller comes back then"
    );
    // The last day before it is overdue, and the day it is.
    assert!(condition(&oa, date(2027, 10, 14)).0.ok);
    let (overdue, due) = condition(&oa, date(2027, 10, 15));
    assert_eq!(overdue.reason, condition::reasons::DRILL_OVERDUE);
    assert!(
        overdue.message.contains("overdue since 2027-10-15"),
        "{}",
        overdue.message
    );
    assert_eq!(due, None);

    let plan = oa.spec.emergency_plan.as_mut().unwrap();
    // A drill dated after today is not counted.
    plan.drills = vec![Drill {
        date: date(2026, 12, 1),
        result: DrillResult::Passed,
        notes: None,
    }];
    assert_eq!(
        condition(&oa, date(2026, 11, 27)).0.reason,
        condition::reasons::NO_DRILL_YET
    );
    // The newest drill counts, whatever the order; a failed one is said.
    let plan = oa.spec.emergency_plan.as_mut().unwrap();
    plan.drills = vec![
        Drill {
            date: date(2026, 11, 20),
            result: DrillResult::Failed,
            notes: None,
        },
        Drill {
            date: date(2026, 6, 1),
            result: DrillResult::Passed,
            notes: None,
        },
    ];
    let (failed, _) = condition(&oa, date(2026, 11, 27));
    assert_eq!(failed.reason, condition::reasons::LAST_DRILL_FAILED);
    assert!(!failed.ok && failed.message.contains("2026-11-20 (Failed)"));

    oa.spec.emergency_plan = None;
    let (none, due) = condition(&oa, date(2026, 11, 27));
    assert!(!none.ok && none.reason == condition::reasons::NO_EMERGENCY_PLAN);
    assert!(none.message.contains("R-31"));
    assert_eq!(due, None);
}

#[test]
fn renewal_is_due_six_months_ahead_follows_the_application_and_warns_as_the_end_nears() {
    use crate::api::renewal::{RenewalDecision, RenewalRequestSpec, RenewalResult};
    let v = authorization().spec.validity;
    let end = v.not_after;
    assert_eq!(end, date(2030, 12, 31));
    let none = renewal(&v, false, &[], date(2030, 6, 29));
    assert!(!none.ok && none.message == "renewal is due from 2030-06-30");
    let open = renewal(&v, true, &[], date(2030, 6, 30));
    assert!(open.ok && open.reason == condition::reasons::RENEWAL_WINDOW);
    let near = renewal(&v, true, &[], date(2030, 12, 2));
    assert!(near.ok && near.reason == condition::reasons::END_NEAR);
    assert!(near.message.contains("in 29 days"), "{}", near.message);
    assert_eq!(
        renewal(&v, true, &[], date(2030, 12, 1)).reason,
        condition::reasons::RENEWAL_WINDOW,
        "near from 30 days before the first day out of force"
    );

    let filed = |on, decision: Option<RenewalResult>| RenewalFiled {
        name: "renewal".into(),
        filed: on,
        spec: RenewalRequestSpec {
            not_after: date(2035, 12, 31),
            reason: "we continue".into(),
            decision: decision.map(|result| RenewalDecision {
                result,
                date: date(2030, 7, 10),
                decision: "PDB-RN-1".into(),
                by: "zhao.lei".into(),
                reason: "operates well".into(),
            }),
        },
    };
    let asked = renewal(&v, true, &[filed(date(2030, 6, 1), None)], date(2030, 7, 1));
    assert!(asked.ok && asked.reason == condition::reasons::RENEWAL_REQUESTED);
    assert!(
        asked
            .message
            .contains("filed on 2030-06-01 (on time: due from 2030-06-30)"),
        "{}",
        asked.message
    );
    let late = renewal(&v, true, &[filed(date(2030, 7, 1), None)], date(2030, 7, 1));
    assert!(
        late.message
            .contains("(late: renewal was due from 2030-06-30)"),
        "{}",
        late.message
    );
    let approved = renewal(
        &v,
        true,
        &[filed(date(2030, 6, 1), Some(RenewalResult::Approved))],
        date(2030, 7, 11),
    );
    assert_eq!(approved.reason, condition::reasons::RENEWAL_APPROVED);
    assert!(
        approved.message.contains("PDB-RN-1")
            && approved.message.contains("still ends on 2030-12-31")
    );
    let rejected = renewal(
        &v,
        true,
        &[filed(date(2030, 6, 1), Some(RenewalResult::Rejected))],
        date(2030, 7, 11),
    );
    assert_eq!(rejected.reason, condition::reasons::RENEWAL_REJECTED);

    // Once the bureau extended the validity, the application is done with.
    let mut renewed = v.clone();
    renewed.term_start = Some(date(2031, 1, 1));
    renewed.not_after = date(2035, 12, 31);
    let after = renewal(
        &renewed,
        false,
        &[filed(date(2030, 6, 1), Some(RenewalResult::Approved))],
        date(2030, 7, 11),
    );
    assert!(!after.ok && after.reason == condition::reasons::WITHIN_VALIDITY);
    assert!(
        after
            .message
            .starts_with("renewed: the current term runs from 2031-01-01 to 2035-12-31"),
        "{}",
        after.message
    );
}

#[test]
fn the_expiring_condition_warns_in_the_last_30_days() {
    let reason = |now: &str| {
        let mut oa = authorization();
        oa.status = Some(OperatorAuthorizationStatus {
            phase: Some(Phase::Active),
            ..Default::default()
        });
        plan(&observed(oa, now), GRACE)
            .conditions
            .into_iter()
            .find(|c| c.type_ == condition::types::EXPIRING)
            .map(|c| c.reason)
    };
    assert_eq!(
        reason("2030-12-01T12:00:00Z"),
        Some(condition::reasons::WITHIN_VALIDITY)
    );
    assert_eq!(
        reason("2030-12-02T00:00:00Z"),
        Some(condition::reasons::END_NEAR)
    );
    assert_eq!(
        reason("2030-12-31T23:59:59Z"),
        Some(condition::reasons::END_NEAR)
    );
}

#[test]
fn dns_not_contained_is_said_on_the_authorization_once_and_does_not_stop_the_domain() {
    let oa = authorization();
    let status = OperatorAuthorizationStatus::default();
    let leaky = ProvisionOutcome {
        dns: Some(Err("server block `.:53` sends names upstream".into())),
        ..provision_outcome()
    };
    let (phase, out) = provisioned(&oa, &status, "", &leaky);
    assert_eq!(phase, Phase::Active);
    let dns = condition_of(&out.conditions, types::DNS_CONTAINED);
    assert!(
        !dns.ok && dns.reason == reasons::DNS_NOT_CONTAINED,
        "{dns:?}"
    );
    assert!(dns.message.contains("sends names upstream"));
    assert!(
        out.notes
            .iter()
            .any(|n| n.reason == reasons::DNS_NOT_CONTAINED)
    );
    // Said once: the next pass finds it already False and warns no more.
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
    let status = OperatorAuthorizationStatus {
        conditions: crate::api::condition::merge(&[], &out.conditions, None, &now),
        ..Default::default()
    };
    let (_, again) = provisioned(&oa, &status, "", &leaky);
    assert!(
        !again
            .notes
            .iter()
            .any(|n| n.reason == reasons::DNS_NOT_CONTAINED)
    );
    // Not checked is not contained either.
    let unchecked = ProvisionOutcome {
        dns: None,
        ..provision_outcome()
    };
    let (_, out) = provisioned(&oa, &OperatorAuthorizationStatus::default(), "", &unchecked);
    let dns = condition_of(&out.conditions, types::DNS_CONTAINED);
    assert!(!dns.ok && dns.reason == reasons::DNS_NOT_CHECKED);
}
