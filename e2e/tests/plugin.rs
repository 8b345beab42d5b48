//! `kubectl publicdata`, the bureau's plugin, run as kubectl runs it (found on
//! the PATH) against the test bed: impersonating the bureau, a cluster admin
//! outside the bureau and a tenant member, refusals included.

use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{TestBed, authorization, eventually, unique, wait_phase};
use kube::Api;
use kube::ResourceExt;
use publicdata_operator::api::OperatorAuthorization;

const WAIT: Duration = Duration::from_secs(90);

/// `kubectl publicdata ARGS` with the plugin (built by hack/test.sh) on the PATH.
fn plugin(bed: &TestBed, args: &[&str]) -> Result<Output> {
    let dir = e2e::repo().join("target/debug");
    ensure!(
        dir.join("kubectl-publicdata").exists(),
        "build the plugin first: cargo build -p kubectl-publicdata (hack/test.sh does)"
    );
    let mut kubectl = bed.kubectl();
    let path = kubectl
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let out = kubectl
        .env("PATH", format!("{}:{path}", dir.display()))
        .arg("publicdata")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running kubectl publicdata")?;
    Ok(out)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BUREAU: [&str; 4] = ["--as", "zhao.lei", "--as-group", "publicdata:bureau"];

#[tokio::test]
async fn the_bureau_suspends_resumes_renews_and_revokes_with_the_plugin_and_others_are_told_why_not()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("plug");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let decision = unique("PDB");
    let suspend = [
        "suspend",
        t.as_str(),
        "--reason",
        "breach of the no-third-party rule",
        "--decision",
        decision.as_str(),
        "--yes",
    ];

    // A member: RBAC says no, in plain words.
    let out = plugin(&bed, &[&suspend[..], &["--as", &alice]].concat())?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success() && err.contains(&format!("refused: {alice} may not do this (RBAC)")),
        "{err}"
    );
    // A cluster admin outside the bureau: the admission policy says no, and says who may.
    let out = plugin(
        &bed,
        &[
            &suspend[..],
            &["--as", "ops-admin", "--as-group", "system:masters"],
        ]
        .concat(),
    )?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success()
            && err.contains("refused: only group publicdata:bureau may change an authorization's state; you are ops-admin"),
        "{err}"
    );
    // No terminal, no --yes: nothing changes.
    let out = plugin(&bed, &[&suspend[..suspend.len() - 1], &BUREAU[..]].concat())?;
    let (_, err) = text(&out);
    ensure!(!out.status.success() && err.contains("add --yes"), "{err}");
    // A server-side dry run: accepted, nothing changed.
    let out = plugin(&bed, &[&suspend[..], &["--dry-run"], &BUREAU[..]].concat())?;
    let (stdout, err) = text(&out);
    ensure!(
        out.status.success() && stdout.contains("server-side dry run"),
        "{stdout}{err}"
    );
    ensure!(
        format!("{:?}", api.get(&t).await?.spec.state) == "Active",
        "a dry run changes nothing"
    );

    // The bureau suspends: the plugin says what it does, the domain freezes.
    let out = plugin(&bed, &[&suspend[..], &BUREAU[..]].concat())?;
    let (stdout, err) = text(&out);
    ensure!(out.status.success(), "{err}");
    ensure!(
        stdout.contains("state Active -> Suspended")
            && stdout.contains("the domain freezes at once"),
        "{stdout}"
    );
    let oa = wait_phase(&api, &t, "Suspended").await?;
    ensure!(
        oa.annotations()
            .get("publicdata.io/state-changed-by")
            .map(String::as_str)
            == Some("zhao.lei")
    );
    eventually("status to show the freeze", WAIT, || async {
        let (stdout, _) = text(&plugin(&bed, &["status", &t])?);
        Ok(stdout.contains("frozen: yes").then_some(()))
    })
    .await?;
    let (json, _) = text(&plugin(&bed, &["status", &t, "-o", "json"])?);
    let v: serde_json::Value = serde_json::from_str(&json)?;
    ensure!(
        v["authorization"]["status"]["phase"] == "Suspended",
        "{json}"
    );

    // Resume, renew.
    let resume = [
        "resume",
        t.as_str(),
        "--reason",
        "rectified",
        "--decision",
        &unique("PDB"),
        "--yes",
    ]
    .map(String::from);
    let out = plugin(
        &bed,
        &[
            &resume.iter().map(String::as_str).collect::<Vec<_>>()[..],
            &BUREAU[..],
        ]
        .concat(),
    )?;
    ensure!(out.status.success(), "{:?}", text(&out));
    bed.wait_ready(&t).await?;
    let renewal = unique("PDB");
    let out = plugin(
        &bed,
        &[
            &[
                "renew",
                t.as_str(),
                "--not-after",
                "2030-06-30",
                "--decision",
                renewal.as_str(),
                "--yes",
            ][..],
            &BUREAU[..],
        ]
        .concat(),
    )?;
    let (stdout, err) = text(&out);
    ensure!(
        out.status.success() && stdout.contains("-> 2026-01-01 .. 2030-06-30"),
        "{stdout}{err}"
    );
    let oa = api.get(&t).await?;
    ensure!(oa.spec.validity.not_after.to_string() == "2030-06-30");
    ensure!(
        oa.annotations()
            .get("publicdata.io/validity-set-by")
            .map(String::as_str)
            == Some("zhao.lei")
    );

    // Revoke: it says what will be wiped and what kept; the domain is offboarded.
    let revoke = unique("PDB");
    let out = plugin(
        &bed,
        &[
            &[
                "revoke",
                t.as_str(),
                "--reason",
                "repeated breach",
                "--decision",
                revoke.as_str(),
                "--yes",
            ][..],
            &BUREAU[..],
        ]
        .concat(),
    )?;
    let (stdout, err) = text(&out);
    ensure!(out.status.success(), "{err}");
    ensure!(
        stdout.contains("FINAL")
            && stdout.contains(&format!("will be wiped: namespaces {t}-dev, {t}-prod"))
            && stdout.contains("will be kept: the audit log"),
        "{stdout}"
    );
    wait_phase(&api, &t, "Revoked").await?;
    let out = plugin(
        &bed,
        &[
            &[
                "resume",
                t.as_str(),
                "--reason",
                "x",
                "--decision",
                &unique("PDB"),
                "--yes",
            ][..],
            &BUREAU[..],
        ]
        .concat(),
    )?;
    let (_, err) = text(&out);
    ensure!(!out.status.success() && err.contains("final"), "{err}");

    let (completion, _) = text(&plugin(&bed, &["completion", "bash"])?);
    ensure!(
        completion.contains("kubectl-publicdata"),
        "a bash completion script"
    );
    Ok(())
}

