//! Act: apply what the decision asks for — the tenant's objects with
//! server-side apply, OpenBao through the secrets backend — and return what
//! happened, for the report. Only namespaces the observation found to be this
//! authorization's own are touched.

use k8s_openapi::api::core::v1::{
    LimitRange, Namespace, PersistentVolumeClaim, ResourceQuota, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::info;

use super::Error;
use super::decide::{FreezeOutcome, Ownership, ProvisionOutcome};
use super::observe::Observed;
use super::report;
use crate::api::authorization::{MemberStatus, OperatorAuthorization, VaultStatus};
use crate::api::labels;
use crate::api::labels::OPENBAO_CHANGED_AT;
use crate::api::scenario::DataScenarioStatus;
use crate::context::{Context, FIELD_MANAGER};
use crate::controllers::applied::{self, Kind};
use crate::controllers::tenant::{self, EnvironmentObjects, FREEZE_POLICY, Mode};
use crate::controllers::workloads;
use crate::vault;

/// Server-side apply of one object the operator alone owns, unless the
/// cache knows it is already as desired (applied by the operator with this
/// digest, and changed by no one since). `force` takes the fields back if
/// someone edited isolation by hand.
async fn ssa<K>(ctx: &Context, api: Api<K>, obj: &K, kind: Kind) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let mut obj = obj.clone();
    let digest = applied::stamp(&mut obj);
    let key = applied::key(kind, obj.meta());
    if ctx.applied.up_to_date(&key, &digest) == Some(true) {
        return Ok(());
    }
    // The queue's writes wait for a slot; the freeze lane's never do.
    let _slot = if super::lane::in_lane() {
        None
    } else {
        ctx.writes.acquire().await.ok()
    };
    let name = key.2.clone();
    let err = |source| Error::Apply {
        kind: kind_name(kind),
        name: name.clone(),
        source,
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&obj);
    let apply = || api.patch(&name, &params, &patch);
    // Someone else changed it: replace it whole. An apply only takes back
    // the fields the operator sets, and would keep what was added (a rule
    // added to a deny-all policy, a subject added to a binding).
    // A claim's spec is immutable once bound: only applied (which takes back
    // its labels, the mark of a log volume), never replaced.
    let first = if ctx.applied.changed_by_others(&key) && kind != Kind::PersistentVolumeClaim {
        let post = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        match api.replace(&name, &post, &obj).await {
            Ok(answer) => {
                info!(kind = kind_name(kind), name = %name, namespace = %key.1, "put back what someone else changed");
                Ok(answer)
            }
            // Gone meanwhile: made again.
            Err(kube::Error::Api(s)) if s.code == 404 => apply().await,
            Err(e) => Err(e),
        }
    } else {
        apply().await
    };
    let answer = match first {
        Ok(answer) => answer,
        // A binding's roleRef cannot change (one made for a namespaced Role,
        // or bound by hand to another role): deleted and made again.
        Err(kube::Error::Api(s)) if s.code == 422 && kind == Kind::RoleBinding => {
            match api.delete(&name, &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(gone)) if gone.code == 404 => {}
                Err(e) => return Err(err(e)),
            }
            info!(name = %name, namespace = %key.1, reason = %s.message, "made a RoleBinding again: its roleRef cannot change");
            apply().await.map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    ctx.applied.applied(kind, answer.meta(), &digest);
    ctx.metrics.wrote("kubernetes", 1);
    Ok(())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Namespace => "Namespace",
        Kind::NetworkPolicy => "NetworkPolicy",
        Kind::ResourceQuota => "ResourceQuota",
        Kind::LimitRange => "LimitRange",
        Kind::ServiceAccount => "ServiceAccount",
        Kind::Role => "Role",
        Kind::RoleBinding => "RoleBinding",
        Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
    }
}

