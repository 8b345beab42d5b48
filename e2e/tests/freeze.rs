//! Suspension freezes the tenant domain at once, and resume restores exactly
//! what was there: tried against the real API server, OpenBao and operator.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use e2e::{TestBed, authorization, can_i, eventually, run, run_ok, unique};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use publicdata_operator::api::OperatorAuthorization;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn condition(oa: &OperatorAuthorization, type_: &str) -> Option<(String, String)> {
    oa.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test]
async fn suspension_cuts_all_access_at_once_and_resume_restores_it_exactly() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    let t = unique("frz");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let dev = format!("{t}-dev");
    let prod = format!("{t}-prod");

    // Workloads as the tenant left them.
    let image = "registry.invalid/app:1";
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}
    }))?;
    let statefulset: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}
    }))?;
    let cronjob: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": image}]}}}}}
    }))?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &dev);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &prod);
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), &dev);
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    statefulsets
        .create(&PostParams::default(), &statefulset)
        .await?;
    cronjobs.create(&PostParams::default(), &cronjob).await?;

    // A dev workload holds an OpenBao token.
    let jwt = run_ok(bed.kubectl().args([
        "-n",
        &dev,
        "create",
        "token",
        "workload",
        "--audience",
        "openbao",
        "--duration",
        "30m",
    ]))?;
    let jwt = jwt.trim().to_string();
    let root = bed.vault_root()?;
    let mount = e2e::WORKLOAD_AUTH_MOUNT;
    let role = format!("{t}-dev");
    let login = vaultrs::auth::kubernetes::login(&root, mount, &role, &jwt).await?;
    let held = bed.vault_with_token(&login.client_token)?;
    vaultrs::token::lookup_self(&held)
        .await
        .context("the token works before the freeze")?;
    ensure!(can_i(&bed, &alice, &["create", "deployments", "-n", &dev])?);

    // Suspend, and time until every door is shut.
    let started = Instant::now();
    bed.set_state(&t, "Suspended").await?;
    eventually("all access cut", WAIT, || async {
        let token_dead = vaultrs::token::lookup_self(&held).await.is_err();
        let login_refused = vaultrs::auth::kubernetes::login(&root, mount, &role, &jwt)
            .await
            .is_err();
        let member_out = !can_i(&bed, &alice, &["create", "deployments", "-n", &dev])?
            && !can_i(
                &bed,
                &alice,
                &["get", "configmaps/publicdata-workloads", "-n", &prod],
            )?;
        let scaled = deployments.get("web").await?.spec.replicas == Some(0)
            && statefulsets.get("db").await?.spec.replicas == Some(0);
        let suspended = cronjobs.get("nightly").await?.spec.suspend == Some(true);
        Ok((token_dead && login_refused && member_out && scaled && suspended).then_some(()))
    })
    .await?;
    println!(
        "all access cut {:.2}s after the state change",
        started.elapsed().as_secs_f64()
    );

    let oa = eventually("Frozen=True", WAIT, || async {
        let oa = api.get(&t).await?;
        Ok((condition(&oa, "Frozen").map(|c| c.0).as_deref() == Some("True")).then_some(oa))
    })
    .await?;
    ensure!(oa.status.as_ref().and_then(|s| s.phase).map(|p| p.as_str()) == Some("Suspended"));
    for ns in [&dev, &prod] {
        let nps: Vec<String> = Api::<NetworkPolicy>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|n| n.name_any())
            .collect();
        ensure!(
            nps.len() == 2 && nps.contains(&"freeze-deny-all".to_string()),
            "{ns}: {nps:?}"
        );
        let quota = Api::<ResourceQuota>::namespaced(client.clone(), ns)
            .get("tenant-quota")
            .await?;
        let pods = quota
            .spec
            .and_then(|s| s.hard)
            .and_then(|h| h.get("pods").cloned());
        ensure!(
            pods.map(|q| q.0).as_deref() == Some("0"),
            "{ns}: quota must admit no pod"
        );
    }
    // The bureau still reads; nothing was deleted.
    ensure!(
        run(bed.kubectl().args([
            "auth",
            "can-i",
            "get",
            "deployments",
            "-n",
            &dev,
            "--as",
            "auditor",
            "--as-group",
            "publicdata:bureau"
        ]))?
        .status
        .success()
    );
    ensure!(
        deployments
            .get("web")
            .await?
            .annotations()
            .get("publicdata.io/frozen-replicas")
            .map(String::as_str)
            == Some("3")
    );

    // Freezing again (a new decision, same state) changes nothing.
    let bureau: Api<OperatorAuthorization> = Api::all(bed.bureau().await?);
    bureau
        .patch(
            &t,
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"spec": {"stateChange": {"reason": "again", "decision": unique("PDB")}}}),
            ),
        )
        .await?;
    e2e::wait_observed(&api, &t).await?;
    let web = deployments.get("web").await?;
    ensure!(
        web.spec.replicas == Some(0)
            && web
                .annotations()
                .get("publicdata.io/frozen-replicas")
                .map(String::as_str)
                == Some("3")
    );

    // Resume: exactly what was there.
    bed.set_state(&t, "Active").await?;
    eventually("everything restored", WAIT, || async {
        let web = deployments.get("web").await?;
        let db = statefulsets.get("db").await?;
        let nightly = cronjobs.get("nightly").await?;
        let restored = web.spec.replicas == Some(3)
            && db.spec.replicas == Some(2)
            && nightly.spec.suspend == Some(false)
            && !web
                .annotations()
                .contains_key("publicdata.io/frozen-replicas")
            && !nightly
                .annotations()
                .contains_key("publicdata.io/frozen-suspend");
        let member_back = can_i(&bed, &alice, &["create", "deployments", "-n", &dev])?;
        let oa = api.get(&t).await?;
        let ready = condition(&oa, "Ready").map(|c| c.0).as_deref() == Some("True");
        Ok((restored && member_back && ready).then_some(()))
    })
    .await?;
    let login = vaultrs::auth::kubernetes::login(&root, mount, &role, &jwt).await?;
    ensure!(
        login.policies.iter().any(|p| p == "publicdata-workload"),
        "login works again after resume"
    );
    let fresh = bed.vault_with_token(&login.client_token)?;
    vaultrs::token::lookup_self(&fresh)
        .await
        .context("the new login's token works")?;
    // The token held before the freeze belonged to the identity the resume
    // replaced: it stays refused (it has not expired: 15 minutes).
    ensure!(
        vaultrs::token::lookup_self(&held).await.is_err(),
        "a token from before the freeze must not work again after the resume"
    );
    let oa = api.get(&t).await?;
    ensure!(condition(&oa, "Frozen") == Some(("False".into(), "Resumed".into())));
    let nps = Api::<NetworkPolicy>::namespaced(client.clone(), &dev)
        .list(&ListParams::default())
        .await?;
    ensure!(!nps.items.iter().any(|n| n.name_any() == "freeze-deny-all"));

    // The audit trail names the bureau admin the API server stamped.
    let records = bed.audit_records(&t)?;
    for action in ["TenantFrozen", "TenantResumed"] {
        let r = records
            .iter()
            .find(|r| r["action"] == action)
            .with_context(|| format!("no {action} record"))?;
        ensure!(r["actor"] == "bureau-admin", "{action} actor: {r}");
    }
    if records
        .iter()
        .filter(|r| r["action"] == "TenantFrozen")
        .count()
        != 1
    {
        bail!("freezing twice must not record twice");
    }
    Ok(())
}

