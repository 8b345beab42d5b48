//! A tenant's prod workloads as members may see them: the operator's
//! summary (counts, phases, reason codes), since they read no pod, event or
//! log in prod.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use publicdata_operator::api::workloads::{SUMMARY_CONFIG_MAP, SUMMARY_KEY, WorkloadSummary};

use publicdata_operator::api::shown;

/// Prints the workloads of `tenant`'s prod namespace as a table, or JSON.
pub async fn show(client: &kube::Client, tenant: &str, output: &str) -> Result<()> {
    let ns = format!("{tenant}-prod");
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get_opt(SUMMARY_CONFIG_MAP)
        .await?
        .with_context(|| {
            format!(
                "{ns} has no workload summary yet ({SUMMARY_CONFIG_MAP}): is the operator running?"
            )
        })?;
    let text = cm
        .data
        .and_then(|d| d.get(SUMMARY_KEY).cloned())
        .unwrap_or_else(|| "[]".into());
    let workloads: Vec<WorkloadSummary> = serde_json::from_str(&text)
        .with_context(|| format!("{ns}/{SUMMARY_CONFIG_MAP} is not a workload summary"))?;
    match output {
        "json" => println!("{}", serde_json::to_string_pretty(&workloads)?),
        _ => print!("{}", table(&workloads)),
    }
    Ok(())
}

/// The summary as `kubectl get` would print it.
pub fn table(workloads: &[WorkloadSummary]) -> String {
    let rows: Vec<[String; 6]> = workloads
        .iter()
        .map(|w| {
            [
                shown(&w.kind),
                shown(&w.name),
                format!("{}/{}", w.ready, w.desired),
                shown(&w.phase),
                w.restarts.to_string(),
                shown(&w.reasons.join(",")),
            ]
        })
        .collect();
    let header = ["KIND", "NAME", "READY", "PHASE", "RESTARTS", "REASONS"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no workloads)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_counts_phase_and_codes() {
        let t = table(&[WorkloadSummary {
            kind: "Deployment".into(),
            name: "scorer".into(),
            desired: 2,
            ready: 1,
            phase: "Progressing".into(),
            restarts: 4,
            reasons: vec!["CrashLoopBackOff".into(), "OOMKilled".into()],
        }]);
        assert_eq!(
            t,
            "KIND         NAME     READY   PHASE         RESTARTS   REASONS\n\
             Deployment   scorer   1/2     Progressing   4          CrashLoopBackOff,OOMKilled\n"
        );
    }
}
