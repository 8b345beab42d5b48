//! Every date boundary of the standing: a report's due date and the warning
//! before it, the 30 days of a rectification, and the failures.

use jiff::civil::{Date, date};

use super::*;
use crate::api::report::{Evaluation, Rectification, ReportSections};

fn validity() -> Validity {
    Validity {
        not_before: date(2026, 1, 1),
        not_after: date(2030, 12, 31),
        term_start: None,
    }
}

fn evaluation(result: EvaluationResult, on: Date) -> Evaluation {
    Evaluation {
        result,
        date: on,
        decision: "PDB-EV-1".into(),
        by: "zhao.lei".into(),
        reason: "security management incomplete".into(),
    }
}

fn report(year: i32) -> (String, AnnualReportSpec) {
    let text = "described".to_string();
    (
        format!("report-{year}"),
        AnnualReportSpec {
            year,
            sections: ReportSections {
                storage: text.clone(),
                processing: text.clone(),
                analysis: text.clone(),
                security: text.clone(),
                utilization: text.clone(),
                market_operations: text,
            },
            document: None,
            rectification: None,
            evaluation: None,
            reevaluation: None,
        },
    )
}

fn at(reports: &[(String, AnnualReportSpec)], today: Date) -> Standing {
    standing(reports, &validity(), today)
}

#[test]
fn a_report_is_due_by_31_march_with_a_warning_30_days_before() {
    let s = at(&[], date(2026, 11, 27));
    assert!(s.condition.ok && s.condition.reason == reasons::NO_REPORT_DUE);
    assert!(
        s.condition
            .message
            .contains("the 2026 report is due by 2027-03-31")
    );
    assert_eq!(
        s.next_change,
        Some(date(2027, 3, 1)),
        "back when it is due soon"
    );
    assert!(!s.warns());

    let soon = at(&[], date(2027, 3, 1));
    assert!(soon.condition.ok && soon.condition.reason == reasons::REPORT_DUE_SOON);
    assert!(
        soon.warns(),
        "the unit and the bureau hear of it before it passes"
    );
    assert_eq!(soon.next_change, Some(date(2027, 4, 1)));
    assert_eq!(
        at(&[], date(2027, 3, 31)).condition.reason,
        reasons::REPORT_DUE_SOON
    );

    let late = at(&[], date(2027, 4, 1));
    assert!(!late.condition.ok && late.condition.reason == reasons::REPORT_OVERDUE);
    assert!(
        late.condition
            .message
            .contains("the 2026 report was due by 2027-03-31")
    );

    let filed = at(&[report(2026)], date(2027, 4, 1));
    assert!(filed.condition.ok && filed.condition.reason == reasons::AWAITING_EVALUATION);
    assert!(
        filed
            .condition
            .message
            .contains("the 2027 report is due by 2028-03-31")
    );
}

#[test]
fn a_passed_evaluation_keeps_the_unit_in_good_standing() {
    let mut r = report(2026);
    r.1.evaluation = Some(evaluation(EvaluationResult::Passed, date(2027, 5, 10)));
    let s = at(&[r], date(2027, 6, 1));
    assert!(s.condition.ok && s.condition.reason == reasons::EVALUATION_PASSED);
    assert!(
        s.condition
            .message
            .contains("the 2026 evaluation (report-2026) passed on 2027-05-10")
    );
}

#[test]
fn a_rectification_has_30_days_then_waits_for_the_bureau_or_is_overdue() {
    let mut r = report(2026);
    r.1.evaluation = Some(evaluation(
        EvaluationResult::Rectification,
        date(2027, 5, 10),
    ));
    // 30 days: due 2027-06-09, the last day to complete it.
    let open = at(std::slice::from_ref(&r), date(2027, 6, 9));
    assert!(!open.condition.ok && open.condition.reason == reasons::RECTIFICATION);
    assert!(
        open.condition.message.contains("complete it by 2027-06-09"),
        "{}",
        open.condition.message
    );
    assert_eq!(open.next_change, Some(date(2027, 6, 10)));
    let late = at(std::slice::from_ref(&r), date(2027, 6, 10));
    assert_eq!(late.condition.reason, reasons::RECTIFICATION_OVERDUE);
    assert!(late.condition.message.contains("the bureau's decision"));
    assert!(late.warns());

    // Completed on the last day: the bureau's turn, however long it takes.
    r.1.rectification = Some(Rectification {
        plan: "named a security officer per team".into(),
        completed: Some(date(2027, 6, 9)),
    });
    let waiting = at(std::slice::from_ref(&r), date(2027, 7, 1));
    assert_eq!(waiting.condition.reason, reasons::AWAITING_REEVALUATION);
    // Completed a day late: overdue.
    r.1.rectification = Some(Rectification {
        plan: "late".into(),
        completed: Some(date(2027, 6, 10)),
    });
    assert_eq!(
        at(std::slice::from_ref(&r), date(2027, 6, 10))
            .condition
            .reason,
        reasons::RECTIFICATION_OVERDUE
    );

    // Evaluated again: passed, or failed.
    r.1.reevaluation = Some(evaluation(EvaluationResult::Passed, date(2027, 6, 20)));
    let passed = at(std::slice::from_ref(&r), date(2027, 7, 1));
    assert!(passed.condition.ok && passed.condition.reason == reasons::EVALUATION_PASSED);
    assert!(passed.condition.message.contains("passed on 2027-06-20"));
    r.1.reevaluation = Some(evaluation(EvaluationResult::Failed, date(2027, 6, 20)));
    let failed = at(&[r], date(2027, 7, 1));
    assert_eq!(failed.condition.reason, reasons::EVALUATION_FAILED);
}

#[test]
fn a_failed_evaluation_names_the_bureaus_decision_and_never_ends_anything_itself() {
    let mut r = report(2026);
    r.1.evaluation = Some(evaluation(EvaluationResult::Failed, date(2027, 5, 10)));
    let s = at(&[r, report(2027)], date(2027, 5, 11));
    assert!(!s.condition.ok && s.condition.reason == reasons::EVALUATION_FAILED);
    assert!(
        s.condition
            .message
            .contains("failed on 2027-05-10 (decision PDB-EV-1: security management incomplete)")
            && s.condition.message.contains("kubectl publicdata revoke"),
        "{}",
        s.condition.message
    );
    assert_eq!(s.next_change, None);
}

#[test]
fn years_outside_the_validity_need_no_report() {
    // The last year of the validity is reported, the next one not.
    let mut reports: Vec<_> = (2026..=2030).map(report).collect();
    for r in &mut reports {
        r.1.evaluation = Some(evaluation(
            EvaluationResult::Passed,
            date(r.1.year as i16 + 1, 4, 1),
        ));
    }
    let s = at(&reports, date(2032, 1, 1));
    assert!(s.condition.ok && s.condition.reason == reasons::EVALUATION_PASSED);
    assert!(
        !s.condition.message.contains("due by"),
        "{}",
        s.condition.message
    );
}
