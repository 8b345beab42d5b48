//! Attacks on the operator's own power and on its state, each tried as the
//! attacker's own identity, each with a control showing that the legitimate
//! path is open (docs/install.md, "What the operator can and cannot do").
//!
//! - the operator's ServiceAccount (impersonated, and with a token it really
//!   holds): writes outside the namespaces it made are refused by the API
//!   server;
//! - a cluster admin outside the bureau, and the bureau: status is the
//!   operator's alone;
//! - a status forged past admission (with the operator's own identity) wipes
//!   nothing and is reported;
//! - a tenant member: the operator's marks on tenant objects, and a pod that
//!   would outlive a freeze;
//! - a bureau user: no exec into the operator; the audit log is read
//!   through the operator's audit API, which answers the API server's front
//!   proxy only;
//! - a prod job's compression bomb: the scan refuses it, the operator does
//!   not restart, and a suspension still stops the tenant at once.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::pods::{POD_START, probe_pod, running_containers};
use e2e::{
    OPERATOR_NAMESPACE, TestBed, authorization, eventually, run, run_err, run_ok, unique,
    wait_authorization, wait_condition,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use publicdata_operator::api::OperatorAuthorization;
use publicdata_operator::vault::{DATABASE_CREATION, DATABASE_REVOCATION, catalog_key};
use serde_json::json;

const OPERATOR: &str = "system:serviceaccount:publicdata-system:publicdata-operator";

/// `kubectl` as the operator's ServiceAccount (impersonated: the API server
/// adds its groups, as for its own token).
fn as_operator(bed: &TestBed) -> std::process::Command {
    let mut k = bed.kubectl();
    k.args(["--as", OPERATOR]);
    k
}

/// Runs `cmd`, which must be refused by the admission policy `policy`;
/// returns what the API server said.
fn refused_by(cmd: &mut std::process::Command, policy: &str) -> Result<String> {
    let out = run(cmd)?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        !out.status.success(),
        "admitted: {cmd:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    ensure!(
        said.contains(policy),
        "refused, but not by {policy}: {said}"
    );
    Ok(said)
}

/// A tenant with one trained developer, Ready.
async fn ready_tenant(bed: &TestBed, prefix: &str) -> Result<(String, String)> {
    let t = unique(prefix);
    let member = format!("{t}-dev1");
    bed.apply(&authorization(&t, &[(&member, true)])?)?;
    bed.wait_ready(&t).await?;
    Ok((t, member))
}

#[tokio::test]
async fn the_operators_identity_writes_nothing_outside_the_namespaces_it_made() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, _) = ready_tenant(&bed, "confine").await?;
    let dev = format!("{t}-dev");
    let target = unique("target");
    // A platform Deployment in kube-system, and one in the tenant's dev.
    for ns in ["kube-system", dev.as_str()] {
        bed.apply(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": target, "namespace": ns},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": target}},
                     "template": {"metadata": {"labels": {"app": target}},
                                  "spec": {"containers": [{"name": "c", "image": "none"}]}}}}))?;
    }
    let scale = r#"{"spec":{"replicas":0},"metadata":{"annotations":{"publicdata.io/frozen-replicas":"0"}}}"#;
    // Its RBAC grants workload patches in tenant namespaces only.
    let said = run_err(as_operator(&bed).args([
        "-n",
        "kube-system",
        "patch",
        "deployment",
        &target,
        "--type=merge",
        "-p",
        scale,
    ]))?;
    ensure!(said.contains("forbidden"), "{said}");
    // Control: the same patch where a freeze does it.
    run_ok(as_operator(&bed).args([
        "-n",
        &dev,
        "patch",
        "deployment",
        &target,
        "--type=merge",
        "--dry-run=server",
        "-p",
        scale,
    ]))?;
    // What its RBAC grants cluster-wide (a NetworkPolicy, a ServiceAccount,
    // a quota), admission confines to the namespaces it made.
    let deny_all = |ns: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": unique("cut"), "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
    };

    // Platform namespaces are not its to delete; its tenants' are.
    refused_by(
        as_operator(&bed).args(["delete", "namespace", "openbao-system", "--dry-run=server"]),
        "publicdata-operator-confinement",
    )?;
    run_ok(as_operator(&bed).args(["delete", "namespace", &dev, "--dry-run=server"]))?;

    // The auditor role (reads Secrets) bound outside a tenant, or to itself
    // inside one: refused. A tenant role in a tenant namespace: admitted.
    let binding = |ns: &str, role: &str, subject: serde_json::Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": unique("bind"), "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [subject]})
    };
    let itself = json!({"kind": "ServiceAccount", "name": "publicdata-operator", "namespace": OPERATOR_NAMESPACE});
    let create = |f: &std::path::Path| {
        let mut c = as_operator(&bed);
        c.args(["create", "--dry-run=server", "-f"]).arg(f);
        c
    };
    // A deny-all policy in kube-system would cut the platform's DNS.
    refused_by(
        &mut create(&bed.manifest_file(&deny_all("kube-system"))?),
        "publicdata-operator-confinement",
    )?;
    refused_by(
        &mut create(&bed.manifest_file(&deny_all("openbao-system"))?),
        "publicdata-operator-confinement",
    )?;
    run_ok(&mut create(&bed.manifest_file(&deny_all(&dev))?))?;
    // Its RBAC creates ConfigMaps in its namespaces (the workload summary);
    // admission lets it make that one and no other: a prod artifact is the
    // tenant's, never the operator's to make or change.
    let prod = format!("{t}-prod");
    let config_map = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": &prod}, "data": {"report.csv": "x"}})
    };
    refused_by(
        &mut create(&bed.manifest_file(&config_map("artifact"))?),
        "publicdata-operator-confinement",
    )?;
    run_ok(
        as_operator(&bed)
            .args([
                "apply",
                "--server-side",
                "--force-conflicts",
                "--dry-run=server",
                "-f",
            ])
            .arg(bed.manifest_file(&config_map("publicdata-workloads"))?),
    )?;
    for (ns, role) in [
        ("kube-system", "publicdata-bureau-auditor"),
        (dev.as_str(), "publicdata-bureau-auditor"),
        (dev.as_str(), "cluster-admin"),
    ] {
        let f = bed.manifest_file(&binding(ns, role, itself.clone()))?;
        let said = run(&mut create(&f))?;
        ensure!(
            !said.status.success(),
            "the operator bound {role} to itself in {ns}"
        );
    }
    // Itself, or every ServiceAccount, under another name: a member's role
    // (pods/exec in dev) to a system: user or group is refused too.
    for subject in [
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": OPERATOR}),
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:serviceaccounts"}),
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}),
    ] {
        refused_by(
            &mut create(&bed.manifest_file(&binding(
                &dev,
                "publicdata-tenant-developer",
                subject,
            ))?),
            "publicdata-operator-confinement",
        )?;
    }
    // Its own namespaces keep their tenant, manager and Pod Security labels.
    for label in [
        "pod-security.kubernetes.io/enforce=privileged",
        "publicdata.io/tenant-",
    ] {
        refused_by(
            as_operator(&bed).args([
                "label",
                "--overwrite",
                "--dry-run=server",
                "namespace",
                &dev,
                label,
            ]),
            "publicdata-operator-confinement",
        )?;
    }
    run_ok(as_operator(&bed).args([
        "label",
        "--dry-run=server",
        "namespace",
        &dev,
        "publicdata.io/orphaned=true",
    ]))?;
    let member =
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "someone"});
    let f = bed.manifest_file(&binding(&dev, "publicdata-tenant-developer", member))?;
    run_ok(&mut create(&f))?;

    // A volume another namespace claims: not its to keep, free or re-home.
    let pv = unique("pv");
    bed.apply(&json!({"apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv},
        "spec": {"capacity": {"storage": "1Mi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain",
                 "hostPath": {"path": format!("/tmp/{pv}")},
                 "claimRef": {"namespace": "kube-system", "name": "platform-data"}}}))?;
    for patch in [
        r#"{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}"#.to_string(),
        format!(
            r#"{{"metadata":{{"labels":{{"publicdata.io/archived-tenant":"{t}"}}}},"spec":{{"claimRef":{{"namespace":"publicdata-archive","name":"{t}-{pv}","uid":null,"resourceVersion":null}}}}}}"#
        ),
    ] {
        refused_by(
            as_operator(&bed).args(["patch", "pv", &pv, "--type=merge", "-p", &patch]),
            "publicdata-operator-confinement",
        )?;
    }
    run_ok(bed.kubectl().args(["delete", "pv", &pv, "--wait=false"]))?;

    // With a token it really holds, not only impersonated.
    let token = run_ok(bed.kubectl().args([
        "-n",
        OPERATOR_NAMESPACE,
        "create",
        "token",
        "publicdata-operator",
        "--duration=10m",
    ]))?;
    let with_token = |f: &std::path::Path| {
        // No kubeconfig: the token alone says who this is.
        let mut c = bed.command("kubectl");
        c.env_remove("KUBECONFIG")
            .args(["--server", &bed.api_server, "--certificate-authority"])
            .arg(bed.var("KUBE_CA_FILE").unwrap_or_default())
            .args(["--token", token.trim(), "create", "--dry-run=server", "-f"])
            .arg(f);
        c
    };
    refused_by(
        &mut with_token(&bed.manifest_file(&deny_all("kube-system"))?),
        "publicdata-operator-confinement",
    )?;
    run_ok(&mut with_token(&bed.manifest_file(&deny_all(&dev))?))?;
    run_ok(
        bed.kubectl()
            .args(["-n", "kube-system", "delete", "deployment", &target]),
    )?;
    Ok(())
}

