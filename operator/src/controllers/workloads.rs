//! Freezing and thawing a tenant's workloads: Deployments, StatefulSets and
//! standalone ReplicaSets and ReplicationControllers scaled to 0, CronJobs and
//! Jobs suspended, each with its previous value kept in an annotation written
//! in the same patch, so resume restores it exactly and a crash between two
//! steps loses nothing; then every pod still running is stopped. Freezing
//! twice keeps the first value; thawing what is not frozen changes nothing.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Annotation holding a workload's replicas before the freeze.
pub const FROZEN_REPLICAS: &str = "publicdata.io/frozen-replicas";
/// Annotation holding a job's or cronjob's `suspend` before the freeze.
pub const FROZEN_SUSPEND: &str = "publicdata.io/frozen-suspend";

/// The merge patch that freezes a scalable workload, if it needs one.
pub fn freeze_replicas_patch(replicas: Option<i32>, annotation: Option<&str>) -> Option<Value> {
    match annotation {
        // Already frozen: keep the recorded value; only make sure it is at 0.
        Some(_) if replicas == Some(0) => None,
        Some(_) => Some(json!({"spec": {"replicas": 0}})),
        None => Some(json!({
            "metadata": {"annotations": {FROZEN_REPLICAS: replicas.unwrap_or(1).to_string()}},
            "spec": {"replicas": 0}
        })),
    }
}

/// The merge patch that thaws a scalable workload, if it was frozen.
pub fn thaw_replicas_patch(annotation: Option<&str>) -> Option<Value> {
    let previous: i32 = annotation?.parse().unwrap_or(1);
    Some(json!({
        "metadata": {"annotations": {FROZEN_REPLICAS: null}},
        "spec": {"replicas": previous}
    }))
}

/// The merge patch that suspends a job or cronjob, if it needs one.
pub fn freeze_suspend_patch(suspend: Option<bool>, annotation: Option<&str>) -> Option<Value> {
    match annotation {
        Some(_) if suspend == Some(true) => None,
        Some(_) => Some(json!({"spec": {"suspend": true}})),
        None => Some(json!({
            "metadata": {"annotations": {FROZEN_SUSPEND: suspend.unwrap_or(false).to_string()}},
            "spec": {"suspend": true}
        })),
    }
}

/// The merge patch that restores a job or cronjob, if it was frozen.
pub fn thaw_suspend_patch(annotation: Option<&str>) -> Option<Value> {
    let previous = annotation? == "true";
    Some(json!({
        "metadata": {"annotations": {FROZEN_SUSPEND: null}},
        "spec": {"suspend": previous}
    }))
}

/// What freezing or thawing one namespace did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Workload controllers scaled to 0, suspended, or restored.
    pub patched: usize,
    /// Pods stopped that their controller brings back on resume.
    pub pods_stopped: Vec<String>,
    /// Pods without a controller, stopped for good: nothing can resume them.
    pub bare_pods_stopped: Vec<String>,
    /// Pods someone deleted with a longer grace just before the freeze,
    /// deleted again with the freeze's.
    pub pods_hastened: Vec<String>,
}

impl Report {
    /// Adds another namespace's report to this one.
    pub fn merge(&mut self, other: Report) {
        self.patched += other.patched;
        self.pods_stopped.extend(other.pods_stopped);
        self.bare_pods_stopped.extend(other.bare_pods_stopped);
        self.pods_hastened.extend(other.pods_hastened);
    }
}

/// What a freeze does with a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFate {
    /// Already ending or ended: nothing to do.
    Leave,
    /// Stopped now; its controller, frozen beside it, brings it back on resume.
    StopControlled,
    /// Stopped now and for good: a bare pod has nothing to bring it back.
    StopBare,
    /// Being deleted already, but with a longer grace than a freeze allows
    /// (deleted just before the suspension): deleted again, with the
    /// freeze's grace, which the API server takes as the shorter one.
    Hasten,
}

/// The pure decision for one pod of a namespace being frozen. A frozen
/// namespace runs no container at all: scaling the controllers keeps
/// what resume restores, and stopping every pod is what makes the stop
/// immediate and complete, whatever made the pod (a DaemonSet, a bare Pod, a
/// controller this code does not know).
pub fn pod_fate(pod: &Pod) -> PodFate {
    let ended = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    if ended {
        return PodFate::Leave;
    }
    if pod.metadata.deletion_timestamp.is_some() {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        return if grace > FREEZE_GRACE_SECONDS {
            PodFate::Hasten
        } else {
            PodFate::Leave
        };
    }
    if has_controller(&pod.metadata) {
        PodFate::StopControlled
    } else {
        PodFate::StopBare
    }
}

