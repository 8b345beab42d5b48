//! The DataScenario reconciler: validate against the catalog and the
//! authorization, count the approvals that name the current list, decide the
//! phase, and publish the grants (the authorization reconciler writes them
//! into the tenant's OpenBao grants policies).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::tz::TimeZone;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use serde_json::json;
use tracing::{instrument, warn};

use crate::api::authorization::{OperatorAuthorization, Phase};
use crate::api::condition::{self, Desired};
use crate::api::dataset::PublicDataset;
use crate::api::labels;
use crate::api::scenario::{ColumnGrant, DataScenario, DataScenarioStatus, ScenarioPhase};
use crate::audit;
use crate::context::{Context, FIELD_MANAGER};
use crate::controllers::scenario_rules as rules;

/// Errors of the scenario reconciler.
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
    #[error("updating the agency approvers' binding: {0}")]
    Approvers(#[source] kube::Error),
    #[error("writing the audit log: {0}")]
    Audit(#[source] audit::Error),
}

impl Error {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::WriteStatus(_) => "write_status",
            Self::Approvers(_) => "approvers",
            Self::Audit(_) => "audit",
        }
    }
}

/// The group of an agency's people.
pub fn agency_group(agency: &str) -> String {
    format!("publicdata:agency:{agency}")
}

/// The ClusterRoleBinding that lets every agency of the catalog read and
/// patch scenarios (the admission policy limits what each may write).
async fn ensure_agency_approvers(ctx: &Context, catalog: &[PublicDataset]) -> Result<(), Error> {
    let mut agencies: Vec<String> = catalog
        .iter()
        .map(|d| d.spec.owner_agency.clone())
        .collect();
    agencies.sort();
    agencies.dedup();
    let subjects: Vec<_> = agencies
        .iter()
        .map(|a| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": agency_group(a)}))
        .collect();
    let crb = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        // No managed-by label: in a cluster the chart creates this binding
        // and the operator only keeps its subjects.
        "metadata": {"name": "publicdata-agency-approvers", "labels": {"app.kubernetes.io/part-of": labels::MANAGER}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "publicdata-agency-approver"},
        "subjects": subjects,
    });
    Api::<ClusterRoleBinding>::all(ctx.client.clone())
        .patch(
            "publicdata-agency-approvers",
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crb),
        )
        .await
        .map_err(Error::Approvers)?;
    Ok(())
}

fn describe(ds: &DataScenario) -> String {
    ds.spec
        .items
        .iter()
        .map(|i| format!("{}[{}]", i.dataset, i.fields.join(",")))
        .collect::<Vec<_>>()
        .join("; ")
}