/// Applies one environment's objects in `mode`, isolation first, and
/// freezes or releases its workloads. What the mode does not want is pruned:
/// when freezing, right after isolation is in place; when releasing, only
/// after the workloads are released, so a release that fails halfway still
/// finds the freeze policy and is tried again.
async fn apply_environment(
    ctx: &Context,
    env: &EnvironmentObjects,
    mode: Mode,
) -> Result<workloads::Report, Error> {
    let c = &ctx.client;
    let ns = env.namespace.metadata.name.clone().unwrap_or_default();
    ssa(
        ctx,
        Api::<Namespace>::all(c.clone()),
        &env.namespace,
        Kind::Namespace,
    )
    .await?;
    // Isolation first: the policies exist before any binding lets a member in.
    // Within each step, every object at once.
    futures::future::try_join_all(env.network_policies.iter().map(|np| {
        ssa(
            ctx,
            Api::namespaced(c.clone(), &ns),
            np,
            Kind::NetworkPolicy,
        )
    }))
    .await?;
    futures::try_join!(
        ssa(
            ctx,
            Api::<ResourceQuota>::namespaced(c.clone(), &ns),
            &env.resource_quota,
            Kind::ResourceQuota,
        ),
        ssa(
            ctx,
            Api::<LimitRange>::namespaced(c.clone(), &ns),
            &env.limit_range,
            Kind::LimitRange,
        ),
        ssa(
            ctx,
            Api::<ServiceAccount>::namespaced(c.clone(), &ns),
            &env.service_account,
            Kind::ServiceAccount,
        ),
    )?;
    futures::future::try_join_all(env.role_bindings.iter().map(|rb| {
        ssa(
            ctx,
            Api::<RoleBinding>::namespaced(c.clone(), &ns),
            rb,
            Kind::RoleBinding,
        )
    }))
    .await?;
    // The log volume once the operator's own binding there lets it make one.
    if let Some(claim) = &env.log_volume {
        ssa(
            ctx,
            Api::<PersistentVolumeClaim>::namespaced(c.clone(), &ns),
            claim,
            Kind::PersistentVolumeClaim,
        )
        .await?;
    }
    let workload_error = |source| Error::Apply {
        kind: "Workload",
        name: ns.clone(),
        source,
    };
    match mode {
        Mode::Frozen => {
            prune(ctx, &ns, env).await?;
            workloads::set_frozen(c, &ns, true)
                .await
                .map_err(workload_error)
        }
        Mode::Active => {
            // Workloads were stopped only if the freeze policy is (or may be) there.
            let was_frozen = ctx
                .applied
                .names_in(Kind::NetworkPolicy, &ns)
                .is_none_or(|names| names.iter().any(|n| n == FREEZE_POLICY));
            let report = if was_frozen {
                workloads::set_frozen(c, &ns, false)
                    .await
                    .map_err(workload_error)?
            } else {
                workloads::Report::default()
            };
            prune(ctx, &ns, env).await?;
            Ok(report)
        }
    }
}

/// Takes an orphaned namespace back: its orphan label and date go.
async fn unorphan(ctx: &Context, ns: &str) -> Result<(), Error> {
    let patch = json!({"metadata": {"labels": {labels::ORPHANED: null}, "annotations": {labels::ORPHANED_AT: null}}});
    Api::<Namespace>::all(ctx.client.clone())
        .patch(ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Apply {
            kind: "Namespace",
            name: ns.into(),
            source,
        })?;
    info!(namespace = %ns, "adopted an orphaned tenant namespace");
    Ok(())
}

/// Deletes the NetworkPolicies and RoleBindings of the tenant that the current
/// mode does not want (member bindings when frozen, the freeze policy when
/// active), and any Role: tenant roles are ClusterRoles now, and a namespace
/// provisioned before keeps no copy. Only objects with the operator's label:
/// the cache knows them; until it has listed them, they are listed here.
async fn prune(ctx: &Context, ns: &str, env: &EnvironmentObjects) -> Result<(), Error> {
    let names = |objs: Vec<Option<String>>| objs.into_iter().flatten().collect::<Vec<_>>();
    let wanted_np = names(
        env.network_policies
            .iter()
            .map(|o| o.metadata.name.clone())
            .collect(),
    );
    let wanted_rb = names(
        env.role_bindings
            .iter()
            .map(|o| o.metadata.name.clone())
            .collect(),
    );
    prune_kind::<NetworkPolicy>(ctx, ns, &wanted_np, Kind::NetworkPolicy).await?;
    prune_kind::<RoleBinding>(ctx, ns, &wanted_rb, Kind::RoleBinding).await?;
    prune_kind::<Role>(ctx, ns, &[], Kind::Role).await
}

