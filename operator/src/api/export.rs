//! `ExportRequest`: one product leaving the domain (R-13, R-24 .. R-26).
//!
//! Filed by the tenant in its dev namespace next to the scenario it serves;
//! the artifact itself lives in the tenant's prod namespace (a ConfigMap key).
//! Only the bureau records the decision; only the operator delivers, to an
//! OpenBao path only the recipient's policy can read.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::conditions_schema;
use crate::scan::Finding;

/// One product leaving the domain, with its declared digest, its recipient and use.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "publicdata.io",
    version = "v1alpha1",
    kind = "ExportRequest",
    plural = "exportrequests",
    shortname = "er",
    category = "publicdata",
    namespaced,
    status = "ExportRequestStatus",
    printcolumn(name = "Scenario", type_ = "string", json_path = ".spec.scenario"),
    printcolumn(name = "Product", type_ = "string", json_path = ".spec.product.name"),
    printcolumn(
        name = "Recipient",
        type_ = "string",
        json_path = ".spec.recipient.name"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Digest", type_ = "string", json_path = ".status.shortDigest"),
    printcolumn(
        name = "Marks",
        type_ = "integer",
        json_path = ".status.fingerprintMarks"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(oldSelf.decision) || (self.scenario == oldSelf.scenario && self.product == oldSelf.product && self.artifact == oldSelf.artifact && self.recipient == oldSelf.recipient && self.purpose == oldSelf.purpose && self.permittedUse == oldSelf.permittedUse && self.pricing == oldSelf.pricing)")
    .message("the bureau decided on this request: its scenario, product, artifact, recipient, purpose, permitted use and pricing are fixed; file a new request"))]
#[x_kube(validation = Rule::new("!has(self.decision) || (has(self.decision.recipientCreditCode) && has(self.decision.digest) && self.decision.recipientCreditCode == self.recipient.creditCode && self.decision.digest == self.digest)")
    .message("the decision must name this request's recipient (decision.recipientCreditCode) and digest (decision.digest): the bureau decides on what it saw; read the request again and decide on it"))]
pub struct ExportRequestSpec {
    /// The DataScenario (same namespace) this product serves.
    #[schemars(length(min = 1, max = 253))]
    pub scenario: String,
    pub product: Product,
    /// Where the artifact is: a key of a ConfigMap in the tenant's prod namespace.
    pub artifact: Artifact,
    /// SHA-256 (hex) of the artifact, as the tenant declares it.
    #[schemars(length(min = 64, max = 64), regex(pattern = r"^[0-9a-f]{64}$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("the declared digest cannot change: file a new request"))]
    pub digest: String,
    pub recipient: Recipient,
    /// The purpose the product serves (R-25).
    #[schemars(length(min = 1, max = 2000))]
    pub purpose: String,
    /// What the recipient may do with it; no onward transfer (R-25).
    #[schemars(length(min = 1, max = 2000))]
    pub permitted_use: String,
    /// The price and its basis, filed with the bureau (R-26).
    pub pricing: Pricing,
    /// The bureau's decision. Only group publicdata:bureau writes it (admission policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<ExportDecision>,
}

/// The product.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    #[serde(rename = "type")]
    pub type_: ProductType,
    /// The product's name.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// The product's version.
    #[schemars(length(min = 1, max = 64))]
    pub version: String,
}

/// Kinds of products.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductType {
    Dataset,
    API,
    Indicator,
    Report,
    Model,
}

/// A key of a ConfigMap in the tenant's prod namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// The ConfigMap, in the tenant's prod namespace.
    #[schemars(length(min = 1, max = 253))]
    pub config_map: String,
    /// The key: `data` for text, `binaryData` for anything else (gzip, zip, xlsx, Parquet).
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The application unit receiving the product.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    /// The recipient's registered name.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// Unified social credit code of the recipient.
    #[schemars(
        length(min = 18, max = 18),
        regex(pattern = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$")
    )]
    pub credit_code: String,
    /// The agreement with the recipient.
    #[schemars(length(min = 1, max = 200))]
    pub agreement: String,
}

/// Price and basis (R-26).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    /// The price, with its currency.
    #[schemars(length(min = 1, max = 100))]
    pub price: String,
    /// How the price was set, as filed with the bureau.
    #[schemars(length(min = 1, max = 2000))]
    pub basis: String,
}

/// The bureau's decision on an export.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExportDecision {
    pub decision: super::scenario::Decision,
    /// Who reviewed (must be the requester's own name, by admission policy).
    #[schemars(length(min = 1, max = 253))]
    pub reviewer: String,
    /// The credit code of the recipient the bureau decided for: the API
    /// server refuses a decision without it, or whose code is not
    /// `spec.recipient.creditCode`. (Absent only on decisions recorded
    /// before it was asked for.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 18, max = 18))]
    pub recipient_credit_code: Option<String>,
    /// The artifact digest the bureau decided on: the API server refuses a
    /// decision without it, or whose digest is not `spec.digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 64, max = 64), regex(pattern = r"^[0-9a-f]{64}$"))]
    pub digest: Option<String>,
    /// The reviewer's remarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub comment: Option<String>,
    /// Approve despite scan findings; needs `overrideReason`, and is audited.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub override_findings: bool,
    /// Why the findings are overridden (required with `overrideFindings`; audited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub override_reason: Option<String>,
}

/// What the operator checked and did.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExportRequestStatus {
    /// Submitted, Checking, AwaitingReview, Approved, Delivered, Rejected, Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ExportPhase>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The digest the operator computed over the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed_digest: Option<String>,
    /// Its first 12 characters, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_digest: Option<String>,
    /// Each check and its result.
    #[serde(default)]
    pub checks: Vec<String>,
    /// What blocks an approval unless the bureau overrides it: personal data
    /// (kind and location, never the value), unreadable parts, and a product
    /// that cannot carry its delivery's fingerprint.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Where the product was delivered, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_to: Option<String>,
    /// SHA-256 of what was delivered: the approved artifact with its
    /// delivery's fingerprint (it differs from every other delivery's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_digest: Option<String>,
    /// How many distinct values of the delivered product carry the
    /// fingerprint; absent when the bureau let an untraceable product leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_marks: Option<u64>,
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// Phases of an export.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportPhase {
    Submitted,
    Checking,
    AwaitingReview,
    Approved,
    Delivered,
    Rejected,
    Failed,
}
