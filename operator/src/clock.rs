//! Today and now, as the operator acts on an authorization.
//!
//! A test build (feature `failpoints`, the e2e image) lets a test move one
//! authorization's calendar with the annotation `testing.publicdata.io/today:
//! YYYY-MM-DD`, so a date months ahead (an exit's effective day, a deadline)
//! is reached without waiting and without touching any other tenant. Release
//! builds have no such annotation: they read the system clock, always.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use kube::ResourceExt;

use crate::api::OperatorAuthorization;

/// The annotation a test build reads to move an authorization's calendar.
pub const TEST_TODAY: &str = "testing.publicdata.io/today";

/// Today (UTC) and now for `oa`.
pub fn of(oa: &OperatorAuthorization) -> (Date, Timestamp) {
    let now = Timestamp::now();
    let today = now.to_zoned(TimeZone::UTC).date();
    if cfg!(feature = "failpoints")
        && let Some(day) = oa
            .annotations()
            .get(TEST_TODAY)
            .and_then(|d| d.parse::<Date>().ok())
    {
        let days = today.until(day).map(|s| s.get_days()).unwrap_or_default();
        let shifted = now
            .checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days)))
            .unwrap_or(now);
        return (day, shifted);
    }
    (today, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_test_build_reads_the_calendar_annotation() {
        let mut oa: OperatorAuthorization =
            serde_yaml::from_str(include_str!("../../examples/authorization.yaml")).unwrap();
        oa.metadata.annotations = Some([(TEST_TODAY.to_string(), "2031-02-03".to_string())].into());
        let (today, now) = of(&oa);
        let real = Timestamp::now().to_zoned(TimeZone::UTC).date();
        if cfg!(feature = "failpoints") {
            assert_eq!(today, jiff::civil::date(2031, 2, 3));
            assert_eq!(now.to_zoned(TimeZone::UTC).date(), today);
        } else {
            assert!(
                today == real || today == real.tomorrow().unwrap(),
                "the system clock: {today}"
            );
        }
    }
}
