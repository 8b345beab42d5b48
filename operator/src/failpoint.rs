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

/// Says at startup whether failpoints can be armed in this build, and warns
/// when one is asked for in a build without them.
pub fn announce() {
    let asked = std::env::var("PUBLICDATA_FAILPOINT").ok();
    if cfg!(feature = "failpoints") {
        if let Some(name) = asked {
            tracing::warn!(failpoint = %name, "test failpoint armed: the operator aborts there");
        }
    } else if let Some(name) = asked {
        tracing::warn!(failpoint = %name, "PUBLICDATA_FAILPOINT is ignored: this build has no failpoints (a release build)");
    }
}
