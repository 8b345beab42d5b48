//! Workload credentials on a real node (R-1, R-12, R-17): a prod pod logs in
//! to OpenBao with its projected ServiceAccount token, through the tenant's
//! NetworkPolicy, and reads the raw data an approved scenario granted; a dev
//! pod reads only the masked form; each is refused the other's data.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use e2e::pods::{Probe, openbao_login_script, workload_pod};
use e2e::scenarios::{approve_all, example_scenario, seed_catalog, wait_phase};
use e2e::{TestBed, authorization, eventually, unique};
use kube::api::{Api, PostParams};
use publicdata_operator::api::DataScenario;

const WAIT: Duration = Duration::from_secs(90);

/// What a pod gets when it logs in as `role` and reads `path` of the
/// catalog: `Ok(value)` or `Err(what OpenBao or the network said)`.
fn read_from_pod(
    bed: &TestBed,
    pod: &Probe,
    tenant: &str,
    role: &str,
    path: &str,
) -> Result<Result<String, String>> {
    let script = format!(
        r#"{}
timeout 5 wget -q -O - --header "X-Vault-Token: $token" $openbao/v1/catalog/data/{path} 2>&1"#,
        openbao_login_script(bed, tenant, role)?
    );
    let out = bed.exec(pod, &script)?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    })
}

#[tokio::test]
async fn a_prod_pod_reads_raw_data_and_a_dev_pod_only_masked_each_through_its_own_login()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    bed.apply_file(&e2e::repo().join("examples/datasets.yaml"))?;
    seed_catalog(&bed).await?;
    let t = unique("cred");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let (dev, prod) = (format!("{t}-dev"), format!("{t}-prod"));

    let api: Api<DataScenario> = Api::namespaced(bed.client_as(&alice, &[]).await?, &dev);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(example_scenario(&t)?)?,
    )
    .await?;
    let admin: Api<DataScenario> = Api::namespaced(bed.client().await?, &dev);
    let digest = wait_phase(&admin, "Draft").await?;

    bed.apply(&workload_pod(&bed, &dev, "dev-job")?)?;
    bed.apply(&workload_pod(&bed, &prod, "prod-job")?)?;
    let dev_pod = bed.wait_running(&dev, "dev-job").await?;
    let prod_pod = bed.wait_running(&prod, "prod-job").await?;
    let raw = "transport/bus-ridership/raw";
    let masked = "transport/bus-ridership/masked";

    // Before every approval: each logs in, and reads nothing.
    for (pod, role, path) in [(&prod_pod, "prod", raw), (&dev_pod, "dev", masked)] {
        match read_from_pod(&bed, pod, &t, role, path)? {
            Err(e) if e.contains("403") => {}
            other => bail!("{role} read {path} before approval: {other:?}"),
        }
    }

    approve_all(&bed, &t, &digest).await?;
    wait_phase(&admin, "Active").await?;

    // Prod reads the raw data; dev the masked sample.
    let value = eventually("the prod pod to read the raw data", WAIT, || async {
        Ok(read_from_pod(&bed, &prod_pod, &t, "prod", raw)?.ok())
    })
    .await?;
    ensure!(value.contains("raw ridership"), "prod read: {value}");
    let value = eventually("the dev pod to read the masked data", WAIT, || async {
        Ok(read_from_pod(&bed, &dev_pod, &t, "dev", masked)?.ok())
    })
    .await?;
    ensure!(
        value.contains("masked ridership sample"),
        "dev read: {value}"
    );

    // The login carries no scratch space: no cubbyhole to leave data in, no
    // response wrapping to hand it to another token (the `default` policy's
    // grants). The control: a token that has them (the test bed's admin)
    // writes and wraps with the same requests.
    let scratch = r#"
for req in "cubbyhole/rows {\"row\":\"11010519491231002X\"}" "sys/wrapping/wrap {\"row\":\"11010519491231002X\"}"; do
  set -- $req
  out=$(timeout 5 wget -q -O - --header "X-Vault-Token: $token" --post-data "$2" $openbao/v1/$1 2>&1)
  echo "$1: $? $out"
done"#;
    let out = bed.exec(
        &prod_pod,
        &format!("{}{scratch}", openbao_login_script(&bed, &t, "prod")?),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    for path in ["cubbyhole/rows", "sys/wrapping/wrap"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{path}:")))
            .ok_or_else(|| anyhow::anyhow!("no answer for {path}: {text}"))?;
        ensure!(
            line.contains("403"),
            "a workload token must not write {path}: {line}"
        );
    }
    for path in ["cubbyhole/rows", "sys/wrapping/wrap"] {
        let control = bed.bao().args(["write", path, "row=x"]).output()?;
        ensure!(
            control.status.success(),
            "the control: a token with the default policy writes {path}: {}",
            String::from_utf8_lossy(&control.stderr)
        );
    }

    // Each is refused what is not its own.
    match read_from_pod(&bed, &dev_pod, &t, "dev", raw)? {
        Err(e) if e.contains("403") => {}
        other => bail!("dev must never read raw data: {other:?}"),
    }
    // The dev pod cannot log in as prod, nor the prod pod as dev: the role is
    // bound to its own namespace's ServiceAccount.
    match read_from_pod(&bed, &dev_pod, &t, "prod", raw)? {
        Err(e) if e.contains("login refused") => {}
        other => bail!("a dev pod must not log in as prod: {other:?}"),
    }
    match read_from_pod(&bed, &prod_pod, &t, "dev", masked)? {
        Err(e) if e.contains("login refused") => {}
        other => bail!("a prod pod must not log in as dev: {other:?}"),
    }
    // Another tenant's pod cannot log in to this tenant's mount at all.
    let other = unique("credx");
    bed.apply(&authorization(&other, &[])?)?;
    bed.wait_ready(&other).await?;
    bed.apply(&workload_pod(&bed, &format!("{other}-prod"), "intruder")?)?;
    let intruder = bed
        .wait_running(&format!("{other}-prod"), "intruder")
        .await?;
    match read_from_pod(&bed, &intruder, &t, "prod", raw)? {
        Err(e) if e.contains("login refused") => {}
        other => bail!("another tenant's pod must not log in here: {other:?}"),
    }
    Ok(())
}