async fn prune_kind<K>(ctx: &Context, ns: &str, wanted: &[String], kind: Kind) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let err = |name: String| {
        move |source| Error::Apply {
            kind: kind_name(kind),
            name,
            source,
        }
    };
    let present = match ctx.applied.names_in(kind, ns) {
        Some(names) => names,
        None => {
            let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGER);
            api.list_metadata(&ListParams::default().labels(&selector))
                .await
                .map_err(err(ns.to_string()))?
                .into_iter()
                .map(|o| o.name_any())
                .collect()
        }
    };
    for name in present {
        if wanted.contains(&name) {
            continue;
        }
        match api.delete(&name, &Default::default()).await {
            Ok(_) => ctx.metrics.wrote("kubernetes", 1),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(err(name)(e)),
        }
        ctx.applied.forget(&(kind, ns.to_string(), name.clone()));
    }
    Ok(())
}

/// The freeze itself, shared by suspension, expiry and offboarding: the
/// Kubernetes side of every namespace of this authorization and the OpenBao
/// auth mount, at the same time, so that neither waits for the other (an
/// OpenBao that hangs never delays the network cut, and the token cut never
/// waits for pods). Only namespaces that exist and are this authorization's
/// own are frozen: a freeze never creates a domain, and never touches a
/// namespace someone else made.
/// With a data plane, PostgreSQL too: every session of the tenant's database
/// users ended, and none may log in again.
/// OpenBao's or PostgreSQL's error comes back beside the outcome, for the retry.
pub async fn freeze_domain(
    ctx: &Context,
    o: &Observed,
) -> Result<(FreezeOutcome, Option<Error>), Error> {
    let tenant = o.oa.name_any();
    // Every environment at once: neither namespace waits for the other's cut.
    let kubernetes = async {
        let envs: Vec<_> = tenant::build_in(&o.oa, o.today, Mode::Frozen, &ctx.settings.platform)
            .into_iter()
            .filter(|env| {
                let ns = tenant::namespace_name(&tenant, env.env);
                o.namespaces.iter().any(|(n, own)| {
                    *n == ns && matches!(own, Ownership::Ours | Ownership::Orphaned { .. })
                })
            })
            .collect();
        let reports = futures::future::join_all(
            envs.iter()
                .map(|env| apply_environment(ctx, env, Mode::Frozen)),
        )
        .await;
        let mut stopped = workloads::Report::default();
        for report in reports {
            stopped.merge(report?);
        }
        let namespaces = envs
            .iter()
            .map(|env| tenant::namespace_name(&tenant, env.env))
            .collect::<Vec<_>>();
        Ok::<_, Error>((namespaces, stopped))
    };
    let identities = format!(
        "{}, {}",
        vault::identity_name(&tenant, crate::api::authorization::Environment::Dev),
        vault::identity_name(&tenant, crate::api::authorization::Environment::Prod)
    );
    // A resume must make the identities anew: a full apply then.
    ctx.vault_applied.forget(&tenant);
    let openbao = vault::freeze(
        ctx.vault.as_ref(),
        &tenant,
        &ctx.settings.workloads,
        ctx.settings.data_plane.as_ref(),
    );
    let database = async {
        let Some(plane) = &ctx.database else {
            return Ok(String::new());
        };
        let mut ended = 0;
        let mut roles = Vec::new();
        for env in &o.oa.spec.environments {
            let role = crate::database::tenant_role(&tenant, *env);
            ended += plane.of(*env).cut(&role).await?;
            roles.push(role);
        }
        Ok::<_, crate::database::Error>(format!(
            "; PostgreSQL: the users of roles {} may not log in, {ended} sessions ended",
            roles.join(", ")
        ))
    };
    let (kubernetes, vault_result, database_result) = tokio::join!(kubernetes, openbao, database);
    if let Ok(writes) = vault_result {
        ctx.metrics.wrote("openbao", writes as u64);
    }
    let (namespaces, stopped) = kubernetes?;
    let vault_error = vault_result.err();
    let (database, database_error) = match database_result {
        Ok(text) => (text, None),
        Err(e) => (String::new(), Some(e)),
    };
    let outcome = FreezeOutcome {
        namespaces,
        stopped_any: !stopped.pods_stopped.is_empty()
            || !stopped.bare_pods_stopped.is_empty()
            || !stopped.pods_hastened.is_empty(),
        stopped: describe_stopped(&stopped),
        vault_error: vault_error.as_ref().map(|e| e.to_string()),
        identities,
        database,
        database_error: database_error.as_ref().map(|e| e.to_string()),
    };
    let incomplete = vault_error
        .map(Error::Vault)
        .or(database_error.map(Error::Database));
    Ok((outcome, incomplete))
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
    if !stopped.pods_hastened.is_empty() {
        text.push_str(&format!(
            "; {} pods already terminating with a longer grace deleted again with {} s: {}",
            stopped.pods_hastened.len(),
            workloads::FREEZE_GRACE_SECONDS,
            stopped.pods_hastened.join(", ")
        ));
    }
    text
}

