//! Tenant isolation proven with packets: real pods on the
//! test bed's node, real NetworkPolicies enforced by kube-router, real DNS.
//! Every refusal has a control beside it that shows the path exists, so a
//! refusal is the policy's doing, not a broken network.

use anyhow::{Result, ensure};
use e2e::pods::restricted_container;
use e2e::{TestBed, authorization, run, run_ok, unique};
use serde_json::json;

#[tokio::test]
async fn a_tenant_pod_reaches_its_own_namespace_and_dns_and_nothing_else() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let a = unique("neta");
    let b = unique("netb");
    bed.apply(&authorization(&a, &[])?)?;
    bed.apply(&authorization(&b, &[])?)?;
    bed.wait_ready(&a).await?;
    bed.wait_ready(&b).await?;
    let (a_dev, a_prod, b_dev) = (format!("{a}-dev"), format!("{a}-prod"), format!("{b}-dev"));

    // A namespace no policy governs: the control.
    let open = unique("open");
    bed.open_namespace(&open)?;
    let [
        control,
        control_server,
        client,
        server,
        prod_client,
        prod_server,
        other_client,
        other_server,
    ] = <[_; 8]>::try_from(
        bed.probes(&[
            (&open, "client"),
            (&open, "server"),
            (&a_dev, "client"),
            (&a_dev, "server"),
            (&a_prod, "client"),
            (&a_prod, "server"),
            (&b_dev, "client"),
            (&b_dev, "server"),
        ])
        .await?,
    )
    .map_err(|_| anyhow::anyhow!("eight probes"))?;
    run_ok(bed.kubectl().args([
        "-n", &a_dev, "expose", "pod", "server", "--port", "8080", "--name", "server",
    ]))?;
    let outside = bed
        .var("TESTBED_OUTSIDE_URL")
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the env file has no TESTBED_OUTSIDE_URL"))?;

    // The paths exist: an ungoverned pod reaches pods and the outside world,
    // and each tenant server answers within its own namespace.
    bed.reaches(&control, &control_server.url(), "server")
        .await?;
    bed.reaches(&control, &outside, "outside world").await?;
    bed.reaches(&prod_client, &prod_server.url(), "server")
        .await?;
    bed.reaches(&other_client, &other_server.url(), "server")
        .await?;

    // Same namespace, by name through the cluster DNS and the Service.
    let by_name = format!("http://server.{a_dev}.svc.cluster.local:8080/");
    bed.reaches(&client, &by_name, "server").await?;
    bed.reaches(&client, &server.url(), "server").await?;

    // Nothing else: not another tenant, not prod from dev, not the outside
    // world, not an ungoverned pod; and nothing from outside gets in.
    bed.cannot_reach(&client, &other_server.url()).await?;
    bed.cannot_reach(&client, &prod_server.url()).await?;
    bed.cannot_reach(&client, &outside).await?;
    bed.cannot_reach(&client, &control_server.url()).await?;
    bed.cannot_reach(&prod_client, &server.url()).await?;
    bed.cannot_reach(&prod_client, &outside).await?;
    bed.cannot_reach(&control, &server.url()).await?;
    bed.cannot_reach(&other_client, &server.url()).await?;

    // DNS itself is allowed, and only DNS: the name resolves from dev.
    let out = bed.exec(
        &client,
        &format!("nslookup server.{a_dev}.svc.cluster.local"),
    )?;
    ensure!(
        out.status.success(),
        "dev cannot resolve names: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    run_ok(
        bed.kubectl()
            .args(["delete", "namespace", &open, "--wait=false"]),
    )?;
    Ok(())
}

#[tokio::test]
async fn pod_security_restricted_refuses_a_privileged_pod_and_runs_a_compliant_one() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("pss");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    let ns = format!("{t}-dev");

    for (what, container) in [
        (
            "privileged",
            json!({"privileged": true, "allowPrivilegeEscalation": true}),
        ),
        ("root", json!({"runAsUser": 0, "runAsNonRoot": false})),
        (
            "added capability",
            json!({"capabilities": {"add": ["NET_ADMIN"]}}),
        ),
    ] {
        let mut sc = restricted_container();
        if let (Some(base), Some(extra)) = (sc.as_object_mut(), container.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        let pod = e2e::pods::probe_pod(
            &bed,
            &ns,
            "bad",
            json!({"containers": [{"name": "probe", "securityContext": sc}]}),
        )?;
        let file = bed.dir.join(format!("{}.json", unique("pod")));
        std::fs::write(&file, serde_json::to_vec(&pod)?)?;
        let out = run(bed.kubectl().args(["apply", "-f"]).arg(&file))?;
        std::fs::remove_file(&file)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && stderr.contains("violates PodSecurity \"restricted"),
            "a {what} pod must be refused by Pod Security restricted: {stderr}"
        );
    }
    // hostNetwork is refused too.
    let pod = e2e::pods::probe_pod(&bed, &ns, "hostnet", json!({"hostNetwork": true}))?;
    let file = bed.dir.join(format!("{}.json", unique("pod")));
    std::fs::write(&file, serde_json::to_vec(&pod)?)?;
    let out = run(bed.kubectl().args(["apply", "-f"]).arg(&file))?;
    std::fs::remove_file(&file)?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("host namespaces"),
        "a hostNetwork pod must be refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A compliant pod runs on the node and answers.
    let good = bed.probe(&ns, "good").await?;
    let out = bed.exec(&good, "id -u")?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).trim() == "65534",
        "the compliant pod runs as nobody"
    );
    Ok(())
}

/// Services take Service IPs from the pool the whole cluster shares; the
/// tenant's quota counts them. A bureau-side user creates them, so
/// the refusal is the quota's, not RBAC's.
#[tokio::test]
async fn the_object_count_quota_refuses_the_service_past_it() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("quota");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    let ns = format!("{t}-dev");
    let allowed = publicdata_operator::controllers::tenant::OBJECT_COUNTS
        .iter()
        .find(|(r, _)| *r == "services")
        .map(|(_, n)| *n)
        .ok_or_else(|| anyhow::anyhow!("no services quota"))?;
    let service = |name: &str, kind: &str| {
        run(bed.kubectl().args([
            "-n",
            &ns,
            "create",
            "service",
            kind,
            name,
            "--tcp",
            "8080:8080",
        ]))
    };
    for i in 0..allowed {
        let out = service(&format!("s{i}"), "clusterip")?;
        ensure!(
            out.status.success(),
            "Service {} of {allowed} must be admitted: {}",
            i + 1,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = service("one-too-many", "clusterip")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && stderr.contains("exceeded quota") && stderr.contains("services"),
        "Service {} must be refused by the quota: {stderr}",
        allowed + 1
    );
    Ok(())
}
