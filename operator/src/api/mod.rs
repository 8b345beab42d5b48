//! The custom resources of `publicdata.io/v1alpha1`, one file per kind.

// `printcolumn(name = .., type_ = ..)` repeats keys by design; clippy reads
// the repeats as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod authorization;
pub mod condition;
pub mod dataset;
pub mod exit;
pub mod export;
pub mod renewal;
pub mod report;
pub mod scenario;
pub mod workloads;

pub use authorization::{
    OperatorAuthorization, OperatorAuthorizationSpec, OperatorAuthorizationStatus,
};
pub use dataset::{PublicDataset, PublicDatasetSpec};
pub use exit::{ExitRequest, ExitRequestSpec};
pub use export::{ExportRequest, ExportRequestSpec, ExportRequestStatus};
pub use renewal::{RenewalRequest, RenewalRequestSpec};
pub use report::{AnnualReport, AnnualReportSpec};
pub use scenario::{DataScenario, DataScenarioSpec, DataScenarioStatus};

/// A decision the bureau records on what a unit filed (an annual report, an
/// exit or renewal request): the result, when, under which decision, by
/// whom (checked on admission) and why.
#[derive(schemars::JsonSchema, serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BureauDecision<R> {
    /// What the bureau decided.
    pub result: R,
    /// The day it was decided.
    #[schemars(with = "String", extend("format" = "date"))]
    pub date: jiff::civil::Date,
    /// The reference of the bureau's decision.
    #[schemars(length(min = 1, max = 200))]
    pub decision: String,
    /// Who recorded it: the bureau member's username (checked on admission).
    #[schemars(length(min = 1, max = 253))]
    pub by: String,
    /// Why, in a sentence.
    #[schemars(length(min = 1, max = 2000))]
    pub reason: String,
}

/// Something a unit filed: its name, its spec and the day it was filed.
#[derive(Clone, Debug, PartialEq)]
pub struct Filed<S> {
    pub name: String,
    pub spec: S,
    pub filed: jiff::civil::Date,
}

/// The API group of every kind here.
pub const GROUP: &str = "publicdata.io";

/// Text a tenant wrote (a purpose, an archive entry's name in a finding), as
/// a person is shown it: control characters (escape sequences that would
/// rewrite a terminal, carriage returns that would hide a line) and
/// bidirectional overrides are written out escaped, never acted on.
pub fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Labels and annotations the operator puts on what it makes. Everything the
/// operator made is found by these labels, never by ownerReferences.
pub mod labels {
    /// Marks an object as made and kept by this operator.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The value of [`MANAGED_BY`].
    pub const MANAGER: &str = "publicdata-operator";
    /// The authorization (tenant) an object belongs to.
    pub const TENANT: &str = "publicdata.io/tenant";
    /// `dev` or `prod`.
    pub const ENVIRONMENT: &str = "publicdata.io/environment";
    /// Set on a tenant's namespaces when its authorization disappeared without
    /// an offboarding: the domain is kept, flagged, never wiped.
    pub const ORPHANED: &str = "publicdata.io/orphaned";
    /// When the domain was orphaned (annotation).
    pub const ORPHANED_AT: &str = "publicdata.io/orphaned-at";
    /// On an authorization: when someone other than the operator last changed
    /// the tenant's OpenBao configuration (a policy, a role, a mount), as
    /// OpenBao's audit device told the operator's intake. The next reconcile
    /// then checks and repairs all of it.
    pub const OPENBAO_CHANGED_AT: &str = "publicdata.io/openbao-changed-at";
    /// Whom a namespace was made for (annotation; see `naming::owner_mark`).
    pub const OWNER: &str = "publicdata.io/owner";
    /// Who set an authorization's validity, stamped by the API server only
    /// when a member of the bureau did (annotation).
    pub const VALIDITY_SET_BY: &str = "publicdata.io/validity-set-by";
    /// Who changed an authorization's state, stamped by the API server (annotation).
    pub const STATE_CHANGED_BY: &str = "publicdata.io/state-changed-by";
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn what_a_tenant_wrote_cannot_act_on_the_terminal() {
        assert_eq!(shown("plain 文字"), "plain 文字");
        assert_eq!(shown("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(shown("ok\rDelivered"), "ok\\u{d}Delivered");
        assert_eq!(shown("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(shown("line\nnext"), "line\\u{a}next");
    }
}
