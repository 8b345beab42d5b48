//! `OperatorAuthorization`: one authorized operating unit (a tenant), its
//! terms (R-4), its validity (R-5, R-6), its members (R-16) and the state the
//! bureau sets (R-8, R-27, R-28).

use jiff::civil::Date;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::conditions_schema;

/// One authorized operating unit: who it is, what it may use, for how long,
/// who works for it, and the state the bureau keeps it in. Its name is the
/// tenant id: it names the tenant's namespaces (`<name>-dev`, `<name>-prod`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "publicdata.io",
    version = "v1alpha1",
    kind = "OperatorAuthorization",
    plural = "operatorauthorizations",
    shortname = "oa",
    category = "publicdata",
    status = "OperatorAuthorizationStatus",
    printcolumn(name = "Unit", type_ = "string", json_path = ".spec.unit.name"),
    printcolumn(name = "State", type_ = "string", json_path = ".spec.state"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Standing", type_ = "string", json_path = ".status.conditions[?(@.type==\"AnnualEvaluation\")].reason"),
    printcolumn(name = "Expires", type_ = "string", json_path = ".spec.validity.notAfter"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name is the tenant id: a DNS label of at most 40 characters, since it names the tenant's namespaces")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.state == oldSelf.state || (has(self.stateChange) && (!has(oldSelf.stateChange) || self.stateChange.decision != oldSelf.stateChange.decision))")
    .message("a change of spec.state needs spec.stateChange with its reason and a new decision reference"))]
#[x_kube(validation = Rule::new("self.validity == oldSelf.validity || (has(self.validityChange) && (!has(oldSelf.validityChange) || self.validityChange.decision != oldSelf.validityChange.decision))")
    .message("a change of spec.validity needs spec.validityChange with its reason and a new decision reference"))]
pub struct OperatorAuthorizationSpec {
    /// The authorized operating unit (R-4).
    pub unit: Unit,
    /// The data domains the authorization covers (R-4).
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(min = 1))]
    pub domains: Vec<DataDomain>,
    /// The validity window: at most 5 years (R-5).
    pub validity: Validity,
    /// The unit's data security officer (数据安全负责人, R-4).
    pub security_officer: Person,
    /// The authorization agreement this object records (R-4).
    pub agreement: Agreement,
    /// The people who process data for the unit. Only members whose training is
    /// completed and whose confidentiality agreement is in force get any access (R-16).
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["user".into()]))]
    pub members: Vec<Member>,
    /// The environments of the tenant domain. Default: both `dev` and `prod`.
    /// Environments can be added, never removed: removing one would leave a
    /// live namespace and OpenBao role the operator no longer tracks.
    #[serde(default = "default_environments")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[x_kube(validation = Rule::new("oldSelf.all(e, e in self)")
        .message("an environment cannot be removed from an authorization: its namespace and credentials would be left live and untracked; the bureau ends the authorization instead"))]
    #[schemars(length(min = 1, max = 2))]
    pub environments: Vec<Environment>,
    /// Compute and storage quotas per environment. Unset values take safe defaults.
    #[serde(default)]
    pub quotas: Quotas,
    /// How developers reach into dev's pods. `Audited` (default): `kubectl
    /// exec`, `cp`, `attach` and `port-forward` in dev, each session (who,
    /// which pod) kept in the tenant's operation log. `None`: none of them.
    /// They are how masked samples and models leave without an export (R-12,
    /// R-24); prod never has them.
    #[serde(default)]
    pub interactive_access: InteractiveAccess,
    /// The authorization's emergency plan (R-31: one plan per authorization):
    /// its reference, whom to call, and the drills held. Without it the
    /// condition `EmergencyPlanReady` is False. In an incident the bureau's
    /// technical lever is `state: Suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_plan: Option<EmergencyPlan>,
    /// The state the bureau keeps the authorization in. Only the bureau changes it;
    /// manifests kept in Git should leave it unset (default `Active`).
    /// `Revoked` and `Terminated` are final.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!(oldSelf in ['Revoked', 'Terminated']) || self == oldSelf")
        .message("Revoked and Terminated are terminal: the state cannot change again"))]
    pub state: State,
    /// Why the bureau set the current state, under which decision. Required,
    /// with a new `decision`, whenever `state` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_change: Option<StateChange>,
    /// Why the bureau set the current validity, under which decision (a
    /// renewal, a shortening). Required, with a new `decision`, whenever
    /// `validity` changes; only the bureau changes either (admission policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_change: Option<StateChange>,
}

/// The bureau's decision behind a state change.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StateChange {
    /// Why (e.g. the breach found, the incident).
    #[schemars(length(min = 1, max = 1000))]
    pub reason: String,
    /// The reference of the bureau's decision.
    #[schemars(length(min = 1, max = 200))]
    pub decision: String,
}

