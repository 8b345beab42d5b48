//! The operator installed as a platform installs it: its image on the node,
//! its Helm chart, its own RBAC, its ServiceAccount's login to OpenBao, two
//! replicas and a Lease. `hack/test.sh` runs this last, after
//! `testbed.sh operator install` (the host-run operator stopped first).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::{TestBed, authorization, eventually, run, run_ok, unique};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};
use publicdata_operator::api::OperatorAuthorization;
use serde_json::Value;

const NS: &str = "publicdata-system";
const SA: &str = "system:serviceaccount:publicdata-system:publicdata-operator";
const WAIT: Duration = Duration::from_secs(120);

fn chart() -> PathBuf {
    e2e::repo().join("charts/publicdata-operator")
}

fn helm(bed: &TestBed) -> std::process::Command {
    bed.command("helm")
}

/// `helm template` with the given `--set`s; the output or helm's complaint.
fn template(bed: &TestBed, sets: &[&str]) -> Result<Result<String, String>> {
    let mut cmd = helm(bed);
    cmd.args(["template", "publicdata-operator"])
        .arg(chart())
        .args([
            "--namespace",
            NS,
            "--include-crds",
            "--kube-version",
            &kube_version(bed),
        ]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd)?;
    Ok(if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// The test bed's Kubernetes version (`helm template` renders for it).
fn kube_version(bed: &TestBed) -> String {
    bed.var("TESTBED_K8S_VERSION")
        .unwrap_or("v1.37.2")
        .to_string()
}

fn docs(yaml: &str) -> Result<Vec<Value>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn can_i(bed: &TestBed, args: &[&str]) -> Result<bool> {
    let out = run(bed
        .kubectl()
        .args(["auth", "can-i"])
        .args(args)
        .args(["--as", SA]))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "yes")
}

#[tokio::test]
async fn the_chart_lints_renders_what_the_api_server_accepts_and_refuses_bad_values() -> Result<()>
{
    let bed = TestBed::from_env()?;
    let address = "openbao.address=http://openbao.openbao-system.svc:8200";
    run_ok(
        helm(&bed)
            .args(["lint", "--strict", "--kube-version", &kube_version(&bed)])
            .arg(chart())
            .args(["--set", address]),
    )?;
    let rendered = template(&bed, &[address])?.map_err(anyhow::Error::msg)?;
    let file = bed.dir.join(format!("{}.yaml", unique("chart")));
    std::fs::write(&file, &rendered)?;
    let applied = run(bed
        .kubectl()
        .args([
            "apply",
            "--dry-run=server",
            "--server-side",
            "--force-conflicts",
            "-f",
        ])
        .arg(&file));
    std::fs::remove_file(&file)?;
    let applied = applied?;
    ensure!(
        applied.status.success(),
        "the API server refuses the rendered chart: {}",
        String::from_utf8_lossy(&applied.stderr)
    );

    // The operator's own RBAC names every verb and resource: no "*".
    let objects = docs(&rendered)?;
    for o in &objects {
        let kind = o["kind"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        if (kind == "ClusterRole" || kind == "Role") && name.starts_with("publicdata-operator") {
            for rule in o["rules"].as_array().into_iter().flatten() {
                for key in ["verbs", "resources", "apiGroups"] {
                    ensure!(
                        !rule[key].as_array().into_iter().flatten().any(|v| v == "*"),
                        "{kind} {name} has a \"*\" in {key}: {rule}"
                    );
                }
                // It binds the tenants' roles; it never needs to hold more
                // than it has.
                ensure!(
                    !rule["verbs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|v| v == "escalate"),
                    "{kind} {name} may escalate: {rule}"
                );
            }
        }
    }
    // The CRDs and policies are the repository's own, unchanged.
    for (file, crd) in publicdata_operator::crdgen::all() {
        let want = serde_json::to_value(&crd)?;
        let name = want["metadata"]["name"].clone();
        let got = objects
            .iter()
            .find(|o| o["kind"] == "CustomResourceDefinition" && o["metadata"]["name"] == name)
            .with_context(|| format!("the chart has no CRD {name} ({file})"))?;
        ensure!(
            got["spec"] == want["spec"],
            "the chart's CRD {name} drifted from the types"
        );
    }
    // The tenants' roles are the operator's own, unchanged.
    for role in publicdata_operator::controllers::tenant::cluster_roles() {
        let want = serde_json::to_value(&role)?;
        ensure!(
            objects.iter().any(|o| o["kind"] == "ClusterRole"
                && o["metadata"] == want["metadata"]
                && o["rules"] == want["rules"]),
            "the chart does not render the tenant role {} as the operator builds it",
            want["metadata"]["name"]
        );
    }
    let policies = docs(&std::fs::read_to_string(
        chart().join("files/admission-policies.yaml"),
    )?)?;
    for p in &policies {
        ensure!(
            objects.iter().any(|o| o == p),
            "the chart does not render the admission policy {} as files/ has it",
            p["metadata"]["name"]
        );
    }

    // Bad values get a clear error before anything is applied.
    for (sets, says) in [
        (vec![], "openbao.address is required"),
        (vec![address, "replicaCount=0"], "replicaCount"),
        (
            vec![address, "openbao.workloadEgress.cidrs={0.0.0.0}"],
            "cidrs",
        ),
        (vec![address, "image.pullPolicy=Sometimes"], "pullPolicy"),
        (vec![address, "noSuchValue=1"], "noSuchValue"),
    ] {
        match template(&bed, &sets)? {
            Err(e) if e.contains(says) => {}
            other => bail!("--set {sets:?} must be refused naming {says}, got {other:?}"),
        }
    }
    Ok(())
}

/// The operator's pods, and which one holds the Lease.
async fn replicas(bed: &TestBed) -> Result<(Vec<String>, String)> {
    let pods: Api<Pod> = Api::namespaced(bed.client().await?, NS);
    let running: Vec<String> = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=publicdata-operator"))
        .await?
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .filter_map(|p| p.metadata.name)
        .collect();
    Ok((running, bed.operator_leader()?))
}

/// The audit log on the operator's volume, as a file on the node.
async fn audit_file(bed: &TestBed) -> Result<PathBuf> {
    let client = bed.client().await?;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    let pv = pvcs
        .get("publicdata-operator-audit")
        .await?
        .spec
        .and_then(|s| s.volume_name)
        .context("the audit claim is not bound")?;
    let spec = Api::<PersistentVolume>::all(client)
        .get(&pv)
        .await?
        .spec
        .context("volume without spec")?;
    let dir = spec
        .host_path
        .map(|h| h.path)
        .or(spec.local.map(|l| l.path))
        .context("the audit volume is neither hostPath nor local")?;
    Ok(PathBuf::from(dir).join("audit.log"))
}

fn records(file: &PathBuf) -> Result<Vec<Value>> {
    Ok(std::fs::read_to_string(file)?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

fn verify(file: &PathBuf) -> Result<()> {
    let bin = e2e::repo().join("target/release/publicdata-operator");
    run_ok(
        std::process::Command::new(bin)
            .args(["audit", "verify"])
            .arg(file),
    )?;
    Ok(())
}

#[tokio::test]
async fn the_installed_operator_is_least_privileged_leads_once_and_survives_its_leader()
-> Result<()> {
    let bed = TestBed::from_env()?;
    let (pods, holder) = replicas(&bed).await?;
    ensure!(pods.len() == 2, "two replicas run: {pods:?}");
    ensure!(
        pods.contains(&holder),
        "the Lease holder {holder:?} is one of them: {pods:?}"
    );

    // Least privilege, asked as the API server would answer the operator.
    for (args, allowed) in [
        (vec!["get", "secrets", "-n", "kube-system"], false),
        (vec!["list", "secrets", "--all-namespaces"], false),
        (vec!["get", "secrets", "-n", NS], false),
        (vec!["create", "clusterrolebindings"], false),
        (vec!["create", "clusterroles"], false),
        (
            vec!["patch", "clusterrolebindings/publicdata-agency-approvers"],
            true,
        ),
        // The freeze's writes are granted in each tenant namespace only.
        (vec!["delete", "pods", "-n", "kube-system"], false),
        (vec!["patch", "deployments", "-n", "kube-system"], false),
        (vec!["create", "pods", "-n", "default"], false),
        (vec!["create", "deployments", "-n", "default"], false),
        (vec!["create", "namespaces"], true),
        (vec!["patch", "networkpolicies", "-n", "default"], true),
    ] {
        ensure!(
            can_i(&bed, &args)? == allowed,
            "the operator's ServiceAccount {} be allowed to {args:?}",
            if allowed { "should" } else { "must not" }
        );
    }

    // It provisions, logged in to OpenBao with its ServiceAccount; and reads
    // the Secrets of a tenant namespace, and of no other.
    let t = unique("chart");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    for args in [
        ["list", "secrets"],
        ["delete", "pods"],
        ["patch", "deployments"],
    ] {
        let dev = format!("{t}-dev");
        ensure!(
            can_i(&bed, &[args[0], args[1], "-n", &dev])?,
            "the operator may not {args:?} in {dev}"
        );
    }

    // Twenty authorizations; the leader is killed while they are provisioned.
    let many: Vec<String> = (0..20).map(|_| unique("lead")).collect();
    for name in &many {
        bed.apply(&authorization(name, &[])?)?;
    }
    run_ok(bed.kubectl().args([
        "-n",
        NS,
        "delete",
        "pod",
        &holder,
        "--force",
        "--grace-period=0",
    ]))?;
    let new_holder = eventually("another replica to take the Lease", WAIT, || async {
        let (_, h) = replicas(&bed).await?;
        Ok((!h.is_empty() && h != holder).then_some(h))
    })
    .await?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    eventually("all twenty Ready under the new leader", WAIT, || async {
        let mut ready = 0;
        for name in &many {
            let oa = api.get(name).await?;
            if oa.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            }) {
                ready += 1;
            }
        }
        Ok((ready == many.len()).then_some(()))
    })
    .await?;
    eprintln!("{holder} killed; {new_holder} took the Lease; all 20 Ready");

    // One writer: the chain is intact and nothing was recorded twice.
    let file = audit_file(&bed).await?;
    verify(&file)?;
    let mut provisioned: HashMap<String, usize> = HashMap::new();
    for r in records(&file)? {
        if r["action"] == "DomainProvisioned" {
            *provisioned
                .entry(r["tenant"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    for name in &many {
        let n = provisioned.get(name).copied().unwrap_or(0);
        ensure!(n == 1, "{name} was recorded as provisioned {n} times");
    }
    Ok(())
}

#[tokio::test]
async fn the_operator_logs_in_again_before_its_short_lived_token_expires() -> Result<()> {
    let bed = TestBed::from_env()?;
    // The test bed gives the operator's OpenBao role a TTL of seconds
    // (OPERATOR_TOKEN_TTL in hack/test.sh): wait for three fresh logins.
    eventually(
        "three fresh logins to OpenBao",
        Duration::from_secs(180),
        || async {
            let (_, holder) = replicas(&bed).await?;
            let logs = run_ok(bed.kubectl().args(["-n", NS, "logs", &holder]))?;
            Ok((logs.matches("logged in to OpenBao again").count() >= 3).then_some(()))
        },
    )
    .await?;
    // Past those expiries it still does its work, which needs OpenBao.
    let t = unique("ttl");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    ensure!(
        bed.identity_disabled(&t, "dev")? == Some(false),
        "the tenant's identity was written with a fresh token"
    );
    Ok(())
}

/// Runs last in this binary (tests run in name order with one thread):
/// `helm upgrade` rolls the operator; `helm uninstall` keeps the CRDs, every
/// authorization, the tenants' namespaces and OpenBao data, and the audit
/// log; installing again adopts all of it and the audit chain goes on.
#[tokio::test]
async fn upgrade_rolls_and_uninstall_keeps_every_tenant_and_reinstall_adopts_them() -> Result<()> {
    let bed = TestBed::from_env()?;
    let t = unique("keep");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    let root = bed.vault_root()?;
    let data = std::collections::BTreeMap::from([("rows", "42")]);
    vaultrs::kv2::set(&root, &format!("areas/{t}-prod"), "results", &data).await?;

    // A changed value rolls the Deployment: every pod is new.
    let (before, _) = replicas(&bed).await?;
    let revision = unique("rev");
    run_ok(
        helm(&bed)
            .args(["upgrade", "publicdata-operator"])
            .arg(chart())
            .args([
                "-n",
                NS,
                "--reuse-values",
                "--set",
                &format!("podAnnotations.revision={revision}"),
                "--wait",
                "--timeout",
                "180s",
            ]),
    )?;
    eventually("the upgraded pods to run and one to lead", WAIT, || async {
        let (now, holder) = replicas(&bed).await?;
        Ok(
            (now.len() == 2 && now.iter().all(|p| !before.contains(p)) && now.contains(&holder))
                .then_some(()),
        )
    })
    .await?;

    // Uninstall: the operator goes; everything of the tenants stays.
    let audit = audit_file(&bed).await?;
    run_ok(helm(&bed).args(["uninstall", "publicdata-operator", "-n", NS, "--wait"]))?;
    let deployment =
        run(bed
            .kubectl()
            .args(["-n", NS, "get", "deployment", "publicdata-operator"]))?;
    ensure!(
        !deployment.status.success(),
        "the operator's Deployment is gone"
    );
    for crd in publicdata_operator::crdgen::all() {
        let name = crd.1.metadata.name.clone().unwrap_or_default();
        run_ok(bed.kubectl().args(["get", "crd", &name]))
            .with_context(|| format!("the CRD {name} must stay after helm uninstall"))?;
    }
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    ensure!(api.get_opt(&t).await?.is_some(), "the authorization stays");
    for ns in [
        format!("{t}-dev"),
        format!("{t}-prod"),
        "publicdata-archive".into(),
    ] {
        run_ok(bed.kubectl().args(["get", "namespace", &ns]))
            .with_context(|| format!("namespace {ns} must stay"))?;
    }
    let kept: std::collections::BTreeMap<String, String> =
        vaultrs::kv2::read(&root, &format!("areas/{t}-prod"), "results").await?;
    ensure!(
        kept.get("rows").map(String::as_str) == Some("42"),
        "OpenBao data stays"
    );
    run_ok(
        bed.kubectl()
            .args(["-n", NS, "get", "pvc", "publicdata-operator-audit"]),
    )
    .context("the audit log's claim stays")?;
    ensure!(audit.exists(), "the audit log stays on its volume");

    // Install again: it adopts what it left and goes on where it stopped.
    let tar = e2e::repo().join("target/image/publicdata-operator.tar");
    run_ok(
        std::process::Command::new("bash")
            .arg(e2e::repo().join("e2e/testbed/testbed.sh"))
            .args(["operator", "install"])
            .arg(&tar)
            .env("PUBLICDATA_TESTBED_DIR", &bed.dir),
    )?;
    bed.wait_ready(&t).await?;
    let again = unique("again");
    bed.apply(&authorization(&again, &[])?)?;
    bed.wait_ready(&again).await?;
    ensure!(
        audit_file(&bed).await? == audit,
        "the same audit volume is used again"
    );
    verify(&audit)?;
    ensure!(
        records(&audit)?
            .iter()
            .any(|r| r["tenant"] == again.as_str()),
        "the reinstalled operator appends to the same chain"
    );
    Ok(())
}