/// The statuses of the tenant's scenarios: what each grants. Only scenarios
/// in the tenant's own namespaces count, so only those are listed.
async fn scenario_statuses(
    ctx: &Context,
    tenant: &str,
    namespaces: &[String],
) -> Result<Vec<DataScenarioStatus>, Error> {
    let mut out = Vec::new();
    for ns in namespaces {
        let scenarios = Api::<crate::api::DataScenario>::namespaced(ctx.client.clone(), ns)
            .list(&ListParams::default())
            .await
            .map_err(|source| Error::Apply {
                kind: "DataScenario",
                name: ns.clone(),
                source,
            })?;
        out.extend(
            scenarios
                .items
                .into_iter()
                .filter(|s| s.spec.authorization == tenant)
                .filter_map(|s| s.status),
        );
    }
    Ok(out)
}

/// The OpenBao grants of those scenarios, as `(env, policy path)`.
fn kv_grants(scenarios: &[DataScenarioStatus]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = scenarios
        .iter()
        .flat_map(|s| s.grants.iter())
        .filter_map(|g| {
            g.split_once(':')
                .map(|(e, p)| (e.to_string(), p.to_string()))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Makes the domain exist as the spec says: Kubernetes, then OpenBao. A
/// failure of either is part of the outcome, not an early return, so the
/// report says what holds and what does not; the first failure comes back
/// beside the outcome, for the retry.
pub async fn provision(
    ctx: &Context,
    o: &Observed,
) -> Result<(ProvisionOutcome, Option<Error>), Error> {
    let oa: &OperatorAuthorization = &o.oa;
    let tenant = oa.name_any();
    let members: Vec<MemberStatus> = oa
        .spec
        .members
        .iter()
        .map(|m| tenant::eligibility(m, o.today, ctx.settings.platform.training_valid_days))
        .collect();
    // Both environments and OpenBao at the same time: nothing of one waits
    // for the other (each environment still puts isolation first).
    let envs = tenant::build(oa, o.today, &ctx.settings.platform);
    let names: Vec<String> = envs
        .iter()
        .map(|env| tenant::namespace_name(&tenant, env.env))
        .collect();
    let kubernetes = futures::future::join_all(
        envs.iter()
            .map(|env| apply_environment(ctx, env, Mode::Active)),
    );
    // What the tenant's active scenarios grant: OpenBao paths, PostgreSQL columns.
    let scenarios = scenario_statuses(ctx, &tenant, &names).await?;
    let openbao = async {
        let grants = kv_grants(&scenarios);
        let owner = crate::naming::owner_mark(&tenant, &oa.spec.unit.credit_code);
        let desired = vault::build_with_grants(
            &tenant,
            &owner,
            &oa.spec.environments,
            &ctx.settings.workloads,
            &grants,
            ctx.settings.data_plane.as_ref(),
        );
        let changed_at = oa
            .annotations()
            .get(OPENBAO_CHANGED_AT)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let result = match ctx.vault_applied.pass(&tenant, &desired, changed_at) {
            // Unchanged since the last full apply: one object checked (and put
            // right), in turns; drift found there means a full apply next time.
            vault::Pass::One(turn) => vault::apply_one(ctx.vault.as_ref(), &desired, turn)
                .await
                .map(|change| {
                    if change == vault::Change::Written {
                        ctx.vault_applied.forget(&tenant);
                        1
                    } else {
                        ctx.vault_applied.checked(&tenant);
                        0
                    }
                }),
            vault::Pass::Full => {
                let began = jiff::Timestamp::now();
                let mut result = vault::apply(ctx.vault.as_ref(), &desired).await;
                // Provisioned by an earlier version (its status names the
                // tenant's own auth mount): once the new login works, the
                // old one and the policies it wrote go.
                let legacy = vault::legacy_auth_mount(&tenant);
                if let Ok(writes) = &result
                    && o.status
                        .vault
                        .as_ref()
                        .is_some_and(|v| v.auth_mount == legacy)
                {
                    result = vault::retire_legacy(ctx.vault.as_ref(), &tenant, &owner)
                        .await
                        .map(|retired| writes + retired);
                }
                if result.is_ok() {
                    ctx.vault_applied.applied(&tenant, &desired, began);
                }
                result
            }
        };
        Ok::<_, Error>((desired, result))
    };
    let database = async {
        let db = ctx.database.as_ref()?;
        let grants: Vec<_> = scenarios
            .iter()
            .flat_map(|s| s.column_grants.clone())
            .collect();
        Some(crate::database::provision(db, &tenant, &oa.spec.environments, &grants).await)
    };
    let (applied, openbao, database) = tokio::join!(kubernetes, openbao, database);
    let mut namespaces = Vec::new();
    let mut adopted = Vec::new();
    let mut kubernetes_error = None;
    let mut failure = None;
    for (ns, result) in names.into_iter().zip(applied) {
        namespaces.push(ns.clone());
        if let Err(e) = result {
            kubernetes_error = Some(e.to_string());
            failure = Some(e);
            break;
        }
        if let Some((_, Ownership::Orphaned { since })) =
            o.namespaces.iter().find(|(n, _)| *n == ns)
        {
            unorphan(ctx, &ns).await?;
            adopted.push((ns, since.clone()));
        }
    }
    let (desired, result) = openbao?;
    let vault = match result {
        Ok(writes) => {
            ctx.metrics.wrote("openbao", writes as u64);
            Ok(VaultStatus {
                areas: desired.areas.clone(),
                auth_mount: desired.auth_mount.clone(),
                roles: desired
                    .roles
                    .iter()
                    .map(|r| format!("auth/{}/role/{}", r.mount, r.name))
                    .collect(),
                identities: desired.identities.iter().map(|i| i.name.clone()).collect(),
                policies: vec![vault::WORKLOAD_POLICY.to_string()],
            })
        }
        Err(e) => {
            let text = e.to_string();
            failure.get_or_insert(Error::Vault(e));
            Err(text)
        }
    };
    let database = database.map(|result| {
        result.map_err(|e| {
            let text = e.to_string();
            failure.get_or_insert(Error::Database(e));
            text
        })
    });
    let ready =
        kubernetes_error.is_none() && vault.is_ok() && database.as_ref().is_none_or(|d| d.is_ok());
    let was_ready = o
        .status
        .conditions
        .iter()
        .any(|c| c.type_ == crate::api::condition::types::READY && c.status == "True");
    let provisioned_recorded =
        ready && !was_ready && report::recorded(ctx, oa, "DomainProvisioned").await?;
    let outcome = ProvisionOutcome {
        dns: ctx.dns.verdict(),
        namespaces,
        kubernetes_error,
        vault,
        database,
        members,
        provisioned_recorded,
        adopted,
    };
    Ok((outcome, failure))
}
