//! `ExitRequest`: a unit's request to end its authorization early, with its
//! data disposal plan.
//!
//! Filed by the unit in its dev namespace at least 6 months before the day
//! it asks for. Only the bureau accepts or rejects it. Once accepted, the
//! domain is offboarded on that day — the bureau's decision, carried out on
//! its date — and the authorization ends `Terminated`.

use jiff::civil::Date;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A unit's request to end its authorization early.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "publicdata.io",
    version = "v1alpha1",
    kind = "ExitRequest",
    plural = "exitrequests",
    shortname = "exit",
    category = "publicdata",
    namespaced,
    printcolumn(
        name = "Effective",
        type_ = "string",
        json_path = ".spec.effectiveDate"
    ),
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
#[x_kube(validation = Rule::new("!has(oldSelf.decision) || (self.effectiveDate == oldSelf.effectiveDate && self.reason == oldSelf.reason && self.disposalPlan == oldSelf.disposalPlan)")
    .message("the bureau decided on this request: its date, reason and disposal plan are fixed; file a new request"))]
#[x_kube(validation = Rule::new("!has(oldSelf.decision) || (has(self.decision) && self.decision == oldSelf.decision)")
    .message("the bureau's decision on an exit, once recorded, is kept as it was"))]
pub struct ExitRequestSpec {
    /// The day the unit asks to end on: its domain is offboarded that day
    /// (wiped, records kept). At least 6 months after the request is filed.
    #[schemars(with = "String", extend("format" = "date"))]
    pub effective_date: Date,
    /// Why the unit ends early.
    #[schemars(length(min = 1, max = 2000))]
    pub reason: String,
    /// How the unit's data is to be disposed of (数据处置方案): what is
    /// deleted, what is handed back, what is kept for the record.
    #[schemars(length(min = 1, max = 4000))]
    pub disposal_plan: String,
    /// The bureau's decision. Only group publicdata:bureau records it, under
    /// its own name (admission policy); fixed once recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<ExitDecision>,
}

/// The bureau's decision on an exit request.
pub type ExitDecision = super::BureauDecision<ExitResult>;

/// Accepted or rejected.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitResult {
    /// The unit ends on the effective date.
    Accepted,
    /// The unit continues.
    Rejected,
}

/// An early exit the bureau accepted.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedExit {
    /// The ExitRequest's name (in the unit's dev namespace).
    pub request: String,
    /// The day the domain is offboarded.
    #[schemars(with = "String", extend("format" = "date"))]
    pub effective_date: Date,
    /// The reference of the bureau's decision.
    pub decision: String,
}
