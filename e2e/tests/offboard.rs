//! Revocation offboards the tenant: data wiped, logs kept, a certificate as
//! the record; and an operator killed at each step of it still gets there.
//! Runs alone (it restarts the operator: as a host process, or, installed by
//! its chart, by setting the failpoint on its Deployment).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::{TestBed, authorization, eventually, run, run_ok, unique};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use publicdata_operator::api::OperatorAuthorization;
use serde_json::json;
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(120);

/// A tenant with data in OpenBao, a log volume and a data volume, bound.
async fn populated_tenant(bed: &TestBed) -> Result<String> {
    let client = bed.client().await?;
    let t = unique("off");
    bed.apply(&authorization(&t, &[("erin", true)])?)?;
    bed.wait_ready(&t).await?;
    let dev = format!("{t}-dev");
    let root = bed.vault_root()?;
    let data = BTreeMap::from([("rows", "42")]);
    vaultrs::kv2::set(&root, &format!("areas/{t}-dev"), "sample", &data).await?;
    vaultrs::kv2::set(&root, &format!("areas/{t}-prod"), "raw/2026", &data).await?;
    run_ok(bed.kubectl().args([
        "-n",
        &dev,
        "create",
        "deployment",
        "etl",
        "--image=registry.invalid/etl:1",
    ]))?;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &dev);
    for (class, reclaim) in [("logs", "Delete"), ("data", "Delete")] {
        let pv = format!("{t}-{class}");
        pvs.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": pv},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": reclaim, "storageClassName": "manual",
                         "hostPath": {"path": format!("/tmp/{pv}")}}
            }))?,
        )
        .await?;
        pvcs.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": format!("app-{class}"), "labels": {"publicdata.io/data-class": class}},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual", "volumeName": pv,
                         "resources": {"requests": {"storage": "1Gi"}}}
            }))?,
        )
        .await?;
    }
    eventually("both claims Bound", WAIT, || async {
        let phases: Vec<_> = [pvcs.get("app-logs").await?, pvcs.get("app-data").await?]
            .into_iter()
            .map(|c| c.status.and_then(|s| s.phase).unwrap_or_default())
            .collect();
        Ok((phases == ["Bound", "Bound"]).then_some(()))
    })
    .await?;
    Ok(t)
}

async fn revoke(bed: &TestBed, t: &str) -> Result<()> {
    let bureau: Api<OperatorAuthorization> = Api::all(bed.bureau().await?);
    let patch = json!({"spec": {"state": "Revoked", "stateChange": {"reason": "serious breach", "decision": unique("PDB")}}});
    bureau
        .patch(t, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Everything a finished offboarding must show.
async fn assert_offboarded(bed: &TestBed, t: &str) -> Result<()> {
    let client = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    let oa = eventually("phase Revoked", WAIT, || async {
        let oa = api.get(t).await?;
        let done = oa.status.as_ref().and_then(|s| s.phase).map(|p| p.as_str()) == Some("Revoked");
        Ok(done.then_some(oa))
    })
    .await?;
    let status = oa.status.context("status")?;
    let cert = status
        .disposal
        .context("a disposal certificate in status")?;
    // Namespaces truly gone (finalized by the controller manager).
    for env in ["dev", "prod"] {
        let ns = Api::<Namespace>::all(client.clone())
            .get_opt(&format!("{t}-{env}"))
            .await?;
        ensure!(ns.is_none(), "namespace {t}-{env} must be gone");
    }
    // OpenBao: the areas, the identities and the roles are gone; reads
    // return nothing.
    let root = bed.vault_root()?;
    ensure!(
        vaultrs::kv2::read::<BTreeMap<String, String>>(&root, &format!("areas/{t}-dev"), "sample")
            .await
            .is_err()
    );
    let secrets = run_ok(bed.bao().args(["secrets", "list"]))?;
    ensure!(!secrets.contains(&format!("areas/{t}-")), "{secrets}");
    let roles = run_ok(
        bed.bao()
            .args(["list", &format!("auth/{}/role", e2e::WORKLOAD_AUTH_MOUNT)]),
    )?;
    ensure!(!roles.contains(&format!("{t}-")), "{roles}");
    for env in ["dev", "prod"] {
        ensure!(
            bed.identity_disabled(t, env)?.is_none(),
            "the identity of {t}-{env} must be gone"
        );
    }
    // The log volume is kept, retained, re-homed to the archive; the data volume released.
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let logs = pvs
        .get(&format!("{t}-logs"))
        .await
        .context("the log volume must be kept")?;
    let spec = logs.spec.clone().context("pv spec")?;
    ensure!(spec.persistent_volume_reclaim_policy.as_deref() == Some("Retain"));
    let claim = spec.claim_ref.context("claimRef")?;
    ensure!(
        claim.namespace.as_deref() == Some("publicdata-archive"),
        "re-homed: {claim:?}"
    );
    let until: jiff::civil::Date = logs
        .annotations()
        .get("publicdata.io/retain-until")
        .context("retain-until")?
        .parse()?;
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    ensure!(
        until >= today.checked_add(jiff::Span::new().months(6))?,
        "kept at least 6 months: {until}"
    );
    eventually("the archived log claim Bound", WAIT, || async {
        let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), "publicdata-archive")
            .get_opt(&format!("{t}-{t}-logs"))
            .await?;
        Ok(
            (pvc.and_then(|c| c.status).and_then(|s| s.phase).as_deref() == Some("Bound"))
                .then_some(()),
        )
    })
    .await?;
    let data = pvs.get_opt(&format!("{t}-data")).await?;
    let data_phase = data.and_then(|p| p.status).and_then(|s| s.phase);
    ensure!(
        data_phase.as_deref() != Some("Bound"),
        "the data volume is released for deletion: {data_phase:?}"
    );
    // The certificate matches the archived inventory, which was taken before the wipe.
    let data = archive_files(&client, t).await?;
    let inventory = data.get("inventory.json").context("inventory")?;
    ensure!(hex::encode(Sha256::digest(inventory.as_bytes())) == cert.inventory_digest);
    ensure!(
        inventory.contains(&format!("{t}-dev/etl")),
        "the inventory lists the tenant's deployment"
    );
    ensure!(
        inventory.contains(&format!("areas/{t}-dev/sample")),
        "the inventory lists the OpenBao paths"
    );
    ensure!(
        data.get("audit-trail.jsonl")
            .is_some_and(|a| a.contains("DomainProvisioned"))
    );
    ensure!(
        cert.review.iter().all(|l| l.starts_with("ok")),
        "exit review: {:?}",
        cert.review
    );
    ensure!(cert.kept.iter().any(|k| k.what.contains("log volume")));
    // The audit log: each step once, and the chain verifies.
    let records = bed.audit_records(t)?;
    for action in ["OffboardingStarted", "DomainArchived", "DomainDisposed"] {
        let n = records.iter().filter(|r| r["action"] == action).count();
        ensure!(n == 1, "{action} recorded {n} times");
    }
    let verified = bed.verify_audit(&bed.audit_log())?;
    ensure!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    Ok(())
}

