//! Benchmark (not a test): the data plane on the node, over RUNS tenants
//! (default 20), each with a scenario on the enterprise registry and a prod
//! workload:
//!   - approval to query: from the last party's approval until the prod pod,
//!     with fresh OpenBao credentials, first selects a listed raw column
//!     (polled from the pod: each try is a `kubectl exec`, about 0.2 s);
//!   - suspension to dead session: a session held open from the host with
//!     the pod's credentials, from the bureau's write of `Suspended` until
//!     the server ends it.
//!
//! Prints p50 and p99 of each. Run through `hack/bench-data-plane.sh`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::data_plane::{credentials, hold_session, query, sessions_of};
use e2e::pods::workload_pod;
use e2e::scenarios::{approve_all, example_scenario, wait_phase};
use e2e::{TestBed, authorization, eventually, percentile, unique};
use kube::api::{Api, PostParams};
use publicdata_operator::api::DataScenario;

const RAW: &str = "SELECT legal_representative_id FROM market.enterprise_registry LIMIT 1";

/// One run: (approval to first query, suspension to dead session).
async fn run(bed: &TestBed) -> Result<(Duration, Duration)> {
    let t = unique("bdp");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let (dev, prod) = (format!("{t}-dev"), format!("{t}-prod"));
    let mut scenario = example_scenario(&t)?;
    scenario["spec"]["items"][1]["fields"] =
        serde_json::json!(["credit_code", "legal_representative_id"]);
    Api::<DataScenario>::namespaced(bed.client_as(&alice, &[]).await?, &dev)
        .create(&PostParams::default(), &serde_json::from_value(scenario)?)
        .await?;
    let scenarios: Api<DataScenario> = Api::namespaced(bed.client().await?, &dev);
    let digest = wait_phase(&scenarios, "Draft").await?;
    bed.apply(&workload_pod(bed, &prod, "job")?)?;
    let pod = bed.wait_running(&prod, "job").await?;

    approve_all(bed, &t, &digest).await?;
    let approved = Instant::now();
    let creds = loop {
        if approved.elapsed() > Duration::from_secs(120) {
            bail!("{t}: no successful query 120 s after the approvals");
        }
        if let Ok(creds) = credentials(bed, &pod, &t, "prod")
            && query(bed, &pod, &creds, RAW)?.is_ok()
        {
            break creds;
        }
    };
    let to_query = approved.elapsed();

    let session = hold_session(bed, &creds)?;
    eventually(
        "the held session to be open",
        Duration::from_secs(30),
        || async { Ok((sessions_of(bed, &creds.0)? == 1).then_some(())) },
    )
    .await?;
    let suspended = Instant::now();
    bed.set_state(&t, "Suspended").await?;
    let out = tokio::task::spawn_blocking(move || session.wait_with_output()).await??;
    let to_dead = suspended.elapsed();
    if out.status.success() {
        bail!("{t}: the held session ended by itself");
    }
    Ok((to_query, to_dead))
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .context("usage: bench_data_plane [RUNS]")?
        .unwrap_or(20);
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    bed.apply_file(&e2e::repo().join("examples/datasets.yaml"))?;
    let mut to_query = Vec::new();
    let mut to_dead = Vec::new();
    for i in 1..=runs {
        let (q, d) = run(&bed).await?;
        eprintln!(
            "run {i}/{runs}: approval to query {} ms, suspension to dead session {} ms",
            q.as_millis(),
            d.as_millis()
        );
        to_query.push(q);
        to_dead.push(d);
    }
    to_query.sort();
    to_dead.sort();
    let ms = |d: Duration| format!("{} ms", d.as_millis());
    println!("| measure ({runs} runs) | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| last approval → first successful query from prod (fresh OpenBao credentials) | {} | {} |",
        ms(percentile(&to_query, 50.0)),
        ms(percentile(&to_query, 99.0))
    );
    println!(
        "| suspension → a held database session ended by the server | {} | {} |",
        ms(percentile(&to_dead, 50.0)),
        ms(percentile(&to_dead, 99.0))
    );
    Ok(())
}
