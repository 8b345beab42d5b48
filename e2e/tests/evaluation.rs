//! Annual reports and evaluations against the real API server and
//! operator: the unit files, only the bureau evaluates, a rectification has
//! 30 days and is evaluated again, and a rectification left undone is put to
//! the bureau while nothing of the tenant is touched.
//!
//! Each authorization here is in force from 1 January of this year for three
//! years, so no report of an earlier year can be due whenever this runs.

use std::time::Duration;

use anyhow::{Result, ensure};
use e2e::{TestBed, authorization, eventually, run, run_ok, unique};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use publicdata_operator::api::{AnnualReport, OperatorAuthorization};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
const BUREAU_GROUP: &str = "publicdata:bureau";

fn this_year() -> i16 {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .year()
}

/// An authorization in force this year and the next two.
fn tenant(name: &str, member: &str) -> Result<Value> {
    let year = this_year();
    let mut oa = authorization(name, &[(member, true)])?;
    oa["spec"]["validity"] = json!({
        "notBefore": format!("{year}-01-01"),
        "notAfter": format!("{}-12-31", year + 2),
    });
    Ok(oa)
}

/// This year's report (`examples/annual-report.yaml`, moved to `tenant`),
/// filed by `member`; returns the member's view of the reports and its name.
async fn file_report(
    bed: &TestBed,
    tenant: &str,
    member: &str,
) -> Result<(Api<AnnualReport>, String)> {
    let year = this_year();
    let name = format!("report-{year}");
    let text = std::fs::read_to_string(e2e::repo().join("examples/annual-report.yaml"))?;
    let mut r: Value = serde_yaml::from_str(&text)?;
    r["metadata"]["namespace"] = format!("{tenant}-dev").into();
    r["metadata"]["name"] = name.clone().into();
    r["spec"]["year"] = year.into();
    let reports: Api<AnnualReport> =
        Api::namespaced(bed.client_as(member, &[]).await?, &format!("{tenant}-dev"));
    reports
        .patch(&name, &PatchParams::apply("unit"), &Patch::Apply(&r))
        .await?;
    Ok((reports, name))
}

/// The message of condition AnnualEvaluation, once its reason is `reason`.
async fn standing(api: &Api<OperatorAuthorization>, name: &str, reason: &str) -> Result<String> {
    e2e::wait_condition(api, name, "AnnualEvaluation", reason, "").await
}

#[tokio::test]
async fn the_unit_reports_the_bureau_evaluates_and_a_rectification_is_evaluated_again() -> Result<()>
{
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("annual");
    let alice = unique("alice");
    bed.apply(&tenant(&t, &alice)?)?;
    bed.wait_ready(&t).await?;
    let year = this_year();
    let message = standing(&api, &t, "NoReportDueYet").await?;
    ensure!(
        message.contains(&format!("the {year} report is due by {}-03-31", year + 1)),
        "{message}"
    );

    // The member files the year's report.
    let dev = format!("{t}-dev");
    let (reports, name) = file_report(&bed, &t, &alice).await?;
    standing(&api, &t, "AwaitingEvaluation").await?;

    // The member may not evaluate it, even under the bureau's name.
    let forged = json!({"spec": {"evaluation": {"result": "Passed", "date": e2e::days_ago(0),
        "decision": "self", "by": "zhao.lei", "reason": "fine"}}});
    let refused = reports
        .patch(&name, &PatchParams::default(), &Patch::Merge(&forged))
        .await
        .expect_err("a member's evaluation is refused");
    ensure!(
        refused
            .to_string()
            .contains("only the bureau (group publicdata:bureau) records an annual evaluation"),
        "{refused}"
    );

    // The bureau asks for rectification: 30 days.
    let target = format!("{dev}/{name}");
    let out = bed.plugin(&[
        "evaluate",
        "report",
        &target,
        "rectification",
        "--decision",
        "PDB-EV-1",
        "--reason",
        "security section incomplete",
        "--yes",
        "--as",
        "zhao.lei",
        "--as-group",
        BUREAU_GROUP,
    ])?;
    ensure!(out.status.success(), "{out:?}");
    let due = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::Span::new().days(30))?;
    let message = standing(&api, &t, "Rectification").await?;
    ensure!(
        message.contains(&format!("complete it by {due}")),
        "{message}"
    );
    let events: Api<Event> = Api::all(bed.client().await?);
    eventually("a warning event for the rectification", WAIT, || async {
        let list = events
            .list(&ListParams::default().fields(&format!("involvedObject.name={t}")))
            .await?;
        Ok(list
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("Rectification")
                    && e.type_.as_deref() == Some("Warning")
            })
            .then_some(()))
    })
    .await?;

    // The unit rectifies; the bureau evaluates again, and it passes.
    let rectified = json!({"spec": {"rectification": {"plan": "security officer named per team", "completed": e2e::days_ago(0)}}});
    reports
        .patch(&name, &PatchParams::default(), &Patch::Merge(&rectified))
        .await?;
    standing(&api, &t, "AwaitingReevaluation").await?;
    let out = bed.plugin(&[
        "evaluate",
        "report",
        &target,
        "passed",
        "--again",
        "--decision",
        "PDB-EV-2",
        "--reason",
        "rectified",
        "--yes",
        "--as",
        "zhao.lei",
        "--as-group",
        BUREAU_GROUP,
    ])?;
    ensure!(out.status.success(), "{out:?}");
    let message = standing(&api, &t, "Passed").await?;
    ensure!(message.contains("PDB-EV-2"), "{message}");
    let table = run_ok(bed.kubectl().args(["get", "oa", &t]))?;
    ensure!(
        table.contains("STANDING") && table.contains("Passed"),
        "{table}"
    );
    Ok(())
}

#[tokio::test]
async fn a_rectification_left_undone_is_put_to_the_bureau_and_nothing_is_wiped() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("overdue");
    let bob = unique("bob");
    bed.apply(&tenant(&t, &bob)?)?;
    bed.wait_ready(&t).await?;
    let dev = format!("{t}-dev");
    let (_, name) = file_report(&bed, &t, &bob).await?;
    // The bureau asked for rectification 31 days ago; nothing was done.
    let bureau: Api<AnnualReport> =
        Api::namespaced(bed.client_as("zhao.lei", &[BUREAU_GROUP]).await?, &dev);
    let evaluation = json!({"spec": {"evaluation": {"result": "Rectification", "date": e2e::days_ago(31),
        "decision": "PDB-EV-9", "by": "zhao.lei", "reason": "no security officer"}}});
    bureau
        .patch(&name, &PatchParams::default(), &Patch::Merge(&evaluation))
        .await?;
    let message = standing(&api, &t, "RectificationOverdue").await?;
    ensure!(
        message.contains(&format!("was due by {}", e2e::days_ago(1)))
            && message.contains("the bureau's decision"),
        "{message}"
    );
    // The operator ends nothing on its own: still Active, still there.
    let oa = api.get(&t).await?;
    ensure!(e2e::phase(&oa) == "Active", "phase {}", e2e::phase(&oa));
    ensure!(
        run(bed.kubectl().args(["get", "namespace", &dev]))?
            .status
            .success(),
        "the tenant's namespace is untouched"
    );
    let records = bed.audit_records(&t)?;
    ensure!(
        records
            .iter()
            .any(|r| r["action"] == "AnnualEvaluation" && r["outcome"] == "RectificationOverdue"),
        "the overdue rectification is in the audit trail: {records:?}"
    );
    Ok(())
}
