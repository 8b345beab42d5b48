//! Freezing and thawing a tenant's workloads: Deployments and StatefulSets
//! scaled to 0, CronJobs and Jobs suspended, each with its previous value kept
//! in an annotation written in the same patch, so resume restores it exactly
//! and a crash between two steps loses nothing. Freezing twice keeps the first
//! value; thawing what is not frozen changes nothing.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
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

/// Freezes (`freeze = true`) or thaws every workload of a namespace; returns
/// how many objects were patched.
pub async fn set_frozen(client: &Client, ns: &str, freeze: bool) -> Result<usize, kube::Error> {
    let mut patched = 0;
    let pp = PatchParams::default();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    for d in deployments.list(&ListParams::default()).await? {
        let note = d.annotations().get(FROZEN_REPLICAS).map(String::as_str);
        let replicas = d.spec.replicas;
        let patch = if freeze {
            freeze_replicas_patch(replicas, note)
        } else {
            thaw_replicas_patch(note)
        };
        if let Some(p) = patch {
            deployments
                .patch(&d.name_any(), &pp, &Patch::Merge(&p))
                .await?;
            patched += 1;
        }
    }
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    for s in sets.list(&ListParams::default()).await? {
        let note = s.annotations().get(FROZEN_REPLICAS).map(String::as_str);
        let replicas = s.spec.replicas;
        let patch = if freeze {
            freeze_replicas_patch(replicas, note)
        } else {
            thaw_replicas_patch(note)
        };
        if let Some(p) = patch {
            sets.patch(&s.name_any(), &pp, &Patch::Merge(&p)).await?;
            patched += 1;
        }
    }
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), ns);
    for c in cronjobs.list(&ListParams::default()).await? {
        let note = c.annotations().get(FROZEN_SUSPEND).map(String::as_str);
        let suspend = c.spec.suspend;
        let patch = if freeze {
            freeze_suspend_patch(suspend, note)
        } else {
            thaw_suspend_patch(note)
        };
        if let Some(p) = patch {
            cronjobs
                .patch(&c.name_any(), &pp, &Patch::Merge(&p))
                .await?;
            patched += 1;
        }
    }
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    for j in jobs.list(&ListParams::default()).await? {
        // Jobs a CronJob made follow their CronJob; finished jobs are left alone.
        let finished = j
            .status
            .as_ref()
            .and_then(|s| s.completion_time.as_ref())
            .is_some();
        let note = j.annotations().get(FROZEN_SUSPEND).map(String::as_str);
        if finished && note.is_none() {
            continue;
        }
        let suspend = j.spec.as_ref().and_then(|s| s.suspend);
        let patch = if freeze {
            freeze_suspend_patch(suspend, note)
        } else {
            thaw_suspend_patch(note)
        };
        if let Some(p) = patch {
            jobs.patch(&j.name_any(), &pp, &Patch::Merge(&p)).await?;
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
