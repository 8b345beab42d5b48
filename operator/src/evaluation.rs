//! Annual reports and evaluations, as a pure function from the
//! reports on file and today to the authorization's standing: one condition,
//! the next deadline, and the next day the standing changes by itself.
//!
//! - The report for a calendar year is due by 31 March of the next year, for
//!   every year the validity touches.
//! - `Passed`: the unit continues. `Rectification`: 30 days from the
//!   evaluation to complete it, then the bureau evaluates again (`Passed` or
//!   `Failed`). `Failed`, or a rectification not passed in time, ends the
//!   authorization — by the bureau's decision: the operator only says so.

use jiff::ToSpan;
use jiff::civil::{Date, date};

use crate::api::authorization::Validity;
use crate::api::condition::{Desired, reasons, types};
use crate::api::report::{AnnualReportSpec, EvaluationResult};

/// Days a unit has to complete a rectification.
pub const RECTIFICATION_DAYS: i64 = 30;
/// How long before a report is due the standing warns.
pub const DUE_SOON_DAYS: i64 = 30;

/// The day the report for `year` is due: 31 March of the next year.
pub fn report_due(year: i16) -> Date {
    date(year.saturating_add(1), 3, 31)
}

/// The authorization's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// `AnnualEvaluation`: True while the unit is in good standing.
    pub condition: Desired,
    /// The next day the standing changes by itself (a deadline passes, or a
    /// report falls due soon).
    pub next_change: Option<Date>,
}

impl Standing {
    /// Whether the bureau should hear of it at once (an event, a record).
    pub fn warns(&self) -> bool {
        !self.condition.ok || self.condition.reason == reasons::REPORT_DUE_SOON
    }
}

/// The standing from the reports on file (`(name, spec)`), the validity and today.
pub fn standing(
    reports: &[(String, AnnualReportSpec)],
    validity: &Validity,
    today: Date,
) -> Standing {
    let said = |ok, reason, message: String, next_change| Standing {
        condition: Desired::new(types::ANNUAL_EVALUATION, ok, reason, message),
        next_change,
    };
    let ends = "ending the authorization is the bureau's decision (R-19): \
                `kubectl publicdata revoke` with the decision's reference";

    // A failure, at the first evaluation or after rectification.
    for (name, r) in reports {
        let failed = [&r.evaluation, &r.reevaluation]
            .into_iter()
            .flatten()
            .find(|e| e.result == EvaluationResult::Failed);
        if let Some(e) = failed {
            return said(
                false,
                reasons::EVALUATION_FAILED,
                format!(
                    "the {} evaluation ({name}) failed on {} (decision {}: {}); {ends}",
                    r.year, e.date, e.decision, e.reason
                ),
                None,
            );
        }
    }
    // A rectification under way, late, or awaiting the bureau.
    for (name, r) in reports {
        let Some(e) = r
            .evaluation
            .as_ref()
            .filter(|e| e.result == EvaluationResult::Rectification && r.reevaluation.is_none())
        else {
            continue;
        };
        let due = e
            .date
            .checked_add(RECTIFICATION_DAYS.days())
            .unwrap_or(e.date);
        let completed = r.rectification.as_ref().and_then(|x| x.completed);
        return match completed {
            Some(done) if done <= due => said(
                false,
                reasons::AWAITING_REEVALUATION,
                format!(
                    "the {} report ({name}) was rectified on {done}, within the 30 days to {due}: \
                     the bureau evaluates it again",
                    r.year
                ),
                None,
            ),
            _ if today > due => said(
                false,
                reasons::RECTIFICATION_OVERDUE,
                format!(
                    "the {} rectification ({name}) was due by {due} and was not completed in time; {ends}",
                    r.year
                ),
                None,
            ),
            _ => said(
                false,
                reasons::RECTIFICATION,
                format!(
                    "the {} evaluation ({name}) asks for rectification (decision {}: {}): complete it \
                     by {due} and record it under spec.rectification; then the bureau evaluates again",
                    r.year, e.decision, e.reason
                ),
                due.tomorrow().ok(),
            ),
        };
    }
    // Reports of past years not filed after their due date.
    let filed = |year: i16| reports.iter().any(|(_, r)| r.year == i32::from(year));
    let years = validity.not_before.year()..=validity.not_after.year();
    if let Some(year) = years.clone().find(|y| !filed(*y) && report_due(*y) < today) {
        return said(
            false,
            reasons::REPORT_OVERDUE,
            format!(
                "the {year} report was due by {}: file an AnnualReport for {year} in the dev namespace",
                report_due(year)
            ),
            None,
        );
    }
    // In good standing: say what is next.
    let next = years.clone().find(|y| !filed(*y));
    let next_due = next.map(report_due);
    let soon_from = next_due.and_then(|d| d.checked_sub(DUE_SOON_DAYS.days()).ok());
    let next_change = [
        soon_from.filter(|d| *d > today),
        next_due.and_then(|d| d.tomorrow().ok()),
    ]
    .into_iter()
    .flatten()
    .min();
    let upcoming = match (next, next_due) {
        (Some(y), Some(d)) => format!("; the {y} report is due by {d}"),
        _ => String::new(),
    };
    if let (Some(y), Some(d), Some(soon)) = (next, next_due, soon_from)
        && today >= soon
    {
        return said(
            true,
            reasons::REPORT_DUE_SOON,
            format!(
                "the {y} report is due by {d}: file an AnnualReport for {y} in the dev namespace"
            ),
            next_change,
        );
    }
    let awaiting = reports
        .iter()
        .filter(|(_, r)| r.evaluation.is_none())
        .map(|(name, r)| format!("{} ({name})", r.year))
        .collect::<Vec<_>>();
    if !awaiting.is_empty() {
        return said(
            true,
            reasons::AWAITING_EVALUATION,
            format!(
                "report {} filed, awaiting the bureau's evaluation{upcoming}",
                awaiting.join(", ")
            ),
            next_change,
        );
    }
    let passed = reports
        .iter()
        .filter_map(|(name, r)| {
            let e = r.reevaluation.as_ref().or(r.evaluation.as_ref())?;
            Some((r.year, name, e))
        })
        .max_by_key(|(year, _, _)| *year);
    match passed {
        Some((year, name, e)) => said(
            true,
            reasons::EVALUATION_PASSED,
            format!(
                "the {year} evaluation ({name}) passed on {} (decision {}){upcoming}",
                e.date, e.decision
            ),
            next_change,
        ),
        None => said(
            true,
            reasons::NO_REPORT_DUE,
            format!("no report due yet{upcoming}"),
            next_change,
        ),
    }
}

#[cfg(test)]
mod tests;
