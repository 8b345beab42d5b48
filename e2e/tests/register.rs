//! The public register of authorized units, served by the operator
//! installed by its chart: every replica answers with the unit's state after
//! a bureau suspension, with the date and the decision; no personal data;
//! and the page reads in a real browser (Debian's Chromium, headless), which
//! also takes the screenshot the docs show.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{TestBed, authorization, eventually, repo, run, run_ok, unique, wait_phase};
use kube::Api;
use publicdata_operator::api::OperatorAuthorization;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);
/// The register's port in the chart (register.port).
const PORT: u16 = 8090;

/// The pod IPs of the operator's replicas (the host routes to pods).
fn replicas(bed: &TestBed) -> Result<Vec<String>> {
    let ips = run_ok(bed.kubectl().args([
        "-n",
        "publicdata-system",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=publicdata-operator",
        "--field-selector=status.phase=Running",
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ]))?;
    Ok(ips.split_whitespace().map(str::to_string).collect())
}

async fn entry(http: &reqwest::Client, ip: &str, id: &str) -> Result<Option<Value>> {
    let body: Value = http
        .get(format!("http://{ip}:{PORT}/register.json"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["units"]
        .as_array()
        .context("units")?
        .iter()
        .find(|u| u["id"] == id)
        .cloned())
}

#[tokio::test]
async fn every_replica_serves_the_register_with_the_suspension_and_the_page_reads_in_a_browser()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("register");
    let member = unique("register-member");
    bed.apply(&authorization(&t, &[(&member, true)])?)?;
    bed.wait_ready(&t).await?;
    bed.set_state(&t, "Suspended").await?;
    wait_phase(&api, &t, "Suspended").await?;
    let decision = api
        .get(&t)
        .await?
        .spec
        .state_change
        .context("the bureau's decision")?
        .decision;

    let ips = replicas(&bed)?;
    ensure!(ips.len() >= 2, "a standby replica too: {ips:?}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    for ip in &ips {
        let unit = eventually("the suspension in the register", WAIT, || async {
            Ok(entry(&http, ip, &t)
                .await?
                .filter(|u| u["state"] == "Suspended"))
        })
        .await?;
        ensure!(unit["unit"] == "Harbor Analytics Co., Ltd.", "{unit}");
        ensure!(unit["creditCode"] == "91330100MA2H3K5L7U", "{unit}");
        ensure!(unit["validUntil"] == "2030-12-31", "{unit}");
        let changes = unit["changes"].as_array().context("changes")?;
        let states: Vec<&str> = changes.iter().filter_map(|c| c["state"].as_str()).collect();
        ensure!(states.ends_with(&["Active", "Suspended"]), "{unit}");
        let last = changes.last().context("a change")?;
        ensure!(last["decision"] == decision.as_str(), "{unit}");
        let today = jiff::Timestamp::now().to_string();
        ensure!(
            last["since"].as_str().unwrap_or_default().get(..10) == today.get(..10)
                && unit["since"] == last["since"],
            "{unit}"
        );
        let text = unit.to_string();
        for personal in [member.as_str(), "Chen Jing", "RN-2025-11873", "Wang Fang"] {
            ensure!(!text.contains(personal), "{personal} in {text}");
        }
    }

    // The page, as a person's browser renders it.
    let url = format!("http://{}:{PORT}/", ips[0]);
    let chromium = |args: &[&str]| {
        let mut cmd = std::process::Command::new("chromium");
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!(
            "--user-data-dir={}",
            std::env::temp_dir().join(unique("chromium")).display()
        ))
        .args(args);
        cmd
    };
    let dom = run_ok(&mut chromium(&["--dump-dom", &url]))?;
    let row = dom
        .split("<tr")
        .find(|r| r.contains(&format!("id=\"{t}\"")))
        .with_context(|| format!("no row of {t} in the rendered page"))?;
    ensure!(
        row.contains("Harbor Analytics Co., Ltd.")
            && row.contains(">Suspended<")
            && row.contains(&format!("Suspended ({decision})")),
        "{row}"
    );
    ensure!(!dom.contains(&member), "a member's name on the page");
    let shot = repo().join("target/register.png");
    let _ = std::fs::remove_file(&shot);
    let out = run(&mut chromium(&[
        "--window-size=1280,720",
        "--hide-scrollbars",
        &format!("--screenshot={}", shot.display()),
        &url,
    ]))?;
    ensure!(out.status.success(), "{out:?}");
    let png = std::fs::read(&shot).context("the screenshot")?;
    ensure!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a screenshot of the page ({} bytes)",
        png.len()
    );
    Ok(())
}