#[tokio::test]
async fn status_is_the_operators_alone() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, _) = ready_tenant(&bed, "status").await?;
    let forged = r#"{"status":{"phase":"Offboarding"}}"#;
    // A cluster admin outside the bureau, and a bureau member: refused, for
    // every kind with a status.
    bed.apply_file(&e2e::repo().join("examples/datasets.yaml"))?;
    let dataset = run_ok(bed.kubectl().args(["get", "publicdatasets", "-o", "name"]))?;
    let dataset = dataset
        .lines()
        .next()
        .context("no dataset on the test bed")?;
    for object in [format!("oa/{t}"), dataset.to_string()] {
        refused_by(
            bed.kubectl().args([
                "patch",
                &object,
                "--subresource=status",
                "--type=merge",
                "-p",
                forged,
            ]),
            "publicdata-status-by-operator",
        )?;
        // The bureau decides in the spec; its RBAC has no status write either.
        let out = run(bed.kubectl().args([
            "--as",
            "bureau-admin",
            "--as-group",
            "publicdata:bureau",
            "patch",
            &object,
            "--subresource=status",
            "--type=merge",
            "-p",
            forged,
        ]))?;
        ensure!(
            !out.status.success(),
            "the bureau wrote the status of {object}"
        );
    }
    let dev = format!("{t}-dev");
    let scenario = e2e::scenarios::example_scenario(&t)?;
    bed.apply(&scenario)?;
    let name = scenario["metadata"]["name"]
        .as_str()
        .context("scenario name")?;
    refused_by(
        bed.kubectl().args([
            "-n",
            &dev,
            "patch",
            "datascenario",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Active"}}"#,
        ]),
        "publicdata-status-by-operator",
    )?;
    // Control: the operator's own identity is admitted.
    run_ok(as_operator(&bed).args([
        "patch",
        &format!("oa/{t}"),
        "--subresource=status",
        "--type=merge",
        "--dry-run=server",
        "-p",
        forged,
    ]))?;
    Ok(())
}

#[tokio::test]
async fn a_forged_status_wipes_nothing_and_is_reported() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    for forged in [
        r#"{"status":{"phase":"Offboarding","offboarding":"Archived"}}"#,
        r#"{"status":{"phase":"Revoked","disposal":{"completedAt":"2026-01-01T00:00:00Z","outcome":"Revoked",
            "inventory":"publicdata-archive/none","inventoryDigest":"0","deleted":[],"kept":[]}}}"#,
    ] {
        let (t, _) = ready_tenant(&bed, "forged").await?;
        // Past admission: written with the operator's own identity, as a
        // stolen token would.
        run_ok(as_operator(&bed).args([
            "patch",
            &format!("oa/{t}"),
            "--subresource=status",
            "--type=merge",
            "-p",
            forged,
        ]))?;
        let said = wait_condition(&api, &t, "StatusTampered", "ForgedStatus", "claimed").await?;
        ensure!(said.contains("audit chain"), "{said}");
        let oa =
            wait_authorization(&api, &t, "Active again", |oa| e2e::phase(oa) == "Active").await?;
        ensure!(
            oa.status.as_ref().is_some_and(|s| s.disposal.is_none()),
            "the forged disposal certificate is still there"
        );
        // The reconcile that found the forgery is the one that would have
        // offboarded: no offboarding began, and both namespaces stand.
        let records = bed.audit_records(&t)?;
        ensure!(
            records.iter().any(|r| r["action"] == "StatusTampered"),
            "no StatusTampered record"
        );
        ensure!(
            !records.iter().any(|r| r["action"] == "OffboardingStarted"),
            "an offboarding began from a forged status"
        );
        for env in ["dev", "prod"] {
            let ns = run_ok(bed.kubectl().args([
                "get",
                "namespace",
                &format!("{t}-{env}"),
                "-o",
                "jsonpath={.status.phase}",
            ]))?;
            ensure!(ns.trim() == "Active", "{t}-{env} is {ns}");
        }
        let events = run_ok(bed.kubectl().args([
            "get",
            "events",
            "-A",
            "--field-selector",
            &format!("involvedObject.name={t},reason=ForgedStatus"),
            "-o",
            "name",
        ]))?;
        ensure!(!events.trim().is_empty(), "no ForgedStatus event for {t}");
    }
    Ok(())
}

