//! The OperatorAuthorization reconciler: fetch facts, decide (pure), build
//! (pure), apply with server-side apply, configure the secrets backend, write
//! status only when it changed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{info, instrument, warn};

use crate::api::authorization::{
    MemberStatus, OperatorAuthorization, OperatorAuthorizationStatus, Phase, VaultStatus,
    credit_code_is_valid,
};
use crate::api::condition::{self, Desired, reasons, types};
use crate::api::labels;
use crate::audit;
use crate::controllers::tenant::{self, EnvironmentObjects, Mode};
use crate::controllers::{offboard, workloads};
use crate::lifecycle::{self, Action as Step, Facts};
use crate::telemetry::{Health, Metrics};
use crate::vault::{self, SecretsBackend};

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "publicdata-operator";
/// The finalizer that lets the operator orphan (never wipe) a domain whose
/// authorization is deleted before it was offboarded.
pub const FINALIZER: &str = "publicdata.io/domain-protection";
/// How often an unchanged authorization is looked at again (drift in OpenBao
/// is not watched).
const RESYNC: Duration = Duration::from_secs(300);

/// Settings of the reconciler.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The audience workload tokens must carry to log in to OpenBao.
    pub vault_audience: String,
    /// Where tenant workloads may connect beyond their namespace (OpenBao),
    /// and who the operator is.
    pub platform: tenant::Platform,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub vault: Arc<dyn SecretsBackend>,
    pub settings: Settings,
    pub reporter: Reporter,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// The audit log: every decision and action, hash-chained.
    pub audit: Arc<dyn audit::Sink>,
    /// Consecutive failures per authorization, for the backoff.
    pub failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

/// Errors of the reconciler, named after the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("configuring OpenBao: {0}")]
    Vault(#[source] vault::Error),
    #[error("writing status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("marking the domain orphaned: {0}")]
    MarkOrphaned(#[source] kube::Error),
    #[error("offboarding: {0}")]
    Offboard(#[source] offboard::Error),
    #[error("exit review found leftovers: {0}")]
    ReviewFailed(String),
    #[error("writing the audit log: {0}")]
    Audit(#[source] audit::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// A low-cardinality label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Apply { .. } => "apply",
            Self::Vault(e) => e.label(),
            Self::WriteStatus(_) => "write_status",
            Self::MarkOrphaned(_) => "mark_orphaned",
            Self::Audit(_) => "audit",
            Self::Offboard(_) => "offboard",
            Self::ReviewFailed(_) => "review_failed",
            Self::Finalizer(_) => "finalizer",
        }
    }
}

/// Whether the Ready condition already says `reason` (so an event about it
/// was published when it first did).
fn ready_reason_is(status: &OperatorAuthorizationStatus, reason: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == types::READY && c.reason == reason)
}

/// Who last changed the spec, as the API server recorded it: the field manager
/// of the newest managedFields entry that owns a field under `spec`.
pub fn spec_actor(oa: &OperatorAuthorization) -> Option<String> {
    oa.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref().unwrap_or("").is_empty())
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.get("f:spec").is_some())
        })
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))
        .and_then(|m| m.manager.clone())
}

/// Appends one audit record. Written before the status that reports the
/// action, so a crash between the two repeats a record rather than losing one.
async fn record(
    ctx: &Context,
    oa: &OperatorAuthorization,
    action: &str,
    reason: String,
    outcome: String,
    actor: Option<String>,
) -> Result<(), Error> {
    let entry = audit::Entry {
        tenant: oa.name_any(),
        object: format!("OperatorAuthorization/{}", oa.name_any()),
        action: action.into(),
        reason,
        outcome,
        actor,
    };
    audit::append(&ctx.audit, entry)
        .await
        .map_err(Error::Audit)?;
    Ok(())
}

fn today() -> Date {
    jiff::Timestamp::now().to_zoned(TimeZone::UTC).date()
}