fn testbed_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/testbed.sh")
}

fn operator(bed: &TestBed, args: &[&str], failpoint: Option<&str>) -> Result<std::process::Output> {
    let bin = std::fs::read_to_string(bed.dir.join("operator.bin"))?;
    let mut cmd = Command::new("bash");
    cmd.arg(testbed_script()).arg("operator").args(args);
    if args.first() == Some(&"start") {
        cmd.arg(bin.trim());
    }
    cmd.env("PUBLICDATA_TESTBED_DIR", &bed.dir);
    match failpoint {
        Some(f) => cmd.env("PUBLICDATA_FAILPOINT", f),
        None => cmd.env_remove("PUBLICDATA_FAILPOINT"),
    };
    run(&mut cmd)
}

fn operator_running(bed: &TestBed) -> bool {
    bed.require_operator().is_ok()
}

#[tokio::test]
async fn revocation_wipes_data_keeps_logs_and_survives_an_operator_killed_at_every_step()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;

    // A clean run first.
    let t = populated_tenant(&bed).await?;
    revoke(&bed, &t).await?;
    assert_offboarded(&bed, &t).await?;

    // Then the operator is killed (abort) at each step in turn, and restarted.
    let t = populated_tenant(&bed).await?;
    let steps = [
        "offboard:frozen",
        "offboard:archived",
        "offboard:openbao-wiped",
        "offboard:namespaces-gone",
    ];
    if bed.operator_mode() == "chart" {
        killed_at_every_step_in_the_cluster(&bed, &t, &steps).await?;
    } else {
        killed_at_every_step_on_the_host(&bed, &t, &steps).await?;
    }
    if !operator_running(&bed) {
        bail!("the operator must be running at the end");
    }
    assert_offboarded(&bed, &t).await
}

/// The operator as a host process: started with each failpoint in turn.
async fn killed_at_every_step_on_the_host(bed: &TestBed, t: &str, steps: &[&str]) -> Result<()> {
    let log_path = bed.dir.join("logs/operator.log");
    let log_len = || {
        std::fs::metadata(&log_path)
            .map(|m| m.len() as usize)
            .unwrap_or(0)
    };
    operator(bed, &["stop"], None)?;
    let mut from = log_len();
    operator(bed, &["start"], Some(steps[0]))?;
    revoke(bed, t).await?;
    for (i, step) in steps.iter().enumerate() {
        eventually(&format!("the operator to die at {step}"), WAIT, || async {
            Ok((!operator_running(bed)).then_some(()))
        })
        .await?;
        let log = std::fs::read(&log_path)?;
        let recent = String::from_utf8_lossy(log.get(from..).unwrap_or_default());
        ensure!(
            recent.contains(&format!("failpoint=\"{step}\"")),
            "the operator should have died at {step}"
        );
        operator(bed, &["stop"], None)?;
        from = log_len();
        // Start with the next failpoint, or none. (A start may race its own
        // abort, so its exit status is not the point; the next loop checks.)
        operator(bed, &["start"], steps.get(i + 1).copied())?;
    }
    Ok(())
}