/// An expired domain whose grace period's start is forged later (as if the
/// freeze had just begun, or years from now) is still offboarded when the
/// grace period the audit chain records has passed (30 s on the test bed).
/// Without the chain, the forged start would put the wipe off for ever; the
/// control is the same domain without the forgery, in `safety.rs`
/// (`an_ended_validity_freezes_the_live_domain_and_wipes_it_only_after_the_grace_period`).
#[tokio::test]
async fn a_grace_period_forged_to_start_later_does_not_put_off_the_wipe() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let bureau: Api<OperatorAuthorization> = Api::all(bed.bureau().await?);
    let t = unique("later");
    // The bureau sets the validity (only an end it set is ever acted on).
    bureau
        .create(
            &Default::default(),
            &serde_json::from_value(authorization(&t, &[])?)?,
        )
        .await?;
    bed.wait_ready(&t).await?;
    bureau
        .patch(
            &t,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&json!({"spec": {
                "validity": {"notAfter": e2e::days_ago(1)},
                "validityChange": {"reason": "e2e: ended", "decision": unique("PDB")}}})),
        )
        .await?;
    wait_authorization(&api, &t, "Expiring, its grace period begun", |oa| {
        e2e::phase(oa) == "Expiring" && oa.status.as_ref().is_some_and(|s| s.expired_at.is_some())
    })
    .await?;
    // A status write of the operator's own, already under way, may put its
    // value back before it reads the forged one: forge until it is judged.
    let said = eventually("the forged start to be judged", Duration::from_secs(25), || async {
        run_ok(as_operator(&bed).args([
            "patch",
            &format!("oa/{t}"),
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"expiredAt":"2099-01-01T00:00:00Z","offboardAfter":"2099-01-31T00:00:00Z"}}"#,
        ]))?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let oa = api.get(&t).await?;
        Ok(oa.status.and_then(|s| {
            s.conditions
                .into_iter()
                .find(|c| c.type_ == "StatusTampered" && c.message.contains("2099"))
                .map(|c| c.message)
        }))
    })
    .await?;
    ensure!(said.contains("recorded at"), "{said}");
    wait_authorization(&api, &t, "offboarded as Expired", |oa| {
        e2e::phase(oa) == "Expired"
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn nobody_but_the_operator_sets_its_marks() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, member) = ready_tenant(&bed, "marks").await?;
    let dev = format!("{t}-dev");
    // A namespace made by someone else, marked as the operator's: refused,
    // at creation and later.
    let other = unique("not-a-tenant");
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other,
        "annotations": {"publicdata.io/owner": format!("publicdata-operator tenant={t} unit=x")}}});
    let f = bed.manifest_file(&ns)?;
    refused_by(
        bed.kubectl().args(["create", "-f"]).arg(&f),
        "publicdata-namespace-owner-mark",
    )?;
    run_ok(bed.kubectl().args(["create", "namespace", &other]))?;
    refused_by(
        bed.kubectl().args([
            "annotate",
            "namespace",
            &other,
            "publicdata.io/owner=publicdata-operator tenant=x unit=y",
        ]),
        "publicdata-namespace-owner-mark",
    )?;
    run_ok(
        bed.kubectl()
            .args(["annotate", "namespace", &other, "example.org/note=ok"]),
    )?;
    run_ok(
        bed.kubectl()
            .args(["delete", "namespace", &other, "--wait=false"]),
    )?;
    // Nor removed from a tenant's: the namespace would leave every freeze.
    refused_by(
        bed.kubectl().args([
            "annotate",
            "--dry-run=server",
            "namespace",
            &dev,
            "publicdata.io/owner-",
        ]),
        "publicdata-namespace-owner-mark",
    )?;
    // A member's claim may not name a volume of the platform's.
    let claim = |volume: Option<&str>| {
        let mut c = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": unique("claim"), "namespace": dev},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}});
        if let Some(v) = volume {
            c["spec"]["volumeName"] = v.into();
        }
        c
    };
    for (volume, admitted) in [(Some("platform-data"), false), (None, true)] {
        let f = bed.manifest_file(&claim(volume))?;
        let mut k = bed.kubectl();
        k.args(["--as", &member, "create", "--dry-run=server", "-f"])
            .arg(&f);
        if admitted {
            run_ok(&mut k)?;
        } else {
            refused_by(&mut k, "publicdata-tenant-volumes")?;
        }
    }
    // Nor call a volume of its data logs, which offboarding keeps: only the
    // operator's own claim `logs` is.
    let mut logs = claim(None);
    logs["metadata"]["labels"] = json!({"publicdata.io/data-class": "logs"});
    let f = bed.manifest_file(&logs)?;
    refused_by(
        bed.kubectl()
            .args(["--as", &member, "create", "--dry-run=server", "-f"])
            .arg(&f),
        "publicdata-tenant-marks",
    )?;
    let made = eventually(
        "the operator's log volume",
        Duration::from_secs(60),
        || async {
            let out = run(bed.kubectl().args([
                "-n",
                &dev,
                "get",
                "pvc",
                "logs",
                "-o",
                "jsonpath={.metadata.labels.publicdata\\.io/data-class}",
            ]))?;
            Ok(out
                .status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
        },
    )
    .await?;
    ensure!(made == "logs", "the operator's claim is marked: {made:?}");

    // A member's ConfigMap with the operator's labels, and a freeze's note
    // changed on a Deployment: refused; plain ones admitted.
    let member_kubectl = || {
        let mut k = bed.kubectl();
        k.args(["--as", &member, "-n", &dev]);
        k
    };
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c1", "namespace": dev, "labels": {"publicdata.io/tenant": "someone-else"}}});
    let f = bed.manifest_file(&cm)?;
    refused_by(
        member_kubectl()
            .args(["apply", "--server-side", "--dry-run=server", "-f"])
            .arg(&f),
        "publicdata-tenant-marks",
    )?;
    let web = unique("web");
    bed.apply(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": web, "namespace": dev},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": web}},
                 "template": {"metadata": {"labels": {"app": web}},
                              "spec": {"containers": [{"name": "c", "image": "none"}]}}}}))?;
    // What a freeze keeps for resume: the member's own note would resume
    // the tenant at any scale it liked.
    run_ok(as_operator(&bed).args([
        "-n",
        &dev,
        "annotate",
        "deployment",
        &web,
        "publicdata.io/frozen-replicas=1",
    ]))?;
    refused_by(
        member_kubectl().args([
            "annotate",
            "--overwrite",
            "deployment",
            &web,
            "publicdata.io/frozen-replicas=50",
        ]),
        "publicdata-tenant-marks",
    )?;
    refused_by(
        member_kubectl().args([
            "annotate",
            "deployment",
            &web,
            "publicdata.io/frozen-replicas-",
        ]),
        "publicdata-tenant-marks",
    )?;
    run_ok(member_kubectl().args(["annotate", "deployment", &web, "example.org/owner=team-a"]))?;
    run_ok(member_kubectl().args([
        "create",
        "configmap",
        "c1",
        "--dry-run=server",
        "--from-literal=a=b",
    ]))?;
    Ok(())
}