/// Reconciles one authorization.
#[instrument(skip_all, fields(authorization = %oa.name_any()))]
pub async fn reconcile(oa: Arc<OperatorAuthorization>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let name = oa.name_any();
    let api: Api<OperatorAuthorization> = Api::all(ctx.client.clone());
    // The cache can lag behind this operator's own last status write; acting
    // on a stale status could redo a finished step or record it twice, so
    // every reconcile starts from the object as the API server has it now.
    let oa = match api.get_opt(&name).await {
        Ok(Some(fresh)) => Arc::new(fresh),
        Ok(None) => return Ok(Action::await_change()),
        Err(source) => {
            return Err(Error::Apply {
                kind: "OperatorAuthorization",
                name,
                source,
            });
        }
    };
    let result = finalizer(&api, FINALIZER, oa, |event| async {
        match event {
            Finalizer::Apply(oa) => apply(&oa, &ctx).await,
            Finalizer::Cleanup(oa) => orphan(&oa, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(Box::new(other)),
    });
    ctx.metrics
        .observe(started.elapsed(), result.as_ref().err().map(Error::label));
    if result.is_ok() {
        let mut map = ctx
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.remove(&name);
    }
    result
}

/// Applies the authorization: the decision of the lifecycle, then the domain.
async fn apply(oa: &OperatorAuthorization, ctx: &Context) -> Result<Action, Error> {
    let today = today();
    let status = oa.status.clone().unwrap_or_default();

    // The check character of the credit code (the API server checks the format).
    if !credit_code_is_valid(&oa.spec.unit.credit_code) {
        let message = format!(
            "unit.creditCode {} has a wrong check character (GB 32100-2015); nothing is provisioned until it is corrected",
            oa.spec.unit.credit_code
        );
        let conditions = vec![Desired::new(
            types::READY,
            false,
            reasons::INVALID_SPEC,
            message.clone(),
        )];
        if !ready_reason_is(&status, reasons::INVALID_SPEC) {
            record(
                ctx,
                oa,
                "ProvisioningRefused",
                message.clone(),
                "Refused: invalid spec".into(),
                spec_actor(oa),
            )
            .await?;
            publish(
                ctx,
                oa,
                EventType::Warning,
                reasons::INVALID_SPEC,
                "Validate",
                &message,
            )
            .await;
        }
        write_status(ctx, oa, &status, Phase::Pending, conditions, |_| {}).await?;
        return Ok(Action::await_change());
    }

    let provisioned = status.phase == Some(Phase::Active)
        || status
            .conditions
            .iter()
            .any(|c| c.type_ == types::PROVISIONED && c.status == "True");
    let decision = lifecycle::decide(&Facts {
        state: oa.spec.state,
        validity: oa.spec.validity.clone(),
        today,
        phase: status.phase,
        provisioned,
        offboarded: status.disposal.is_some(),
    });

    let renewal = if decision.renewal_due {
        Desired::new(
            types::RENEWAL_DUE,
            true,
            reasons::RENEWAL_WINDOW,
            format!(
                "the authorization ends on {}; renewal was due from {} (R-6)",
                oa.spec.validity.not_after,
                lifecycle::renewal_due_from(&oa.spec.validity)
            ),
        )
    } else {
        Desired::new(
            types::RENEWAL_DUE,
            false,
            reasons::WITHIN_VALIDITY,
            format!(
                "renewal is due from {}",
                lifecycle::renewal_due_from(&oa.spec.validity)
            ),
        )
    };

    if decision.action == Step::Nothing && status.disposal.is_some() {
        // The final record: nothing more to do, ever.
        return Ok(Action::await_change());
    }
    match decision.action {
        Step::Provision => provision(oa, ctx, today, &status, renewal, decision.next_change).await,
        Step::Nothing => {
            let message = format!(
                "the authorization is in force from {}",
                oa.spec.validity.not_before
            );
            let conditions = vec![
                Desired::new(types::READY, false, reasons::NOT_STARTED, message),
                renewal,
            ];
            write_status(ctx, oa, &status, decision.phase, conditions, |_| {}).await?;
            Ok(requeue_until(decision.next_change, today))
        }
        Step::Freeze => freeze(oa, ctx, today, &status, renewal).await,
        Step::Offboard { then } => offboard(oa, ctx, today, &status, then).await,
    }
}

/// Once a domain was frozen, its Frozen and Degraded conditions say it is not
/// any more (when the resume succeeded).
fn after_freeze(status: &OperatorAuthorizationStatus, ready: bool) -> Vec<Desired> {
    let has = |t: &str| status.conditions.iter().any(|c| c.type_ == t);
    let mut out = Vec::new();
    if ready && has(types::FROZEN) {
        out.push(Desired::new(
            types::FROZEN,
            false,
            reasons::RESUMED,
            "resumed by the bureau",
        ));
    }
    if ready && has(types::DEGRADED) {
        out.push(Desired::new(
            types::DEGRADED,
            false,
            reasons::AS_EXPECTED,
            "provisioned",
        ));
    }
    out
}

/// The grants of the tenant's active scenarios, as `(env, policy path)`.
async fn scenario_grants(ctx: &Context, tenant: &str) -> Result<Vec<(String, String)>, Error> {
    let scenarios = Api::<crate::api::DataScenario>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Apply {
            kind: "DataScenario",
            name: tenant.into(),
            source,
        })?;
    let mut out: Vec<(String, String)> = scenarios
        .items
        .iter()
        .filter(|s| s.spec.authorization == tenant)
        // Only scenarios in the tenant's own namespaces count.
        .filter(|s| {
            s.namespace()
                .is_some_and(|ns| ns.starts_with(&format!("{tenant}-")))
        })
        .flat_map(|s| s.status.iter().flat_map(|st| st.grants.clone()))
        .filter_map(|g| {
            g.split_once(':')
                .map(|(e, p)| (e.to_string(), p.to_string()))
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Who changed the state: the API server's stamp (see the admission policies).
pub fn state_actor(oa: &OperatorAuthorization) -> Option<String> {
    oa.annotations()
        .get("publicdata.io/state-changed-by")
        .cloned()
        .or_else(|| spec_actor(oa))
}

/// The bureau's reason and decision for the current state.
fn state_reason(oa: &OperatorAuthorization) -> String {
    match &oa.spec.state_change {
        Some(c) => format!("{} (decision {})", c.reason, c.decision),
        None => "no reason recorded".into(),
    }
}

/// What a freeze did: the frozen namespaces, the pods it stopped, and
/// OpenBao's answer (the caller reports).
struct Frozen {
    namespaces: Vec<String>,
    stopped: workloads::Report,
    vault: Result<vault::Change, vault::Error>,
}

/// The freeze itself, shared by suspension and offboarding: the Kubernetes
/// side of every existing tenant namespace and the OpenBao auth mount, at the
/// same time, so that neither waits for the other (an OpenBao that hangs
/// never delays the network cut, and the token cut never waits for pods).
async fn freeze_domain(
    oa: &OperatorAuthorization,
    ctx: &Context,
    today: Date,
) -> Result<Frozen, Error> {
    let tenant = oa.name_any();
    let kubernetes = async {
        let namespaces_api: Api<Namespace> = Api::all(ctx.client.clone());
        let mut namespaces = Vec::new();
        let mut stopped = workloads::Report::default();
        for env in tenant::build_in(oa, today, Mode::Frozen, &ctx.settings.platform) {
            let ns = tenant::namespace_name(&tenant, env.env);
            // Only what exists is frozen; a freeze never creates a domain.
            let exists = namespaces_api
                .get_opt(&ns)
                .await
                .map_err(|source| Error::Apply {
                    kind: "Namespace",
                    name: ns.clone(),
                    source,
                })?
                .is_some_and(|n| n.metadata.deletion_timestamp.is_none());
            if exists {
                stopped.merge(apply_environment(ctx, oa, &env, Mode::Frozen).await?);
                namespaces.push(ns);
            }
        }
        Ok::<_, Error>((namespaces, stopped))
    };
    let auth_mount = vault::auth_mount(&tenant);
    let openbao = ctx.vault.disable_kubernetes_auth(&auth_mount);
    let (kubernetes, vault_result) = tokio::join!(kubernetes, openbao);
    if let Ok(vault::Change::Written) = vault_result {
        ctx.metrics.wrote("openbao", 1);
    }
    let (namespaces, stopped) = kubernetes?;
    Ok(Frozen {
        namespaces,
        stopped,
        vault: vault_result,
    })
}

/// The audit text for the pods a freeze stopped. Bare pods are named: they
/// cannot be resumed, so the record says which were lost.
fn describe_stopped(stopped: &workloads::Report) -> String {
    let mut text = format!(
        "{} workload controllers scaled to 0 or suspended; {} pods stopped (their controllers restore them on resume)",
        stopped.patched,
        stopped.pods_stopped.len()
    );
    if !stopped.bare_pods_stopped.is_empty() {
        text.push_str(&format!(
            "; {} bare pods stopped for good (no controller can resume them): {}",
            stopped.bare_pods_stopped.len(),
            stopped.bare_pods_stopped.join(", ")
        ));
    }
    text
}

/// Closes the domain: the Kubernetes side at once, then OpenBao.
/// Nothing is deleted but member bindings and allow policies, which resume
/// re-creates from the spec. Never reports Frozen before every part holds.
async fn freeze(
    oa: &OperatorAuthorization,
    ctx: &Context,
    today: Date,
    status: &OperatorAuthorizationStatus,
    renewal: Desired,
) -> Result<Action, Error> {
    let tenant = oa.name_any();
    let Frozen {
        namespaces,
        stopped,
        vault: vault_result,
    } = freeze_domain(oa, ctx, today).await?;
    let auth_mount = vault::auth_mount(&tenant);
    let why = state_reason(oa);
    let (frozen, degraded) = match &vault_result {
        Ok(_) => (
            Desired::new(
                types::FROZEN,
                true,
                reasons::FROZEN,
                format!("suspended by the bureau: {why}"),
            ),
            Desired::new(
                types::DEGRADED,
                false,
                reasons::AS_EXPECTED,
                "frozen on Kubernetes and OpenBao",
            ),
        ),
        Err(e) => (
            Desired::new(
                types::FROZEN,
                false,
                reasons::FREEZE_INCOMPLETE,
                format!("Kubernetes side frozen; OpenBao not yet (tokens may still be valid): {e}"),
            ),
            Desired::new(
                types::DEGRADED,
                true,
                reasons::FREEZE_INCOMPLETE,
                format!("retrying: {e}"),
            ),
        ),
    };
    let was_frozen = status
        .conditions
        .iter()
        .any(|c| c.type_ == types::FROZEN && c.status == "True");
    let was_degraded = status
        .conditions
        .iter()
        .any(|c| c.type_ == types::DEGRADED && c.status == "True");
    if frozen.ok && !was_frozen {
        record(
            ctx,
            oa,
            "TenantFrozen",
            format!(
                "{why}; namespaces {}; OpenBao auth mount {auth_mount} disabled (its tokens revoked); {}",
                namespaces.join(", "),
                describe_stopped(&stopped)
            ),
            "Success".into(),
            state_actor(oa),
        )
        .await?;
    } else if !stopped.pods_stopped.is_empty() || !stopped.bare_pods_stopped.is_empty() {
        // Pods that appeared while frozen (a controller racing the freeze).
        record(
            ctx,
            oa,
            "FrozenPodsStopped",
            describe_stopped(&stopped),
            "Success".into(),
            state_actor(oa),
        )
        .await?;
    }
    if !frozen.ok && !was_degraded {
        record(
            ctx,
            oa,
            "TenantFreezeIncomplete",
            frozen.message.clone(),
            "Failure: OpenBao".into(),
            state_actor(oa),
        )
        .await?;
    }
    let ready = Desired::new(
        types::READY,
        false,
        reasons::SUSPENDED,
        format!("suspended: {why}"),
    );
    write_status(
        ctx,
        oa,
        status,
        Phase::Suspended,
        vec![ready, frozen.clone(), degraded, renewal],
        |s| {
            s.namespaces = namespaces.clone();
        },
    )
    .await?;
    if frozen.ok && !was_frozen {
        publish(
            ctx,
            oa,
            EventType::Warning,
            reasons::FROZEN,
            "Freeze",
            &frozen.message,
        )
        .await;
    } else if !frozen.ok && !was_degraded {
        publish(
            ctx,
            oa,
            EventType::Warning,
            reasons::FREEZE_INCOMPLETE,
            "Freeze",
            &frozen.message,
        )
        .await;
    }
    vault_result.map_err(Error::Vault)?;
    Ok(Action::requeue(RESYNC))
}

async fn provision(
    oa: &OperatorAuthorization,
    ctx: &Context,
    today: Date,
    status: &OperatorAuthorizationStatus,
    renewal: Desired,
    next_change: Option<Date>,
) -> Result<Action, Error> {
    let tenant = oa.name_any();
    let envs = tenant::build(oa, today, &ctx.settings.platform);
    let members: Vec<MemberStatus> = oa
        .spec
        .members
        .iter()
        .map(|m| tenant::eligibility(m, today))
        .collect();
    let denied: Vec<String> = members
        .iter()
        .filter(|m| !m.access)
        .map(|m| format!("{}: {}", m.user, m.reason))
        .collect();
    let members_condition = if denied.is_empty() {
        Desired::new(
            types::MEMBERS_ELIGIBLE,
            true,
            reasons::ALL_ELIGIBLE,
            "every member is trained and under a confidentiality agreement",
        )
    } else {
        Desired::new(
            types::MEMBERS_ELIGIBLE,
            false,
            reasons::SOME_INELIGIBLE,
            format!("no access for {}", denied.join("; ")),
        )
    };

    // Kubernetes side.
    let mut namespaces = Vec::new();
    let mut k8s_result = Ok(());
    for env in &envs {
        namespaces.push(tenant::namespace_name(&tenant, env.env));
        if let Err(e) = apply_environment(ctx, oa, env, Mode::Active).await {
            k8s_result = Err(e);
            break;
        }
    }
    let provisioned = match &k8s_result {
        Ok(()) => Desired::new(
            types::PROVISIONED,
            true,
            reasons::PROVISIONED,
            format!(
                "namespaces {} isolated, with quotas and RBAC",
                namespaces.join(", ")
            ),
        ),
        Err(e) => Desired::new(
            types::PROVISIONED,
            false,
            reasons::APPLY_FAILED,
            e.to_string(),
        ),
    };

    // Secrets backend.
    let grants = scenario_grants(ctx, &tenant).await?;
    let desired_vault = vault::build_with_grants(
        &tenant,
        &oa.spec.environments,
        &ctx.settings.vault_audience,
        &grants,
    );
    let vault_result = vault::apply(ctx.vault.as_ref(), &desired_vault).await;
    let vault_condition = match &vault_result {
        Ok(writes) => {
            ctx.metrics.wrote("openbao", *writes as u64);
            Desired::new(
                types::VAULT_CONFIGURED,
                true,
                reasons::VAULT_CONFIGURED,
                format!(
                    "KV mount {}, login at auth/{}/login with roles {}",
                    desired_vault.mount,
                    desired_vault.auth_mount,
                    desired_vault
                        .roles
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
        Err(e) => Desired::new(
            types::VAULT_CONFIGURED,
            false,
            reasons::VAULT_FAILED,
            e.to_string(),
        ),
    };

    let ready_now = k8s_result.is_ok() && vault_result.is_ok();
    let ready = if ready_now {
        Desired::new(
            types::READY,
            true,
            reasons::PROVISIONED,
            "the tenant domain is provisioned and in force",
        )
    } else {
        let why = [&provisioned, &vault_condition]
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.message.clone())
            .collect::<Vec<_>>();
        Desired::new(
            types::READY,
            false,
            if k8s_result.is_err() {
                reasons::APPLY_FAILED
            } else {
                reasons::VAULT_FAILED
            },
            why.join("; "),
        )
    };
    let was_ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == types::READY && c.status == "True");
    let phase = if ready_now || status.phase == Some(Phase::Active) {
        Phase::Active
    } else {
        Phase::Pending
    };
    let vault_status = VaultStatus {
        mount: desired_vault.mount.clone(),
        auth_mount: desired_vault.auth_mount.clone(),
        roles: desired_vault
            .roles
            .iter()
            .map(|r| format!("auth/{}/role/{}", r.mount, r.name))
            .collect(),
        policies: desired_vault
            .policies
            .iter()
            .map(|p| p.name.clone())
            .collect(),
    };
    // Audit what changed: provisioning results, spec generations, member access.
    let generation_changed = status.observed_generation != oa.metadata.generation;
    let resuming = status.phase == Some(Phase::Suspended);
    if ready_now && !resuming && (!was_ready || generation_changed) {
        let action = if was_ready {
            "DomainUpdated"
        } else {
            "DomainProvisioned"
        };
        let reason = format!(
            "generation {}: namespaces {}; OpenBao mount {}, roles {}",
            oa.metadata.generation.unwrap_or_default(),
            namespaces.join(", "),
            desired_vault.mount,
            vault_status.roles.join(", ")
        );
        // A leader killed between this record and the status write leaves
        // the status not Ready: its successor must not record it again.
        let already = action == "DomainProvisioned" && recorded(ctx, &tenant, action).await?;
        if !already {
            record(ctx, oa, action, reason, "Success".into(), spec_actor(oa)).await?;
        }
    } else if !ready_now && !ready_reason_is(status, ready.reason) {
        record(
            ctx,
            oa,
            "ProvisioningFailed",
            ready.message.clone(),
            format!("Failure: {}", ready.reason),
            spec_actor(oa),
        )
        .await?;
    }
    if ready_now && resuming {
        record(
            ctx,
            oa,
            "TenantResumed",
            format!(
                "{}; member bindings, allow policies, quota, workloads and OpenBao auth restored",
                state_reason(oa)
            ),
            "Success".into(),
            state_actor(oa),
        )
        .await?;
    }
    for m in &members {
        let before = status
            .members
            .iter()
            .find(|b| b.user == m.user)
            .map(|b| b.access);
        if before != Some(m.access) {
            let action = if m.access {
                "MemberAccessGranted"
            } else {
                "MemberAccessDenied"
            };
            let mut entry_reason = format!("{}: {}", m.user, m.reason);
            if ready_now {
                entry_reason.push_str(" (RBAC applied)");
            }
            record(
                ctx,
                oa,
                action,
                entry_reason,
                if ready_now {
                    "Success".into()
                } else {
                    "Pending".into()
                },
                spec_actor(oa),
            )
            .await?;
        }
    }
    for gone in status
        .members
        .iter()
        .filter(|b| b.access && !members.iter().any(|m| m.user == b.user))
    {
        record(
            ctx,
            oa,
            "MemberAccessRevoked",
            format!("{}: no longer a member", gone.user),
            "Success".into(),
            spec_actor(oa),
        )
        .await?;
    }
    write_status(
        ctx,
        oa,
        status,
        phase,
        vec![
            ready.clone(),
            provisioned,
            vault_condition,
            members_condition,
            renewal,
        ]
        .into_iter()
        .chain(after_freeze(status, ready_now))
        .collect(),
        |s| {
            s.namespaces = namespaces.clone();
            s.members = members.clone();
            s.vault = Some(vault_status.clone());
        },
    )
    .await?;

    if !ready_now && !ready_reason_is(status, ready.reason) {
        publish(
            ctx,
            oa,
            EventType::Warning,
            ready.reason,
            "Provision",
            &ready.message,
        )
        .await;
    }
    if ready_now && !was_ready {
        publish(
            ctx,
            oa,
            EventType::Normal,
            reasons::PROVISIONED,
            "Provision",
            &format!("tenant domain ready: {}", namespaces.join(", ")),
        )
        .await;
        info!(tenant = %tenant, "tenant domain ready");
    }
    if ready_now && resuming {
        publish(
            ctx,
            oa,
            EventType::Normal,
            reasons::RESUMED,
            "Resume",
            &format!("resumed: {}", state_reason(oa)),
        )
        .await;
    }
    k8s_result?;
    vault_result.map_err(Error::Vault)?;
    let member_change = tenant::next_eligibility_change(&oa.spec.members, today);
    let next = [next_change, member_change].into_iter().flatten().min();
    Ok(requeue_until(next, today))
}

/// Requeue at the next day the facts change by themselves, or after RESYNC.
fn requeue_until(next: Option<Date>, today: Date) -> Action {
    let until = next
        .and_then(|d| today.until(d).ok())
        .and_then(|span| span.total(jiff::Unit::Second).ok())
        .map(|s| Duration::from_secs(s.max(1.0) as u64));
    Action::requeue(until.map_or(RESYNC, |u| u.min(RESYNC)))
}

/// Server-side apply of one object the operator alone owns. `force` takes
/// the fields back if someone edited isolation by hand.
async fn ssa<K>(ctx: &Context, api: Api<K>, obj: &K, kind: &'static str) -> Result<K, Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
        .map_err(|source| Error::Apply {
            kind,
            name: name.clone(),
            source,
        })?;
    ctx.metrics.wrote("kubernetes", 1);
    Ok(applied)
}

async fn apply_environment(
    ctx: &Context,
    oa: &OperatorAuthorization,
    env: &EnvironmentObjects,
    mode: Mode,
) -> Result<workloads::Report, Error> {
    let c = &ctx.client;
    let ns = env.namespace.metadata.name.clone().unwrap_or_default();
    let namespaces = Api::<Namespace>::all(c.clone());
    let applied = ssa(ctx, namespaces.clone(), &env.namespace, "Namespace").await?;
    // A domain orphaned by a deleted authorization is adopted again.
    if applied.labels().contains_key(labels::ORPHANED) {
        let since = applied
            .annotations()
            .get(labels::ORPHANED_AT)
            .cloned()
            .unwrap_or_default();
        record(
            ctx,
            oa,
            "DomainAdopted",
            format!("namespace {ns}, orphaned since {since}, adopted again by its re-applied authorization"),
            "Success".into(), spec_actor(oa))
        .await?;
        let patch = json!({"metadata": {"labels": {labels::ORPHANED: null}, "annotations": {labels::ORPHANED_AT: null}}});
        namespaces
            .patch(&ns, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| Error::Apply {
                kind: "Namespace",
                name: ns.clone(),
                source,
            })?;
        info!(namespace = %ns, "adopted an orphaned tenant namespace");
    }
    // Isolation first: the deny-all policy exists before anything else is allowed.
    for np in &env.network_policies {
        ssa(
            ctx,
            Api::<NetworkPolicy>::namespaced(c.clone(), &ns),
            np,
            "NetworkPolicy",
        )
        .await?;
    }
    ssa(
        ctx,
        Api::<ResourceQuota>::namespaced(c.clone(), &ns),
        &env.resource_quota,
        "ResourceQuota",
    )
    .await?;
    ssa(
        ctx,
        Api::<LimitRange>::namespaced(c.clone(), &ns),
        &env.limit_range,
        "LimitRange",
    )
    .await?;
    ssa(
        ctx,
        Api::<ServiceAccount>::namespaced(c.clone(), &ns),
        &env.service_account,
        "ServiceAccount",
    )
    .await?;
    for role in &env.roles {
        ssa(ctx, Api::<Role>::namespaced(c.clone(), &ns), role, "Role").await?;
    }
    for rb in &env.role_bindings {
        ssa(
            ctx,
            Api::<RoleBinding>::namespaced(c.clone(), &ns),
            rb,
            "RoleBinding",
        )
        .await?;
    }
    prune(ctx, &ns, env).await?;
    workloads::set_frozen(c, &ns, mode == Mode::Frozen)
        .await
        .map_err(|source| Error::Apply {
            kind: "Workload",
            name: ns.clone(),
            source,
        })
}

/// Deletes the NetworkPolicies and RoleBindings of the tenant that the current
/// mode does not want (member bindings and allow policies when frozen, the
/// freeze policy when active). Only objects with the tenant's labels.
async fn prune(ctx: &Context, ns: &str, env: &EnvironmentObjects) -> Result<(), Error> {
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGER);
    let lp = ListParams::default().labels(&selector);
    let wanted_np: Vec<_> = env
        .network_policies
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    let nps: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), ns);
    let apply_err =
        |kind: &'static str, name: String| move |source| Error::Apply { kind, name, source };
    for np in nps
        .list(&lp)
        .await
        .map_err(apply_err("NetworkPolicy", ns.to_string()))?
    {
        let name = np.name_any();
        if !wanted_np.contains(&name) {
            delete_ignoring_404(&nps, &name)
                .await
                .map_err(apply_err("NetworkPolicy", name.clone()))?;
            ctx.metrics.wrote("kubernetes", 1);
        }
    }
    let wanted_rb: Vec<_> = env
        .role_bindings
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    let rbs: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), ns);
    for rb in rbs
        .list(&lp)
        .await
        .map_err(apply_err("RoleBinding", ns.to_string()))?
    {
        let name = rb.name_any();
        if !wanted_rb.contains(&name) {
            delete_ignoring_404(&rbs, &name)
                .await
                .map_err(apply_err("RoleBinding", name.clone()))?;
            ctx.metrics.wrote("kubernetes", 1);
        }
    }
    Ok(())
}