fn default_environments() -> Vec<Environment> {
    vec![Environment::Dev, Environment::Prod]
}

/// The authorized operating unit (授权运营单位).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    /// The unit's registered name.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// Unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters,
    /// the last one a check character. It identifies the unit and cannot change.
    /// The API server checks the format; the operator checks the check character
    /// (a CEL checksum exceeds the API server's cost budget) and refuses to
    /// provision with condition Ready=False, reason InvalidSpec.
    #[schemars(
        length(min = 18, max = 18),
        regex(pattern = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("the unified social credit code identifies the unit and cannot change"))]
    pub credit_code: String,
}

const CREDIT_CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_CODE_WEIGHTS: [usize; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The check character for the first 17 characters of a unified social credit
/// code, or `None` when one of them is outside the code's alphabet.
pub fn credit_code_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.bytes().zip(CREDIT_CODE_WEIGHTS) {
        sum += CREDIT_CODE_ALPHABET.iter().position(|&a| a == c)? * w;
    }
    CREDIT_CODE_ALPHABET
        .get((31 - sum % 31) % 31)
        .map(|&b| char::from(b))
}

/// Whether a unified social credit code is well formed, check character included.
pub fn credit_code_is_valid(code: &str) -> bool {
    code.len() == 18
        && code.is_char_boundary(17)
        && code[2..8].bytes().all(|b| b.is_ascii_digit())
        && credit_code_check_char(&code[..17]).is_some_and(|c| code.ends_with(c))
}

/// The validity window. Dates are calendar days in UTC: the authorization is in
/// force from the start of `notBefore` through the end of `notAfter`. (CEL sees
/// `format: date` strings as timestamps; the 5-year rule compares YYYYMMDD
/// numbers, so leap days need no special case.)
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.notBefore < self.notAfter").message("validity.notBefore must be before validity.notAfter"),
    validation = Rule::new("self.notAfter.getFullYear() * 10000 + self.notAfter.getMonth() * 100 + self.notAfter.getDayOfMonth() < ((has(self.termStart) ? self.termStart : self.notBefore).getFullYear() + 5) * 10000 + (has(self.termStart) ? self.termStart : self.notBefore).getMonth() * 100 + (has(self.termStart) ? self.termStart : self.notBefore).getDayOfMonth()")
        .message("the validity is at most 5 years per term (R-5): notAfter must be before the fifth anniversary of the term's start (termStart, or notBefore)"),
    validation = Rule::new("!has(self.termStart) || (self.notBefore <= self.termStart && self.termStart <= self.notAfter)")
        .message("validity.termStart must lie between notBefore and notAfter")
)]
pub struct Validity {
    /// First day in force (YYYY-MM-DD).
    #[schemars(with = "String", extend("format" = "date", "maxLength" = 10, "minLength" = 10))]
    pub not_before: Date,
    /// Last day in force (YYYY-MM-DD). Renewal is due from six months before it (R-6).
    #[schemars(with = "String", extend("format" = "date", "maxLength" = 10, "minLength" = 10))]
    pub not_after: Date,
    /// First day of the current term, when the authorization was renewed: the
    /// day after the previous term's end. Each term is at most 5 years (R-5).
    /// Unset: the first term, from `notBefore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date", "maxLength" = 10, "minLength" = 10))]
    pub term_start: Option<Date>,
}

/// A named person.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Their full name.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// How to reach them (phone or e-mail).
    #[schemars(length(max = 200))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// The authorization agreement (授权运营协议).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Agreement {
    /// The agreement's reference number.
    #[schemars(length(min = 1, max = 200))]
    pub reference: String,
    /// When it was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date"))]
    pub signed: Option<Date>,
}

/// The emergency plan of one authorization (一授权一预案, R-31).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmergencyPlan {
    /// The plan document's reference, as filed with the bureau.
    #[schemars(length(min = 1, max = 200))]
    pub reference: String,
    /// Whom to call in an incident, in the order to call them.
    #[schemars(length(min = 1, max = 20))]
    pub contacts: Vec<EmergencyContact>,
    /// The drills held under the plan, in any order.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub drills: Vec<Drill>,
}

/// Someone to call in an incident.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmergencyContact {
    /// Their full name.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// Their part in the response, e.g. `unit security officer`, `bureau duty desk`.
    #[schemars(length(min = 1, max = 100))]
    pub role: String,
    /// How to reach them at any hour (phone).
    #[schemars(length(min = 1, max = 200))]
    pub contact: String,
}

/// One emergency drill.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Drill {
    /// The day it was held.
    #[schemars(with = "String", extend("format" = "date"))]
    pub date: Date,
    /// How it went.
    pub result: DrillResult,
    /// What was practised and what was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub notes: Option<String>,
}

