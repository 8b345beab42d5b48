//! The workload summary of each prod namespace: members read no
//! pod, event or log in prod, since a termination message, a probe's output
//! or a log line can carry raw rows; what they need to run prod work — each
//! workload's kind, name, desired and ready replicas, phase, restarts and
//! reason codes — the operator writes into the ConfigMap
//! [`SUMMARY_CONFIG_MAP`] there, the one ConfigMap their role reads
//! (`kubectl publicdata workloads TENANT`).
//!
//! One reconcile per prod namespace: it lists the namespace's pods and
//! workload controllers and writes the summary when it changed. A watch on
//! the namespace's pods (the operator lists pods in tenant namespaces only,
//! so one watch per namespace, started by its first reconcile) brings the
//! next one; the resync catches anything a watch missed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use crate::api::labels;
use crate::api::workloads::{SUMMARY_CONFIG_MAP, SUMMARY_KEY, WorkloadSummary};
use crate::context::{Context, FIELD_MANAGER};

/// The reason codes a summary shows; any other is [`OTHER`]. Codes the
/// kubelet and the workload controllers set, never text a container wrote.
const REASONS: &[&str] = &[
    "BackoffLimitExceeded",
    "ContainerCannotRun",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "DeadlineExceeded",
    "ErrImagePull",
    "Error",
    "Evicted",
    "FailedCreate",
    "ImagePullBackOff",
    "InvalidImageName",
    "MinimumReplicasUnavailable",
    "OOMKilled",
    "ProgressDeadlineExceeded",
    "RunContainerError",
    "StartError",
    "Unschedulable",
];
/// A reason code not in [`REASONS`].
const OTHER: &str = "Other";
/// Reasons that say nothing is wrong.
const QUIET: &[&str] = &["Completed", "ContainerCreating", "PodInitializing"];

fn code(reason: &str) -> Option<String> {
    if reason.is_empty() || QUIET.contains(&reason) {
        None
    } else if REASONS.contains(&reason) {
        Some(reason.to_string())
    } else {
        Some(OTHER.to_string())
    }
}

/// The owner of `kind` among an object's owner references.
fn owner<'a>(meta: &'a kube::api::ObjectMeta, kind: &str) -> Option<&'a str> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.kind == kind)
        .map(|o| o.name.as_str())
}

/// What the namespace holds, as listed.
#[derive(Default)]
pub struct Listed {
    pub pods: Vec<Pod>,
    pub deployments: Vec<Deployment>,
    pub replica_sets: Vec<ReplicaSet>,
    pub stateful_sets: Vec<StatefulSet>,
    pub jobs: Vec<Job>,
    pub cron_jobs: Vec<CronJob>,
}