/// Deletes an object; a 404 is success.
async fn delete_ignoring_404<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes the status when it differs from what is there (so an unchanged
/// authorization causes no write).
async fn write_status(
    ctx: &Context,
    oa: &OperatorAuthorization,
    current: &OperatorAuthorizationStatus,
    phase: Phase,
    conditions: Vec<Desired>,
    fill: impl FnOnce(&mut OperatorAuthorizationStatus),
) -> Result<(), Error> {
    let now = Time(jiff::Timestamp::now());
    let mut next = current.clone();
    next.phase = Some(phase);
    next.observed_generation = oa.metadata.generation;
    next.conditions = condition::merge(
        &current.conditions,
        &conditions,
        oa.metadata.generation,
        &now,
    );
    fill(&mut next);
    if &next == current {
        return Ok(());
    }
    let api: Api<OperatorAuthorization> = Api::all(ctx.client.clone());
    let patch = json!({
        "apiVersion": "publicdata.io/v1alpha1",
        "kind": "OperatorAuthorization",
        "status": next,
    });
    api.patch_status(
        &oa.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::WriteStatus)?;
    ctx.metrics.wrote("kubernetes", 1);
    Ok(())
}

/// The authorization is being deleted. If it was not offboarded, its domain
/// is orphaned: namespaces and OpenBao data stay, flagged, and are never
/// wiped as a side effect of a deletion (a removed CRD deletes every CR).
async fn orphan(oa: &OperatorAuthorization, ctx: &Context) -> Result<Action, Error> {
    let tenant = oa.name_any();
    let phase = oa.status.as_ref().and_then(|s| s.phase);
    if matches!(
        phase,
        Some(Phase::Revoked | Phase::Terminated | Phase::Expired)
    ) {
        return Ok(Action::await_change());
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let selector = format!(
        "{}={},{}={}",
        labels::TENANT,
        tenant,
        labels::MANAGED_BY,
        labels::MANAGER
    );
    let now = jiff::Timestamp::now().to_string();
    let namespaces = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::MarkOrphaned)?;
    // Already orphaned (a retry after the finalizer's removal failed): say nothing twice.
    if !namespaces.items.is_empty()
        && namespaces
            .items
            .iter()
            .all(|ns| ns.labels().contains_key(labels::ORPHANED))
    {
        return Ok(Action::await_change());
    }
    for ns in namespaces {
        let patch = json!({"metadata": {
            "labels": {labels::ORPHANED: "true"},
            "annotations": {labels::ORPHANED_AT: now},
        }});
        api.patch(
            &ns.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::MarkOrphaned)?;
    }
    let message = format!(
        "authorization {tenant} deleted before offboarding: its domain is kept and labelled {}=true, never wiped; \
         re-apply the authorization to adopt it again, or offboard it explicitly",
        labels::ORPHANED
    );
    record(
        ctx,
        oa,
        "DomainOrphaned",
        message.clone(),
        "Kept: namespaces and OpenBao data not deleted".into(),
        spec_actor(oa),
    )
    .await?;
    warn!(tenant = %tenant, "{message}");
    publish(
        ctx,
        oa,
        EventType::Warning,
        "DomainOrphaned",
        "Orphan",
        &message,
    )
    .await;
    Ok(Action::await_change())
}

/// Publishes an Event about the authorization.
async fn publish(
    ctx: &Context,
    oa: &OperatorAuthorization,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    super::publish(&ctx.client, &ctx.reporter, oa, type_, reason, action, note).await;
}

/// The retry delay after `failures` consecutive failures: 1 s doubling, at most 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(8).saturating_sub(1)).min(RESYNC)
}

