use serde_json::json;

use super::*;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn owned(name: &str, kind: &str, owner: &str) -> serde_json::Value {
    json!({"name": name, "ownerReferences": [
        {"apiVersion": "v1", "kind": kind, "name": owner, "uid": "u"}
    ]})
}

/// A raw row a prod container could write where a message goes.
const ROW: &str = "11010519491231002X,Zhang San,13812345678";

#[test]
fn a_deployment_counts_its_pods_restarts_and_reason_codes_never_a_message() {
    let listed = Listed {
        deployments: vec![from(json!({
            "metadata": {"name": "scorer"},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"readyReplicas": 1, "conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": ROW}
            ]}
        }))],
        replica_sets: vec![from(json!({
            "metadata": owned("scorer-7d9", "Deployment", "scorer"),
            "spec": {"selector": {}}
        }))],
        pods: vec![
            from(json!({
                "metadata": owned("scorer-7d9-a", "ReplicaSet", "scorer-7d9"),
                "status": {"phase": "Running", "containerStatuses": [{
                    "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": ROW}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": ROW}}
                }]}
            })),
            from(json!({
                "metadata": owned("scorer-7d9-b", "ReplicaSet", "scorer-7d9"),
                "status": {"phase": "Running", "message": ROW, "containerStatuses": [{
                    "name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 1,
                    "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
                }]}
            })),
        ],
        ..Default::default()
    };
    let got = summarize(&listed);
    assert_eq!(
        got,
        [WorkloadSummary {
            kind: "Deployment".into(),
            name: "scorer".into(),
            desired: 2,
            ready: 1,
            phase: "Progressing".into(),
            restarts: 4,
            reasons: vec![
                "CrashLoopBackOff".into(),
                "Error".into(),
                "MinimumReplicasUnavailable".into(),
                "OOMKilled".into(),
            ],
        }]
    );
    let text = serde_json::to_string(&got).unwrap();
    assert!(!text.contains("1101") && !text.contains("Zhang"), "{text}");
}

#[test]
fn a_reason_a_container_could_choose_is_other() {
    // A runtime passes some reasons through; only listed codes are shown.
    assert_eq!(
        code("CrashLoopBackOff").as_deref(),
        Some("CrashLoopBackOff")
    );
    assert_eq!(code(ROW).as_deref(), Some(OTHER));
    assert_eq!(code("Completed"), None);
    assert_eq!(code(""), None);
}

#[test]
fn jobs_cronjobs_sets_and_bare_pods_each_have_a_line() {
    let listed = Listed {
        jobs: vec![
            from(json!({
                "metadata": {"name": "nightly"},
                "spec": {"template": {}},
                "status": {"succeeded": 0, "conditions": [
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": ROW}
                ]}
            })),
            from(json!({
                "metadata": {"name": "held"},
                "spec": {"template": {}, "suspend": true, "completions": 3}
            })),
        ],
        cron_jobs: vec![from(json!({
            "metadata": {"name": "hourly"},
            "spec": {"schedule": "@hourly", "jobTemplate": {}},
            "status": {"active": [{"name": "hourly-1"}]}
        }))],
        replica_sets: vec![from(json!({
            "metadata": {"name": "loose"},
            "spec": {"replicas": 2, "selector": {}},
            "status": {"replicas": 2, "readyReplicas": 2}
        }))],
        stateful_sets: vec![from(json!({
            "metadata": {"name": "cache"},
            "spec": {"replicas": 0, "selector": {}, "template": {}, "serviceName": "cache"}
        }))],
        pods: vec![
            from(json!({
                "metadata": owned("nightly-x", "Job", "nightly"),
                "status": {"phase": "Failed", "containerStatuses": [{
                    "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 2, "reason": "Error", "message": ROW}}
                }]}
            })),
            from(json!({
                "metadata": {"name": "debug"},
                "status": {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": ROW}
                ]}
            })),
        ],
        ..Default::default()
    };
    let got: Vec<_> = summarize(&listed)
        .into_iter()
        .map(|w| (w.kind, w.name, w.desired, w.ready, w.phase, w.reasons))
        .collect();
    let s = |v: &str| v.to_string();
    assert_eq!(
        got,
        [
            (s("CronJob"), s("hourly"), 0, 1, s("Scheduled"), vec![]),
            (s("Job"), s("held"), 3, 0, s("Suspended"), vec![]),
            (
                s("Job"),
                s("nightly"),
                1,
                0,
                s("Failed"),
                vec![s("BackoffLimitExceeded"), s("Error")]
            ),
            (
                s("Pod"),
                s("debug"),
                1,
                0,
                s("Pending"),
                vec![s("Unschedulable")]
            ),
            (s("ReplicaSet"), s("loose"), 2, 2, s("Ready"), vec![]),
            (s("StatefulSet"), s("cache"), 0, 0, s("Stopped"), vec![]),
        ]
    );
}