#[tokio::test]
async fn a_pod_deleted_just_before_a_suspension_is_gone_within_the_platforms_grace_bound()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, member) = ready_tenant(&bed, "linger").await?;
    let dev = format!("{t}-dev");
    // A grace above the platform's bound is refused; the bound is admitted.
    let mut long = probe_pod(
        &bed,
        &dev,
        "long",
        json!({"terminationGracePeriodSeconds": 3600}),
    )?;
    let f = bed.manifest_file(&long)?;
    refused_by(
        bed.kubectl()
            .args(["--as", &member, "create", "-f"])
            .arg(&f),
        "publicdata-tenant-grace-period",
    )?;
    // A container that ignores SIGTERM, with the longest grace allowed.
    long["metadata"]["name"] = "stubborn".into();
    long["spec"]["terminationGracePeriodSeconds"] = 30.into();
    long["spec"]["containers"][0]["command"] =
        json!(["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]);
    bed.apply(&long)?;
    eventually("the stubborn container to run", POD_START, || async {
        Ok((running_containers(&bed, &dev)?.len() == 2).then_some(()))
    })
    .await?;
    // A delete may not ask for a longer grace of its own.
    refused_by(
        bed.kubectl().args([
            "--as",
            &member,
            "-n",
            &dev,
            "delete",
            "pod",
            "stubborn",
            "--grace-period=3600",
            "--dry-run=server",
        ]),
        "publicdata-tenant-grace-period",
    )?;
    // Deleted a moment before the bureau suspends: it would run on for 30 s.
    run_ok(
        bed.kubectl()
            .args(["-n", &dev, "delete", "pod", "stubborn", "--wait=false"]),
    )?;
    let pods: Api<Pod> = Api::namespaced(bed.client().await?, &dev);
    let deleting = pods.get("stubborn").await?;
    ensure!(
        deleting.metadata.deletion_grace_period_seconds == Some(30),
        "{:?}",
        deleting.metadata.deletion_grace_period_seconds
    );
    let suspended = std::time::Instant::now();
    bed.set_state(&t, "Suspended").await?;
    // The freeze deletes it again with its own grace; a kubelet that keeps
    // the grace already under way (this one does) stops it at the
    // platform's bound at the latest, never an hour later.
    eventually(
        "the stubborn container to stop",
        Duration::from_secs(30 + 15),
        || async { Ok(running_containers(&bed, &dev)?.is_empty().then_some(())) },
    )
    .await?;
    eprintln!(
        "the stubborn container stopped {:.1} s after the suspension",
        suspended.elapsed().as_secs_f64()
    );
    let records = bed.audit_records(&t)?;
    ensure!(
        records.iter().any(|r| r["reason"]
            .as_str()
            .is_some_and(|s| s.contains("already terminating with a longer grace"))),
        "no record of the pod deleted again"
    );
    Ok(())
}

#[tokio::test]
async fn a_compression_bomb_is_refused_and_the_operator_still_freezes_at_once() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, member) = ready_tenant(&bed, "bomb").await?;
    let (dev, prod) = (format!("{t}-dev"), format!("{t}-prod"));
    let restarts = || -> Result<i64> {
        let out = run_ok(bed.kubectl().args([
            "-n",
            OPERATOR_NAMESPACE,
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.status.containerStatuses[0].restartCount} {end}",
        ]))?;
        Ok(out
            .split_whitespace()
            .filter_map(|n| n.parse::<i64>().ok())
            .sum())
    };
    let before = restarts()?;
    // 400 MB of zeros in a 400 KB gzip, put in prod as a job would.
    let bomb = bed.dir.join(format!("{}.gz", unique("bomb")));
    run_ok(std::process::Command::new("sh").arg("-c").arg(format!(
        "head -c 400000000 /dev/zero | gzip -9 > {}",
        bomb.display()
    )))?;
    let bytes = std::fs::read(&bomb)?;
    ensure!(bytes.len() < 1 << 20, "the bomb is {} bytes", bytes.len());
    run_ok(
        bed.kubectl()
            .args(["-n", &prod, "create", "configmap", "bomb"])
            .arg(format!("--from-file=report.csv={}", bomb.display())),
    )?;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let er = e2e::scenarios::export_request(&t, "bomb", "no-such-scenario", "bomb", &digest)?;
    let ers: Api<publicdata_operator::api::ExportRequest> =
        Api::namespaced(bed.client_as(&member, &[]).await?, &dev);
    ers.create(&Default::default(), &er).await?;
    let finding = eventually("the bomb's finding", Duration::from_secs(120), || async {
        let er = ers.get("bomb").await?;
        Ok(er.status.and_then(|s| {
            s.findings
                .into_iter()
                .find(|f| f.kind == "Unreadable")
                .map(|f| f.location)
        }))
    })
    .await?;
    ensure!(finding.contains("compression bomb"), "{finding}");
    // Control of the freeze: a member's pod runs, the suspension stops it.
    bed.apply(&probe_pod(&bed, &dev, "busy", json!({}))?)?;
    eventually("the member's pod to run", POD_START, || async {
        Ok((running_containers(&bed, &dev)?.len() == 2).then_some(()))
    })
    .await?;
    bed.set_state(&t, "Suspended").await?;
    eventually(
        "the suspended tenant's containers to stop",
        Duration::from_secs(15),
        || async { Ok(running_containers(&bed, &dev)?.is_empty().then_some(())) },
    )
    .await?;
    ensure!(restarts()? == before, "the operator restarted");
    Ok(())
}

