//! Early exit, as a pure function from the unit's exit requests and
//! today to condition `EarlyExit` and the day the domain is offboarded.
//!
//! A unit asks at least 6 months ahead; the bureau accepts or rejects. The
//! lifecycle offboards on an accepted request's effective date, never before.

use jiff::ToSpan;
use jiff::civil::Date;

use crate::api::condition::{Desired, reasons, types};
use crate::api::exit::{ExitRequestSpec, ExitResult};

/// The notice a unit gives before it exits.
pub const NOTICE_MONTHS: i64 = 6;

/// An exit request as filed.
pub type Filed = crate::api::Filed<ExitRequestSpec>;

/// The exit the bureau accepted: the domain is offboarded on its date.
pub use crate::api::exit::AcceptedExit as Accepted;

/// The earliest day a request filed on `filed` may take effect.
pub fn earliest(filed: Date) -> Date {
    filed.checked_add(NOTICE_MONTHS.months()).unwrap_or(filed)
}

/// The exit the bureau accepted, if any (the earliest, should there be several).
pub fn accepted(requests: &[Filed]) -> Option<Accepted> {
    requests
        .iter()
        .filter_map(|r| {
            let d = r.spec.decision.as_ref()?;
            (d.result == ExitResult::Accepted).then(|| Accepted {
                request: r.name.clone(),
                effective_date: r.spec.effective_date,
                decision: d.decision.clone(),
            })
        })
        .min_by_key(|a| a.effective_date)
}

/// Condition `EarlyExit` and the accepted exit, if any.
pub fn standing(requests: &[Filed], today: Date) -> (Desired, Option<Accepted>) {
    let said = |ok, reason, message: String| Desired::new(types::EARLY_EXIT, ok, reason, message);
    let accepted = accepted(requests);
    if let Some(a) = &accepted {
        let when = match today.until(a.effective_date).map(|s| s.get_days()) {
            Ok(days) if days > 0 => format!("on {} (in {days} days)", a.effective_date),
            _ => format!("since {}", a.effective_date),
        };
        return (
            said(
                true,
                reasons::EXIT_SCHEDULED,
                format!(
                    "early exit {} accepted under decision {}: the domain is offboarded {when} \
                     (wiped, records kept) and the authorization ends Terminated",
                    a.request, a.decision
                ),
            ),
            accepted,
        );
    }
    let pending: Vec<&Filed> = requests
        .iter()
        .filter(|r| r.spec.decision.is_none())
        .collect();
    if let Some(r) = pending.iter().min_by_key(|r| r.spec.effective_date) {
        let first = earliest(r.filed);
        let notice = if r.spec.effective_date < first {
            format!(
                "; it gives less than {NOTICE_MONTHS} months' notice (filed {}, earliest {first}, R-8)",
                r.filed
            )
        } else {
            String::new()
        };
        return (
            said(
                true,
                reasons::EXIT_REQUESTED,
                format!(
                    "early exit {} asks to end on {}{notice}: awaiting the bureau's decision",
                    r.name, r.spec.effective_date
                ),
            ),
            None,
        );
    }
    match requests
        .iter()
        .filter_map(|r| Some((r, r.spec.decision.as_ref()?)))
        .next_back()
    {
        Some((r, d)) => (
            said(
                false,
                reasons::EXIT_REJECTED,
                format!(
                    "early exit {} rejected under decision {} on {}: {}",
                    r.name, d.decision, d.date, d.reason
                ),
            ),
            None,
        ),
        None => (
            said(false, reasons::NO_EXIT, "no early exit requested".into()),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::api::exit::ExitDecision;

    fn request(name: &str, filed: Date, effective: Date, result: Option<ExitResult>) -> Filed {
        Filed {
            name: name.into(),
            filed,
            spec: ExitRequestSpec {
                effective_date: effective,
                reason: "the unit winds up its data business".into(),
                disposal_plan: "delete everything; hand back nothing".into(),
                decision: result.map(|result| ExitDecision {
                    result,
                    date: filed,
                    decision: "PDB-EX-1".into(),
                    by: "zhao.lei".into(),
                    reason: "notice given".into(),
                }),
            },
        }
    }

    #[test]
    fn six_months_notice_from_the_day_it_is_filed() {
        assert_eq!(earliest(date(2026, 11, 27)), date(2027, 5, 27));
        assert_eq!(earliest(date(2026, 8, 31)), date(2027, 2, 28), "month end");
        let short = request("exit", date(2026, 11, 27), date(2027, 5, 26), None);
        let (c, accepted) = standing(&[short], date(2026, 11, 27));
        assert!(c.ok && c.reason == reasons::EXIT_REQUESTED);
        assert!(
            c.message
                .contains("less than 6 months' notice (filed 2026-11-27, earliest 2027-05-27"),
            "{}",
            c.message
        );
        assert_eq!(accepted, None);
        let enough = request("exit", date(2026, 11, 27), date(2027, 5, 27), None);
        let (c, _) = standing(&[enough], date(2026, 11, 27));
        assert!(!c.message.contains("notice"), "{}", c.message);
    }

    #[test]
    fn an_accepted_exit_is_scheduled_on_its_date_and_a_rejected_one_says_why() {
        let accepted = request(
            "exit",
            date(2026, 11, 27),
            date(2027, 6, 1),
            Some(ExitResult::Accepted),
        );
        let (c, a) = standing(std::slice::from_ref(&accepted), date(2027, 5, 31));
        assert!(c.ok && c.reason == reasons::EXIT_SCHEDULED);
        assert!(
            c.message.contains("offboarded on 2027-06-01 (in 1 days)"),
            "{}",
            c.message
        );
        assert_eq!(a.map(|a| a.effective_date), Some(date(2027, 6, 1)));
        let rejected = request(
            "exit",
            date(2026, 11, 27),
            date(2027, 6, 1),
            Some(ExitResult::Rejected),
        );
        let (c, a) = standing(&[rejected], date(2026, 12, 1));
        assert!(!c.ok && c.reason == reasons::EXIT_REJECTED && c.message.contains("PDB-EX-1"));
        assert_eq!(a, None);
        let (c, _) = standing(&[], date(2026, 12, 1));
        assert_eq!(c.reason, reasons::NO_EXIT);
    }
}
