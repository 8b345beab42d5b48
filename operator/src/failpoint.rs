//! Test failpoints: with the `failpoints` feature (test builds only),
//! `PUBLICDATA_FAILPOINT=<name>` makes the process abort when it reaches that
//! point, so the e2e tests can kill the operator exactly there. Release builds
//! do not have the feature, and there this is a no-op.

/// Aborts the process if the failpoint `name` is armed.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if std::env::var("PUBLICDATA_FAILPOINT").is_ok_and(|v| v == name) {
        tracing::error!(failpoint = name, "failpoint reached: aborting");
        std::process::abort();
    }
}

/// Failpoints are compiled out of this build.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
