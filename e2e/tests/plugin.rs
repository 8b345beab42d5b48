//! `kubectl publicdata`, the bureau's plugin, run as kubectl runs it (found on
//! the PATH) against the test bed: impersonating the bureau, a cluster admin
//! outside the bureau and a tenant member, refusals included.

use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::scenarios::wait_export;
use e2e::{TestBed, authorization, eventually, unique, wait_phase};
use kube::Api;
use kube::ResourceExt;
use publicdata_operator::api::OperatorAuthorization;

const WAIT: Duration = Duration::from_secs(90);

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `approve scenario TARGET` by the bureau and by each owning agency, each
/// under its own name; returns what the plugin showed each party.
fn approve_as_every_party(bed: &TestBed, target: &str) -> Result<Vec<(&'static str, String)>> {
    let bureau = ("bureau", "zhao.lei", "publicdata:bureau");
    let mut shown = Vec::new();
    for (party, user, group) in std::iter::once(bureau).chain(e2e::scenarios::AGENCY_APPROVERS) {
        let out = bed.plugin(&[
            "approve",
            "scenario",
            target,
            "--party",
            party,
            "--yes",
            "--as",
            user,
            "--as-group",
            group,
        ])?;
        let (stdout, err) = text(&out);
        ensure!(out.status.success(), "{party}: {err}");
        shown.push((party, stdout));
    }
    Ok(shown)
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
    let out = bed.plugin(&[&suspend[..], &["--as", &alice]].concat())?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success() && err.contains(&format!("refused: {alice} may not do this (RBAC)")),
        "{err}"
    );
    // A cluster admin outside the bureau: the admission policy says no, and says who may.
    let out = bed.plugin(
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
    let out = bed.plugin(&[&suspend[..suspend.len() - 1], &BUREAU[..]].concat())?;
    let (_, err) = text(&out);
    ensure!(!out.status.success() && err.contains("add --yes"), "{err}");
    // A server-side dry run: accepted, nothing changed.
    let out = bed.plugin(&[&suspend[..], &["--dry-run"], &BUREAU[..]].concat())?;
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
    let out = bed.plugin(&[&suspend[..], &BUREAU[..]].concat())?;
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
        let (stdout, _) = text(&bed.plugin(&["status", &t])?);
        Ok(stdout.contains("frozen: yes").then_some(()))
    })
    .await?;
    let (json, _) = text(&bed.plugin(&["status", &t, "-o", "json"])?);
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
    let out = bed.plugin(
        &[
            &resume.iter().map(String::as_str).collect::<Vec<_>>()[..],
            &BUREAU[..],
        ]
        .concat(),
    )?;
    ensure!(out.status.success(), "{:?}", text(&out));
    bed.wait_ready(&t).await?;
    let renewal = unique("PDB");
    let out = bed.plugin(
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
    let out = bed.plugin(
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
    let out = bed.plugin(
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

    let (completion, _) = text(&bed.plugin(&["completion", "bash"])?);
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
    let out = bed.plugin(&[
        "approve", "scenario", &target, "--party", "bureau", "--yes", "--as", &alice,
    ])?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success()
            && err.contains("a party's approval is recorded by that party only")
            && err.contains(&alice),
        "{err}"
    );
    // Each party, under its own name.
    for (party, stdout) in approve_as_every_party(&bed, &target)? {
        ensure!(
            stdout.contains("bus-ridership: line_id, stop_id, service_date, boardings")
                && stdout.contains("digest: "),
            "{party}: {stdout}"
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
    // The example's table: enough values to carry a delivery's fingerprint.
    let csv = &std::fs::read_to_string(e2e::repo().join("examples/commuter-index.csv"))?;
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
    wait_export(&exports_admin, "q1", "AwaitingReview").await?;
    let export = format!("{dev}/q1");
    let out = bed.plugin(&[
        "decide", "export", &export, "approve", "--reason", "mine", "--yes", "--as", &alice,
    ])?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success() && err.contains("only group publicdata:bureau decides on an export"),
        "{err}"
    );
    let out = bed.plugin(&[
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
    ])?;
    let (stdout, err) = text(&out);
    ensure!(out.status.success(), "{err}");
    ensure!(
        stdout.contains("findings: none") && stdout.contains("Approved by reviewer-li"),
        "{stdout}"
    );
    wait_export(&exports_admin, "q1", "Delivered").await?;
    Ok(())
}

/// The bureau reads a tenant's records and verifies the chain where the log
/// lives, keeps a copy that still verifies, and a copy edited or cut the way
/// a forger would is refused with the record named. A member may not read it.
#[tokio::test]
async fn the_bureau_reads_and_verifies_the_audit_log_and_a_forged_copy_is_named() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("plugaud");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let decision = unique("PDB");
    let suspend = [
        "suspend",
        &t,
        "--reason",
        "audit walk-through",
        "--decision",
        &decision,
        "--yes",
    ];
    let out = bed.plugin(&[&suspend[..], &BUREAU[..]].concat())?;
    ensure!(out.status.success(), "{:?}", text(&out));
    wait_phase(&api, &t, "Suspended").await?;

    // The tenant's records, readable, with who did what.
    let log = eventually("the freeze in the tenant's records", WAIT, || async {
        let out = bed.plugin(&[&["audit", "log", &t][..], &BUREAU[..]].concat())?;
        let (stdout, err) = text(&out);
        ensure!(out.status.success(), "{err}");
        Ok(stdout.contains("TenantFrozen").then_some(stdout))
    })
    .await?;
    ensure!(
        log.contains("DomainProvisioned") && log.contains("by zhao.lei") && log.contains(&decision),
        "{log}"
    );
    let out = bed.plugin(&[&["audit", "log", &t, "-o", "json"][..], &BUREAU[..]].concat())?;
    let records: Vec<publicdata_operator::audit::Record> = text(&out)
        .0
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    ensure!(
        records.len() >= 2 && records.iter().all(|r| r.entry.tenant == t),
        "only this tenant's records: {records:?}"
    );

    let out = bed.plugin(&[&["audit", "verify"][..], &BUREAU[..]].concat())?;
    let (stdout, err) = text(&out);
    ensure!(
        out.status.success() && stdout.contains("chain intact"),
        "{stdout}{err}"
    );

    // A member is told why not.
    let out = bed.plugin(&["audit", "log", &t, "--as", &alice])?;
    let (_, err) = text(&out);
    ensure!(
        !out.status.success()
            && err.contains("needs get logs.audit.publicdata.io")
            && err.contains(&format!("you are {alice}")),
        "{err}"
    );

    // A copy verifies; an edited or cut copy does not, and the record is named.
    let out = bed.plugin(&[&["audit", "dump"][..], &BUREAU[..]].concat())?;
    ensure!(out.status.success(), "{:?}", text(&out));
    let copy = text(&out).0;
    let dir = std::env::temp_dir().join(unique("audit-copies"));
    std::fs::create_dir_all(&dir)?;
    let verify = |name: &str, content: &str| -> Result<(bool, String)> {
        let file = dir.join(name);
        std::fs::write(&file, content)?;
        let out = bed.plugin(&["audit", "verify", "--file", &file.to_string_lossy()])?;
        let (stdout, err) = text(&out);
        Ok((out.status.success(), format!("{stdout}{err}")))
    };
    let (ok, said) = verify("copy.log", &copy)?;
    ensure!(ok && said.contains("chain intact"), "{said}");
    let lines: Vec<&str> = copy.lines().collect();
    let frozen = lines
        .iter()
        .position(|l| l.contains("TenantFrozen") && l.contains(&t))
        .context("the freeze in the copy")?;
    let mut edited = lines.clone();
    let quiet = lines[frozen].replace(&decision, "nothing-happened");
    edited[frozen] = &quiet;
    let (ok, said) = verify("edited.log", &(edited.join("\n") + "\n"))?;
    ensure!(
        !ok && said.contains(&format!("(line {}) was edited", frozen + 1)),
        "{said}"
    );
    // Cut out the provisioning record, which the freeze follows.
    let provisioned = lines
        .iter()
        .position(|l| l.contains("DomainProvisioned") && l.contains(&t))
        .context("the provisioning in the copy")?;
    ensure!(provisioned < frozen);
    let mut cut = lines.clone();
    cut.remove(provisioned);
    let (ok, said) = verify("cut.log", &(cut.join("\n") + "\n"))?;
    ensure!(
        !ok && said.contains("records were removed, inserted or reordered"),
        "{said}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Every file of `examples/`, applied as written, in the order a newcomer
/// follows: the catalog and the authorization, the member's scenario and
/// workload, the approvals with the plugin, the artifact and its export
/// request, the bureau's decision with the plugin, and the export delivered.
#[tokio::test]
async fn the_examples_as_written_walk_from_the_catalog_to_a_delivered_export() -> Result<()> {
    use e2e::run_ok;
    use publicdata_operator::api::{DataScenario, ExportRequest};

    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = bed.client().await?;
    let examples = e2e::repo().join("examples");
    let walked = [
        "datasets.yaml",
        "authorization.yaml",
        "scenario.yaml",
        "workload.yaml",
        "commuter-index.csv",
        "export.yaml",
        "annual-report.yaml",
        // data/catalog.sql: the test bed loads it into PostgreSQL; below,
        // every dataset's views are made from it.
        "data",
    ];
    let mut present: Vec<String> = std::fs::read_dir(&examples)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    present.sort();
    let mut expected: Vec<String> = walked.iter().map(|s| s.to_string()).collect();
    expected.sort();
    ensure!(
        present == expected,
        "every example is walked through here: {present:?}"
    );
    let file = |name: &str| examples.join(name).to_string_lossy().into_owned();
    let member = ["--as", "wang.fang"];

    bed.apply_file(&examples.join("datasets.yaml"))?;
    run_ok(bed.kubectl().args([
        "wait",
        "--for=condition=DataReady",
        "--timeout=60s",
        "-f",
        &file("datasets.yaml"),
    ]))?;
    bed.apply_file(&examples.join("authorization.yaml"))?;
    bed.wait_ready("harbor-analytics").await?;
    // A kept test bed may hold the last walk's product: start afresh.
    run_ok(bed.kubectl().args([
        "delete",
        "--ignore-not-found",
        "--wait",
        "-f",
        &file("export.yaml"),
    ]))?;
    run_ok(bed.kubectl().args([
        "-n",
        "harbor-analytics-prod",
        "delete",
        "--ignore-not-found",
        "configmap",
        "commuter-index",
    ]))?;
    run_ok(bed.kubectl().args([
        "delete",
        "--ignore-not-found",
        "--wait",
        "-f",
        &file("annual-report.yaml"),
    ]))?;

    // The trained member files the scenario and deploys the sample workload.
    run_ok(
        bed.kubectl()
            .args(["apply", "--server-side", "-f", &file("scenario.yaml")])
            .args(member),
    )?;
    run_ok(
        bed.kubectl()
            .args(["apply", "--server-side", "-f", &file("workload.yaml")])
            .args(member),
    )?;
    let scenarios: Api<DataScenario> = Api::namespaced(admin.clone(), "harbor-analytics-dev");
    eventually("the scenario's digest", WAIT, || async {
        Ok(scenarios
            .get("commuter-flows")
            .await?
            .status
            .and_then(|s| s.items_digest))
    })
    .await?;
    approve_as_every_party(&bed, "harbor-analytics-dev/commuter-flows")?;
    eventually("the scenario Active", WAIT, || async {
        let ds = scenarios.get("commuter-flows").await?;
        Ok(
            (ds.status.and_then(|s| s.phase).map(|p| format!("{p:?}")) == Some("Active".into()))
                .then_some(()),
        )
    })
    .await?;
    run_ok(bed.kubectl().args([
        "-n",
        "harbor-analytics-dev",
        "rollout",
        "status",
        "deployment/sample-etl",
        "--timeout=120s",
    ]))?;

    // The prod job leaves the artifact; the member files the export request.
    run_ok(bed.kubectl().args([
        "-n",
        "harbor-analytics-prod",
        "create",
        "configmap",
        "commuter-index",
        &format!("--from-file=index.csv={}", file("commuter-index.csv")),
    ]))?;
    run_ok(
        bed.kubectl()
            .args(["apply", "--server-side", "-f", &file("export.yaml")])
            .args(member),
    )?;
    let exports: Api<ExportRequest> = Api::namespaced(admin.clone(), "harbor-analytics-dev");
    wait_export(&exports, "q1-commuter-index", "AwaitingReview").await?;
    let out = bed.plugin(
        &[
            &[
                "decide",
                "export",
                "harbor-analytics-dev/q1-commuter-index",
                "approve",
                "--reason",
                "aggregated indicators, no personal data",
                "--yes",
            ][..],
            &BUREAU[..],
        ]
        .concat(),
    )?;
    let (stdout, err) = text(&out);
    ensure!(
        out.status.success() && stdout.contains("findings: none"),
        "{stdout}{err}"
    );
    wait_export(&exports, "q1-commuter-index", "Delivered").await?;

    // The recipient's copy carries its delivery's fingerprint: the bureau
    // traces it back (the walkthrough's step 5).
    let copy = run_ok(bed.bao().args([
        "kv",
        "get",
        "-field=artifact",
        "deliveries/91350100M000100Y43/harbor-analytics/q1-commuter-index",
    ]))?;
    let found = std::env::temp_dir().join(format!("{}.csv", e2e::unique("found")));
    std::fs::write(&found, &copy)?;
    let out = bed.plugin(&[&["trace", &found.to_string_lossy()][..], &BUREAU[..]].concat())?;
    let (stdout, err) = text(&out);
    ensure!(
        out.status.success()
            && stdout.contains(
                "traced to the delivery of ExportRequest/harbor-analytics-dev/q1-commuter-index"
            )
            && stdout.contains("recipient: City Transport Planning Institute"),
        "{stdout}{err}"
    );

    // The year's report, filed by the member and evaluated by the bureau.
    run_ok(
        bed.kubectl()
            .args(["apply", "--server-side", "-f", &file("annual-report.yaml")])
            .args(member),
    )?;
    let out = bed.plugin(
        &[
            &[
                "evaluate",
                "report",
                "harbor-analytics-dev/report-2026",
                "passed",
                "--decision",
                "PDB-EV-2027-3",
                "--reason",
                "complete and true",
                "--yes",
            ][..],
            &BUREAU[..],
        ]
        .concat(),
    )?;
    let (stdout, err) = text(&out);
    ensure!(
        out.status.success()
            && stdout.contains("market operations: One indicator product")
            && stdout.contains("Passed by zhao.lei"),
        "{stdout}{err}"
    );
    let evaluated =
        run_ok(
            bed.kubectl()
                .args(["-n", "harbor-analytics-dev", "get", "annual", "report-2026"]),
        )?;
    ensure!(
        evaluated.contains("2026") && evaluated.contains("Passed"),
        "{evaluated}"
    );

    let out = bed.plugin(&[&["status", "harbor-analytics"][..], &BUREAU[..]].concat())?;
    let (stdout, err) = text(&out);
    ensure!(
        out.status.success()
            && stdout.contains("commuter-flows")
            && stdout.contains("q1-commuter-index")
            && stdout.contains("Delivered"),
        "{stdout}{err}"
    );
    Ok(())
}