#[instrument(skip_all, fields(scenario = %ds.name_any(), namespace = ds.namespace().unwrap_or_default()))]
pub async fn reconcile(ds: Arc<DataScenario>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = ds.namespace().unwrap_or_default();
    // Start from the object as it is now, not as the cache last saw it.
    let ds = match Api::<DataScenario>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&ds.name_any())
        .await
        .map_err(|source| Error::Read {
            what: "scenario",
            source,
        })? {
        Some(fresh) => Arc::new(fresh),
        None => return Ok(Action::await_change()),
    };
    let namespace = Api::<Namespace>::all(ctx.client.clone())
        .get_opt(&ns)
        .await
        .map_err(|source| Error::Read {
            what: "namespace",
            source,
        })?;
    let ns_tenant = namespace
        .as_ref()
        .and_then(|n| n.labels().get(labels::TENANT).cloned());
    let oa = Api::<OperatorAuthorization>::all(ctx.client.clone())
        .get_opt(&ds.spec.authorization)
        .await
        .map_err(|source| Error::Read {
            what: "authorization",
            source,
        })?;
    let catalog = Api::<PublicDataset>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Read {
            what: "catalog",
            source,
        })?
        .items;
    ensure_agency_approvers(&ctx, &catalog).await?;

    let today = jiff::Timestamp::now().to_zoned(TimeZone::UTC).date();
    let problems = rules::validate(&ds.spec, ns_tenant.as_deref(), oa.as_ref(), &catalog);
    let digest = rules::items_digest(&ds.spec);
    let required = rules::required_parties(&ds.spec, &catalog);
    let approvals = rules::approval_state(&ds.spec, &digest, &required);
    let active = oa
        .as_ref()
        .and_then(|o| o.status.as_ref())
        .and_then(|s| s.phase)
        == Some(Phase::Active);
    let phase = rules::phase(&ds.spec, problems.is_empty(), &approvals, active, today);
    let grants: Vec<String> = if phase == ScenarioPhase::Active {
        rules::grant_paths(&ds.spec, &catalog)
            .into_iter()
            .map(|(env, path)| format!("{env}:{path}"))
            .collect()
    } else {
        Vec::new()
    };
    let column_grants = if phase == ScenarioPhase::Active {
        rules::column_grants(&ds.spec, &catalog)
    } else {
        Vec::new()
    };
    // A new grant widens access: it waits while the audit log cannot take
    // records. A grant in force stays; a revocation goes ahead.
    let newly_granted = ds
        .status
        .as_ref()
        .is_none_or(|s| s.grants.is_empty() && s.column_grants.is_empty());
    let held_back = match ctx.audit.health() {
        Err(problem) if !(grants.is_empty() && column_grants.is_empty()) && newly_granted => {
            Some(problem)
        }
        _ => None,
    };
    let (grants, column_grants) = if held_back.is_some() {
        (Vec::new(), Vec::new())
    } else {
        (grants, column_grants)
    };
    // What is granted, in words: OpenBao paths, then PostgreSQL columns.
    let describe_grants = |paths: &[String], columns: &[ColumnGrant]| -> Vec<String> {
        paths
            .iter()
            .map(|p| format!("OpenBao read on {p}"))
            .chain(columns.iter().map(|g| {
                format!(
                    "{}: SELECT ({}) ON {}.{}",
                    g.environment,
                    g.columns.join(", "),
                    g.schema,
                    g.relation
                )
            }))
            .collect()
    };
    let described = describe_grants(&grants, &column_grants);

    let valid = if problems.is_empty() {
        Desired::new(
            "Valid",
            true,
            "Valid",
            "every dataset and field is in the catalog and grantable; the window is inside the authorization",
        )
    } else {
        Desired::new("Valid", false, "Invalid", problems.join("; "))
    };
    let approved = if !approvals.rejected_by.is_empty() {
        Desired::new(
            "Approved",
            false,
            "Rejected",
            format!("rejected by {}", approvals.rejected_by.join(", ")),
        )
    } else if approvals.complete() {
        Desired::new(
            "Approved",
            true,
            "AllApproved",
            format!("approved by {}", approvals.given.join(", ")),
        )
    } else {
        let missing: Vec<_> = approvals
            .needed
            .iter()
            .filter(|p| !approvals.given.contains(p))
            .cloned()
            .collect();
        let mut message = format!("awaiting {} for list {digest}", missing.join(", "));
        if !approvals.stale.is_empty() {
            message.push_str(&format!(
                "; the approvals of {} are void: the list changed after they were given",
                approvals.stale.join(", ")
            ));
        }
        Desired::new(
            "Approved",
            false,
            if approvals.stale.is_empty() {
                "AwaitingApprovals"
            } else {
                "ApprovalsVoided"
            },
            message,
        )
    };
    let granted = if let Some(problem) = &held_back {
        Desired::new(
            "Granted",
            false,
            condition::reasons::AUDIT_LOG_DAMAGED,
            format!("approved, but no data is granted while the audit log is damaged ({problem})"),
        )
    } else if described.is_empty() {
        Desired::new(
            "Granted",
            false,
            "NotGranted",
            format!("phase {phase:?}: no data is granted"),
        )
    } else {
        Desired::new("Granted", true, "Granted", described.join("; "))
    };

    let current = ds.status.clone().unwrap_or_default();
    let was_granted = !current.grants.is_empty() || !current.column_grants.is_empty();
    // Audit and events on transitions only, before the status that reports them.
    let tenant = ds.spec.authorization.clone();
    let object = format!("DataScenario/{ns}/{}", ds.name_any());
    let record = |action: &str, reason: String| audit::Entry {
        tenant: tenant.clone(),
        object: object.clone(),
        action: action.into(),
        reason,
        outcome: "Success".into(),
        actor: None,
        uid: None,
        delivery: None,
    };
    if !described.is_empty() && !was_granted {
        append(
            &ctx,
            record(
                "ScenarioGranted",
                format!(
                    "{}; approvals {}; {}",
                    describe(&ds),
                    approvals.given.join(", "),
                    described.join("; ")
                ),
            ),
        )
        .await?;
        publish(&ctx, &ds, EventType::Normal, "Granted", &granted.message).await;
    } else if described.is_empty() && was_granted {
        append(
            &ctx,
            record(
                "ScenarioRevoked",
                format!(
                    "{}; phase {phase:?}; {}",
                    describe(&ds),
                    describe_grants(&current.grants, &current.column_grants).join("; ")
                ),
            ),
        )
        .await?;
        publish(
            &ctx,
            &ds,
            EventType::Warning,
            "Revoked",
            &format!("grant removed: phase {phase:?}"),
        )
        .await;
    }
    let was_invalid = current
        .conditions
        .iter()
        .any(|c| c.type_ == "Valid" && c.status == "False" && c.message == valid.message);
    if !problems.is_empty() && !was_invalid {
        append(&ctx, record("ScenarioRejected", valid.message.clone())).await?;
        publish(&ctx, &ds, EventType::Warning, "Invalid", &valid.message).await;
    }

    let now = Time(jiff::Timestamp::now());
    let mut next = current.clone();
    next.phase = Some(phase);
    next.observed_generation = ds.metadata.generation;
    next.items_digest = Some(digest);
    next.approvals = Some(format!(
        "{}/{}",
        approvals.given.len(),
        approvals.needed.len()
    ));
    next.required_approvals = required;
    next.grants = grants;
    next.column_grants = column_grants;
    next.conditions = condition::merge(
        &current.conditions,
        &[valid, approved, granted],
        ds.metadata.generation,
        &now,
    );
    if next != current {
        write_status(&ctx, &ds, &next).await?;
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

async fn write_status(
    ctx: &Context,
    ds: &DataScenario,
    status: &DataScenarioStatus,
) -> Result<(), Error> {
    let api: Api<DataScenario> =
        Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    super::apply_status(&api, &ds.name_any(), status)
        .await
        .map_err(Error::WriteStatus)?;
    ctx.metrics.wrote("kubernetes", 1);
    Ok(())
}

async fn append(ctx: &Context, entry: audit::Entry) -> Result<(), Error> {
    audit::append(&ctx.audit, entry)
        .await
        .map_err(Error::Audit)?;
    Ok(())
}

async fn publish(ctx: &Context, ds: &DataScenario, type_: EventType, reason: &str, note: &str) {
    super::publish(&ctx.recorder, ds, type_, reason, "Reconcile", note).await;
}

fn error_policy(_ds: Arc<DataScenario>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(error = %error, label = error.label(), "scenario reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the scenario controller until shutdown.
pub async fn run(ctx: Arc<Context>) {
    Controller::new(
        Api::<DataScenario>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        if let Err(e) = result {
            warn!(error = %e, "scenario controller");
        }
    })
    .await;
}
