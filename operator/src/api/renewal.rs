//! `RenewalRequest`: a unit's application to continue beyond its
//! authorization's end, filed at least 6 months before it.
//!
//! Only the bureau decides. Its approval starts a new term: the validity
//! runs on to the requested end, at most 5 years from the day after the
//! previous end (`kubectl publicdata decide renewal ... approve` records the
//! decision and extends the validity under it, as the bureau).

use jiff::civil::Date;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A unit's application to renew its authorization.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "publicdata.io",
    version = "v1alpha1",
    kind = "RenewalRequest",
    plural = "renewalrequests",
    shortname = "renewal",
    category = "publicdata",
    namespaced,
    printcolumn(name = "Until", type_ = "string", json_path = ".spec.notAfter"),
    printcolumn(
        name = "Decision",
        type_ = "string",
        json_path = ".spec.decision.result"
    ),
    printcolumn(name = "Decided", type_ = "string", json_path = ".spec.decision.date"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(oldSelf.decision) || (self.notAfter == oldSelf.notAfter && self.reason == oldSelf.reason)")
    .message("the bureau decided on this application: its end and reason are fixed; file a new one"))]
#[x_kube(validation = Rule::new("!has(oldSelf.decision) || (has(self.decision) && self.decision == oldSelf.decision)")
    .message("the bureau's decision on a renewal, once recorded, is kept as it was"))]
pub struct RenewalRequestSpec {
    /// The last day the unit asks to be in force (YYYY-MM-DD): at most 5 years
    /// after the current end (one new term, R-5).
    #[schemars(with = "String", extend("format" = "date"))]
    pub not_after: Date,
    /// Why the unit continues: what it operates and plans.
    #[schemars(length(min = 1, max = 4000))]
    pub reason: String,
    /// The bureau's decision. Only group publicdata:bureau records it, under
    /// its own name (admission policy); fixed once recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<RenewalDecision>,
}

/// The bureau's decision on a renewal.
pub type RenewalDecision = super::BureauDecision<RenewalResult>;

/// Approved or rejected.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenewalResult {
    /// A new term, to the requested end.
    Approved,
    /// The authorization ends at its current end.
    Rejected,
}
