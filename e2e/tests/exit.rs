//! Early exit against the real API server, OpenBao and operator: the
//! unit asks with 6 months' notice and a disposal plan, only the bureau
//! accepts, and the domain is offboarded on the effective date and not a day
//! before. The test image's clock annotation moves this one authorization's
//! calendar to the day before and to the day itself: no waiting, no sleep.

use anyhow::{Context, Result, ensure};
use e2e::{TestBed, authorization, run, unique, wait_phase};
use kube::api::{Api, Patch, PatchParams};
use publicdata_operator::api::OperatorAuthorization;
use publicdata_operator::api::exit::ExitRequest;
use publicdata_operator::clock::TEST_TODAY;
use serde_json::json;

async fn early_exit(
    api: &Api<OperatorAuthorization>,
    t: &str,
    reason: &str,
    says: &str,
) -> Result<String> {
    e2e::wait_condition(api, t, "EarlyExit", reason, says).await
}

async fn set_today(api: &Api<OperatorAuthorization>, t: &str, day: &str) -> Result<()> {
    api.patch(
        t,
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"annotations": {TEST_TODAY: day}}})),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_accepted_early_exit_offboards_on_its_date_and_not_before() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("exit");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    early_exit(&api, &t, "NoExit", "no early exit requested").await?;

    // The unit asks, with notice and a disposal plan.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let effective = today.checked_add(jiff::Span::new().days(200))?;
    let dev = format!("{t}-dev");
    let unit: Api<ExitRequest> = Api::namespaced(bed.client_as(&alice, &[]).await?, &dev);
    unit.patch(
        "exit",
        &PatchParams::apply("unit"),
        &Patch::Apply(&json!({
            "apiVersion": "publicdata.io/v1alpha1", "kind": "ExitRequest",
            "metadata": {"name": "exit", "namespace": dev},
            "spec": {
                "effectiveDate": effective.to_string(),
                "reason": "the unit winds up its data business",
                "disposalPlan": "every dataset copy and derived product deleted; logs kept by the platform",
            }
        })),
    )
    .await?;
    early_exit(
        &api,
        &t,
        "ExitRequested",
        &format!("asks to end on {effective}"),
    )
    .await?;

    // The unit cannot accept its own request.
    let own = json!({"spec": {"decision": {"result": "Accepted", "date": today.to_string(),
        "decision": "self", "by": "zhao.lei", "reason": "fine"}}});
    let refused = unit
        .patch("exit", &PatchParams::default(), &Patch::Merge(&own))
        .await
        .expect_err("the unit's own acceptance is refused");
    ensure!(
        refused
            .to_string()
            .contains("only the bureau (group publicdata:bureau) decides on an early exit"),
        "{refused}"
    );

    // The bureau accepts.
    let out = bed.plugin(&[
        "decide",
        "exit",
        &format!("{dev}/exit"),
        "accept",
        "--decision",
        "PDB-EX-7",
        "--reason",
        "six months' notice given",
        "--yes",
        "--as",
        "zhao.lei",
        "--as-group",
        "publicdata:bureau",
    ])?;
    ensure!(out.status.success(), "{out:?}");
    early_exit(
        &api,
        &t,
        "ExitScheduled",
        &format!("offboarded on {effective} (in 200 days)"),
    )
    .await?;

    // The day before: the tenant lives on.
    let eve = effective.yesterday()?;
    set_today(&api, &t, &eve.to_string()).await?;
    early_exit(&api, &t, "ExitScheduled", "(in 1 days)").await?;
    let oa = api.get(&t).await?;
    ensure!(e2e::phase(&oa) == "Active", "phase {}", e2e::phase(&oa));
    ensure!(
        run(bed.kubectl().args(["get", "namespace", &dev]))?
            .status
            .success()
    );

    // The day itself: offboarded, Terminated, with a certificate.
    set_today(&api, &t, &effective.to_string()).await?;
    let done = wait_phase(&api, &t, "Terminated").await?;
    let cert = done
        .status
        .and_then(|s| s.disposal)
        .context("a disposal certificate")?;
    ensure!(
        cert.review.iter().all(|l| l.starts_with("ok")),
        "{:?}",
        cert.review
    );
    ensure!(
        !run(bed.kubectl().args(["get", "namespace", &dev]))?
            .status
            .success()
    );
    let records = bed.audit_records(&t)?;
    ensure!(
        records.iter().any(|r| r["action"] == "OffboardingStarted"
            && r["reason"]
                .as_str()
                .is_some_and(|s| s.contains("early exit exit accepted under decision PDB-EX-7"))),
        "the offboarding names the bureau's decision: {records:?}"
    );
    Ok(())
}