#[tokio::test]
async fn a_decision_on_another_recipient_or_digest_than_the_requests_is_refused() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, member) = ready_tenant(&bed, "decide").await?;
    let dev = format!("{t}-dev");
    let digest = "ab".repeat(32);
    let er = e2e::scenarios::export_request(&t, "q1", "no-such-scenario", "out", &digest)?;
    let ers: Api<publicdata_operator::api::ExportRequest> =
        Api::namespaced(bed.client_as(&member, &[]).await?, &dev);
    ers.create(&Default::default(), &er).await?;
    // The bureau's reviewer records `decision` (dry run).
    let decide = |decision: serde_json::Value| {
        let patch = json!({"spec": {"decision": decision}}).to_string();
        let mut k = bed.kubectl();
        k.args([
            "--as",
            "reviewer-li",
            "--as-group",
            "publicdata:bureau",
            "-n",
            &dev,
            "patch",
            "er",
            "q1",
            "--type=merge",
            "--dry-run=server",
            "-p",
            &patch,
        ]);
        k
    };
    let on = |code: &str, digest: &str| {
        json!({"decision": "Approved", "reviewer": "reviewer-li",
            "recipientCreditCode": code, "digest": digest})
    };
    let says = "the bureau decides on what it saw";
    // A decision that names neither: refused too.
    refused_by(
        &mut decide(json!({"decision": "Approved", "reviewer": "reviewer-li"})),
        says,
    )?;
    let other_recipient = refused_by(&mut decide(on("91110000802100433B", &digest)), says)?;
    ensure!(
        other_recipient.contains("recipientCreditCode"),
        "{other_recipient}"
    );
    refused_by(
        &mut decide(on(e2e::scenarios::RECIPIENT, &"cd".repeat(32))),
        says,
    )?;
    // Control: the decision on what the request says.
    run_ok(&mut decide(on(e2e::scenarios::RECIPIENT, &digest)))?;
    Ok(())
}

/// `kubectl exec` into the operator's leader, as `who` (`--as ...`, or the
/// cluster admin with none).
fn exec_operator(
    bed: &TestBed,
    leader: &str,
    who: &[&str],
    args: &[&str],
) -> std::process::Command {
    let mut k = bed.kubectl();
    k.args(who)
        .args([
            "-n",
            OPERATOR_NAMESPACE,
            "exec",
            leader,
            "--",
            "publicdata-operator",
        ])
        .args(args);
    k
}

const BUREAU_READER: [&str; 4] = ["--as", "zhao.lei", "--as-group", "publicdata:bureau"];

#[tokio::test]
async fn nobody_the_chart_names_may_exec_into_the_operator_and_the_log_is_read_through_its_api()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let leader = bed.operator_leader()?;
    // The bureau's audit reader: no exec (its token, environment and files).
    let said = run_err(&mut exec_operator(
        &bed,
        &leader,
        &BUREAU_READER,
        &["audit", "anchor"],
    ))?;
    ensure!(said.contains("forbidden"), "{said}");
    // Control: the same reader reads the anchor and the log through the
    // audit API, by way of the API server.
    let out = bed.plugin(&[&["audit", "verify"][..], &BUREAU_READER[..]].concat())?;
    let said = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && said.contains("chain intact"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = run_ok(bed.kubectl().args(BUREAU_READER).args([
        "get",
        "--raw",
        "/apis/audit.publicdata.io/v1alpha1/logs/audit",
    ]))?;
    ensure!(log.lines().count() > 0 && log.contains("\"prev\""), "{log}");
    // A member is refused by the API server (RBAC on the audit API)...
    let member = run_err(bed.kubectl().args([
        "--as",
        "someone",
        "get",
        "--raw",
        "/apis/audit.publicdata.io/v1alpha1/logs/audit",
    ]))?;
    ensure!(
        member.contains("forbidden") || member.contains("Forbidden"),
        "{member}"
    );
    // ...and whoever reaches the operator's port directly is not the API
    // server: without the front proxy's certificate there is no TLS session,
    // and a cluster client certificate (the admin's, CN=admin) naming any
    // user in a header is not the front proxy's either.
    let ip = run_ok(bed.kubectl().args([
        "-n",
        OPERATOR_NAMESPACE,
        "get",
        "pod",
        &leader,
        "-o",
        "jsonpath={.status.podIP}",
    ]))?;
    let url = format!(
        "https://{}:8443/apis/audit.publicdata.io/v1alpha1/logs/audit",
        ip.trim()
    );
    let pki = bed.dir.join("pki");
    let curl = |extra: &[&str]| {
        let mut c = std::process::Command::new("curl");
        c.args([
            "-sS",
            "-k",
            "--max-time",
            "5",
            "-H",
            "X-Remote-User: zhao.lei",
            "-H",
            "X-Remote-Group: publicdata:bureau",
        ])
        .args(extra)
        .arg(&url);
        c
    };
    for extra in [
        vec![],
        vec![
            "--cert".to_string(),
            pki.join("admin.crt").display().to_string(),
            "--key".to_string(),
            pki.join("admin.key").display().to_string(),
        ],
    ] {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = run(&mut curl(&extra))?;
        let body = String::from_utf8_lossy(&out.stdout);
        ensure!(
            !out.status.success() && !body.contains("\"prev\""),
            "the audit API answered a direct request ({extra:?}): {body}"
        );
    }
    // Control: the port answers the front proxy's own certificate, and the
    // caller it names is still checked (a member gets a refusal, the reader the log).
    let proxied = |user: &str, groups: &[&str]| {
        let mut c = std::process::Command::new("curl");
        c.args(["-sS", "-k", "--max-time", "5", "--cert"])
            .arg(pki.join("front-proxy-client.crt"))
            .arg("--key")
            .arg(pki.join("front-proxy-client.key"))
            .args(["-H", &format!("X-Remote-User: {user}")]);
        for g in groups {
            c.args(["-H", &format!("X-Remote-Group: {g}")]);
        }
        c.arg(&url);
        c
    };
    let refused = run_ok(&mut proxied("someone", &["system:authenticated"]))?;
    ensure!(refused.contains("\"code\":403"), "{refused}");
    let read = run_ok(&mut proxied(
        "zhao.lei",
        &["publicdata:bureau", "system:authenticated"],
    ))?;
    ensure!(read.contains("\"prev\""), "{read}");
    Ok(())
}

