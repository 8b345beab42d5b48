//! Suspension on a real node (R-27, R-31): every container of the tenant
//! stops, whatever made it, and a token a running pod already holds is
//! refused by OpenBao; resume brings back exactly what the controllers had.
//! Containers are counted in containerd itself, not read from pod objects.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::pods::{Probe, probe_pod, running_containers, workload_pod};
use e2e::{TestBed, authorization, eventually, run_ok, unique};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::Api;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

/// The pod template of a long-running, restricted probe container.
fn template(app: &str, bed: &TestBed, restart: &str) -> Result<Value> {
    let pod = probe_pod(bed, "unused", app, json!({"restartPolicy": restart}))?;
    Ok(json!({"metadata": {"labels": {"app": app}}, "spec": pod["spec"]}))
}

/// Logs in from inside the pod; returns the OpenBao token the pod now holds.
fn login_from_pod(
    bed: &TestBed,
    pod: &Probe,
    tenant: &str,
    role: &str,
) -> Result<Result<String, String>> {
    let openbao = bed
        .var("OPENBAO_CLUSTER_ADDR")
        .context("the env file has no OPENBAO_CLUSTER_ADDR")?;
    let mount = e2e::WORKLOAD_AUTH_MOUNT;
    let script = format!(
        r#"jwt=$(cat /var/run/secrets/openbao/token) && \
timeout 5 wget -q -O - --header 'Content-Type: application/json' \
  --post-data "{{\"role\":\"{tenant}-{role}\",\"jwt\":\"$jwt\"}}" {openbao}/v1/auth/{mount}/login 2>&1 \
  | sed -n 's/.*"client_token":"\([^"]*\)".*/\1/p' > /tmp/bao-token; \
test -s /tmp/bao-token && cat /tmp/bao-token"#
    );
    let out = bed.exec(pod, &script)?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(if out.status.success() && !stdout.is_empty() {
        Ok(stdout)
    } else {
        Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })
}

#[tokio::test]
async fn suspension_stops_every_container_and_refuses_held_tokens_and_resume_restores_the_controllers()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let t = unique("stop");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    let (dev, prod) = (format!("{t}-dev"), format!("{t}-prod"));

    // Every kind of thing that runs containers, as the tenant left them.
    let apply = |v: Value| bed.apply(&v);
    apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": dev},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template("web", &bed, "Always")?}}))?;
    apply(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": dev},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template("db", &bed, "Always")?}}))?;
    apply(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "loose", "namespace": dev},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "loose"}}, "template": template("loose", &bed, "Always")?}}))?;
    apply(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "batch", "namespace": dev},
        "spec": {"backoffLimit": 0, "template": template("batch", &bed, "Never")?}}))?;
    apply(json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": dev},
        "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"backoffLimit": 0, "template": template("nightly", &bed, "Never")?}}}}))?;
    // A run of the CronJob, owned by it, as `kubectl create job --from` makes.
    run_ok(bed.kubectl().args([
        "-n",
        &dev,
        "create",
        "job",
        "nightly-now",
        "--from",
        "cronjob/nightly",
    ]))?;
    bed.apply(&probe_pod(&bed, &dev, "solo", json!({}))?)?;
    bed.apply(&workload_pod(&bed, &prod, "worker")?)?;

    // Seven pods in dev, one in prod, each a sandbox and a container.
    eventually("every workload's containers to run", WAIT, || async {
        let dev_running = running_containers(&bed, &dev)?.len();
        let prod_running = running_containers(&bed, &prod)?.len();
        Ok((dev_running == 14 && prod_running == 2).then_some(()))
    })
    .await?;

    // The prod workload logs in to OpenBao from its pod and holds a token.
    let worker = bed.wait_running(&prod, "worker").await?;
    let held = eventually("the workload to log in to OpenBao", WAIT, || async {
        match login_from_pod(&bed, &worker, &t, "prod")? {
            Ok(token) => Ok(Some(token)),
            Err(e) => anyhow::bail!("login from the pod failed: {e}"),
        }
    })
    .await?;
    let held_client = bed.vault_with_token(&held)?;
    vaultrs::token::lookup_self(&held_client)
        .await
        .context("the held token works before the suspension")?;

    // The bureau suspends.
    bed.set_state(&t, "Suspended").await?;
    eventually("no container of the tenant to run", WAIT, || async {
        let left = running_containers(&bed, &dev)?.len() + running_containers(&bed, &prod)?.len();
        Ok((left == 0).then_some(()))
    })
    .await?;
    match vaultrs::token::lookup_self(&held_client).await {
        Err(vaultrs::error::ClientError::APIError { code: 403, .. }) => {}
        other => anyhow::bail!("a token held before the suspension must be refused, got {other:?}"),
    }
    // Nothing can start while frozen: the controllers are at rest and the
    // quota admits no pod.
    let refused = bed
        .apply(&probe_pod(&bed, &dev, "sneak", json!({}))?)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    ensure!(
        refused.contains("exceeded quota"),
        "a pod created while frozen must be refused by the quota, got: {refused:?}"
    );
    // The audit names the bare pod that cannot come back.
    let frozen = bed
        .audit_records(&t)?
        .into_iter()
        .find(|r| r["action"] == "TenantFrozen")
        .context("a TenantFrozen record")?;
    let reason = frozen["reason"].as_str().unwrap_or_default();
    ensure!(
        reason.contains(&format!("{dev}/solo")) && reason.contains("stopped for good"),
        "the freeze record must name the bare pod: {reason}"
    );

    // The bureau resumes: the controllers come back exactly; the bare pod not.
    bed.set_state(&t, "Active").await?;
    bed.wait_resumed(&t).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &dev);
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &dev);
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), &dev);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &dev);
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), &dev);
    eventually("the controllers to be restored", WAIT, || async {
        let web = deployments.get("web").await?.spec.replicas;
        let db = sets.get("db").await?.spec.replicas;
        let loose = replicasets.get("loose").await?.spec.replicas;
        let batch = jobs.get("batch").await?.spec.and_then(|s| s.suspend);
        let nightly = cronjobs.get("nightly").await?.spec.suspend;
        Ok((web == Some(2)
            && db == Some(1)
            && loose == Some(1)
            && batch == Some(false)
            && nightly == Some(false))
        .then_some(()))
    })
    .await?;
    // web 2 + db 1 + loose 1, each a sandbox and a container, run again.
    eventually("the controllers' containers to run again", WAIT, || async {
        Ok((running_containers(&bed, &dev)?.len() >= 8).then_some(()))
    })
    .await?;
    let solo = run_ok(
        bed.kubectl()
            .args(["-n", &dev, "get", "pods", "-o", "name"]),
    )?;
    ensure!(
        !solo.lines().any(|l| l.trim() == "pod/solo"),
        "a bare pod is not resumed: {solo}"
    );
    Ok(())
}
