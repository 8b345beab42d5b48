//! Benchmark (not a test): how fast a suspension takes hold on the node.
//!
//! For each of RUNS tenants (default 20): 5 running pods in dev and an
//! OpenBao token a workload holds; then the bureau sets `spec.state:
//! Suspended` and two clocks run from that write:
//!   - access cut: OpenBao refuses the held token and the tenant's
//!     namespaces carry the freeze deny-all NetworkPolicy;
//!   - last container gone: containerd runs no container (sandboxes
//!     included) of the tenant.
//!
//! Prints p50 and p99 of each. Run through `hack/bench-suspend.sh`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::pods::{probe_pod, running_containers};
use e2e::{TestBed, authorization, eventually, percentile, unique};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, Patch, PatchParams};
use publicdata_operator::api::OperatorAuthorization;
use publicdata_operator::controllers::tenant::FREEZE_POLICY;
use serde_json::json;

const PODS: usize = 5;

/// A tenant with PODS running pods in dev and a held OpenBao token; returns the token.
async fn prepare(bed: &TestBed, tenant: &str) -> Result<String> {
    bed.apply(&authorization(tenant, &[])?)?;
    bed.wait_ready(tenant).await?;
    let dev = format!("{tenant}-dev");
    let template = probe_pod(bed, &dev, "app", json!({}))?;
    bed.apply(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "namespace": dev},
        "spec": {"replicas": PODS, "selector": {"matchLabels": {"app": "app"}},
                 "template": {"metadata": {"labels": {"app": "app"}}, "spec": template["spec"]}}
    }))?;
    eventually(
        &format!("{PODS} pods of {tenant} to run"),
        Duration::from_secs(120),
        || async { Ok((running_containers(bed, &dev)?.len() == 2 * PODS).then_some(())) },
    )
    .await?;
    bed.workload_login(tenant, "dev").await
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .context("usage: bench_suspend [RUNS]")?
        .unwrap_or(20);
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let bureau: Api<OperatorAuthorization> = Api::all(bed.bureau().await?);
    let mut cut = Vec::new();
    let mut gone = Vec::new();
    for i in 1..=runs {
        let tenant = unique("bsus");
        let dev = format!("{tenant}-dev");
        let held = prepare(&bed, &tenant).await?;
        let held_client = bed.vault_with_token(&held)?;
        vaultrs::token::lookup_self(&held_client)
            .await
            .context("the held token works before the suspension")?;
        let policies: [Api<NetworkPolicy>; 2] = [
            Api::namespaced(client.clone(), &dev),
            Api::namespaced(client.clone(), &format!("{tenant}-prod")),
        ];

        let patch = json!({"spec": {"state": "Suspended", "stateChange": {"reason": "benchmark", "decision": unique("PDB")}}});
        let start = Instant::now();
        bureau
            .patch(&tenant, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let mut access_cut = None;
        let mut last_gone = None;
        while access_cut.is_none() || last_gone.is_none() {
            if start.elapsed() > Duration::from_secs(120) {
                bail!("run {i}: the suspension did not take hold within 120 s");
            }
            if access_cut.is_none() {
                let refused = matches!(
                    vaultrs::token::lookup_self(&held_client).await,
                    Err(vaultrs::error::ClientError::APIError { code: 403, .. })
                );
                let mut denied = true;
                for api in &policies {
                    denied &= api.get_opt(FREEZE_POLICY).await?.is_some();
                }
                if refused && denied {
                    access_cut = Some(start.elapsed());
                }
            }
            if last_gone.is_none() && running_containers(&bed, &dev)?.is_empty() {
                last_gone = Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (c, g) = (
            access_cut.unwrap_or_default(),
            last_gone.unwrap_or_default(),
        );
        eprintln!(
            "run {i:>2}: access cut {:>6.0} ms, last container gone {:>6.0} ms",
            c.as_secs_f64() * 1000.0,
            g.as_secs_f64() * 1000.0
        );
        cut.push(c);
        gone.push(g);
    }
    cut.sort();
    gone.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("suspension, {runs} runs, {PODS} running pods per tenant (from the bureau's write):");
    println!(
        "  access cut (OpenBao refuses the held token, deny-all policy in place): p50 {:.0} ms, p99 {:.0} ms",
        ms(percentile(&cut, 50.0)),
        ms(percentile(&cut, 99.0))
    );
    println!(
        "  last container gone (containerd runs none of the tenant's):           p50 {:.0} ms, p99 {:.0} ms",
        ms(percentile(&gone, 50.0)),
        ms(percentile(&gone, 99.0))
    );
    Ok(())
}