fn has_controller(meta: &ObjectMeta) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true))
}

/// How long a frozen tenant's containers get between TERM and KILL.
pub const FREEZE_GRACE_SECONDS: i64 = 1;

/// Freezes (`freeze = true`) or thaws every workload of a namespace.
///
/// Freezing scales Deployments, StatefulSets, standalone ReplicaSets and
/// ReplicationControllers to 0 and suspends CronJobs and Jobs, each with its
/// previous value kept in an annotation; then it stops every pod still
/// running (the quota of a frozen namespace admits no new one). Thawing
/// restores the recorded values; bare pods stopped by the freeze stay gone.
pub async fn set_frozen(client: &Client, ns: &str, freeze: bool) -> Result<Report, kube::Error> {
    let mut report = Report::default();
    let scale = |replicas: Option<i32>, note: Option<&str>| {
        if freeze {
            freeze_replicas_patch(replicas, note)
        } else {
            thaw_replicas_patch(note)
        }
    };
    let suspend = |suspend: Option<bool>, note: Option<&str>| {
        if freeze {
            freeze_suspend_patch(suspend, note)
        } else {
            thaw_suspend_patch(note)
        }
    };
    report.patched += patch_each(&Api::<Deployment>::namespaced(client.clone(), ns), |d| {
        scale(d.spec.replicas, note(d, FROZEN_REPLICAS))
    })
    .await?;
    report.patched += patch_each(&Api::<StatefulSet>::namespaced(client.clone(), ns), |s| {
        scale(s.spec.replicas, note(s, FROZEN_REPLICAS))
    })
    .await?;
    // ReplicaSets a Deployment owns follow their Deployment.
    report.patched += patch_each(&Api::<ReplicaSet>::namespaced(client.clone(), ns), |r| {
        if has_controller(&r.metadata) {
            return None;
        }
        scale(r.spec.replicas, note(r, FROZEN_REPLICAS))
    })
    .await?;
    report.patched += patch_each(
        &Api::<ReplicationController>::namespaced(client.clone(), ns),
        |r| scale(r.spec.as_ref()?.replicas, note(r, FROZEN_REPLICAS)),
    )
    .await?;
    report.patched += patch_each(&Api::<CronJob>::namespaced(client.clone(), ns), |c| {
        suspend(c.spec.suspend, note(c, FROZEN_SUSPEND))
    })
    .await?;
    report.patched += patch_each(&Api::<Job>::namespaced(client.clone(), ns), |j| {
        // Finished jobs are left alone.
        let finished = j
            .status
            .as_ref()
            .and_then(|s| s.completion_time.as_ref())
            .is_some();
        let recorded = note(j, FROZEN_SUSPEND);
        if finished && recorded.is_none() {
            return None;
        }
        suspend(j.spec.as_ref()?.suspend, recorded)
    })
    .await?;
    if freeze {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(FREEZE_GRACE_SECONDS as u32),
            ..DeleteParams::default()
        };
        for pod in pods.list(&ListParams::default()).await? {
            let fate = pod_fate(&pod);
            if fate == PodFate::Leave {
                continue;
            }
            let name = pod.name_any();
            match pods.delete(&name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => continue,
                Err(e) => return Err(e),
            }
            let id = format!("{ns}/{name}");
            match fate {
                PodFate::StopBare => report.bare_pods_stopped.push(id),
                PodFate::Hasten => report.pods_hastened.push(id),
                _ => report.pods_stopped.push(id),
            }
        }
    }
    Ok(report)
}

fn note<'a, K: ResourceExt>(obj: &'a K, key: &str) -> Option<&'a str> {
    obj.annotations().get(key).map(String::as_str)
}