/// Per-object exponential backoff on errors.
fn error_policy(oa: Arc<OperatorAuthorization>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = {
        let mut map = ctx
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = map.entry(oa.name_any()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = backoff(failures);
    warn!(error = %error, label = error.label(), failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Maps an object the operator made (found by its tenant label) to its authorization.
fn to_authorization<K: Resource>(obj: K) -> Option<ObjectRef<OperatorAuthorization>> {
    let tenant = obj.meta().labels.as_ref()?.get(labels::TENANT)?;
    Some(ObjectRef::new(tenant))
}

/// Runs the controller until shutdown.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let managed =
        watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGER));
    let controller = Controller::new(
        Api::<OperatorAuthorization>::all(client.clone()),
        watcher::Config::default(),
    );
    // Ready once the authorizations are listed. The store's readiness signal
    // wakes only its last waiter (the controller waits on it too), so poll it
    // with a timeout instead of waiting once.
    let store = controller.store();
    let health = ctx.health.clone();
    tokio::spawn(async move {
        loop {
            match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await {
                Ok(Ok(())) => {
                    health.ready.store(true, Ordering::Relaxed);
                    info!("watches synced; ready");
                    break;
                }
                Ok(Err(_)) => break,
                Err(_) => {}
            }
        }
    });
    controller
        .watches(
            Api::<Namespace>::all(client.clone()),
            managed.clone(),
            to_authorization,
        )
        .watches(
            Api::<NetworkPolicy>::all(client.clone()),
            managed.clone(),
            to_authorization,
        )
        .watches(
            Api::<RoleBinding>::all(client.clone()),
            managed.clone(),
            to_authorization,
        )
        .watches(Api::<Role>::all(client.clone()), managed, to_authorization)
        .watches(
            Api::<crate::api::DataScenario>::all(client.clone()),
            watcher::Config::default(),
            |ds: crate::api::DataScenario| Some(ObjectRef::new(&ds.spec.authorization)),
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok(_) => {}
                // An orphaned domain's objects still carry their tenant label:
                // events on them map to an authorization that is gone.
                Err(kube::runtime::controller::Error::ObjectNotFound(obj)) => {
                    tracing::debug!(%obj, "event for an authorization that does not exist");
                }
                Err(e) => warn!(error = %e, "controller"),
            }
        })
        .await;
}

