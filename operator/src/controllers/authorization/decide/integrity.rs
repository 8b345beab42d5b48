//! The status is the operator's report, never its memory for what cannot be
//! undone. An offboarding that began, a domain disposed of, when an expiry's
//! grace period started and an early exit taken over from a request the
//! offboarding deleted: each is believed only when this authorization's own
//! audit chain holds the record the operator wrote when it happened (and,
//! for an expiry, only for the validity the bureau set now). A status that
//! claims more was written by someone else, bypassing the admission policy
//! that keeps status the operator's: the claim is taken back, and the
//! tampering is reported (docs/authorization.md, "Tampering").

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

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

/// How much earlier than its record a grace period's start may be: the
/// status carries the instant the freeze was decided, the record the
/// instant it was appended (milliseconds later).
const RECORD_SKEW: SignedDuration = SignedDuration::from_secs(60);

/// What this authorization's audit chain says of its irreversible steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    pub offboarding_started: bool,
    pub disposed: bool,
    /// When each expiry froze the domain.
    pub expiries: Vec<Timestamp>,
}

impl Chain {
    /// From the authorization's own trail (`report::trail_of`).
    pub fn from_trail(trail: &[Record]) -> Self {
        let mut chain = Self::default();
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

/// Whether the status claims a step the chain must back (most reconciles
/// claim none, and read no trail).
pub fn claims_irreversible(status: &OperatorAuthorizationStatus) -> bool {
    matches!(
        status.phase,
        Some(Phase::Offboarding | Phase::Revoked | Phase::Terminated | Phase::Expired)
    ) || status.disposal.is_some()
        || status.expired_at.is_some()
        || status.early_exit.is_some()
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
    let is_final = matches!(
        s.phase,
        Some(Phase::Revoked | Phase::Terminated | Phase::Expired)
    );
    if (is_final || s.disposal.is_some()) && !chain.disposed {
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
    if let Some(claimed) = s.expired_at.as_ref().map(|t| t.0) {
        // Only an expiry of the validity in force counts: one recorded
        // before a renewal moved the end is over.
        let ended = expiry_day(validity)
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX);
        let recorded = chain.expiries.iter().filter(|t| **t >= ended).max();
        match recorded {
            None => {
                forged.push(format!(
                    "an expiry frozen since {claimed}, with no {} record after the validity's end {}",
                    actions::VALIDITY_EXPIRED,
                    validity.not_after
                ));
                s.expired_at = None;
                s.offboard_after = None;
            }
            Some(at) if claimed < at.checked_sub(RECORD_SKEW).unwrap_or(*at) => {
                forged.push(format!(
                    "an expiry frozen since {claimed}, recorded at {at}"
                ));
                s.expired_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(*at));
                s.offboard_after = None;
            }
            Some(_) => {}
        }
    }
    if s.early_exit.is_some() && !chain.offboarding_started {
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
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

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

    #[test]
    fn a_status_that_claims_nothing_irreversible_reads_no_trail() {
        assert!(!claims_irreversible(&status(Phase::Active)));
        assert!(!claims_irreversible(&status(Phase::Suspended)));
        assert!(claims_irreversible(&status(Phase::Offboarding)));
        assert!(claims_irreversible(&status(Phase::Revoked)));
        let mut expiring = status(Phase::Expiring);
        assert!(!claims_irreversible(&expiring));
        expiring.expired_at = Some(Time(at("2026-07-01T00:00:05Z")));
        assert!(claims_irreversible(&expiring));
    }

    #[test]
    fn an_offboarding_nobody_started_is_taken_back() {
        let mut forged = status(Phase::Offboarding);
        forged.offboarding = Some("Frozen".into());
        let (s, why) = verify(&forged, &validity(), &Chain::default());
        assert_eq!(s.phase, None);
        assert_eq!(s.offboarding, None);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("OffboardingStarted"), "{why:?}");

        let started = Chain {
            offboarding_started: true,
            ..Default::default()
        };
        let (s, why) = verify(&forged, &validity(), &started);
        assert_eq!(s, forged);
        assert!(why.is_empty());
    }

    #[test]
    fn a_final_phase_without_a_disposal_record_is_taken_back() {
        let mut forged = status(Phase::Revoked);
        forged.disposal = Some(DisposalCertificate::default());
        let (s, why) = verify(&forged, &validity(), &Chain::default());
        assert_eq!((s.phase, s.disposal.is_none()), (None, true));
        assert_eq!(why.len(), 1, "{why:?}");
        // Mid-offboarding, it is the offboarding that goes on.
        let started = Chain {
            offboarding_started: true,
            ..Default::default()
        };
        let (s, _) = verify(&forged, &validity(), &started);
        assert_eq!(s.phase, Some(Phase::Offboarding));
        // Disposed for real: believed.
        let disposed = Chain {
            offboarding_started: true,
            disposed: true,
            ..Default::default()
        };
        let (s, why) = verify(&forged, &validity(), &disposed);
        assert_eq!(s, forged);
        assert!(why.is_empty());
    }

    #[test]
    fn a_grace_period_starts_when_the_chain_says_and_never_earlier() {
        let mut forged = status(Phase::Expiring);
        forged.expired_at = Some(Time(at("2026-01-01T00:00:00Z")));
        forged.offboard_after = Some(Time(at("2026-01-31T00:00:00Z")));
        // No record at all: the freeze starts its grace period afresh.
        let (s, why) = verify(&forged, &validity(), &Chain::default());
        assert_eq!((s.expired_at, s.offboard_after), (None, None));
        assert_eq!(why.len(), 1);
        // A record of this validity's expiry: its time, not the claim.
        let chain = Chain {
            expiries: vec![at("2026-07-01T00:00:03Z")],
            ..Default::default()
        };
        let (s, why) = verify(&forged, &validity(), &chain);
        assert_eq!(s.expired_at, Some(Time(at("2026-07-01T00:00:03Z"))));
        assert_eq!(why.len(), 1);
        // The operator's own status: a few milliseconds before its record.
        let mut own = status(Phase::Expiring);
        own.expired_at = Some(Time(at("2026-07-01T00:00:02.990Z")));
        let (s, why) = verify(&own, &validity(), &chain);
        assert_eq!(s, own);
        assert!(why.is_empty(), "{why:?}");
        // An expiry recorded before the bureau moved the end is over.
        let mut renewed = validity();
        renewed.not_after = date(2027, 6, 30);
        let (s, why) = verify(&own, &renewed, &chain);
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
        let (s, why) = verify(&forged, &validity(), &Chain::default());
        assert_eq!(s.early_exit, None);
        assert_eq!(why.len(), 1);
        let started = Chain {
            offboarding_started: true,
            ..Default::default()
        };
        let (s, why) = verify(&forged, &validity(), &started);
        assert_eq!(s, forged);
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
                offboarding_started: true,
                disposed: false,
                expiries: vec![at("2026-07-01T00:00:03Z")],
            }
        );
    }
}