#[tokio::test]
async fn a_command_line_in_the_operators_container_cannot_send_its_credentials_elsewhere()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let leader = bed.operator_leader()?;
    // Only a cluster admin may still exec there (system:masters); even so,
    // no command line moves the operator's OpenBao address or credentials.
    let exec = |args: &[&str]| exec_operator(&bed, &leader, &[], args);
    for args in [
        &["audit", "anchor", "--vault-addr", "http://127.0.0.1:9"][..],
        &[
            "audit",
            "anchor",
            "--vault-login-jwt-file",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
        ][..],
        &[
            "--vault-addr",
            "http://127.0.0.1:9",
            "--vault-login-role",
            "x",
        ][..],
    ] {
        let said = run_err(&mut exec(args))?;
        ensure!(
            said.contains("may not be given on the command line"),
            "{args:?}: {said}"
        );
    }
    // Control: the subcommand itself runs, with the container's own settings.
    let anchor = run_ok(&mut exec(&["audit", "anchor"]))?;
    ensure!(anchor.contains("\"keys\""), "{anchor}");
    Ok(())
}

/// A token with the operator's own OpenBao policy, as the operator gets it:
/// its ServiceAccount's token (audience openbao) exchanged at the platform's
/// Kubernetes auth mount.
fn operator_openbao_token(bed: &TestBed) -> Result<String> {
    let jwt = run_ok(bed.kubectl().args([
        "-n",
        OPERATOR_NAMESPACE,
        "create",
        "token",
        "publicdata-operator",
        "--audience",
        "openbao",
        "--duration",
        "10m",
    ]))?;
    let token = run_ok(bed.bao().args([
        "write",
        "-field=token",
        "auth/kubernetes/login",
        "role=publicdata-operator",
        &format!("jwt={}", jwt.trim()),
    ]))?;
    Ok(token.trim().to_string())
}

/// `bao` with a token of the operator's own login, fresh for each command:
/// the login role's tokens are short (20 s under `make test`), and a refusal
/// must come from the policy, not from a token that lapsed.
fn bao_as_operator(bed: &TestBed, args: &[&str]) -> Result<std::process::Command> {
    let token = operator_openbao_token(bed)?;
    let mut c = bed.bao();
    c.env("BAO_TOKEN", token).args(args);
    Ok(c)
}