/// A test hook: `PUBLICDATA_FAILPOINT=<name>` makes the process abort when it
/// reaches that point, so the e2e tests can kill the operator exactly there.
fn failpoint(name: &str) {
    if std::env::var("PUBLICDATA_FAILPOINT").is_ok_and(|v| v == name) {
        tracing::error!(failpoint = name, "failpoint reached: aborting");
        std::process::abort();
    }
}

/// Whether the tenant's audit trail already holds `action` (so a step redone
/// after a crash does not record it twice).
async fn recorded(ctx: &Context, tenant: &str, action: &str) -> Result<bool, Error> {
    let trail = audit::trail(&ctx.audit, tenant)
        .await
        .map_err(Error::Audit)?;
    Ok(trail.iter().any(|r| r.entry.action == action))
}

/// Records `action` once per tenant.
async fn record_once(
    ctx: &Context,
    oa: &OperatorAuthorization,
    action: &str,
    reason: String,
    outcome: String,
) -> Result<(), Error> {
    if !recorded(ctx, &oa.name_any(), action).await? {
        record(ctx, oa, action, reason, outcome, state_actor(oa)).await?;
    }
    Ok(())
}

/// Offboarding: freeze, archive, wipe, review, certify.
/// Each step is idempotent; the status says which step was reached.
async fn offboard(
    oa: &OperatorAuthorization,
    ctx: &Context,
    today: Date,
    status: &OperatorAuthorizationStatus,
    then: Phase,
) -> Result<Action, Error> {
    let tenant = oa.name_any();
    let why = state_reason(oa);
    let outcome = then.as_str();
    let namespaces = offboard::namespaces_of(oa);
    let step = |name: &'static str, message: String| {
        vec![Desired::new(
            types::READY,
            false,
            reasons::ENDED,
            format!("{outcome}: {why}; offboarding: {message}"),
        )]
        .into_iter()
        .chain(std::iter::once(Desired::new(
            types::DEGRADED,
            false,
            reasons::AS_EXPECTED,
            name,
        )))
        .collect::<Vec<_>>()
    };
    let set_step = |name: &'static str| {
        let conditions = step(name, name.to_string());
        async move {
            write_status(ctx, oa, status, Phase::Offboarding, conditions, |s| {
                s.offboarding = Some(name.to_string());
            })
            .await
        }
    };

    record_once(
        ctx,
        oa,
        "OffboardingStarted",
        format!("{outcome}: {why}"),
        "Started".into(),
    )
    .await?;
    failpoint("offboard:start");

    // 1. Freeze.
    let vault_result = freeze_domain(oa, ctx, today).await?.vault;
    if let Err(e) = vault_result {
        let conditions = vec![
            Desired::new(
                types::READY,
                false,
                reasons::ENDED,
                format!("{outcome}: offboarding waits for OpenBao"),
            ),
            Desired::new(
                types::DEGRADED,
                true,
                reasons::FREEZE_INCOMPLETE,
                format!("retrying: {e}"),
            ),
        ];
        write_status(ctx, oa, status, Phase::Offboarding, conditions, |_| {}).await?;
        return Err(Error::Vault(e));
    }
    set_step("Frozen").await?;
    failpoint("offboard:frozen");

    // 2. Archive (inventory with digests, audit trail), retain log volumes.
    let (inventory, digest) = offboard::archive(
        &ctx.client,
        ctx.vault.as_ref(),
        ctx.audit.as_ref(),
        &tenant,
        &namespaces,
        FIELD_MANAGER,
    )
    .await
    .map_err(Error::Offboard)?;
    let kept = offboard::retain_logs(&ctx.client, &tenant, &namespaces, today)
        .await
        .map_err(Error::Offboard)?;
    record_once(
        ctx,
        oa,
        "DomainArchived",
        format!(
            "inventory {inventory} (sha256 {digest}); {} log volume(s) retained",
            kept.len()
        ),
        "Success".into(),
    )
    .await?;
    set_step("Archived").await?;
    failpoint("offboard:archived");

    // 3. Wipe: OpenBao, then the namespaces (until the controller manager has finalized them).
    offboard::wipe_openbao(ctx.vault.as_ref(), &tenant)
        .await
        .map_err(Error::Offboard)?;
    failpoint("offboard:openbao-wiped");
    let gone = offboard::delete_namespaces(&ctx.client, &namespaces)
        .await
        .map_err(Error::Offboard)?;
    if !gone {
        set_step("Wiping").await?;
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }
    failpoint("offboard:namespaces-gone");
    offboard::rehome_logs(&ctx.client, &tenant)
        .await
        .map_err(Error::Offboard)?;

    // 4. Exit review.
    let review = offboard::review(&ctx.client, ctx.vault.as_ref(), &tenant)
        .await
        .map_err(Error::Offboard)?;
    let left: Vec<&String> = review.iter().filter(|l| l.starts_with("LEFT")).collect();
    if !left.is_empty() {
        let message = format!(
            "exit review: {}",
            left.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        let conditions = vec![
            Desired::new(
                types::READY,
                false,
                reasons::ENDED,
                format!("{outcome}: offboarding incomplete"),
            ),
            Desired::new(types::DEGRADED, true, "ExitReviewFailed", message.clone()),
        ];
        write_status(ctx, oa, status, Phase::Offboarding, conditions, |_| {}).await?;
        return Err(Error::ReviewFailed(message));
    }

    // 5. The certificate: in the status and in the audit log.
    let counts = offboard::inventory_counts(&ctx.client, &tenant)
        .await
        .map_err(Error::Offboard)?;
    let certificate = offboard::certificate(outcome, &inventory, &digest, &counts, kept, review);
    let certificate_json = serde_json::to_string(&certificate).unwrap_or_default();
    record_once(
        ctx,
        oa,
        "DomainDisposed",
        format!(
            "disposal certificate sha256 {}: {certificate_json}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                certificate_json.as_bytes()
            ))
        ),
        "Success".into(),
    )
    .await?;
    let conditions = vec![
        Desired::new(
            types::READY,
            false,
            reasons::ENDED,
            format!("{outcome}: {why}; domain disposed, record kept"),
        ),
        Desired::new(types::DEGRADED, false, reasons::AS_EXPECTED, "offboarded"),
    ];
    write_status(ctx, oa, status, then, conditions, |s| {
        s.offboarding = Some("Done".into());
        s.disposal = Some(certificate.clone());
        s.namespaces = Vec::new();
        s.members = Vec::new();
    })
    .await?;
    publish(
        ctx,
        oa,
        EventType::Normal,
        "Disposed",
        "Offboard",
        &format!("{outcome}: domain wiped, logs kept; certificate in status.disposal"),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_the_resync() {
        let secs: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 128, 128]);
        assert!(backoff(40) <= RESYNC);
    }
}
