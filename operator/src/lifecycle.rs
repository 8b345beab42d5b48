//! The lifecycle of an authorization, as a pure function from observed facts
//! to a phase and the action that gets there. No I/O: every transition is a
//! unit test below.
//!
//! ```text
//!           provision                      suspend (bureau)
//! Pending ------------> Active <-----------------------> Suspended (frozen)
//!                         |  \      resume (bureau)          |
//!    notAfter - 6 months  |   \ revoke / terminate (bureau)  | revoke / terminate
//!    => RenewalDue        |    v                             v
//!                         |    Offboarding (freeze, archive, wipe) --> Revoked / Terminated / Expired
//!       notAfter passed   |                 ^
//!                         v                 | grace period over, and the bureau set notAfter
//!                      Expiring (frozen) ---+
//!                         | renewal (bureau moves notAfter) => Active again
//! ```
//!
//! Nothing irreversible happens without the bureau: an expiry first freezes
//! (R-7), and offboards only after a grace period, and only when the bureau
//! itself set the `notAfter` that passed (the API server stamps who did). An
//! expiry nobody in the bureau set stays frozen until the bureau renews or
//! ends the authorization.

use std::time::Duration;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};

use crate::api::authorization::{Phase, State, Validity};

/// How long before `notAfter` renewal is due (R-6).
pub const RENEWAL_NOTICE_MONTHS: i64 = 6;

/// What the controller observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The state the bureau set.
    pub state: State,
    /// The validity window.
    pub validity: Validity,
    /// Whether the bureau itself set the validity (the API server's stamp).
    pub validity_by_bureau: bool,
    /// Today, in UTC.
    pub today: Date,
    /// Now.
    pub now: Timestamp,
    /// The phase recorded in the status, if any.
    pub phase: Option<Phase>,
    /// Whether the tenant domain was provisioned successfully at least once
    /// for the current generation.
    pub provisioned: bool,
    /// Whether an offboarding has completed (its certificate is recorded).
    pub offboarded: bool,
    /// When the domain was frozen because its validity had passed.
    pub expired_at: Option<Timestamp>,
    /// How long an expired domain stays frozen before it is offboarded.
    pub grace: Duration,
    /// The effective date of an early exit the bureau accepted (R-8).
    pub exit_on: Option<Date>,
}

/// Why a domain is frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freeze {
    /// The bureau suspended it.
    Suspended,
    /// Its validity passed. Offboarded at `offboard_at`; `None` when the
    /// bureau did not set the `notAfter` that passed, so only the bureau's
    /// decision (renewal, revocation, termination) moves it on.
    Expired { offboard_at: Option<Timestamp> },
}

/// What the controller does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to change in the tenant domain.
    Nothing,
    /// Make the tenant domain exist as the spec says (idempotent).
    Provision,
    /// Close the domain to its members and workloads; delete nothing (R-27).
    Freeze(Freeze),
    /// Freeze, archive, wipe; then record the final phase (R-7, R-8, R-28).
    Offboard { then: Phase },
}

/// The outcome: the phase to record, the action to take, whether renewal is
/// due, and the next day on which the facts change by themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub phase: Phase,
    pub action: Action,
    pub renewal_due: bool,
    pub next_change: Option<Date>,
}

/// The first day on which renewal is due: six calendar months before
/// `notAfter` (R-6).
pub fn renewal_due_from(validity: &Validity) -> Date {
    validity
        .not_after
        .checked_sub(RENEWAL_NOTICE_MONTHS.months())
        .unwrap_or(validity.not_before)
}

/// The first day the authorization is no longer in force.
pub fn expiry_day(validity: &Validity) -> Date {
    validity.not_after.tomorrow().unwrap_or(validity.not_after)
}

/// Decides the phase and the action from the facts; an accepted early exit
/// is one more day on which they change by themselves.
pub fn decide(facts: &Facts) -> Decision {
    let mut decision = decide_now(facts);
    if let Some(exit) = facts.exit_on.filter(|d| *d > facts.today)
        && !matches!(decision.action, Action::Offboard { .. } | Action::Nothing)
    {
        decision.next_change = Some(decision.next_change.map_or(exit, |n| n.min(exit)));
    }
    decision
}