#[tokio::test]
async fn the_operators_openbao_token_cannot_remove_the_checkpoint_and_a_rollback_shows()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let as_operator = |args: &[&str]| bao_as_operator(&bed, args);
    const CHECKPOINT: &str = "publicdata-records/audit/checkpoint";
    // Control: the token is the operator's, and reads the checkpoint (once
    // there is an earlier one to go back to: a tenant moves the head).
    ready_tenant(&bed, "ckpt").await?;
    let version = eventually("two checkpoints", Duration::from_secs(60), || async {
        let current = run_ok(&mut as_operator(&[
            "kv",
            "get",
            "-format=json",
            CHECKPOINT,
        ])?)?;
        let current: serde_json::Value = serde_json::from_str(&current)?;
        let version = current["data"]["metadata"]["version"]
            .as_u64()
            .context("the checkpoint's version")?;
        Ok((version >= 2).then_some(version))
    })
    .await?;
    // Removing it, a version of it, or its history: refused.
    for args in [
        &["kv", "delete", CHECKPOINT][..],
        &["kv", "destroy", "-versions=1", CHECKPOINT][..],
        &["kv", "metadata", "delete", CHECKPOINT][..],
        &["kv", "metadata", "put", "-max-versions=1", CHECKPOINT][..],
        &["write", "publicdata-records/config", "max_versions=1"][..],
        &["secrets", "disable", "publicdata-records"][..],
    ] {
        let said = run_err(&mut as_operator(args)?)?;
        ensure!(said.contains("permission denied"), "{args:?}: {said}");
    }
    // Written back to an older head (the version before), as the token may:
    // the locked copy in the records store names the rollback... (The
    // operator may write a newer one meanwhile: check-and-set refuses the
    // stale write, and it is tried again on the version now there.)
    let read = |version: Option<u64>| -> Result<serde_json::Value> {
        let mut get = as_operator(&["kv", "get", "-format=json"])?;
        if let Some(v) = version {
            get.arg(format!("-version={v}"));
        }
        Ok(serde_json::from_str(&run_ok(get.arg(CHECKPOINT))?)?)
    };
    let _ = version;
    eventually(
        "the older checkpoint written back",
        Duration::from_secs(60),
        || async {
            let version = read(None)?["data"]["metadata"]["version"]
                .as_u64()
                .context("the checkpoint's version")?;
            let before = read(Some(version - 1))?;
            let old = &before["data"]["data"];
            let mut put = as_operator(&["kv", "put", &format!("-cas={version}"), CHECKPOINT])?;
            for field in ["seq", "hash", "time", "signature"] {
                put.arg(format!(
                    "{field}={}",
                    old[field].as_str().context("a checkpoint field")?
                ));
            }
            let out = run(&mut put)?;
            let said = String::from_utf8_lossy(&out.stderr);
            ensure!(
                out.status.success() || said.contains("check-and-set"),
                "{said}"
            );
            Ok(out.status.success().then_some(()))
        },
    )
    .await?;
    let out = bed.plugin(&[&["audit", "verify"][..], &BUREAU_READER[..]].concat())?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let overwritten = || -> Result<bool> {
        Ok(std::fs::read_to_string(bed.audit_log())?
            .lines()
            .any(|l| l.contains("AuditCheckpointOverwritten")))
    };
    // (unless the operator's next pass came first, which records it).
    ensure!(
        (!out.status.success() && said.contains("rolled back")) || overwritten()?,
        "{said}"
    );
    // ...and the operator, at its next checkpoint, records the version it
    // did not write and checkpoints the head again. A new tenant moves it.
    let (_t, _member) = ready_tenant(&bed, "ckpt").await?;
    eventually(
        "the overwrite recorded",
        Duration::from_secs(60),
        || async { Ok(overwritten()?.then_some(())) },
    )
    .await?;
    eventually(
        "the log anchored again",
        Duration::from_secs(60),
        || async {
            let out = bed.plugin(&[&["audit", "verify"][..], &BUREAU_READER[..]].concat())?;
            Ok(out.status.success().then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// With the operator's own OpenBao token: no policy text of any name, no
/// role carrying any policy but the platform's, no database role with SQL
/// of its own, no identity policy, no token, no other auth mount. What it may write (a role bound to any
/// namespace, an identity's metadata) still reaches only what the login's
/// own namespace owns: the platform's policy names everything from the
/// namespace OpenBao's TokenReview vouched for.
#[tokio::test]
async fn the_operators_openbao_token_writes_no_policy_and_mints_nothing_beyond_a_login()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (a, _) = ready_tenant(&bed, "bao-a").await?;
    let (b, _) = ready_tenant(&bed, "bao-b").await?;
    let as_operator = |args: &[&str]| bao_as_operator(&bed, args);
    let mount = e2e::WORKLOAD_AUTH_MOUNT;
    let role = |name: &str, extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "write".to_string(),
            format!("auth/{mount}/role/{name}"),
            "bound_service_account_names=workload".into(),
            format!("bound_service_account_namespaces={a}-dev"),
            "audience=openbao".into(),
            "alias_name_source=serviceaccount_name".into(),
            "token_ttl=15m".into(),
            "token_max_ttl=1h".into(),
        ];
        // Without `default` (its cubbyhole and wrapping), unless the attack
        // is to have it back.
        if !extra
            .iter()
            .any(|e| e.starts_with("token_no_default_policy="))
        {
            args.push("token_no_default_policy=true".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run_as = |args: &[String]| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        as_operator(&refs)
    };
    // Control: the role exactly as the operator writes it is admitted.
    run_ok(&mut run_as(&role(
        &format!("{a}-dev"),
        &["token_policies=publicdata-workload"],
    ))?)?;
    // A database role: the statements every role has (the control, as the
    // operator writes it), never SQL of the token's own.
    let database_role = |extra: &[(&str, String)]| -> Vec<String> {
        let mut fields = std::collections::BTreeMap::from([
            ("db_name", "publicdata".to_string()),
            ("creation_statements", DATABASE_CREATION.to_string()),
            ("revocation_statements", DATABASE_REVOCATION.to_string()),
            ("default_ttl", "15m".into()),
            ("max_ttl", "1h".into()),
        ]);
        for (k, v) in extra {
            fields.insert(k, v.clone());
        }
        let mut args = vec!["write".to_string(), format!("database/roles/{a}-dev")];
        args.extend(fields.iter().map(|(k, v)| format!("{k}={v}")));
        args
    };
    run_ok(&mut run_as(&database_role(&[]))?)?;
    // B's workload has logged in (its login carries its namespace), and A's
    // holds a token: the two a moved login would join.
    bed.workload_login(&b, "prod").await?;
    let a_token = bed.workload_login(&a, "dev").await?;
    let accessor =
        run_ok(
            bed.bao()
                .args(["read", "-field=accessor", &format!("sys/auth/{mount}")]),
        )?;
    let accessor = accessor.trim().to_string();
    let entity = |name: String| -> Result<serde_json::Value> {
        let out = run_ok(bed.bao().args([
            "read",
            "-format=json",
            &format!("identity/entity/name/{name}"),
        ]))?;
        Ok(serde_json::from_str::<serde_json::Value>(&out)?["data"].clone())
    };
    let (entity_a, entity_b) = (
        entity(format!("publicdata-{a}-dev"))?,
        entity(format!("publicdata-{b}-prod"))?,
    );
    let id_of = |e: &serde_json::Value| e["id"].as_str().unwrap_or_default().to_string();
    let (id_a, id_b) = (id_of(&entity_a), id_of(&entity_b));
    let alias_b = entity_b["aliases"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(
        !id_a.is_empty() && !alias_b.is_empty(),
        "{entity_a} {entity_b}"
    );
    // Control: the login alias written as the operator writes it (on its
    // own: it exists, so nothing moves).
    run_ok(&mut as_operator(&[
        "write",
        "identity/entity-alias",
        &format!("name={a}-dev/workload"),
        &format!("mount_accessor={accessor}"),
    ])?)?;
    let policy = std::env::temp_dir().join(format!("{a}-everything.hcl"));
    std::fs::write(
        &policy,
        "path \"*\" { capabilities = [\"read\", \"list\", \"sudo\"] }\n",
    )?;
    let policy = policy.display().to_string();
    let refused: Vec<Vec<String>> = vec![
        // Policy text, new or over the platform's own.
        vec![
            "policy".into(),
            "write".into(),
            format!("tenant-{a}-dev"),
            policy.clone(),
        ],
        vec![
            "policy".into(),
            "write".into(),
            "publicdata-workload".into(),
            policy.clone(),
        ],
        // A role naming another policy, in every form the API takes.
        role("evil", &["token_policies=publicdata-operator"]),
        role(
            "evil",
            &["token_policies=publicdata-workload,publicdata-operator"],
        ),
        role("evil", &["policies=publicdata-operator"]),
        role(
            "evil",
            &["token_policies=publicdata-workload", "token_num_uses=0"],
        ),
        // A role whose tokens get the `default` policy back.
        role(
            "evil",
            &[
                "token_policies=publicdata-workload",
                "token_no_default_policy=false",
            ],
        ),
        // A database role whose users join another tenant's role or the
        // server's own, now or when a lease is revoked (OpenBao runs a
        // role's statements as they are then).
        database_role(&[(
            "creation_statements",
            format!(
                "CREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}' IN ROLE \"{b}-prod\""
            ),
        )]),
        database_role(&[(
            "creation_statements",
            format!("{DATABASE_CREATION}; GRANT pg_execute_server_program TO \"{{{{name}}}}\""),
        )]),
        database_role(&[(
            "revocation_statements",
            format!("GRANT \"{b}-prod\" TO \"{a}-dev\""),
        )]),
        database_role(&[(
            "rollback_statements",
            format!("GRANT \"{b}-prod\" TO \"{a}-dev\""),
        )]),
        database_role(&[("db_name", "postgres".into())]),
        database_role(&[("max_ttl", "8760h".into())]),
        // The workload mount pointed at another API server (one that would
        // vouch for any namespace).
        vec![
            "write".into(),
            format!("auth/{mount}/config"),
            "kubernetes_host=https://attacker.invalid:6443".into(),
        ],
        // B's login moved onto A's identity (A's tokens would then carry
        // B's namespace), by its name or its id, or the two merged.
        vec![
            "write".into(),
            "identity/entity-alias".into(),
            format!("name={b}-prod/workload"),
            format!("mount_accessor={accessor}"),
            format!("canonical_id={id_a}"),
        ],
        vec![
            "write".into(),
            format!("identity/entity-alias/id/{alias_b}"),
            format!("canonical_id={id_a}"),
        ],
        vec![
            "write".into(),
            "identity/entity/merge".into(),
            format!("from_entity_ids={id_b}"),
            format!("to_entity_id={id_a}"),
        ],
        // An identity renamed out of the operator's names, or given
        // policies by its id.
        vec![
            "write".into(),
            format!("identity/entity/id/{id_a}"),
            "name=ops-admin".into(),
        ],
        vec![
            "write".into(),
            format!("identity/entity/id/{id_a}"),
            "policies=publicdata-operator".into(),
        ],
        // Policies on an identity, or an identity not the operator's.
        vec![
            "write".into(),
            format!("identity/entity/name/publicdata-{a}-dev"),
            "policies=publicdata-operator".into(),
        ],
        vec![
            "write".into(),
            "identity/entity/name/ops-admin".into(),
            "disabled=true".into(),
        ],
        // A token, another auth mount, a mount that is not KV.
        vec![
            "token".into(),
            "create".into(),
            "-policy=publicdata-workload".into(),
        ],
        vec![
            "auth".into(),
            "enable".into(),
            "-path=evil".into(),
            "kubernetes".into(),
        ],
        vec![
            "secrets".into(),
            "enable".into(),
            format!("-path=areas/{a}-x"),
            "transit".into(),
        ],
    ];
    for args in &refused {
        let said = run_err(&mut run_as(args)?)?;
        ensure!(said.contains("permission denied"), "{args:?}: {said}");
    }
    // So A's token is still A's: its own area (the control), nothing of B's.
    vaultrs::kv2::set(
        &bed.vault_with_token(&a_token)?,
        &format!("areas/{a}-dev"),
        "mine",
        &std::collections::BTreeMap::from([("x", "y")]),
    )
    .await?;
    for path in [
        format!("areas/{b}-prod/data/rows"),
        format!("database/creds/{b}-prod"),
    ] {
        let said = run_err(bed.bao().env("BAO_TOKEN", &a_token).args(["read", &path]))?;
        ensure!(
            said.contains("permission denied"),
            "A's token read {path}: {said}"
        );
    }

    // What the token may write, an attacker would: a role bound to every
    // namespace (with the platform's policy), and a catalog grant that
    // climbs out of the catalog. A's workload logs in there...
    let root = bed.vault_root()?;
    let secret = std::collections::BTreeMap::from([("row", "b's raw row")]);
    vaultrs::kv2::set(&root, &format!("areas/{b}-prod"), "rows", &secret).await?;
    let mut wide = role("attack", &["token_policies=publicdata-workload"]);
    wide[3] = "bound_service_account_namespaces=*".into();
    run_ok(&mut run_as(&wide)?)?;
    let identity = format!("identity/entity/name/publicdata-{a}-dev");
    // Each segment of a catalog grant is a metadata value of its own
    // (`catalog-NN-<depth>-<i>`): six that climb from the catalog mount to
    // B's area.
    let climb = format!("../../areas/{b}-prod/data/rows");
    let segments: Vec<&str> = climb.split('/').collect();
    let jwt = run_ok(bed.kubectl().args([
        "-n",
        &format!("{a}-dev"),
        "create",
        "token",
        "workload",
        "--audience",
        "openbao",
    ]))?;
    let login = vaultrs::auth::kubernetes::login(&root, mount, "attack", jwt.trim()).await?;
    let workload = bed.vault_with_token(&login.client_token)?;
    // ...and reaches its own area (the control) and nothing of B's: not its
    // prod area, not its database users, not through the forged grant.
    vaultrs::kv2::set(&workload, &format!("areas/{a}-dev"), "own", &secret).await?;
    // A try counts once the operator
    // has not put the metadata back before the reads were made; whatever a
    // try read is judged after, so a read that got through fails the test
    // at once instead of being tried again.
    let reads = eventually(
        "the climbing grant tried while it is in place",
        Duration::from_secs(60),
        || async {
            let now = run_ok(&mut as_operator(&[
                "read",
                "-format=json",
                "-field=metadata",
                &identity,
            ])?)?;
            let mut metadata: serde_json::Value = serde_json::from_str(&now)?;
            for (i, segment) in segments.iter().enumerate() {
                metadata[catalog_key(0, segments.len(), i + 1)] = json!(segment);
            }
            let body = std::env::temp_dir().join(format!("{a}-climb.json"));
            std::fs::write(&body, json!({ "metadata": metadata }).to_string())?;
            run_ok(as_operator(&["write", &identity])?.arg(format!("@{}", body.display())))?;
            let mut reads = Vec::new();
            for path in [
                format!("areas/{b}-prod/data/rows"),
                format!("catalog/data/{climb}"),
                format!("database/creds/{b}-prod"),
            ] {
                let out = run(bed
                    .bao()
                    .env("BAO_TOKEN", &login.client_token)
                    .args(["read", &path]))?;
                reads.push((path, out));
            }
            let still = run_ok(&mut as_operator(&[
                "read",
                "-format=json",
                "-field=metadata",
                &identity,
            ])?)?;
            let still: serde_json::Value = serde_json::from_str(&still)?;
            let in_place = segments
                .iter()
                .enumerate()
                .all(|(i, seg)| still[catalog_key(0, segments.len(), i + 1)] == json!(seg));
            Ok(in_place.then_some(reads))
        },
    )
    .await?;
    for (path, out) in reads {
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Refused by the policy (403), or, while the identity carries a
        // value OpenBao will not put into a path (`..`), every request of
        // the token refused outright (400 "Forbidden").
        ensure!(
            !out.status.success()
                && (said.contains("permission denied")
                    || said.contains("403")
                    || said.contains("Forbidden"))
                && !said.contains("raw row"),
            "A's workload read {path}: {said}"
        );
    }
    run_ok(&mut as_operator(&[
        "delete",
        &format!("auth/{mount}/role/attack"),
    ])?)?;
    Ok(())
}
