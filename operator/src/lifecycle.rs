//! The lifecycle of an authorization, as a pure function from observed facts
//! to a phase and the action that gets there. No I/O: every transition is a
//! unit test below.
//!
//! ```text
//!           provision                      suspend (bureau)
//! Pending ------------> Active <-----------------------> Suspended (frozen)
//!                         |  \      resume (bureau)          |
//!    notAfter - 6 months  |   \ revoke / terminate / expire  | revoke / expire
//!    => RenewalDue        |    v                             v
//!                         +--> Offboarding (freeze, archive, wipe) --> Revoked / Terminated / Expired
//! ```

use jiff::ToSpan;
use jiff::civil::Date;

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
    /// Today, in UTC.
    pub today: Date,
    /// The phase recorded in the status, if any.
    pub phase: Option<Phase>,
    /// Whether the tenant domain was provisioned successfully at least once
    /// for the current generation.
    pub provisioned: bool,
    /// Whether an offboarding has completed (its certificate is recorded).
    pub offboarded: bool,
}

/// What the controller does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to change in the tenant domain.
    Nothing,
    /// Make the tenant domain exist as the spec says (idempotent).
    Provision,
    /// Close the domain to its members and workloads; delete nothing (R-27).
    Freeze,
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

/// Decides the phase and the action from the facts.
pub fn decide(facts: &Facts) -> Decision {
    let Facts {
        state,
        validity,
        today,
        phase,
        provisioned,
        offboarded,
    } = facts;
    let expiry = expiry_day(validity);
    let renewal_from = renewal_due_from(validity);
    let done = |phase| Decision {
        phase,
        action: Action::Nothing,
        renewal_due: false,
        next_change: None,
    };

    // Final phases are never left, whatever the spec says now.
    if let Some(p @ (Phase::Revoked | Phase::Terminated | Phase::Expired)) = phase {
        return done(*p);
    }
    let ending = match state {
        State::Revoked => Some(Phase::Revoked),
        State::Terminated => Some(Phase::Terminated),
        // Expiry without renewal ends the authorization like a revocation (R-7),
        // whether it was active or suspended.
        State::Active | State::Suspended if *today >= expiry => Some(Phase::Expired),
        State::Active | State::Suspended => None,
    };
    if let Some(then) = ending {
        if *offboarded {
            return done(then);
        }
        return Decision {
            phase: Phase::Offboarding,
            action: Action::Offboard { then },
            renewal_due: false,
            next_change: None,
        };
    }

    let renewal_due = *today >= renewal_from;
    if *state == State::Suspended {
        return Decision {
            phase: Phase::Suspended,
            action: Action::Freeze,
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
            },
            today,
            phase: Some(Phase::Active),
            provisioned: true,
            offboarded: false,
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
        };
        assert_eq!(renewal_due_from(&v), date(2030, 2, 28));
    }

    #[test]
    fn last_day_is_in_force_and_the_next_day_expires() {
        let last = decide(&facts(State::Active, date(2030, 12, 31)));
        assert_eq!(last.phase, Phase::Active);
        let after = decide(&facts(State::Active, date(2031, 1, 1)));
        assert_eq!(
            (after.phase, after.action),
            (
                Phase::Offboarding,
                Action::Offboard {
                    then: Phase::Expired
                }
            )
        );
    }

    #[test]
    fn suspension_freezes_and_resume_provisions_again() {
        let s = decide(&facts(State::Suspended, date(2027, 1, 1)));
        assert_eq!((s.phase, s.action), (Phase::Suspended, Action::Freeze));
        let r = decide(&Facts {
            phase: Some(Phase::Suspended),
            ..facts(State::Active, date(2027, 1, 2))
        });
        assert_eq!((r.phase, r.action), (Phase::Active, Action::Provision));
    }

    #[test]
    fn suspended_past_expiry_is_offboarded_as_expired() {
        let d = decide(&Facts {
            phase: Some(Phase::Suspended),
            ..facts(State::Suspended, date(2031, 2, 1))
        });
        assert_eq!(
            d.action,
            Action::Offboard {
                then: Phase::Expired
            }
        );
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
}