/// Applies the merge patch `decide` returns for each object of the list;
/// returns how many were patched.
async fn patch_each<K>(
    api: &Api<K>,
    decide: impl Fn(&K) -> Option<Value>,
) -> Result<usize, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut patched = 0;
    for obj in api.list(&ListParams::default()).await? {
        if let Some(p) = decide(&obj) {
            api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&p))
                .await?;
            patched += 1;
        }
    }
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freezing_records_the_replicas_once_and_thawing_restores_them() {
        let p = freeze_replicas_patch(Some(3), None).unwrap();
        assert_eq!(p["metadata"]["annotations"][FROZEN_REPLICAS], "3");
        assert_eq!(p["spec"]["replicas"], 0);
        // Frozen again (replicas now 0, annotation 3): nothing to do, 3 is kept.
        assert_eq!(freeze_replicas_patch(Some(0), Some("3")), None);
        // Someone scaled it up while frozen: back to 0, the recorded 3 kept.
        assert_eq!(
            freeze_replicas_patch(Some(2), Some("3")),
            Some(json!({"spec": {"replicas": 0}}))
        );
        let t = thaw_replicas_patch(Some("3")).unwrap();
        assert_eq!(t["spec"]["replicas"], 3);
        assert!(t["metadata"]["annotations"][FROZEN_REPLICAS].is_null());
        assert_eq!(thaw_replicas_patch(None), None, "never frozen: untouched");
        // A Deployment without replicas means 1.
        assert_eq!(
            freeze_replicas_patch(None, None).unwrap()["metadata"]["annotations"][FROZEN_REPLICAS],
            "1"
        );
    }

    fn pod(owner: Option<bool>, phase: &str, deleting: bool) -> Pod {
        deleted_with_grace(owner, phase, deleting.then_some(FREEZE_GRACE_SECONDS))
    }

    fn deleted_with_grace(owner: Option<bool>, phase: &str, grace: Option<i64>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": "p",
                "ownerReferences": owner.map(|controller| vec![json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                    "uid": "u", "controller": controller
                })]),
                "deletionTimestamp": grace.map(|_| "2026-11-27T00:00:00Z"),
                "deletionGracePeriodSeconds": grace,
            },
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    #[test]
    fn a_freeze_stops_every_running_pod_and_knows_which_cannot_come_back() {
        assert_eq!(
            pod_fate(&pod(Some(true), "Running", false)),
            PodFate::StopControlled
        );
        assert_eq!(pod_fate(&pod(None, "Running", false)), PodFate::StopBare);
        assert_eq!(pod_fate(&pod(None, "Pending", false)), PodFate::StopBare);
        // An owner that is not its controller does not bring it back.
        assert_eq!(
            pod_fate(&pod(Some(false), "Running", false)),
            PodFate::StopBare
        );
        assert_eq!(pod_fate(&pod(Some(true), "Running", true)), PodFate::Leave);
        assert_eq!(pod_fate(&pod(None, "Succeeded", false)), PodFate::Leave);
        assert_eq!(pod_fate(&pod(None, "Failed", false)), PodFate::Leave);
    }

    #[test]
    fn a_pod_deleted_just_before_a_freeze_with_a_long_grace_is_deleted_again() {
        // Deleted a moment ago with an hour to go: its containers would run
        // on through the freeze.
        assert_eq!(
            pod_fate(&deleted_with_grace(Some(true), "Running", Some(3600))),
            PodFate::Hasten
        );
        assert_eq!(
            pod_fate(&deleted_with_grace(None, "Running", Some(30))),
            PodFate::Hasten
        );
        // Already within the freeze's grace (the second delete took): left.
        assert_eq!(
            pod_fate(&deleted_with_grace(
                None,
                "Running",
                Some(FREEZE_GRACE_SECONDS)
            )),
            PodFate::Leave
        );
        assert_eq!(
            pod_fate(&deleted_with_grace(None, "Running", Some(0))),
            PodFate::Leave
        );
    }

    #[test]
    fn suspension_keeps_what_was_there() {
        let p = freeze_suspend_patch(Some(false), None).unwrap();
        assert_eq!(p["metadata"]["annotations"][FROZEN_SUSPEND], "false");
        assert_eq!(p["spec"]["suspend"], true);
        assert_eq!(freeze_suspend_patch(Some(true), Some("false")), None);
        assert_eq!(
            thaw_suspend_patch(Some("false")).unwrap()["spec"]["suspend"],
            false
        );
        // Already suspended by its owner before the freeze: stays suspended after.
        let p = freeze_suspend_patch(Some(true), None).unwrap();
        assert_eq!(p["metadata"]["annotations"][FROZEN_SUSPEND], "true");
        assert_eq!(
            thaw_suspend_patch(Some("true")).unwrap()["spec"]["suspend"],
            true
        );
    }
}
