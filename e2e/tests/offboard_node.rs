//! Offboarding on the real node: the tenant's containers stop,
//! the directory behind its data volume is wiped from the disk, and the
//! directory behind its log volume stays, readable afterwards by a pod in the
//! archive namespace.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::pods::{probe_pod, running_containers};
use e2e::{TestBed, authorization, eventually, run_ok, unique};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, Patch, PatchParams};
use publicdata_operator::api::OperatorAuthorization;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

/// The directory on the node behind a bound claim.
async fn volume_dir(
    pvcs: &Api<PersistentVolumeClaim>,
    pvs: &Api<PersistentVolume>,
    claim: &str,
) -> Result<(String, PathBuf)> {
    let pv = pvcs
        .get(claim)
        .await?
        .spec
        .and_then(|s| s.volume_name)
        .with_context(|| format!("claim {claim} is not bound"))?;
    let spec = pvs.get(&pv).await?.spec.context("a volume without spec")?;
    let path = spec
        .host_path
        .map(|h| h.path)
        .or(spec.local.map(|l| l.path))
        .with_context(|| format!("volume {pv} is neither hostPath nor local"))?;
    Ok((pv, PathBuf::from(path)))
}

#[tokio::test]
async fn revocation_stops_the_containers_wipes_the_data_volume_and_keeps_the_log_volume_readable()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let t = unique("offn");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    let prod = format!("{t}-prod");

    // A workload writes its data to a volume of its own, and its log to the
    // log volume the operator made (claim `logs`, the one kept).
    bed.apply(&json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "app-data", "namespace": prod},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}
    }))?;
    let writer = bed
        .probe_with(
            &prod,
            "writer",
            json!({
                "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "app-data"}},
                    {"name": "logs", "persistentVolumeClaim": {"claimName": "logs"}}
                ],
                "containers": [{"volumeMounts": [
                    {"name": "data", "mountPath": "/data"}, {"name": "logs", "mountPath": "/logs"}
                ]}]
            }),
        )
        .await?;
    let out = bed.exec(
        &writer,
        "echo 'raw rows 42' > /data/rows.txt && echo 'job ran at 02:00' > /logs/app.log",
    )?;
    ensure!(
        out.status.success(),
        "writing failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &prod);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let (data_pv, data_dir) = volume_dir(&pvcs, &pvs, "app-data").await?;
    let (logs_pv, logs_dir) = volume_dir(&pvcs, &pvs, "logs").await?;
    ensure!(
        std::fs::read_to_string(data_dir.join("rows.txt"))?.contains("raw rows 42"),
        "the data is on the node's disk at {}",
        data_dir.display()
    );
    ensure!(logs_dir.join("app.log").exists());

    // With the data plane, each environment has a role in PostgreSQL.
    let roles = format!("SELECT count(*) FROM pg_roles WHERE rolname IN ('{t}-dev', '{t}-prod')");
    ensure!(
        bed.postgres_admin(&roles)? == "2",
        "the tenant's PostgreSQL roles"
    );

    // The bureau revokes.
    let bureau: Api<OperatorAuthorization> = Api::all(bed.bureau().await?);
    bureau
        .patch(
            &t,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"state": "Revoked", "stateChange": {"reason": "e2e: breach", "decision": unique("PDB")}}})),
        )
        .await?;
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    eventually("the authorization to end Revoked", WAIT, || async {
        let oa = api.get(&t).await?;
        let phase = oa.status.and_then(|s| s.phase).map(|p| format!("{p:?}"));
        Ok((phase.as_deref() == Some("Revoked")).then_some(()))
    })
    .await?;

    // No role of the tenant is left in PostgreSQL, and the review says so.
    ensure!(
        bed.postgres_admin(&roles)? == "0",
        "the tenant's PostgreSQL roles survived"
    );
    let review = api
        .get(&t)
        .await?
        .status
        .and_then(|s| s.disposal)
        .map(|d| d.review)
        .unwrap_or_default();
    ensure!(
        review
            .iter()
            .any(|l| l == "ok: no PostgreSQL role or session of the tenant"),
        "the exit review: {review:?}"
    );

    // No container of the tenant runs; the data is gone from the disk.
    ensure!(
        running_containers(&bed, &prod)?.is_empty(),
        "containers of {prod} still run"
    );
    eventually("the data volume's directory to be wiped", WAIT, || async {
        Ok((!data_dir.exists()).then_some(()))
    })
    .await?;
    eventually("the data volume to be deleted", WAIT, || async {
        Ok(pvs.get_opt(&data_pv).await?.is_none().then_some(()))
    })
    .await?;

    // The log volume is kept, and a pod of the archive namespace reads it.
    ensure!(
        std::fs::read_to_string(logs_dir.join("app.log"))?.contains("job ran at 02:00"),
        "the log file is still on the disk"
    );
    let archive_claim = format!("{t}-{logs_pv}");
    let reader = format!("read-{}", unique("log"));
    let pod = probe_pod(
        &bed,
        "publicdata-archive",
        &reader,
        json!({
            "volumes": [{"name": "logs", "persistentVolumeClaim": {"claimName": archive_claim, "readOnly": true}}],
            "containers": [{"volumeMounts": [{"name": "logs", "mountPath": "/logs", "readOnly": true}]}]
        }),
    )?;
    bed.apply(&pod)?;
    let reader = bed.wait_running("publicdata-archive", &reader).await?;
    let out = bed.exec(&reader, "cat /logs/app.log")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains("job ran at 02:00") {
        bail!(
            "the archived log is not readable: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    run_ok(bed.kubectl().args([
        "-n",
        "publicdata-archive",
        "delete",
        "pod",
        &reader.name,
        "--wait=false",
    ]))?;
    Ok(())
}
