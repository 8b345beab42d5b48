//! Benchmark (not a test): provisions N authorizations against the running
//! test bed and operator, and prints time from apply to Ready (p50, p99),
//! throughput, the operator's peak RSS and API writes per tenant.
//!
//! Run through `hack/bench.sh`, which gives each N a fresh test bed and a
//! release build of the operator.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::{TestBed, authorization};
use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use publicdata_operator::api::OperatorAuthorization;
use tokio::sync::Mutex;

fn is_ready(oa: &OperatorAuthorization) -> bool {
    oa.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Sum of `publicdata_api_writes_total{target=...}` from the operator's /metrics.
async fn writes(admin: &str) -> Result<HashMap<String, f64>> {
    let text = reqwest_get(&format!("{admin}/metrics")).await?;
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("publicdata_api_writes_total{"))
    {
        let target = line.split('"').nth(1).unwrap_or_default().to_string();
        let value: f64 = line
            .rsplit(' ')
            .next()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0.0);
        out.insert(target, value);
    }
    Ok(out)
}

async fn reqwest_get(url: &str) -> Result<String> {
    // The test bed's curl: keeps the e2e crate free of another HTTP client.
    let out = tokio::process::Command::new("curl")
        .args(["-fsS", url])
        .output()
        .await?;
    if !out.status.success() {
        bail!("GET {url}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn peak_rss_mib(pid: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmHWM")?;
    Ok(kib / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .context("usage: bench_provision N")?
        .parse()?;
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = std::fs::read_to_string(bed.dir.join("operator.admin"))?
        .trim()
        .to_string();
    let pids = std::fs::read_to_string(bed.dir.join("pids"))?;
    let pid = pids
        .lines()
        .filter_map(|l| l.strip_prefix("operator "))
        .next_back()
        .context("operator pid")?
        .to_string();
    let client = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(client);

    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let ready: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    // Watch for Ready transitions.
    let watch = {
        let ready = ready.clone();
        let api = api.clone();
        tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            let mut stream = std::pin::pin!(stream);
            while let Ok(Some(oa)) = stream.try_next().await {
                if is_ready(&oa) {
                    ready
                        .lock()
                        .await
                        .entry(oa.name_any())
                        .or_insert_with(Instant::now);
                }
            }
        })
    };

    let before = writes(&admin).await?;
    let start = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("bench-{i:04}")).collect();
    futures::stream::iter(names.clone())
        .map(|name| {
            let api = api.clone();
            let created = created.clone();
            async move {
                let oa: OperatorAuthorization = serde_json::from_value(authorization(
                    &name,
                    &[("dev-a", true), ("dev-b", true)],
                )?)?;
                api.create(&PostParams::default(), &oa).await?;
                created.lock().await.insert(name, Instant::now());
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    let applied = start.elapsed();

    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        if ready.lock().await.len() >= n {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {n} Ready after 30 minutes",
                ready.lock().await.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = start.elapsed();
    // Let follow-up reconciles (triggered by the operator's own writes) settle
    // before counting writes.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = writes(&admin).await?;
    watch.abort();

    let created = created.lock().await;
    let ready = ready.lock().await;
    let mut latencies: Vec<Duration> = names
        .iter()
        .filter_map(|n| Some(ready.get(n)?.saturating_duration_since(*created.get(n)?)))
        .collect();
    latencies.sort();
    let per = |k: &str| {
        (after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0)) / n as f64
    };
    println!(
        "N={n:<5} apply={:>7.2}s all-ready={:>7.2}s p50={:>7.3}s p99={:>7.3}s throughput={:>6.1}/s peak-rss={:>6.1}MiB writes/tenant: kubernetes={:.1} openbao={:.1}",
        applied.as_secs_f64(),
        total.as_secs_f64(),
        percentile(&latencies, 50.0).as_secs_f64(),
        percentile(&latencies, 99.0).as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        peak_rss_mib(&pid)?,
        per("kubernetes"),
        per("openbao"),
    );
    Ok(())
}
