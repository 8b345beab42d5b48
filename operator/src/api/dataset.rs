//! `PublicDataset`: one entry of the public data catalog (公共数据目录).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::authorization::DataDomain;

/// A catalog entry: which agency owns the data, how it is classified, its
/// fields with their sensitivity and masking rule, and where its raw and
/// masked forms live in OpenBao/Vault.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "publicdata.io",
    version = "v1alpha1",
    kind = "PublicDataset",
    plural = "publicdatasets",
    shortname = "pds",
    category = "publicdata",
    printcolumn(name = "Agency", type_ = "string", json_path = ".spec.ownerAgency"),
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domain"),
    printcolumn(
        name = "Classification",
        type_ = "string",
        json_path = ".spec.classification"
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
    /// Where the data lives in OpenBao/Vault.
    pub vault: DatasetVault,
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

/// Masking rules.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Masking {
    #[default]
    None,
    Redact,
    Hash,
    Truncate,
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