fn decide_now(facts: &Facts) -> Decision {
    let Facts {
        state,
        validity,
        validity_by_bureau,
        today,
        now,
        phase,
        provisioned,
        offboarded,
        expired_at,
        grace,
        exit_on,
    } = facts;
    let expiry = expiry_day(validity);
    let renewal_from = renewal_due_from(validity);
    let done = |phase| Decision {
        phase,
        action: Action::Nothing,
        renewal_due: false,
        next_change: None,
    };
    let offboard = |then| {
        if *offboarded {
            return done(then);
        }
        Decision {
            phase: Phase::Offboarding,
            action: Action::Offboard { then },
            renewal_due: false,
            next_change: None,
        }
    };

    // Final phases are never left, whatever the spec says now.
    if let Some(p @ (Phase::Revoked | Phase::Terminated | Phase::Expired)) = phase {
        return done(*p);
    }
    match state {
        State::Revoked => return offboard(Phase::Revoked),
        State::Terminated => return offboard(Phase::Terminated),
        State::Active | State::Suspended => {}
    }
    // An offboarding that began is finished: a domain half wiped is never
    // provisioned again (only an expiry starts one without a final state).
    if *phase == Some(Phase::Offboarding) {
        return offboard(if exit_on.is_some() {
            Phase::Terminated
        } else {
            Phase::Expired
        });
    }
    // R-8: an early exit the bureau accepted ends the authorization on its
    // date, not a day before.
    if exit_on.is_some_and(|d| *today >= d) {
        return offboard(Phase::Terminated);
    }
    if *today >= expiry {
        // R-7: frozen first; offboarded like a revocation after the grace
        // period, and only if the bureau set the end that passed.
        let offboard_at = validity_by_bureau.then(|| {
            let since = expired_at.unwrap_or(*now);
            since.checked_add(*grace).unwrap_or(Timestamp::MAX)
        });
        if offboard_at.is_some_and(|at| *now >= at) {
            return offboard(Phase::Expired);
        }
        return Decision {
            phase: Phase::Expiring,
            action: Action::Freeze(Freeze::Expired { offboard_at }),
            renewal_due: true,
            next_change: None,
        };
    }

    let renewal_due = *today >= renewal_from;
    if *state == State::Suspended {
        return Decision {
            phase: Phase::Suspended,
            action: Action::Freeze(Freeze::Suspended),
            renewal_due,
            next_change: Some(expiry),
        };
    }
    if *today < validity.not_before {
        return Decision {
            phase: Phase::Pending,
            action: Action::Nothing,
            renewal_due: false,
            next_change: Some(validity.not_before),
        };
    }
    let next_change = if renewal_due { expiry } else { renewal_from };
    Decision {
        phase: if *provisioned {
            Phase::Active
        } else {
            Phase::Pending
        },
        action: Action::Provision,
        renewal_due,
        next_change: Some(next_change),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn facts(state: State, today: Date) -> Facts {
        Facts {
            state,
            validity: Validity {
                not_before: date(2026, 1, 1),
                not_after: date(2030, 12, 31),
                term_start: None,
            },
            validity_by_bureau: true,
            today,
            now: today
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp())
                .unwrap_or(Timestamp::UNIX_EPOCH),
            phase: Some(Phase::Active),
            provisioned: true,
            offboarded: false,
            expired_at: None,
            grace: Duration::from_secs(30 * 86400),
            exit_on: None,
        }
    }

    #[test]
    fn before_not_before_it_is_pending_and_waits() {
        let d = decide(&Facts {
            phase: None,
            provisioned: false,
            ..facts(State::Active, date(2025, 12, 31))
        });
        assert_eq!(d.phase, Phase::Pending);
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.next_change, Some(date(2026, 1, 1)));
    }

    #[test]
    fn new_authorization_is_pending_until_provisioned_then_active() {
        let first = decide(&Facts {
            phase: None,
            provisioned: false,
            ..facts(State::Active, date(2026, 1, 1))
        });
        assert_eq!(
            (first.phase, first.action),
            (Phase::Pending, Action::Provision)
        );
        let then = decide(&facts(State::Active, date(2026, 1, 1)));
        assert_eq!(
            (then.phase, then.action),
            (Phase::Active, Action::Provision)
        );
        assert!(!then.renewal_due);
        assert_eq!(then.next_change, Some(date(2030, 6, 30)));
    }

    #[test]
    fn renewal_is_due_from_six_months_before_not_after() {
        assert!(!decide(&facts(State::Active, date(2030, 6, 29))).renewal_due);
        let due = decide(&facts(State::Active, date(2030, 6, 30)));
        assert!(due.renewal_due);
        assert_eq!(due.phase, Phase::Active);
        assert_eq!(due.next_change, Some(date(2031, 1, 1)));
        // Month ends clamp: six months before Aug 31 is Feb 28 (or 29).
        let v = Validity {
            not_before: date(2026, 1, 1),
            not_after: date(2030, 8, 31),
            term_start: None,
        };
        assert_eq!(renewal_due_from(&v), date(2030, 2, 28));
    }

    #[test]
    fn the_day_after_not_after_freezes_first_and_offboards_after_the_grace_period() {
        let last = decide(&facts(State::Active, date(2030, 12, 31)));
        assert_eq!(last.phase, Phase::Active);
        let first = facts(State::Active, date(2031, 1, 1));
        let frozen = decide(&first);
        let grace_end = first.now.checked_add(first.grace).unwrap();
        assert_eq!(
            (frozen.phase, frozen.action),
            (
                Phase::Expiring,
                Action::Freeze(Freeze::Expired {
                    offboard_at: Some(grace_end)
                })
            )
        );
        // The grace period counts from the freeze, not from each look.
        let later = Facts {
            phase: Some(Phase::Expiring),
            expired_at: Some(first.now),
            now: first.now.checked_add(Duration::from_secs(86400)).unwrap(),
            ..first.clone()
        };
        assert_eq!(
            decide(&later).action,
            Action::Freeze(Freeze::Expired {
                offboard_at: Some(grace_end)
            })
        );
        let over = Facts {
            now: grace_end,
            ..later
        };
        assert_eq!(
            (decide(&over).phase, decide(&over).action),
            (
                Phase::Offboarding,
                Action::Offboard {
                    then: Phase::Expired
                }
            )
        );
    }

    #[test]
    fn an_expiry_the_bureau_did_not_set_never_offboards() {
        let f = Facts {
            validity_by_bureau: false,
            phase: Some(Phase::Expiring),
            ..facts(State::Active, date(2031, 1, 1))
        };
        let years_later = Facts {
            expired_at: Some(f.now),
            now: f
                .now
                .checked_add(Duration::from_secs(3 * 365 * 86400))
                .unwrap(),
            ..f
        };
        let d = decide(&years_later);
        assert_eq!(
            (d.phase, d.action),
            (
                Phase::Expiring,
                Action::Freeze(Freeze::Expired { offboard_at: None })
            )
        );
    }

    #[test]
    fn a_renewal_while_expiring_provisions_again() {
        let mut f = Facts {
            phase: Some(Phase::Expiring),
            ..facts(State::Active, date(2031, 1, 5))
        };
        f.expired_at = Some(f.now);
        f.validity.not_after = date(2033, 12, 31);
        let d = decide(&f);
        assert_eq!((d.phase, d.action), (Phase::Active, Action::Provision));
    }

    #[test]
    fn an_offboarding_that_began_is_finished_even_if_renewed() {
        let mut f = Facts {
            phase: Some(Phase::Offboarding),
            ..facts(State::Active, date(2027, 1, 1))
        };
        f.validity.not_after = date(2030, 12, 31);
        assert_eq!(
            decide(&f).action,
            Action::Offboard {
                then: Phase::Expired
            }
        );
    }

    #[test]
    fn suspension_freezes_and_resume_provisions_again() {
        let s = decide(&facts(State::Suspended, date(2027, 1, 1)));
        assert_eq!(
            (s.phase, s.action),
            (Phase::Suspended, Action::Freeze(Freeze::Suspended))
        );
        let r = decide(&Facts {
            phase: Some(Phase::Suspended),
            ..facts(State::Active, date(2027, 1, 2))
        });
        assert_eq!((r.phase, r.action), (Phase::Active, Action::Provision));
    }

    #[test]
    fn suspended_past_expiry_is_expiring() {
        let d = decide(&Facts {
            phase: Some(Phase::Suspended),
            ..facts(State::Suspended, date(2031, 2, 1))
        });
        assert_eq!(d.phase, Phase::Expiring);
        assert!(matches!(d.action, Action::Freeze(Freeze::Expired { .. })));
    }

    #[test]
    fn revoke_and_terminate_offboard_then_stay_final() {
        for (state, then) in [
            (State::Revoked, Phase::Revoked),
            (State::Terminated, Phase::Terminated),
        ] {
            let going = decide(&facts(state, date(2027, 1, 1)));
            assert_eq!(
                (going.phase, going.action),
                (Phase::Offboarding, Action::Offboard { then })
            );
            let done = decide(&Facts {
                phase: Some(Phase::Offboarding),
                offboarded: true,
                ..facts(state, date(2027, 1, 1))
            });
            assert_eq!((done.phase, done.action), (then, Action::Nothing));
        }
    }

    #[test]
    fn final_phases_are_never_left() {
        for final_phase in [Phase::Revoked, Phase::Terminated, Phase::Expired] {
            // Even if the spec somehow said Active again within validity.
            let d = decide(&Facts {
                phase: Some(final_phase),
                ..facts(State::Active, date(2027, 1, 1))
            });
            assert_eq!((d.phase, d.action), (final_phase, Action::Nothing));
        }
    }

    #[test]
    fn revocation_of_a_pending_authorization_still_offboards() {
        let d = decide(&Facts {
            phase: Some(Phase::Pending),
            provisioned: false,
            ..facts(State::Revoked, date(2025, 6, 1))
        });
        assert_eq!(
            d.action,
            Action::Offboard {
                then: Phase::Revoked
            }
        );
    }

    #[test]
    fn an_accepted_early_exit_offboards_on_its_date_and_not_before() {
        let exit = date(2027, 6, 1);
        let eve = decide(&Facts {
            exit_on: Some(exit),
            ..facts(State::Active, date(2027, 5, 31))
        });
        assert_eq!(eve.phase, Phase::Active);
        assert_eq!(eve.action, Action::Provision);
        assert_eq!(
            eve.next_change,
            Some(exit),
            "the controller comes back that day"
        );
        for state in [State::Active, State::Suspended] {
            let day = decide(&Facts {
                exit_on: Some(exit),
                ..facts(state, exit)
            });
            assert_eq!(day.phase, Phase::Offboarding, "{state:?}");
            assert_eq!(
                day.action,
                Action::Offboard {
                    then: Phase::Terminated
                }
            );
        }
        // An offboarding under way finishes as Terminated; a finished one stays.
        let going = decide(&Facts {
            exit_on: Some(exit),
            phase: Some(Phase::Offboarding),
            ..facts(State::Active, date(2027, 6, 2))
        });
        assert_eq!(
            going.action,
            Action::Offboard {
                then: Phase::Terminated
            }
        );
        let done = decide(&Facts {
            exit_on: Some(exit),
            phase: Some(Phase::Terminated),
            offboarded: true,
            ..facts(State::Active, date(2027, 6, 2))
        });
        assert_eq!(
            (done.phase, done.action),
            (Phase::Terminated, Action::Nothing)
        );
    }
}
