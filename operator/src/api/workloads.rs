//! What members see of their prod workloads: a summary the
//! operator writes, since members read no pod, event or log in prod. Counts
//! and reason codes only, never a message: a container's termination
//! message, a probe's output or an event's note can carry raw rows.

use serde::{Deserialize, Serialize};

/// The ConfigMap in each prod namespace that holds the summary; members may
/// read it (and no other ConfigMap there), only the operator writes it.
pub const SUMMARY_CONFIG_MAP: &str = "publicdata-workloads";
/// Its key: a JSON array of [`WorkloadSummary`].
pub const SUMMARY_KEY: &str = "workloads.json";

/// One workload of a prod namespace.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSummary {
    /// Deployment, StatefulSet, ReplicaSet, Job, CronJob or Pod (a pod no
    /// controller owns).
    pub kind: String,
    pub name: String,
    /// Replicas (or completions) wanted.
    pub desired: i32,
    /// Replicas ready (or completions succeeded, or a CronJob's active jobs).
    pub ready: i32,
    /// Ready, Progressing, Stopped, Running, Complete, Failed, Suspended,
    /// Scheduled, Pending or Succeeded.
    pub phase: String,
    /// Container restarts, summed over its pods.
    pub restarts: i32,
    /// Reason codes from its pods and its own conditions (`CrashLoopBackOff`,
    /// `OOMKilled`, `BackoffLimitExceeded` ...), from a fixed list; any other
    /// is `Other`.
    #[serde(default)]
    pub reasons: Vec<String>,
}