/// The operator installed by its chart: the failpoint set on its Deployment
/// (`kubectl set env`, which rolls it), one step after another. After each
/// roll the test waits until a replica of the new template leads (a replica
/// of the old one may lead while it shuts down), and then until a replica
/// aborted at that step, before it sets the next.
async fn killed_at_every_step_in_the_cluster(bed: &TestBed, t: &str, steps: &[&str]) -> Result<()> {
    let ns = e2e::OPERATOR_NAMESPACE;
    let kubectl = |args: &[&str]| run_ok(bed.kubectl().args(["-n", ns]).args(args));
    let set_failpoint = |step: Option<&str>| -> Result<()> {
        let assignment = match step {
            Some(s) => format!("PUBLICDATA_FAILPOINT={s}"),
            None => "PUBLICDATA_FAILPOINT-".into(),
        };
        kubectl(&["set", "env", "deployment/publicdata-operator", &assignment])?;
        Ok(())
    };
    // The leader runs the current template: its pod carries the env.
    let leader_has = |step: Option<&str>| -> Result<bool> {
        let holder = kubectl(&[
            "get",
            "lease",
            "publicdata-operator",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])?;
        let holder = holder.trim();
        if holder.is_empty() {
            return Ok(false);
        }
        let env = run(bed.kubectl().args([
            "-n",
            ns,
            "get",
            "pod",
            holder,
            "-o",
            "jsonpath={.spec.containers[0].env[?(@.name==\"PUBLICDATA_FAILPOINT\")].value}",
        ]))?;
        Ok(env.status.success()
            && String::from_utf8_lossy(&env.stdout).trim() == step.unwrap_or(""))
    };
    // Whether a replica of the current template ended at `step`.
    let died_at = |step: &str| -> Result<bool> {
        let pods = kubectl(&[
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=publicdata-operator",
            "-o",
            "name",
        ])?;
        for pod in pods.lines() {
            let out = run(bed
                .kubectl()
                .args(["-n", ns, "logs", "--previous", pod.trim()]))?;
            if String::from_utf8_lossy(&out.stdout).contains(&format!("\"failpoint\":\"{step}\"")) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    for (i, step) in steps.iter().enumerate() {
        set_failpoint(Some(step))?;
        if i == 0 {
            kubectl(&[
                "rollout",
                "status",
                "deployment/publicdata-operator",
                "--timeout=180s",
            ])?;
            eventually(
                "a replica with the first failpoint to lead",
                WAIT,
                || async { Ok(leader_has(Some(step))?.then_some(())) },
            )
            .await?;
            revoke(bed, t).await?;
        }
        eventually(
            &format!(
                "a replica to abort at {step} (the image must be built with the failpoints \
                 feature: CARGO_FEATURES=failpoints hack/image.sh, as hack/test.sh does)"
            ),
            // A replica of the new template has to win the Lease from
            // crash-looping ones of the old, then reconcile every tenant of a
            // test bed that by now holds dozens: minutes, under load.
            Duration::from_secs(360),
            || async { Ok(died_at(step)?.then_some(())) },
        )
        .await?;
        eprintln!("a replica aborted at {step}");
    }
    set_failpoint(None)?;
    eventually(
        "a replica without a failpoint to lead",
        Duration::from_secs(180),
        || async { Ok(leader_has(None)?.then_some(())) },
    )
    .await?;
    // Without a failpoint, a replica leads again.
    eventually("a replica to lead again", WAIT, || async {
        Ok(bed.require_operator().is_ok().then_some(()))
    })
    .await
}

/// The files of a tenant's archive, reassembled from the parts its index
/// names (each part checked against its digest).
async fn archive_files(
    client: &kube::Client,
    tenant: &str,
) -> Result<std::collections::BTreeMap<String, String>> {
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "publicdata-archive");
    let lp =
        kube::api::ListParams::default().labels(&format!("publicdata.io/archived-tenant={tenant}"));
    let all = cms.list(&lp).await?.items;
    let indexes: Vec<&ConfigMap> = all
        .iter()
        .filter(|c| {
            c.data
                .as_ref()
                .is_some_and(|d| d.contains_key("parts.json"))
        })
        .collect();
    ensure!(
        indexes.len() == 1,
        "one archive index for {tenant}, found {}",
        indexes.len()
    );
    let parts: Vec<serde_json::Value> = serde_json::from_str(
        indexes[0]
            .data
            .as_ref()
            .and_then(|d| d.get("parts.json"))
            .context("parts")?,
    )?;
    let mut files = std::collections::BTreeMap::<String, String>::new();
    for part in parts {
        let name = part["configMap"].as_str().context("part name")?;
        let key = part["key"].as_str().context("part key")?;
        let cm = all
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .context("part")?;
        let page = cm.data.as_ref().and_then(|d| d.get(key)).context("page")?;
        ensure!(
            hex::encode(Sha256::digest(page.as_bytes())) == part["sha256"].as_str().unwrap_or("")
        );
        files.entry(key.to_string()).or_default().push_str(page);
    }
    Ok(files)
}
