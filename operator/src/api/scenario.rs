//! `DataScenario`: one scenario, one list, one approval (R-20 .. R-23).
//!
//! Namespaced: a tenant's members file it in their own dev namespace, so a
//! member of another tenant cannot even read it. The operator finds the
//! authorization from `spec.authorization` and checks it matches the
//! namespace's tenant.

use jiff::civil::Date;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::conditions_schema;

/// One application scenario with its one list of requested data, and the
/// approvals it needs: the bureau's and each owning agency's.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "publicdata.io",
    version = "v1alpha1",
    kind = "DataScenario",
    plural = "datascenarios",
    shortname = "scn",
    category = "publicdata",
    namespaced,
    status = "DataScenarioStatus",
    printcolumn(
        name = "Authorization",
        type_ = "string",
        json_path = ".spec.authorization"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Approvals", type_ = "string", json_path = ".status.approvals"),
    printcolumn(
        name = "Window End",
        type_ = "string",
        json_path = ".spec.window.notAfter"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DataScenarioSpec {
    /// The OperatorAuthorization this scenario belongs to (the tenant).
    #[schemars(length(min = 1, max = 40))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("a scenario cannot move to another authorization"))]
    pub authorization: String,
    /// What the data is for (R-20).
    #[schemars(length(min = 1, max = 2000))]
    pub purpose: String,
    /// The expected value of the scenario.
    #[schemars(length(min = 1, max = 2000))]
    pub expected_value: String,
    /// The plan and its milestones.
    #[schemars(length(min = 1, max = 4000))]
    pub plan: String,
    /// The security measures taken.
    #[schemars(length(min = 1, max = 4000))]
    pub security_measures: String,
    /// When the grants may be used; inside the authorization's validity (R-23).
    pub window: Window,
    /// The one list of requested data: each dataset once, its fields one by one (R-21).
    #[schemars(length(min = 1, max = 50))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["dataset".into()]))]
    pub items: Vec<RequestedItem>,
    /// External ("social") data to be imported; each needs the bureau's approval (R-18).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub external_sources: Vec<ExternalSource>,
    /// The approvals, recorded by the approvers themselves: `bureau`, and
    /// `agency:<id>` for each agency owning a listed dataset. Each names the
    /// `itemsDigest` (from the status) it approved; an edit of the list makes
    /// it stale. Admission policy: only the party's own group may write it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["party".into()]))]
    pub approvals: Vec<Approval>,
    /// Set by the tenant to withdraw the scenario: its grants end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

/// A date window.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.notBefore <= self.notAfter").message("window.notBefore must not be after window.notAfter"))]
pub struct Window {
    /// First day the grants may be used (YYYY-MM-DD).
    #[schemars(with = "String", extend("format" = "date", "maxLength" = 10, "minLength" = 10))]
    pub not_before: Date,
    /// Last day the grants may be used (YYYY-MM-DD).
    #[schemars(with = "String", extend("format" = "date", "maxLength" = 10, "minLength" = 10))]
    pub not_after: Date,
}

/// One dataset of the list, with its fields one by one.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestedItem {
    /// The PublicDataset's name.
    #[schemars(length(min = 1, max = 253))]
    pub dataset: String,
    /// The fields, one by one: no wildcard (R-21, minimum necessary).
    #[schemars(length(min = 1, max = 200), inner(length(min = 1, max = 128)))]
    #[x_kube(validation = Rule::new("self.all(f, !f.contains('*') && !f.contains('?') && f != 'all' && f != 'ALL')")
        .message("fields are listed one by one: no wildcard (R-21)"))]
    pub fields: Vec<String>,
    /// Why these fields are necessary.
    #[schemars(length(min = 1, max = 2000))]
    #[x_kube(validation = Rule::new("self.trim().size() > 0").message("every dataset needs a justification (R-21)"))]
    pub justification: String,
}

/// External data to be brought into the domain (R-18).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSource {
    /// What the external data is.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// Who provides it.
    #[schemars(length(min = 1, max = 200))]
    pub provider: String,
    /// What it holds and why it is needed.
    #[schemars(length(min = 1, max = 2000))]
    pub description: String,
}

/// An approval, written by the approver.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// `bureau` or `agency:<agency id>`.
    #[schemars(
        length(min = 1, max = 80),
        regex(pattern = r"^(bureau|agency:[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")
    )]
    pub party: String,
    pub decision: Decision,
    /// The `status.itemsDigest` the approver saw: the list this decision is about.
    #[schemars(length(min = 64, max = 64))]
    pub items_digest: String,
    /// Who decided (recorded for the audit trail).
    #[schemars(length(min = 1, max = 253))]
    pub by: String,
    /// The party's remarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub comment: Option<String>,
}

/// A decision.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Rejected,
}

/// What the operator found and granted.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataScenarioStatus {
    /// Draft, PendingApproval, Approved, Active, Rejected, Expired, Withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ScenarioPhase>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// SHA-256 of the requested list (items and external sources): what an approval names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_digest: Option<String>,
    /// Approvals given / needed, e.g. `2/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<String>,
    /// The parties whose approval is needed: `bureau` and `agency:<id>` of each owner.
    #[serde(default)]
    pub required_approvals: Vec<String>,
    /// Valid, Approved, Granted.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The OpenBao policies granted, per environment.
    #[serde(default)]
    pub grants: Vec<String>,
    /// The PostgreSQL columns granted, per environment: dev on the dataset's
    /// masked sample, prod on its table. Only the listed columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub column_grants: Vec<ColumnGrant>,
}

/// Columns of one relation granted to one environment's role.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct ColumnGrant {
    /// `dev` or `prod`.
    pub environment: String,
    /// The schema of the relation: `publicdata_sample` for dev's masked
    /// sample, the table's own for prod.
    pub schema: String,
    /// The relation: the dataset's name in dev, the table in prod.
    pub relation: String,
    /// The columns SELECT is granted on.
    pub columns: Vec<String>,
}

/// Phases of a scenario.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioPhase {
    Draft,
    PendingApproval,
    Approved,
    Active,
    Rejected,
    Expired,
    Withdrawn,
}