/// An end the bureau did not set is never acted on (R-7, and nothing
/// irreversible without the bureau): created by an admin (or a GitOps sync)
/// already past its end, the authorization is frozen at once, waits for the
/// bureau's decision and has no offboarding date. The bureau's revocation
/// then ends it. (safety.rs shows an end the bureau set, on a live domain.)
#[tokio::test]
async fn an_end_the_bureau_did_not_set_freezes_and_waits_for_the_bureau() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("expired");
    let mut manifest = authorization(&t, &[("fay", true)])?;
    manifest["spec"]["validity"] = json!({"notBefore": "2021-01-01", "notAfter": "2025-12-31"});
    bed.apply(&manifest)?;
    let oa = eventually("phase Expiring, awaiting the bureau", WAIT, || async {
        let oa = api.get(&t).await?;
        let expiring = e2e::phase(&oa) == "Expiring"
            && condition(&oa, "Expiring")
                .is_some_and(|c| c.0 == "True" && c.1 == "AwaitingBureauDecision");
        Ok(expiring.then_some(oa))
    })
    .await?;
    let st = oa.status.context("status")?;
    ensure!(
        st.offboard_after.is_none(),
        "no offboarding date without the bureau: {:?}",
        st.offboard_after
    );
    ensure!(st.observed_generation == oa.metadata.generation);
    let ns = Api::<k8s_openapi::api::core::v1::Namespace>::all(bed.client().await?)
        .get_opt(&format!("{t}-dev"))
        .await?;
    ensure!(ns.is_none(), "an ended authorization is never provisioned");
    bed.set_state(&t, "Revoked").await?;
    e2e::wait_phase(&api, &t, "Revoked").await?;
    // The final record may now be deleted; a live one may not (see authorization.rs).
    run_ok(bed.kubectl().args(["delete", "oa", &t, "--wait=false"]))?;
    Ok(())
}

/// A pass of the operator cut off between writing a login's alias (which
/// makes its entity) and naming that entity leaves an identity the freeze
/// does not find by name. The freeze finds it by the login instead: a token
/// held from it is refused at once.
#[tokio::test]
async fn a_freeze_finds_an_identity_the_operator_had_not_named_yet() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("unnamed");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    let token = bed.workload_login(&t, "dev").await?;
    let held = bed.vault_with_token(&token)?;
    vaultrs::token::lookup_self(&held)
        .await
        .context("the control: the held token works")?;
    // The identity as a cut-off pass leaves it: its entity not named (done
    // here with the platform's admin token).
    let name = format!("identity/entity/name/publicdata-{t}-dev");
    let id = run_ok(bed.bao().args(["read", "-field=id", &name]))?;
    run_ok(bed.bao().args([
        "write",
        &format!("identity/entity/id/{}", id.trim()),
        &format!("name=cut-off-{t}"),
    ]))?;
    bed.set_state(&t, "Suspended").await?;
    eventually("the held token refused", WAIT, || async {
        Ok(vaultrs::token::lookup_self(&held)
            .await
            .is_err()
            .then_some(()))
    })
    .await?;
    ensure!(
        bed.identity_disabled(&t, "dev")? == Some(true),
        "the identity is named again and disabled"
    );
    Ok(())
}
