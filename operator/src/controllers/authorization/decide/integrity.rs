//! The status is the operator's report, never its memory for what cannot be
//! undone. An offboarding that began, a domain disposed of, when an expiry's
//! grace period started and an early exit taken over from a request the
//! offboarding deleted: each is believed only when this authorization's own
//! audit chain holds the record the operator wrote when it happened (and,
//! for an expiry, only for the validity the bureau set now). A status that
//! claims more was written by someone else, bypassing the admission policy
//! that keeps status the operator's: the claim is taken back, and the
//! tampering is reported (docs/authorization.md, "Tampering").

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::authorization::{OperatorAuthorizationStatus, Phase, Validity};
use crate::audit::Record;
use crate::lifecycle::expiry_day;

/// The records that back irreversible steps, as the operator writes them.
pub mod actions {
    pub const OFFBOARDING_STARTED: &str = "OffboardingStarted";
    pub const DOMAIN_DISPOSED: &str = "DomainDisposed";
    pub const VALIDITY_EXPIRED: &str = "ValidityExpired";
    pub const STATUS_TAMPERED: &str = "StatusTampered";
}

/// How far a grace period's start in status may be from its record: the
/// status carries the instant the freeze was decided, the record the
/// instant it was appended, after the freeze itself (which waits for
/// OpenBao and the pods).
const RECORD_SKEW: SignedDuration = SignedDuration::from_secs(600);

/// What this authorization's audit chain says of its irreversible steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// How many records the authorization has at all (none: its audit log
    /// was lost or replaced, and nothing can be checked against it).
    pub records: usize,
    pub offboarding_started: bool,
    pub disposed: bool,
    /// When each expiry froze the domain.
    pub expiries: Vec<Timestamp>,
}

impl Chain {
    /// From the authorization's own trail (`report::trail_of`).
    pub fn from_trail(trail: &[Record]) -> Self {
        let mut chain = Self {
            records: trail.len(),
            ..Self::default()
        };
        for r in trail {
            match r.entry.action.as_str() {
                actions::OFFBOARDING_STARTED => chain.offboarding_started = true,
                actions::DOMAIN_DISPOSED => chain.disposed = true,
                actions::VALIDITY_EXPIRED => {
                    if let Ok(t) = r.time.parse::<Timestamp>() {
                        chain.expiries.push(t);
                    }
                }
                _ => {}
            }
        }
        chain
    }
}

/// Whether the chain must be read: the status claims a step it must back,
/// or the validity has ended (when the grace period began is the chain's to
/// say, whatever the status says). Most reconciles are neither, and read no
/// trail.
pub fn must_check(status: &OperatorAuthorizationStatus, validity: &Validity, today: Date) -> bool {
    status
        .phase
        .is_some_and(|p| p == Phase::Offboarding || p.is_final())
        || status.disposal.is_some()
        || status.expired_at.is_some()
        || status.early_exit.is_some()
        || today >= expiry_day(validity)
}