/// The summary of a namespace: one entry per workload, in kind and name
/// order. A pod counts towards the workload that (through its ReplicaSet
/// or Job) owns it; a pod nothing owns is a workload of its own.
pub fn summarize(listed: &Listed) -> Vec<WorkloadSummary> {
    // Each workload's (restarts, reasons), from its pods.
    let mut from_pods: BTreeMap<(String, String), (i32, BTreeSet<String>)> = BTreeMap::new();
    let rs_owner: HashMap<&str, &str> = listed
        .replica_sets
        .iter()
        .filter_map(|rs| {
            Some((
                rs.metadata.name.as_deref()?,
                owner(&rs.metadata, "Deployment")?,
            ))
        })
        .collect();
    for pod in &listed.pods {
        let key = if let Some(rs) = owner(&pod.metadata, "ReplicaSet") {
            match rs_owner.get(rs) {
                Some(d) => ("Deployment", d.to_string()),
                None => ("ReplicaSet", rs.to_string()),
            }
        } else if let Some(ss) = owner(&pod.metadata, "StatefulSet") {
            ("StatefulSet", ss.to_string())
        } else if let Some(job) = owner(&pod.metadata, "Job") {
            ("Job", job.to_string())
        } else {
            ("Pod", pod.name_any())
        };
        let entry = from_pods.entry((key.0.to_string(), key.1)).or_default();
        let status = pod.status.as_ref();
        let containers = status.into_iter().flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        });
        for c in containers {
            entry.0 += c.restart_count;
            let states = [c.state.as_ref(), c.last_state.as_ref()];
            for state in states.into_iter().flatten() {
                if let Some(w) = &state.waiting {
                    entry
                        .1
                        .extend(code(w.reason.as_deref().unwrap_or_default()));
                }
                if let Some(t) = &state.terminated {
                    entry
                        .1
                        .extend(code(t.reason.as_deref().unwrap_or_default()));
                }
            }
        }
        if let Some(s) = status {
            entry
                .1
                .extend(code(s.reason.as_deref().unwrap_or_default()));
            for c in s.conditions.iter().flatten() {
                if c.type_ == "PodScheduled" && c.status == "False" {
                    entry
                        .1
                        .extend(code(c.reason.as_deref().unwrap_or_default()));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut push =
        |kind: &str, name: String, desired: i32, ready: i32, phase: &str, own: Vec<String>| {
            let (restarts, mut reasons) = from_pods
                .remove(&(kind.to_string(), name.clone()))
                .unwrap_or_default();
            reasons.extend(own.iter().filter_map(|r| code(r)));
            out.push(WorkloadSummary {
                kind: kind.into(),
                name,
                desired,
                ready,
                phase: phase.into(),
                restarts,
                reasons: reasons.into_iter().collect(),
            });
        };
    let scaled = |desired: i32, ready: i32| match (desired, ready) {
        (0, _) => "Stopped",
        (d, r) if r >= d => "Ready",
        _ => "Progressing",
    };
    for d in &listed.deployments {
        let desired = d.spec.replicas.unwrap_or(1);
        let status = d.status.as_ref();
        let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
        let own = status
            .into_iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .filter(|c| {
                c.status.as_deref() == Some("False") || c.type_.as_deref() == Some("ReplicaFailure")
            })
            .filter_map(|c| c.reason.clone())
            .collect();
        push(
            "Deployment",
            d.name_any(),
            desired,
            ready,
            scaled(desired, ready),
            own,
        );
    }
    // ReplicaSets no Deployment owns, and StatefulSets: replicas and ready.
    let scaled_sets = listed
        .replica_sets
        .iter()
        .filter(|rs| owner(&rs.metadata, "Deployment").is_none())
        .map(|rs| {
            let ready = rs.status.as_ref().and_then(|s| s.ready_replicas);
            ("ReplicaSet", rs.name_any(), rs.spec.replicas, ready)
        })
        .chain(listed.stateful_sets.iter().map(|ss| {
            let ready = ss.status.as_ref().and_then(|s| s.ready_replicas);
            ("StatefulSet", ss.name_any(), ss.spec.replicas, ready)
        }));
    for (kind, name, desired, ready) in scaled_sets {
        let (desired, ready) = (desired.unwrap_or(1), ready.unwrap_or(0));
        push(kind, name, desired, ready, scaled(desired, ready), vec![]);
    }
    for job in &listed.jobs {
        let spec = job.spec.as_ref();
        let desired = spec.and_then(|s| s.completions).unwrap_or(1);
        let status = job.status.as_ref();
        let ready = status.and_then(|s| s.succeeded).unwrap_or(0);
        let conditions: Vec<_> = status
            .into_iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .filter(|c| c.status == "True")
            .collect();
        let has = |t: &str| conditions.iter().any(|c| c.type_ == t);
        let phase = if has("Complete") {
            "Complete"
        } else if has("Failed") {
            "Failed"
        } else if spec.and_then(|s| s.suspend) == Some(true) {
            "Suspended"
        } else {
            "Running"
        };
        let own = conditions
            .iter()
            .filter(|c| c.type_ == "Failed")
            .filter_map(|c| c.reason.clone())
            .collect();
        push("Job", job.name_any(), desired, ready, phase, own);
    }
    for cj in &listed.cron_jobs {
        let active = cj
            .status
            .as_ref()
            .and_then(|s| s.active.as_ref())
            .map_or(0, |a| a.len());
        let suspended = cj.spec.suspend == Some(true);
        let phase = if suspended { "Suspended" } else { "Scheduled" };
        push(
            "CronJob",
            cj.name_any(),
            0,
            i32::try_from(active).unwrap_or(i32::MAX),
            phase,
            vec![],
        );
    }
    // Pods that no listed controller claims: bare pods, and those of a
    // controller deleted since.
    let bare: Vec<_> = from_pods
        .into_iter()
        .filter(|((kind, _), _)| kind == "Pod")
        .collect();
    for ((_, name), (restarts, reasons)) in bare {
        let pod = listed.pods.iter().find(|p| p.name_any() == name);
        let status = pod.and_then(|p| p.status.as_ref());
        let ready = status
            .into_iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let phase = status
            .and_then(|s| s.phase.clone())
            .filter(|p| ["Pending", "Running", "Succeeded", "Failed"].contains(&p.as_str()))
            .unwrap_or_else(|| "Pending".into());
        out.push(WorkloadSummary {
            kind: "Pod".into(),
            name,
            desired: 1,
            ready: i32::from(ready),
            phase,
            restarts,
            reasons: reasons.into_iter().collect(),
        });
    }
    out.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    out
}

async fn list<K>(client: &Client, ns: &str) -> Result<Vec<K>, kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Ok(Api::<K>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?
        .items)
}

/// Lists the namespace and writes its summary when it changed.
async fn write(client: &Client, ns: &str) -> Result<(), kube::Error> {
    let listed = Listed {
        pods: list(client, ns).await?,
        deployments: list(client, ns).await?,
        replica_sets: list(client, ns).await?,
        stateful_sets: list(client, ns).await?,
        jobs: list(client, ns).await?,
        cron_jobs: list(client, ns).await?,
    };
    let text = serde_json::to_string(&summarize(&listed)).unwrap_or_else(|_| "[]".into());
    let api = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let current = api.get_opt(SUMMARY_CONFIG_MAP).await?;
    if current
        .as_ref()
        .and_then(|cm| cm.data.as_ref()?.get(SUMMARY_KEY))
        .is_some_and(|t| *t == text)
    {
        return Ok(());
    }
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": SUMMARY_CONFIG_MAP,
            "labels": {labels::MANAGED_BY: labels::MANAGER},
        },
        "data": {SUMMARY_KEY: text},
    });
    api.patch(
        SUMMARY_CONFIG_MAP,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

/// The pod watch of each prod namespace, started by its first reconcile and
/// stopped when the namespace goes away.
#[derive(Default)]
struct Watches(Mutex<HashMap<String, tokio::task::JoinHandle<()>>>);

impl Watches {
    fn ensure(
        &self,
        client: &Client,
        ns: &str,
        wake: &tokio::sync::mpsc::UnboundedSender<ObjectRef<Namespace>>,
    ) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if all.get(ns).is_some_and(|h| !h.is_finished()) {
            return;
        }
        let pods = Api::<PartialObjectMeta<Pod>>::namespaced(client.clone(), ns);
        let (wake, key) = (wake.clone(), ObjectRef::<Namespace>::new(ns));
        let task = tokio::spawn(async move {
            let mut changes = watcher(pods, watcher::Config::default())
                .default_backoff()
                .touched_objects()
                .boxed();
            while let Some(change) = changes.next().await {
                if change.is_ok() && wake.send(key.clone()).is_err() {
                    return;
                }
            }
        });
        all.insert(ns.to_string(), task);
    }

    fn stop(&self, ns: &str) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = all.remove(ns) {
            task.abort();
        }
    }
}

