//! `PublicDataset`: one entry of the public data catalog (公共数据目录).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::authorization::DataDomain;

/// A catalog entry: which agency owns the data, how it is classified, its
/// fields with their sensitivity and masking rule, and where it lives: a
/// PostgreSQL table (the operator masks and samples it there, and grants
/// exactly the listed columns), OpenBao/Vault KV paths, or both.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "publicdata.io",
    version = "v1alpha1",
    kind = "PublicDataset",
    plural = "publicdatasets",
    shortname = "pds",
    category = "publicdata",
    status = "PublicDatasetStatus",
    printcolumn(name = "Agency", type_ = "string", json_path = ".spec.ownerAgency"),
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domain"),
    printcolumn(
        name = "Classification",
        type_ = "string",
        json_path = ".spec.classification"
    ),
    printcolumn(
        name = "Data",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"DataReady\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.fields.all(f, f.sensitivity != 'Sensitive' || f.masking != 'None')")
    .message("a Sensitive field needs a masking rule other than None (R-12)"))]
#[x_kube(validation = Rule::new("has(self.table) || has(self.vault)")
    .message("say where the data lives: spec.table (PostgreSQL), spec.vault (OpenBao KV), or both"))]
pub struct PublicDatasetSpec {
    /// The agency that owns the data (its id, as in group `publicdata:agency:<id>`).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub owner_agency: String,
    /// A human description of the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub description: Option<String>,
    /// The data domain.
    pub domain: DataDomain,
    /// `General` and `Important` may be granted through a scenario; `Core` never (R-3).
    pub classification: Classification,
    /// The fields, one by one.
    #[schemars(length(min = 1))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub fields: Vec<Field>,
    /// Where the data lives in PostgreSQL: one table, whose columns are the
    /// fields above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<DatasetTable>,
    /// Where the data lives in OpenBao/Vault KV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<DatasetVault>,
}

/// A table of the platform's PostgreSQL database. The operator keeps, for
/// dev, a view of it that masks every field by its rule and holds a fixed
/// sample of its rows; an approved scenario's columns are granted on that
/// view in dev and on the table itself in prod, and nothing else.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatasetTable {
    /// The table's schema.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub schema: String,
    /// The table's name.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub name: String,
    /// The share of rows dev's sample holds, in percent. The same rows every
    /// time: a row is in the sample when a hash of its content falls under
    /// this share.
    #[serde(default = "default_sample_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub sample_percent: u8,
}

fn default_sample_percent() -> u8 {
    10
}

/// What the operator made of a dataset.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicDatasetStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `DataReady`: for a dataset in a table, its masked view and dev's
    /// sample match the catalog entry and the table.
    #[serde(default)]
    #[schemars(schema_with = "crate::api::condition::conditions_schema")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

/// Classification of a dataset.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classification {
    General,
    Important,
    /// National security or public interest: never grantable (R-3).
    Core,
}

/// One field of a dataset.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$")
    )]
    /// The field's name, as the data holds it and scenarios list it.
    pub name: String,
    #[serde(default)]
    pub sensitivity: Sensitivity,
    /// How the field is masked in the sampled, masked form used in dev.
    #[serde(default)]
    pub masking: Masking,
}

/// How sensitive a field is.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sensitivity {
    #[default]
    Public,
    Internal,
    /// Personal or otherwise sensitive: masking is mandatory in dev (R-12).
    Sensitive,
}

/// Masking rules, as the masked view applies them to a column.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Masking {
    /// Shown as it is.
    #[default]
    None,
    /// Replaced whole by `****`.
    Redact,
    /// A keyed SHA-256 (hex) of the value: equal values give equal hashes
    /// within the dataset, so joins and counts still work, and the key, which
    /// only the operator's role can read, keeps short values (phone numbers)
    /// from being guessed back.
    Hash,
    /// The first 3 characters kept, the rest cut.
    Truncate,
    /// The first 6 and last 4 characters kept, each one between shown as `*`
    /// (a resident ID keeps its region and check digits).
    Partial,
    /// Numbers to the power of ten at or below them (3,880,000 becomes
    /// 1,000,000), dates and times to the first day of their month.
    Generalize,
}

/// Vault paths of the data.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatasetVault {
    /// KV v2 path of the raw data (prod reads it, through workloads only).
    #[schemars(length(min = 1, max = 512))]
    pub raw_path: String,
    /// KV v2 path of the masked, sampled form (dev reads it). Absent: no masked form exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub masked_path: Option<String>,
    /// How the data is laid out under a path: `Whole` (one secret) or
    /// `PerField` (one secret per field at `<path>/<field>`, so a grant can
    /// be limited to the listed fields).
    #[serde(default)]
    pub layout: Layout,
}

/// Layout of a dataset in OpenBao.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    #[default]
    Whole,
    PerField,
}