/// The status with every claim the chain does not back taken back, and a
/// line for each claim taken back (empty: the status is the operator's).
pub fn verify(
    status: &OperatorAuthorizationStatus,
    validity: &Validity,
    chain: &Chain,
) -> (OperatorAuthorizationStatus, Vec<String>) {
    let mut s = status.clone();
    let mut forged = Vec::new();
    let is_final = s.phase.is_some_and(Phase::is_final);
    // A log lost or replaced holds nothing of this authorization: a final
    // record is left as it is (it starts nothing), and nothing below is
    // believed.
    let lost = chain.records == 0;
    if (is_final || s.disposal.is_some()) && !chain.disposed && !lost {
        forged.push(format!(
            "phase {} and a disposal certificate, with no {} record",
            s.phase.map_or("none", Phase::as_str),
            actions::DOMAIN_DISPOSED
        ));
        s.disposal = None;
        if is_final {
            s.phase = chain.offboarding_started.then_some(Phase::Offboarding);
        }
    }
    if s.phase == Some(Phase::Offboarding) && !chain.offboarding_started {
        forged.push(format!(
            "phase Offboarding with no {} record",
            actions::OFFBOARDING_STARTED
        ));
        s.phase = None;
        s.offboarding = None;
    }
    // An offboarding that began is finished, whatever the status says now
    // (a crash between the record and the status write, or a status put
    // back to an earlier phase).
    if chain.offboarding_started
        && !s
            .phase
            .is_some_and(|p| p == Phase::Offboarding || p.is_final())
    {
        s.phase = Some(Phase::Offboarding);
    }
    // The grace period began when the first freeze of the validity in force
    // was recorded: one recorded before a renewal moved the end is over; a
    // status that says earlier would wipe sooner, one that says later (or
    // nothing, so that the next freeze records anew) would never wipe.
    let ended = expiry_day(validity)
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX);
    let recorded = chain
        .expiries
        .iter()
        .filter(|t| **t >= ended)
        .min()
        .copied();
    let claimed = s.expired_at.as_ref().map(|t| t.0);
    match (claimed, recorded) {
        (Some(claimed), None) if !lost => {
            forged.push(format!(
                "an expiry frozen since {claimed}, with no {} record after the validity's end {}",
                actions::VALIDITY_EXPIRED,
                validity.not_after
            ));
            s.expired_at = None;
            s.offboard_after = None;
        }
        (Some(claimed), Some(at)) if claimed.duration_since(at).abs() > RECORD_SKEW => {
            forged.push(format!(
                "an expiry frozen since {claimed}, recorded at {at}"
            ));
            s.expired_at = Some(Time(at));
            s.offboard_after = None;
        }
        // A crash between the record and the status write, or a status
        // that dropped it: the record says when.
        (None, Some(at)) => s.expired_at = Some(Time(at)),
        _ => {}
    }
    if s.early_exit.is_some() && !chain.offboarding_started && !lost {
        forged.push(format!(
            "an early exit taken over before any {} record",
            actions::OFFBOARDING_STARTED
        ));
        s.early_exit = None;
    }
    (s, forged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::authorization::DisposalCertificate;
    use crate::api::exit::AcceptedExit;
    use jiff::civil::date;

    fn validity() -> Validity {
        Validity {
            not_before: date(2026, 1, 1),
            not_after: date(2026, 6, 30),
            term_start: None,
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("a timestamp")
    }

    fn status(phase: Phase) -> OperatorAuthorizationStatus {
        OperatorAuthorizationStatus {
            phase: Some(phase),
            ..Default::default()
        }
    }

    /// A chain with the records of a provisioned authorization.
    fn chain() -> Chain {
        Chain {
            records: 3,
            ..Default::default()
        }
    }

    #[test]
    fn the_trail_is_read_only_for_a_claim_or_an_ended_validity() {
        let today = date(2026, 3, 1);
        assert!(!must_check(&status(Phase::Active), &validity(), today));
        assert!(!must_check(&status(Phase::Suspended), &validity(), today));
        assert!(must_check(&status(Phase::Offboarding), &validity(), today));
        assert!(must_check(&status(Phase::Revoked), &validity(), today));
        let mut expiring = status(Phase::Expiring);
        expiring.expired_at = Some(Time(at("2026-07-01T00:00:05Z")));
        assert!(must_check(&expiring, &validity(), today));
        // Past the end, whatever the status says.
        assert!(must_check(
            &status(Phase::Active),
            &validity(),
            date(2026, 7, 1)
        ));
    }

    #[test]
    fn an_offboarding_nobody_started_is_taken_back() {
        let mut forged = status(Phase::Offboarding);
        forged.offboarding = Some("Frozen".into());
        let (s, why) = verify(&forged, &validity(), &chain());
        assert_eq!(s.phase, None);
        assert_eq!(s.offboarding, None);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("OffboardingStarted"), "{why:?}");

        let started = Chain {
            offboarding_started: true,
            ..chain()
        };
        let (s, why) = verify(&forged, &validity(), &started);
        assert_eq!(s, forged);
        assert!(why.is_empty());
    }

    #[test]
    fn an_offboarding_that_began_goes_on_whatever_the_status_says() {
        let started = Chain {
            offboarding_started: true,
            ..chain()
        };
        for earlier in [Phase::Active, Phase::Suspended, Phase::Expiring] {
            let (s, _) = verify(&status(earlier), &validity(), &started);
            assert_eq!(s.phase, Some(Phase::Offboarding), "{earlier:?}");
        }
    }

    #[test]
    fn a_final_phase_without_a_disposal_record_is_taken_back() {
        let mut forged = status(Phase::Revoked);
        forged.disposal = Some(DisposalCertificate::default());
        let (s, why) = verify(&forged, &validity(), &chain());
        assert_eq!((s.phase, s.disposal.is_none()), (None, true));
        assert_eq!(why.len(), 1, "{why:?}");
        // Mid-offboarding, it is the offboarding that goes on.
        let started = Chain {
            offboarding_started: true,
            ..chain()
        };
        let (s, _) = verify(&forged, &validity(), &started);
        assert_eq!(s.phase, Some(Phase::Offboarding));
        // Disposed for real: believed.
        let disposed = Chain {
            offboarding_started: true,
            disposed: true,
            ..chain()
        };
        let (s, why) = verify(&forged, &validity(), &disposed);
        assert_eq!(s, forged);
        assert!(why.is_empty());
    }

    #[test]
    fn a_lost_audit_log_offboards_nothing_again_and_wipes_nothing() {
        // A final record stays final: nothing is offboarded a second time.
        let mut done = status(Phase::Revoked);
        done.disposal = Some(DisposalCertificate::default());
        let (s, why) = verify(&done, &validity(), &Chain::default());
        assert_eq!(s, done);
        assert!(why.is_empty());
        // An offboarding cannot be shown to have begun: nothing is wiped.
        let (s, _) = verify(&status(Phase::Offboarding), &validity(), &Chain::default());
        assert_eq!(s.phase, None);
    }

    #[test]
    fn a_grace_period_starts_when_the_chain_first_says_and_neither_earlier_nor_later() {
        let mut forged = status(Phase::Expiring);
        forged.expired_at = Some(Time(at("2026-01-01T00:00:00Z")));
        forged.offboard_after = Some(Time(at("2026-01-31T00:00:00Z")));
        // No record at all: the freeze starts its grace period afresh.
        let (s, why) = verify(&forged, &validity(), &chain());
        assert_eq!((s.expired_at, s.offboard_after), (None, None));
        assert_eq!(why.len(), 1);
        // A record of this validity's expiry: its time, not the claim.
        let recorded = Chain {
            expiries: vec![at("2026-07-01T00:00:03Z"), at("2026-07-09T00:00:00Z")],
            ..chain()
        };
        let (s, why) = verify(&forged, &validity(), &recorded);
        assert_eq!(s.expired_at, Some(Time(at("2026-07-01T00:00:03Z"))));
        assert_eq!(why.len(), 1);
        // Later than the first record (a wipe put off for ever): the record.
        let mut later = status(Phase::Expiring);
        later.expired_at = Some(Time(at("9999-01-01T00:00:00Z")));
        let (s, why) = verify(&later, &validity(), &recorded);
        assert_eq!(s.expired_at, Some(Time(at("2026-07-01T00:00:03Z"))));
        assert_eq!(why.len(), 1);
        // Dropped (so that the next freeze records anew): put back, quietly,
        // as after a crash between the record and the status write.
        let (s, why) = verify(&status(Phase::Expiring), &validity(), &recorded);
        assert_eq!(s.expired_at, Some(Time(at("2026-07-01T00:00:03Z"))));
        assert!(why.is_empty());
        // The operator's own status: a moment before its record.
        let mut own = status(Phase::Expiring);
        own.expired_at = Some(Time(at("2026-07-01T00:00:01.990Z")));
        let (s, why) = verify(&own, &validity(), &recorded);
        assert_eq!(s, own);
        assert!(why.is_empty(), "{why:?}");
        // An expiry recorded before the bureau moved the end is over.
        let mut renewed = validity();
        renewed.not_after = date(2027, 6, 30);
        let (s, why) = verify(&own, &renewed, &recorded);
        assert_eq!(s.expired_at, None);
        assert_eq!(why.len(), 1);
    }

    #[test]
    fn an_early_exit_in_status_counts_only_once_the_offboarding_began() {
        let mut forged = status(Phase::Active);
        forged.early_exit = Some(AcceptedExit {
            request: "leave".into(),
            effective_date: date(2026, 2, 1),
            decision: "forged".into(),
        });
        let (s, why) = verify(&forged, &validity(), &chain());
        assert_eq!(s.early_exit, None);
        assert_eq!(why.len(), 1);
        let started = Chain {
            offboarding_started: true,
            ..chain()
        };
        let (s, why) = verify(&forged, &validity(), &started);
        assert_eq!(s.early_exit, forged.early_exit);
        assert!(why.is_empty());
    }

    #[test]
    fn the_chain_is_read_from_the_records_the_operator_writes() {
        let entry = |action: &str| crate::audit::Entry {
            tenant: "t".into(),
            object: "OperatorAuthorization/t".into(),
            action: action.into(),
            reason: String::new(),
            outcome: "Success".into(),
            actor: None,
            uid: Some("u".into()),
            delivery: None,
        };
        let first = Record::next(
            None,
            "2026-07-01T00:00:03Z".into(),
            entry("ValidityExpired"),
        );
        let second = Record::next(
            Some(&first),
            "2026-07-31T00:00:04Z".into(),
            entry("OffboardingStarted"),
        );
        let chain = Chain::from_trail(&[first, second]);
        assert_eq!(
            chain,
            Chain {
                records: 2,
                offboarding_started: true,
                disposed: false,
                expiries: vec![at("2026-07-01T00:00:03Z")],
            }
        );
    }
}
