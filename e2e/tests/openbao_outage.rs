//! OpenBao unreachable during a freeze: the Kubernetes side is frozen at once,
//! the status says Degraded (never a false Frozen), and once OpenBao answers
//! again the freeze completes. OpenBao is paused (SIGSTOP), which keeps its
//! in-memory state; runs alone, since every tenant loses OpenBao meanwhile.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{TestBed, authorization, eventually, run, unique};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, Patch, PatchParams};
use publicdata_operator::api::OperatorAuthorization;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

fn condition(oa: &OperatorAuthorization, type_: &str) -> Option<String> {
    oa.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

/// Resumes OpenBao even if the test fails half-way.
struct Paused(String);
impl Drop for Paused {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0])
            .status();
    }
}

#[tokio::test]
async fn openbao_down_during_a_freeze_shows_degraded_then_frozen() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    let t = unique("outage");
    bed.apply(&authorization(&t, &[("dora", true)])?)?;
    bed.wait_ready(&t).await?;

    let pids = std::fs::read_to_string(bed.dir.join("pids"))?;
    let bao_pid = pids
        .lines()
        .find_map(|l| l.strip_prefix("openbao "))
        .context("openbao pid")?
        .trim()
        .to_string();
    ensure!(
        run(std::process::Command::new("kill").args(["-STOP", &bao_pid]))?
            .status
            .success()
    );
    let paused = Paused(bao_pid.clone());

    let bureau: Api<OperatorAuthorization> = Api::all(bed.bureau().await?);
    let patch = json!({"spec": {"state": "Suspended", "stateChange": {"reason": "incident", "decision": unique("PDB")}}});
    bureau
        .patch(&t, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;

    // Kubernetes side frozen at once; Degraded, not Frozen.
    let dev = format!("{t}-dev");
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &dev);
    eventually(
        "member bindings removed while OpenBao is down",
        WAIT,
        || async {
            Ok(bindings
                .get_opt("members-develop")
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await?;
    eventually("Degraded=True, Frozen=False", WAIT, || async {
        let oa = api.get(&t).await?;
        let degraded = condition(&oa, "Degraded").as_deref() == Some("True");
        let frozen = condition(&oa, "Frozen");
        ensure!(
            frozen.as_deref() != Some("True"),
            "Frozen must not be claimed while OpenBao is down"
        );
        Ok(degraded.then_some(()))
    })
    .await?;

    drop(paused);
    eventually(
        "Frozen=True, Degraded=False once OpenBao is back",
        WAIT,
        || async {
            let oa = api.get(&t).await?;
            let ok = condition(&oa, "Frozen").as_deref() == Some("True")
                && condition(&oa, "Degraded").as_deref() == Some("False");
            Ok(ok.then_some(()))
        },
    )
    .await?;
    for env in ["dev", "prod"] {
        ensure!(
            bed.identity_disabled(&t, env)? != Some(false),
            "the identity of {t}-{env} must be disabled once OpenBao is back"
        );
    }
    let actions: Vec<String> = bed
        .audit_records(&t)?
        .iter()
        .filter_map(|r| r["action"].as_str().map(String::from))
        .collect();
    ensure!(
        actions.contains(&"TenantFreezeIncomplete".to_string())
            && actions.contains(&"TenantFrozen".to_string()),
        "{actions:?}"
    );
    Ok(())
}
