//! The ExportRequest reconciler: check (authorization, scenario, artifact
//! digest, content scan), wait for the bureau, deliver once to the
//! recipient's OpenBao path, and only if the artifact is still the one
//! checked and approved.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::tz::TimeZone;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{instrument, warn};

use crate::api::authorization::{OperatorAuthorization, Phase};
use crate::api::condition::{self, Desired};
use crate::api::dataset::{Layout, PublicDataset, Sensitivity};
use crate::api::export::{ExportPhase, ExportRequest};
use crate::api::labels;
use crate::api::scenario::{DataScenario, Decision, ScenarioPhase};
use crate::audit;
use crate::context::Context;
use crate::fingerprint;
use crate::vault;

/// The KV v2 mount deliveries go to.
pub const DELIVERY_MOUNT: &str = "deliveries";
/// The mark on the deliveries mount. A recipient reads
/// `deliveries/<its credit code>/` with a policy the bureau writes when it
/// admits the recipient (`charts/publicdata-operator/files/
/// openbao-recipient-policy.hcl`): the operator writes no policy.
pub const DELIVERIES_OWNER: &str = "publicdata-operator deliveries";

/// Errors of the export reconciler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {what}: {source}")]
    Read {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("writing status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("delivering: {0}")]
    Deliver(#[source] vault::Error),
    #[error("writing the audit log: {0}")]
    Audit(#[source] audit::Error),
    /// The scan for raw values needs what it cannot read yet: no artifact
    /// leaves unscanned.
    #[error("fingerprinting the delivery: {0}")]
    Fingerprint(String),
    #[error("reading the raw values of dataset {dataset} from PostgreSQL: {source}")]
    Database {
        dataset: String,
        #[source]
        source: crate::database::Error,
    },
}

impl Error {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::WriteStatus(_) => "write_status",
            Self::Deliver(_) => "deliver",
            Self::Audit(_) => "audit",
            Self::Database { .. } => "database",
            Self::Fingerprint(_) => "fingerprint",
        }
    }
}

#[instrument(skip_all, fields(export = %er.name_any()))]
pub async fn reconcile(er: Arc<ExportRequest>, ctx: Arc<Context>) -> Result<Action, Error> {
    // Start from the object as it is now, not as the cache last saw it:
    // delivery and its audit record must happen once.
    let er = match Api::<ExportRequest>::namespaced(
        ctx.client.clone(),
        &er.namespace().unwrap_or_default(),
    )
    .get_opt(&er.name_any())
    .await
    .map_err(|source| Error::Read {
        what: "export request",
        source,
    })? {
        Some(fresh) => Arc::new(fresh),
        None => return Ok(Action::await_change()),
    };
    let current = er.status.clone().unwrap_or_default();
    if current.phase == Some(ExportPhase::Delivered) || current.phase == Some(ExportPhase::Rejected)
    {
        return Ok(Action::await_change());
    }
    let ns = er.namespace().unwrap_or_default();
    let tenant = Api::<Namespace>::all(ctx.client.clone())
        .get_opt(&ns)
        .await
        .map_err(|source| Error::Read {
            what: "namespace",
            source,
        })?
        .and_then(|n| n.labels().get(labels::TENANT).cloned())
        .unwrap_or_default();
    let today = jiff::Timestamp::now().to_zoned(TimeZone::UTC).date();
    let mut checks = Vec::new();
    let mut failures = Vec::new();

    // The authorization is Active.
    let oa = Api::<OperatorAuthorization>::all(ctx.client.clone())
        .get_opt(&tenant)
        .await
        .map_err(|source| Error::Read {
            what: "authorization",
            source,
        })?;
    match oa
        .as_ref()
        .and_then(|o| o.status.as_ref())
        .and_then(|s| s.phase)
    {
        Some(Phase::Active) => checks.push(format!("ok: authorization {tenant} is Active")),
        other => failures.push(format!(
            "authorization {tenant:?} is not Active (phase {other:?})"
        )),
    }
    // The scenario exists, is Active, and today is inside its window.
    let scenario = Api::<DataScenario>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&er.spec.scenario)
        .await
        .map_err(|source| Error::Read {
            what: "scenario",
            source,
        })?;
    match &scenario {
        None => failures.push(format!(
            "scenario {} does not exist in {ns}",
            er.spec.scenario
        )),
        Some(s) => {
            let phase = s.status.as_ref().and_then(|st| st.phase);
            if phase != Some(ScenarioPhase::Active) {
                failures.push(format!(
                    "scenario {} is not Active (phase {phase:?})",
                    er.spec.scenario
                ));
            } else if today < s.spec.window.not_before || today > s.spec.window.not_after {
                failures.push(format!(
                    "today is outside scenario {}'s window",
                    er.spec.scenario
                ));
            } else {
                checks.push(format!(
                    "ok: scenario {} is Active and in its window (purpose: {})",
                    er.spec.scenario, s.spec.purpose
                ));
            }
        }
    }
    // The artifact exists, in the tenant's prod namespace, with the declared digest.
    let prod = format!("{tenant}-prod");
    let artifact = Api::<ConfigMap>::namespaced(ctx.client.clone(), &prod)
        .get_opt(&er.spec.artifact.config_map)
        .await
        .map_err(|source| Error::Read {
            what: "artifact",
            source,
        })?
        .and_then(|cm| artifact_bytes(cm, &er.spec.artifact.key));
    let mut computed = None;
    let mut findings = Vec::new();
    // One answer for an artifact that is missing and one that is not the
    // declared product: which prod ConfigMaps exist is not a member's to
    // learn either.
    let not_declared = || {
        format!(
            "artifact {prod}/{} key {} is not the product declared (it does not exist, or its digest is not {}){}",
            er.spec.artifact.config_map,
            er.spec.artifact.key,
            er.spec.digest,
            if er.spec.decision.is_some() {
                "; delivery refused"
            } else {
                ""
            }
        )
    };
    match &artifact {
        None => failures.push(not_declared()),
        // Neither the digest nor the review of an object other than the one
        // declared is shown: a status every member reads would otherwise
        // tell the digest of any prod ConfigMap, against which a guess at
        // a low-entropy row is checked.
        Some(content) if hex::encode(Sha256::digest(content)) != er.spec.digest => {
            failures.push(not_declared());
        }
        Some(content) => {
            let digest = er.spec.digest.clone();
            checks.push(format!(
                "ok: artifact digest {digest} matches the declared one"
            ));
            computed = Some(digest);
            let (sensitive, unscannable) = match &scenario {
                Some(s) => sensitive_values(&ctx, s).await?,
                None => Default::default(),
            };
            let review = ctx
                .scan
                .review(&er.spec.artifact.key, content, &sensitive)
                .await;
            findings = review.findings;
            findings.extend(unscannable);
            if findings.iter().all(|f| f.kind == crate::scan::UNTRACEABLE) {
                checks.push("ok: no personal data found, every part read".to_string());
            }
            if let Some(marks) = review.marks {
                checks.push(format!(
                    "ok: {marks} distinct values will carry the delivery's fingerprint"
                ));
            }
            if !findings.is_empty() {
                checks.push(format!(
                    "{} finding(s): {}",
                    findings.len(),
                    findings
                        .iter()
                        .map(|f| format!("{} at {}", f.kind, f.location))
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
    }

    let decision = er.spec.decision.clone();
    let overridden = decision.as_ref().is_some_and(|d| {
        d.override_findings
            && d.override_reason
                .as_deref()
                .is_some_and(|r| !r.trim().is_empty())
    });
    let (phase, message) = if !failures.is_empty() {
        (ExportPhase::Failed, failures.join("; "))
    } else {
        match &decision {
            None => (ExportPhase::AwaitingReview, "checks passed; awaiting the bureau's decision".to_string()),
            Some(d) if d.decision == Decision::Rejected => (ExportPhase::Rejected, format!("rejected by {}", d.reviewer)),
            Some(_) if !findings.is_empty() && !overridden => (
                ExportPhase::AwaitingReview,
                "findings (personal data, unreadable parts, or no room for a fingerprint): the approval does not take effect unless the bureau overrides them with a reason".to_string(),
            ),
            Some(d) => (ExportPhase::Approved, format!("approved by {}", d.reviewer)),
        }
    };

    let object = format!("ExportRequest/{ns}/{}", er.name_any());
    let entry = |action: &str, reason: String, outcome: &str| audit::Entry {
        tenant: tenant.clone(),
        object: object.clone(),
        action: action.into(),
        reason,
        outcome: outcome.into(),
        actor: decision.as_ref().map(|d| d.reviewer.clone()),
        uid: None,
        delivery: None,
    };
    let first_time = |p: ExportPhase| current.phase != Some(p);

    let mut delivered_to = None;
    let mut delivered = None;
    // A delivery widens access: it waits while the audit log cannot take records.
    let held_back = match ctx.audit.health() {
        Err(problem) if phase == ExportPhase::Approved => Some(problem),
        _ => None,
    };
    let final_phase = if held_back.is_some() {
        ExportPhase::Approved
    } else if phase == ExportPhase::Approved {
        // Deliver, once: the artifact is the approved one (checked above, now).
        let digest = computed.clone().unwrap_or_default();
        let (content, fingerprint) =
            fingerprinted(&ctx, &er, artifact.clone().unwrap_or_default()).await?;
        let delivered_digest = hex::encode(Sha256::digest(&content));
        // Text as it is; anything else in base64, named so.
        let (artifact_key, artifact_value) = match String::from_utf8(content) {
            Ok(text) => ("artifact", text),
            Err(e) => (
                "artifactBase64",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, e.into_bytes()),
            ),
        };
        let path = format!(
            "{}/{tenant}/{}",
            er.spec.recipient.credit_code,
            er.name_any()
        );
        let manifest = json!({
            "digest": digest,
            "deliveredDigest": delivered_digest,
            "product": er.spec.product,
            "scenario": er.spec.scenario,
            "tenant": tenant,
            "approvedBy": decision.as_ref().map(|d| d.reviewer.clone()),
            "recipient": er.spec.recipient,
            "permittedUse": er.spec.permitted_use,
            "purpose": er.spec.purpose,
        });
        let data = BTreeMap::from([
            (artifact_key.to_string(), artifact_value),
            ("manifest".to_string(), manifest.to_string()),
        ]);
        if overridden && first_time(ExportPhase::Delivered) {
            let reason = decision
                .as_ref()
                .and_then(|d| d.override_reason.clone())
                .unwrap_or_default();
            append(
                &ctx,
                entry(
                    "FindingsOverridden",
                    format!("{} finding(s) overridden: {reason}", findings.len()),
                    "Approved",
                ),
            )
            .await?;
        }
        ctx.vault
            .write_kv2_once(DELIVERIES_OWNER, DELIVERY_MOUNT, &path, &data)
            .await
            .map_err(Error::Deliver)?;
        let mut record = entry(
            "ExportDelivered",
            format!(
                "{DELIVERY_MOUNT}/{path}, digest {digest}, {}, to {} ({})",
                match &fingerprint {
                    Some(f) => format!(
                        "fingerprinted ({} marks), delivered digest {delivered_digest}",
                        f.marks
                    ),
                    None => "without a fingerprint (overridden)".to_string(),
                },
                er.spec.recipient.name,
                er.spec.recipient.credit_code
            ),
            "Success",
        );
        record.delivery = Some(audit::Delivery {
            export_uid: er.uid().unwrap_or_default(),
            path: format!("{DELIVERY_MOUNT}/{path}"),
            recipient: er.spec.recipient.name.clone(),
            recipient_code: er.spec.recipient.credit_code.clone(),
            digest: digest.clone(),
            delivered_digest: delivered_digest.clone(),
            fingerprint: fingerprint.clone(),
        });
        append(&ctx, record).await?;
        delivered_to = Some(format!("{DELIVERY_MOUNT}/{path}"));
        delivered = Some((delivered_digest, fingerprint.map(|f| f.marks)));
        ExportPhase::Delivered
    } else {
        if first_time(phase) {
            let (action, outcome) = match phase {
                ExportPhase::Failed => ("ExportRefused", "Refused"),
                ExportPhase::Rejected => ("ExportRejected", "Rejected"),
                _ => ("ExportChecked", "AwaitingReview"),
            };
            append(&ctx, entry(action, message.clone(), outcome)).await?;
        }
        phase
    };

    let ok = matches!(
        final_phase,
        ExportPhase::Delivered | ExportPhase::AwaitingReview
    );
    let cond = if let Some(problem) = &held_back {
        Desired::new(
            "Ready",
            false,
            condition::reasons::AUDIT_LOG_DAMAGED,
            format!("approved; the delivery waits while the audit log is damaged ({problem})"),
        )
    } else {
        Desired::new(
            "Ready",
            final_phase == ExportPhase::Delivered,
            if ok { "AsExpected" } else { "Blocked" },
            match final_phase {
                ExportPhase::Delivered => {
                    format!("delivered to {}", delivered_to.clone().unwrap_or_default())
                }
                _ => message.clone(),
            },
        )
    };
    let now = Time(jiff::Timestamp::now());
    let mut next = current.clone();
    next.phase = Some(final_phase);
    next.observed_generation = er.metadata.generation;
    next.computed_digest = computed.clone();
    next.short_digest = computed.map(|d| d.chars().take(12).collect());
    next.checks = checks.into_iter().chain(failures).collect();
    next.findings = findings;
    next.delivered_to = delivered_to;
    if let Some((digest, marks)) = delivered {
        next.delivered_digest = Some(digest);
        next.fingerprint_marks = marks;
    }
    next.conditions = condition::merge(&current.conditions, &[cond], er.metadata.generation, &now);
    if next != current {
        if current.phase != next.phase {
            let type_ = if matches!(final_phase, ExportPhase::Failed | ExportPhase::Rejected) {
                EventType::Warning
            } else {
                EventType::Normal
            };
            publish(&ctx, &er, type_, &format!("{final_phase:?}"), &message).await;
        }
        let api: Api<ExportRequest> = Api::namespaced(ctx.client.clone(), &ns);
        super::apply_status(&api, &er.name_any(), &next)
            .await
            .map_err(Error::WriteStatus)?;
    }
    Ok(Action::requeue(Duration::from_secs(30)))
}

/// The most distinct values of one column the scan reads from a table.
pub const SCAN_VALUES_LIMIT: i64 = 200_000;

/// The raw values of catalog fields marked Sensitive, for the scenario's
/// datasets, as (finding kind, values): the scan looks for them unmasked in
/// the artifact. The operator reads those raw values (only those)
/// where the data is, a dataset's table and its OpenBao path; findings name
/// the field and the place, never the value. What cannot be read is a
/// finding of its own (`Unreadable`): the scan fails closed.
async fn sensitive_values(
    ctx: &Context,
    scenario: &DataScenario,
) -> Result<(Vec<(String, Vec<String>)>, Vec<crate::scan::Finding>), Error> {
    let catalog = Api::<PublicDataset>::all(ctx.client.clone())
        .list(&Default::default())
        .await
        .map_err(|source| Error::Read {
            what: "catalog",
            source,
        })?
        .items;
    let mut out = Vec::new();
    let mut unscannable = Vec::new();
    for item in &scenario.spec.items {
        let Some(ds) = catalog.iter().find(|d| d.name_any() == item.dataset) else {
            continue;
        };
        let sensitive = || {
            ds.spec
                .fields
                .iter()
                .filter(|f| f.sensitivity == Sensitivity::Sensitive)
        };
        if let Some(table) = &ds.spec.table {
            let unreadable = |why: String| crate::scan::Finding {
                kind: crate::scan::UNREADABLE.into(),
                location: format!("the raw values of dataset {}: {why}", ds.name_any()),
            };
            match &ctx.database {
                None => unscannable.push(unreadable(
                    "it lives in a PostgreSQL table and the operator has no data plane configured"
                        .into(),
                )),
                Some(plane) => {
                    for field in sensitive() {
                        let values = plane
                            .raw
                            .distinct_values(
                                &table.schema,
                                &table.name,
                                &field.name,
                                SCAN_VALUES_LIMIT,
                            )
                            .await
                            .map_err(|source| Error::Database {
                                dataset: ds.name_any(),
                                source,
                            })?;
                        match values {
                            Some(values) => out.push((
                                format!("SensitiveField:{}.{}", ds.name_any(), field.name),
                                values,
                            )),
                            None => unscannable.push(unreadable(format!(
                                "column {} has more than {SCAN_VALUES_LIMIT} distinct values",
                                field.name
                            ))),
                        }
                    }
                }
            }
        }
        let Some(vault) = &ds.spec.vault else {
            continue;
        };
        let Some((mount, base)) = vault.raw_path.split_once('/') else {
            continue;
        };
        for field in sensitive() {
            let values: Vec<String> = match vault.layout {
                Layout::PerField => ctx
                    .vault
                    .read_kv2(mount, &format!("{base}/{}", field.name))
                    .await
                    .map_err(Error::Deliver)?
                    .map(|m| m.into_values().collect())
                    .unwrap_or_default(),
                Layout::Whole => ctx
                    .vault
                    .read_kv2(mount, base)
                    .await
                    .map_err(Error::Deliver)?
                    .and_then(|m| m.get(&field.name).cloned())
                    .into_iter()
                    .collect(),
            };
            let kind = format!("SensitiveField:{}.{}", ds.name_any(), field.name);
            out.push((kind, values));
        }
    }
    Ok((out, unscannable))
}

/// The product as the recipient gets it: with its delivery's fingerprint
/// when it can carry one (one that cannot leaves only under the bureau's
/// override of its `Untraceable` finding, and goes as it is). Marking is
/// deterministic: a delivery made again writes the same bytes.
async fn fingerprinted(
    ctx: &Context,
    er: &ExportRequest,
    content: Vec<u8>,
) -> Result<(Vec<u8>, Option<audit::DeliveryFingerprint>), Error> {
    let name = &er.spec.artifact.key;
    if fingerprint::traceable(name, &content).is_err() {
        return Ok((content, None));
    }
    let uid = er
        .uid()
        .ok_or_else(|| Error::Fingerprint("the export request has no uid".into()))?;
    let (version, key) = ctx
        .vault
        .delivery_key(&uid, None)
        .await
        .map_err(Error::Deliver)?;
    let marked =
        fingerprint::mark(name, &content, &key).map_err(|e| Error::Fingerprint(e.to_string()))?;
    Ok((
        marked.bytes,
        Some(audit::DeliveryFingerprint {
            scheme: fingerprint::SCHEME.into(),
            key_version: version,
            marks: marked.marks as u64,
        }),
    ))
}

/// The artifact's bytes: a text key (`data`) or a binary one (`binaryData`).
fn artifact_bytes(cm: ConfigMap, key: &str) -> Option<Vec<u8>> {
    cm.data
        .and_then(|d| d.get(key).map(|t| t.clone().into_bytes()))
        .or_else(|| cm.binary_data.and_then(|b| b.get(key).map(|v| v.0.clone())))
}

async fn append(ctx: &Context, entry: audit::Entry) -> Result<(), Error> {
    audit::append(&ctx.audit, entry)
        .await
        .map_err(Error::Audit)?;
    Ok(())
}

async fn publish(ctx: &Context, er: &ExportRequest, type_: EventType, reason: &str, note: &str) {
    super::publish(&ctx.recorder, er, type_, reason, "Check", note).await;
}

fn error_policy(_er: Arc<ExportRequest>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(error = %error, label = error.label(), "export reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the export controller until shutdown.
pub async fn run(ctx: Arc<Context>) {
    Controller::new(
        Api::<ExportRequest>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        if let Err(e) = result {
            warn!(error = %e, "export controller");
        }
    })
    .await;
}