/// How a drill went.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrillResult {
    /// The plan worked as written.
    Passed,
    /// It worked, with findings to fix in the plan.
    PassedWithFindings,
    /// The plan did not work.
    Failed,
}

/// A person who processes data for the unit (R-16).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The username the platform's identity provider gives this person: what
    /// Kubernetes RBAC sees (R-11).
    #[schemars(length(min = 1, max = 253))]
    pub user: String,
    /// Real name (实名).
    #[schemars(length(min = 1, max = 100))]
    pub real_name: String,
    /// The real-name registration reference (not the identity number itself).
    #[schemars(length(min = 1, max = 100))]
    pub real_name_id: String,
    /// What the member does: `Developer` works in dev and sees prod status;
    /// `Viewer` only sees.
    #[serde(default)]
    pub role: MemberRole,
    /// When the member completed the security training. Without it, no access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date"))]
    pub training_completed: Option<Date>,
    /// Until when the member's confidentiality agreement is in force (inclusive).
    /// Without it, or after it, no access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date"))]
    pub confidentiality_until: Option<Date>,
}

/// What a member may do.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemberRole {
    #[default]
    Developer,
    Viewer,
}

/// An environment of the tenant domain.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Development: masked, sampled data only; members edit workloads.
    Dev,
    /// Production: raw data, reached by workloads only; members see status and logs.
    Prod,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Prod => "prod",
        }
    }
}

/// Whether developers may open sessions into dev's pods.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InteractiveAccess {
    /// exec, cp, attach and port-forward in dev, each session in the
    /// tenant's operation log.
    #[default]
    Audited,
    /// No exec, cp, attach or port-forward anywhere.
    #[serde(rename = "None")]
    Disabled,
}

/// The state the bureau keeps an authorization in.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    /// In force (within its validity).
    #[default]
    Active,
    /// Suspended by the bureau: the domain is closed until the bureau resumes it (R-27).
    Suspended,
    /// Revoked by the bureau: access ends, data is wiped, logs are kept (R-28). Final.
    Revoked,
    /// Ended early by the unit itself, with data disposal (R-8). Final.
    Terminated,
}

/// Data domains (R-4).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDomain {
    Environment,
    Energy,
    Agriculture,
    Finance,
    Transport,
    Health,
    Employment,
    SocialSecurity,
    CultureTourism,
    Education,
    Science,
    Weather,
    EnterpriseRegistration,
    Other,
}

/// Quotas per environment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Quotas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<EnvironmentQuota>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prod: Option<EnvironmentQuota>,
}

/// Limits of one environment; each unset value takes the environment's default.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentQuota {
    /// Total CPU requests (default dev 2, prod 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Total memory requests (default dev 4Gi, prod 8Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Number of pods (default dev 10, prod 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub pods: Option<i32>,
    /// Total requested storage (default dev 10Gi, prod 50Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Quantity>,
}

/// What the operator observed and did.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperatorAuthorizationStatus {
    /// Where the authorization is in its lifecycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Provisioned, VaultConfigured, MembersEligible, RenewalDue.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The namespaces of the tenant domain.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Each member's access, and why.
    #[serde(default)]
    pub members: Vec<MemberStatus>,
    /// What the operator configured in OpenBao/Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultStatus>,
    /// Offboarding progress: the step reached (each step is idempotent, so a
    /// restarted operator resumes from the world as it finds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offboarding: Option<String>,
    /// When the domain was frozen because its validity had passed; the grace
    /// period before offboarding counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<Time>,
    /// When an expired domain is offboarded unless the bureau renews it
    /// first. Unset while expiring when the bureau did not set the
    /// `notAfter` that passed: then only its decision moves on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offboard_after: Option<Time>,
    /// The disposal certificate, once offboarding is complete (R-28, R-29).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposal: Option<DisposalCertificate>,
    /// The early exit being carried out (R-8), kept from the day its
    /// offboarding starts: the request goes with the unit's namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_exit: Option<crate::api::exit::AcceptedExit>,
    /// Each change of phase, oldest first, with the bureau's decision where
    /// one caused it (the public register shows these; the audit log keeps
    /// every detail). At most the last 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PhaseChange>,
    /// Where the authorization's key records are kept, locked, once the
    /// offboarding wrote them (R-33). A final authorization can be deleted
    /// only once `verified` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<RecordsArchive>,
}

/// The key records of an authorization in the records store.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RecordsArchive {
    /// Where: `s3://<bucket>/<authorization>/<uid>/`.
    pub location: String,
    /// SHA-256 of its `manifest.json`, which names every record with its
    /// SHA-256 (also in the audit chain, record `RecordsArchived`).
    pub manifest_digest: String,
    /// The retention mode of every record (`COMPLIANCE`: nobody can shorten,
    /// overwrite or delete it before the end).
    pub mode: String,
    /// Until when (RFC 3339): at least 20 years after the offboarding.
    pub retain_until: String,
    /// SHA-256 of the disposal certificate as archived beside them, once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_digest: Option<String>,
    /// True once every record and the certificate were read back from the
    /// store, matched their digests and carried their locks.
    pub verified: bool,
}