struct Summaries {
    ctx: Arc<Context>,
    watches: Watches,
    wake: tokio::sync::mpsc::UnboundedSender<ObjectRef<Namespace>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the workload summary of {namespace}: {source}")]
pub struct Error {
    namespace: String,
    source: kube::Error,
}

async fn reconcile(ns: Arc<Namespace>, s: Arc<Summaries>) -> Result<Action, Error> {
    let name = ns.name_any();
    if ns.metadata.deletion_timestamp.is_some() {
        s.watches.stop(&name);
        return Ok(Action::await_change());
    }
    s.watches.ensure(&s.ctx.client, &name, &s.wake);
    write(&s.ctx.client, &name).await.map_err(|source| Error {
        namespace: name.clone(),
        source,
    })?;
    Ok(Action::requeue(s.ctx.settings.resync))
}

fn error_policy(_: Arc<Namespace>, e: &Error, _: Arc<Summaries>) -> Action {
    warn!(error = %e, "workload summary");
    Action::requeue(Duration::from_secs(10))
}

/// Runs the summaries until shutdown: every prod namespace the operator made.
pub async fn run(ctx: Arc<Context>) {
    let prod = watcher::Config::default().labels(&format!(
        "{}={},{}=prod",
        labels::MANAGED_BY,
        labels::MANAGER,
        labels::ENVIRONMENT
    ));
    let (wake, woken) = tokio::sync::mpsc::unbounded_channel();
    let summaries = Arc::new(Summaries {
        ctx: ctx.clone(),
        watches: Watches::default(),
        wake,
    });
    Controller::new(Api::<Namespace>::all(ctx.client.clone()), prod)
        .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_secs(1)))
        .reconcile_on(futures::stream::unfold(woken, |mut rx| async move {
            rx.recv().await.map(|key| (key, rx))
        }))
        .shutdown_on_signal()
        .run(reconcile, error_policy, summaries)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests;