/// Each party approves a scenario with the plugin after seeing its list and
/// digest; the bureau decides an export after seeing its checks and findings.
/// A member can do neither, and is told why.
#[tokio::test]
async fn parties_approve_a_scenario_and_the_bureau_decides_an_export_with_the_plugin() -> Result<()>
{
    use e2e::scenarios::example_scenario;
    use kube::api::{Patch, PatchParams, PostParams};
    use publicdata_operator::api::{DataScenario, ExportRequest};
    use sha2::{Digest, Sha256};

    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = bed.client().await?;
    bed.apply_file(&e2e::repo().join("examples/datasets.yaml"))?;
    let t = unique("plugsc");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let dev = format!("{t}-dev");
    let scenarios: Api<DataScenario> = Api::namespaced(admin.clone(), &dev);
    scenarios
        .create(
            &PostParams::default(),
            &serde_json::from_value(example_scenario(&t)?)?,
        )
        .await?;
    let target = format!("{dev}/commuter-flows");
    eventually("the scenario's digest", WAIT, || async {
        Ok(scenarios
            .get("commuter-flows")
            .await?
            .status
            .and_then(|s| s.items_digest))
    })
    .await?;

    // A member files scenarios but approves nothing.
    let out = plugin(
        &bed,
        &[
            "approve", "scenario", &target, "--party", "bureau", "--yes", "--as", &alice,
        ],
    )?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success()
            && err.contains("a party's approval is recorded by that party only")
            && err.contains(&alice),
        "{err}"
    );
    // Each party, under its own name.
    let bureau = ("bureau", "zhao.lei", "publicdata:bureau");
    for (party, user, group) in std::iter::once(bureau).chain(e2e::scenarios::AGENCY_APPROVERS) {
        let out = plugin(
            &bed,
            &[
                "approve",
                "scenario",
                &target,
                "--party",
                party,
                "--yes",
                "--as",
                user,
                "--as-group",
                group,
            ],
        )?;
        let (stdout, err) = text(&out);
        ensure!(out.status.success(), "{party}: {err}");
        ensure!(
            stdout.contains("bus-ridership: line_id, stop_id, service_date, boardings")
                && stdout.contains("digest: "),
            "{stdout}"
        );
    }
    let ds = eventually("the scenario Active", WAIT, || async {
        let ds = scenarios.get("commuter-flows").await?;
        let active = ds
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .map(|p| format!("{p:?}"))
            == Some("Active".into());
        Ok(active.then_some(ds))
    })
    .await?;
    ensure!(
        ds.spec
            .approvals
            .iter()
            .any(|a| a.party == "bureau" && a.by == "zhao.lei"),
        "signed with the caller's own name: {:?}",
        ds.spec.approvals
    );

    // An export, decided with the plugin.
    let csv = "district,commuters\nNorth,40213\n";
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(admin.clone(), &format!("{t}-prod"));
    cms.patch(
        "index",
        &PatchParams::apply("e2e-tenant-job").force(),
        &Patch::Apply(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "index"}, "data": {"report.csv": csv}})),
    )
    .await?;
    let er = e2e::scenarios::export_request(
        &t,
        "q1",
        "commuter-flows",
        "index",
        &hex::encode(Sha256::digest(csv.as_bytes())),
    )?;
    let exports: Api<ExportRequest> = Api::namespaced(bed.client_as(&alice, &[]).await?, &dev);
    exports.create(&PostParams::default(), &er).await?;
    let exports_admin: Api<ExportRequest> = Api::namespaced(admin.clone(), &dev);
    eventually("the export awaiting review", WAIT, || async {
        let er = exports_admin.get("q1").await?;
        Ok((er.status.and_then(|s| s.phase).map(|p| format!("{p:?}"))
            == Some("AwaitingReview".into()))
        .then_some(()))
    })
    .await?;
    let export = format!("{dev}/q1");
    let out = plugin(
        &bed,
        &[
            "decide", "export", &export, "approve", "--reason", "mine", "--yes", "--as", &alice,
        ],
    )?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success() && err.contains("only group publicdata:bureau decides on an export"),
        "{err}"
    );
    let out = plugin(
        &bed,
        &[
            "decide",
            "export",
            &export,
            "approve",
            "--reason",
            "aggregated indicators",
            "--yes",
            "--as",
            "reviewer-li",
            "--as-group",
            "publicdata:bureau",
        ],
    )?;
    let (stdout, err) = text(&out);
    ensure!(out.status.success(), "{err}");
    ensure!(
        stdout.contains("findings: none") && stdout.contains("Approved by reviewer-li"),
        "{stdout}"
    );
    eventually("the export delivered", WAIT, || async {
        let er = exports_admin.get("q1").await?;
        Ok(
            (er.status.and_then(|s| s.phase).map(|p| format!("{p:?}")) == Some("Delivered".into()))
                .then_some(()),
        )
    })
    .await?;
    Ok(())
}
