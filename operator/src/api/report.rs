//! `AnnualReport`: the unit's yearly operation report and the bureau's
//! evaluation of it.
//!
//! Filed by the unit in its dev namespace. The bureau records the evaluation
//! (`Passed`, `Rectification` with 30 days to fix, or `Failed`) and, after a
//! rectification, the evaluation again. The operator keeps the deadlines in
//! the authorization's status; it never ends an authorization on its own:
//! a failed evaluation, or a rectification not passed in time, is a condition
//! the bureau acts on.

use jiff::civil::Date;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A unit's operation report for one calendar year, and its evaluation.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "publicdata.io",
    version = "v1alpha1",
    kind = "AnnualReport",
    plural = "annualreports",
    shortname = "annual",
    category = "publicdata",
    namespaced,
    printcolumn(name = "Year", type_ = "integer", json_path = ".spec.year"),
    printcolumn(
        name = "Evaluation",
        type_ = "string",
        json_path = ".spec.evaluation.result"
    ),
    printcolumn(
        name = "Evaluated",
        type_ = "string",
        json_path = ".spec.evaluation.date"
    ),
    printcolumn(
        name = "Again",
        type_ = "string",
        json_path = ".spec.reevaluation.result"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(oldSelf.evaluation) || (self.year == oldSelf.year && self.sections == oldSelf.sections)")
    .message("the bureau evaluated this report: its year and sections are fixed"))]
#[x_kube(validation = Rule::new("!has(oldSelf.evaluation) || (has(self.evaluation) && self.evaluation == oldSelf.evaluation)")
    .message("an evaluation, once recorded, is kept as it was: record the evaluation after rectification under reevaluation"))]
#[x_kube(validation = Rule::new("!has(self.reevaluation) || (has(self.evaluation) && self.evaluation.result == 'Rectification')")
    .message("reevaluation is recorded only after an evaluation of Rectification"))]
#[x_kube(validation = Rule::new("!has(self.reevaluation) || self.reevaluation.result != 'Rectification'")
    .message("an evaluation after rectification is Passed or Failed (R-19)"))]
#[x_kube(validation = Rule::new("!has(oldSelf.reevaluation) || (has(self.reevaluation) && self.reevaluation == oldSelf.reevaluation)")
    .message("the evaluation after rectification, once recorded, is kept as it was"))]
pub struct AnnualReportSpec {
    /// The calendar year the report covers. Due by 31 March of the next year.
    #[schemars(range(min = 2000, max = 2100))]
    pub year: i32,
    /// What the report says (the seed's headings, R-19).
    pub sections: ReportSections,
    /// The reference of the full report document, as filed with the bureau.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub document: Option<String>,
    /// The unit's rectification, after an evaluation of `Rectification`: its
    /// plan and the day it was completed (within 30 days of the evaluation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rectification: Option<Rectification>,
    /// The bureau's evaluation. Only group publicdata:bureau records it, under
    /// its own name (admission policy); fixed once recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// The bureau's evaluation after a rectification: `Passed` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reevaluation: Option<Evaluation>,
}

/// The report's content, heading by heading.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReportSections {
    /// How the authorized data was stored (授权存储).
    #[schemars(length(min = 1, max = 4000))]
    pub storage: String,
    /// How it was processed (加工处理).
    #[schemars(length(min = 1, max = 4000))]
    pub processing: String,
    /// What was analysed and mined (分析挖掘).
    #[schemars(length(min = 1, max = 4000))]
    pub analysis: String,
    /// How its security was managed (安全管理).
    #[schemars(length(min = 1, max = 4000))]
    pub security: String,
    /// How it was combined and used (融合利用).
    #[schemars(length(min = 1, max = 4000))]
    pub utilization: String,
    /// How the products were brought to market (市场运营).
    #[schemars(length(min = 1, max = 4000))]
    pub market_operations: String,
}

/// The unit's rectification.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rectification {
    /// The rectification plan (整改方案).
    #[schemars(length(min = 1, max = 4000))]
    pub plan: String,
    /// When the unit completed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date"))]
    pub completed: Option<Date>,
}

/// One evaluation by the bureau; a rectification is due 30 days after its date.
pub type Evaluation = super::BureauDecision<EvaluationResult>;

/// The result of an evaluation (通过, 限期整改, 未通过).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvaluationResult {
    /// The unit continues.
    Passed,
    /// The unit fixes what was found within 30 days, then is evaluated again.
    Rectification,
    /// The authorization ends, by the bureau's decision.
    Failed,
}