/// A change of an authorization's phase.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PhaseChange {
    /// The phase entered.
    pub phase: Phase,
    /// When (RFC 3339).
    pub since: String,
    /// The reference of the bureau's decision behind it, where one did
    /// (a suspension, a resumption, a revocation, a termination, a renewal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

/// What offboarding deleted, what it kept, where and until when (R-28), and
/// the exit review (R-29).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DisposalCertificate {
    /// When the disposal completed (RFC 3339).
    pub completed_at: String,
    /// The final phase: Revoked, Terminated or Expired.
    pub outcome: String,
    /// What was deleted, by kind, with counts.
    #[serde(default)]
    pub deleted: Vec<String>,
    /// What was kept, where, until when.
    #[serde(default)]
    pub kept: Vec<KeptItem>,
    /// Where the inventory of everything deleted is archived (namespace/configmap).
    pub inventory: String,
    /// SHA-256 of that inventory.
    pub inventory_digest: String,
    /// The exit review: each check and its result.
    #[serde(default)]
    pub review: Vec<String>,
}

/// Something offboarding kept.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeptItem {
    /// What is kept (a record, a volume).
    pub what: String,
    /// Where it is kept.
    pub location: String,
    /// Kept at least until (YYYY-MM-DD), or "permanent".
    pub until: String,
}

/// Lifecycle phases.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, not yet in force (before `notBefore`) or not yet provisioned.
    Pending,
    /// Provisioned and in force.
    Active,
    /// Frozen by the bureau.
    Suspended,
    /// The validity passed without renewal: frozen, offboarded after the
    /// grace period (see condition Expiring), unless the bureau renews.
    Expiring,
    /// Being frozen, archived and wiped.
    Offboarding,
    /// Offboarded after revocation. Final.
    Revoked,
    /// Offboarded after voluntary termination. Final.
    Terminated,
    /// Offboarded after the validity ended without renewal. Final.
    Expired,
}

impl Phase {
    /// Revoked, Terminated or Expired: the domain is disposed of, and the
    /// record stays as it is.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Revoked | Self::Terminated | Self::Expired)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Active => "Active",
            Self::Suspended => "Suspended",
            Self::Expiring => "Expiring",
            Self::Offboarding => "Offboarding",
            Self::Revoked => "Revoked",
            Self::Terminated => "Terminated",
            Self::Expired => "Expired",
        }
    }
}

/// A member's access.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// The member's username.
    pub user: String,
    /// Whether the member has any access.
    pub access: bool,
    /// Why (or why not).
    pub reason: String,
}

/// What the operator configured in OpenBao/Vault for the tenant.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VaultStatus {
    /// The KV v2 mounts, one per environment (`areas/<namespace>`).
    #[serde(default)]
    pub areas: Vec<String>,
    /// The platform's workload auth mount: workloads log in at
    /// `auth/<authMount>/login` with the role named after their namespace.
    #[serde(default)]
    pub auth_mount: String,
    /// Kubernetes-auth roles, one per environment.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The OpenBao identities the workloads log in as, one per environment.
    #[serde(default)]
    pub identities: Vec<String>,
    /// The platform's policies the roles carry (the operator writes none).
    #[serde(default)]
    pub policies: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_code_check_character_follows_gb_32100() {
        // A published example code: 91350100M000100Y43.
        assert_eq!(credit_code_check_char("91350100M000100Y4"), Some('3'));
        assert!(credit_code_is_valid("91350100M000100Y43"));
        assert!(!credit_code_is_valid("91350100M000100Y44"));
        assert!(!credit_code_is_valid("91350100M000100Y4"));
        // I, O, S, V, Z are not in the alphabet.
        assert_eq!(credit_code_check_char("91350100M00010OY4"), None);
    }

    #[test]
    fn spec_defaults_fill_state_environments_and_quotas() {
        let spec: OperatorAuthorizationSpec = serde_yaml::from_str(
            r#"
unit: {name: Example Data Co., creditCode: 91350100M000100Y43}
domains: [Transport]
validity: {notBefore: "2026-01-01", notAfter: "2030-12-31"}
securityOfficer: {name: Li Lei}
agreement: {reference: AG-2026-001}
"#,
        )
        .unwrap();
        assert_eq!(spec.state, State::Active);
        assert_eq!(spec.environments, [Environment::Dev, Environment::Prod]);
        assert_eq!(spec.quotas, Quotas::default());
        assert!(spec.members.is_empty());
    }
}
