//! The data plane on a real node, with a real PostgreSQL and OpenBao's
//! database secrets engine (R-12, R-21, R-27): a dataset's masked sample for
//! dev and its table for prod; an approved scenario's columns and nothing
//! else, enforced by PostgreSQL; short-lived users from OpenBao through a
//! workload's login; a suspension ends every session at once.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::pods::{Probe, workload_pod};
use e2e::scenarios::{approve_all, example_scenario, wait_phase};
use e2e::{TestBed, authorization, eventually, unique};
use kube::api::{Api, PostParams};
use publicdata_operator::api::{DataScenario, PublicDataset};

const WAIT: Duration = Duration::from_secs(90);

/// Short-lived PostgreSQL credentials a workload pod gets from OpenBao: its
/// Kubernetes login as `env`, then `database/creds/<tenant>-<env>`.
fn credentials(bed: &TestBed, pod: &Probe, tenant: &str, env: &str) -> Result<(String, String)> {
    let openbao = bed
        .var("OPENBAO_CLUSTER_ADDR")
        .context("the env file has no OPENBAO_CLUSTER_ADDR")?;
    let script = format!(
        r#"jwt=$(cat /var/run/secrets/openbao/token)
login=$(timeout 5 wget -q -O - --header 'Content-Type: application/json' \
  --post-data "{{\"role\":\"{env}\",\"jwt\":\"$jwt\"}}" {openbao}/v1/auth/k8s-{tenant}/login 2>&1)
token=$(echo "$login" | sed -n 's/.*"client_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || {{ echo "login refused: $login"; exit 2; }}
creds=$(timeout 5 wget -q -O - --header "X-Vault-Token: $token" {openbao}/v1/database/creds/{tenant}-{env} 2>&1)
user=$(echo "$creds" | sed -n 's/.*"username":"\([^"]*\)".*/\1/p')
pass=$(echo "$creds" | sed -n 's/.*"password":"\([^"]*\)".*/\1/p')
[ -n "$user" ] || {{ echo "no credentials: $creds"; exit 3; }}
echo "$user $pass""#
    );
    let out = bed.exec(pod, &script)?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    ensure!(out.status.success(), "{tenant}-{env}: {text}");
    let (user, pass) = text
        .split_once(' ')
        .with_context(|| format!("credentials: {text}"))?;
    Ok((user.to_string(), pass.to_string()))
}

/// One query from the pod with those credentials: the rows, or what
/// PostgreSQL (or the network) said.
fn query(
    bed: &TestBed,
    pod: &Probe,
    creds: &(String, String),
    sql: &str,
) -> Result<Result<String, String>> {
    let host = bed
        .var("POSTGRES_CLUSTER_HOST")
        .context("no POSTGRES_CLUSTER_HOST")?;
    let port = bed.var("POSTGRES_PORT").context("no POSTGRES_PORT")?;
    let db = bed.var("POSTGRES_DB").context("no POSTGRES_DB")?;
    let out = bed.exec(
        pod,
        &format!(
            "PGPASSWORD='{}' PGCONNECT_TIMEOUT=5 psql -X -tA -h {host} -p {port} -U '{}' -d {db} -c '{}' 2>&1",
            creds.1,
            creds.0,
            sql.replace('\'', "'\\''")
        ),
    )?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    })
}

#[tokio::test]
async fn the_listed_columns_masked_in_dev_raw_in_prod_and_nothing_else_and_a_suspension_ends_every_session()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    bed.apply_file(&e2e::repo().join("examples/datasets.yaml"))?;
    let client = bed.client().await?;
    let datasets: Api<PublicDataset> = Api::all(client.clone());
    eventually("enterprise-registry's views to be made", WAIT, || async {
        let ds = datasets.get("enterprise-registry").await?;
        let ready = ds
            .status
            .iter()
            .flat_map(|s| s.conditions.iter())
            .find(|c| c.type_ == "DataReady");
        match ready {
            Some(c) if c.status == "True" => Ok(Some(())),
            Some(c) if c.reason != "NoDataPlane" => bail!("DataReady {}: {}", c.reason, c.message),
            _ => Ok(None),
        }
    })
    .await?;

    let t = unique("pg");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let (dev, prod) = (format!("{t}-dev"), format!("{t}-prod"));
    // The scenario lists two fields of the registry: a plain one and a
    // resident ID (Partial: first 6 and last 4 characters in dev).
    let mut scenario = example_scenario(&t)?;
    scenario["spec"]["items"][1]["fields"] =
        serde_json::json!(["credit_code", "legal_representative_id"]);
    Api::<DataScenario>::namespaced(bed.client_as(&alice, &[]).await?, &dev)
        .create(&PostParams::default(), &serde_json::from_value(scenario)?)
        .await?;
    let scenarios: Api<DataScenario> = Api::namespaced(client.clone(), &dev);
    let digest = wait_phase(&scenarios, "Draft").await?;

    bed.apply(&workload_pod(&bed, &dev, "dev-job")?)?;
    bed.apply(&workload_pod(&bed, &prod, "prod-job")?)?;
    let dev_pod = bed.wait_running(&dev, "dev-job").await?;
    let prod_pod = bed.wait_running(&prod, "prod-job").await?;
    let sample = r#"SELECT legal_representative_id FROM publicdata_sample."enterprise-registry" ORDER BY 1 LIMIT 1"#;
    let raw = "SELECT legal_representative_id FROM market.enterprise_registry ORDER BY 1 LIMIT 1";

    // Before the approvals: each logs in to PostgreSQL, and reads nothing.
    let dev_creds = credentials(&bed, &dev_pod, &t, "dev")?;
    match query(&bed, &dev_pod, &dev_creds, sample)? {
        Err(e) if e.contains("permission denied") => {}
        other => bail!("dev read the sample before approval: {other:?}"),
    }

    approve_all(&bed, &t, &digest).await?;
    wait_phase(&scenarios, "Active").await?;
    eventually(
        "dev to read the listed column of the masked sample",
        WAIT,
        || async { Ok(query(&bed, &dev_pod, &dev_creds, sample)?.ok()) },
    )
    .await
    .and_then(|id| {
        // 18 characters: the first 6 and the last 4 kept, 8 stars between.
        ensure!(
            id.len() == 18 && &id[6..14] == "********" && !id[..6].contains('*'),
            "dev saw {id:?}, not a masked resident ID"
        );
        Ok(())
    })?;
    // An unlisted column, the raw table, the other environment's view:
    // PostgreSQL refuses each.
    for sql in [
        r#"SELECT industry FROM publicdata_sample."enterprise-registry""#,
        r#"SELECT * FROM publicdata_sample."enterprise-registry""#,
        raw,
        r#"SELECT credit_code FROM publicdata_masked."enterprise-registry""#,
        "SELECT key FROM publicdata_keys.hash_key",
    ] {
        match query(&bed, &dev_pod, &dev_creds, sql)? {
            Err(e) if e.contains("permission denied") => {}
            other => bail!("dev ran {sql:?}: {other:?}"),
        }
    }
    // Prod reads the listed raw columns, and only those.
    let prod_creds = credentials(&bed, &prod_pod, &t, "prod")?;
    let id = query(&bed, &prod_pod, &prod_creds, raw)?
        .map_err(|e| anyhow::anyhow!("prod read no raw column: {e}"))?;
    ensure!(id.len() == 18 && !id.contains('*'), "prod saw {id:?}");
    match query(
        &bed,
        &prod_pod,
        &prod_creds,
        "SELECT industry FROM market.enterprise_registry",
    )? {
        Err(e) if e.contains("permission denied") => {}
        other => bail!("prod read an unlisted column: {other:?}"),
    }
    // Dev's credentials are dev's: a dev pod cannot get prod's.
    ensure!(
        credentials(&bed, &dev_pod, &t, "prod").is_err(),
        "a dev pod got prod's database credentials"
    );

    // A session held open with prod's credentials, from outside the
    // cluster (a leaked password): the suspension ends it, and the
    // password no longer logs in.
    let host = bed.var("POSTGRES_HOST").context("no POSTGRES_HOST")?;
    let port = bed.var("POSTGRES_PORT").context("no POSTGRES_PORT")?;
    let db = bed.var("POSTGRES_DB").context("no POSTGRES_DB")?;
    let url = format!("postgresql://{}@{host}:{port}/{db}", prod_creds.0);
    let session = std::process::Command::new("psql")
        .args(["-X", "-tA", &url, "-c", "SELECT pg_sleep(600)"])
        .env("PGPASSWORD", &prod_creds.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let who = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}'",
        prod_creds.0
    );
    eventually("the held session to be open", WAIT, || async {
        Ok((bed.postgres_admin(&who)? == "1").then_some(()))
    })
    .await?;
    let suspended = std::time::Instant::now();
    bed.set_state(&t, "Suspended").await?;
    let out = tokio::task::spawn_blocking(move || session.wait_with_output()).await??;
    let ended = suspended.elapsed();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(
        !out.status.success() && said.contains("terminating connection"),
        "the held session must be ended by the server: {said}"
    );
    ensure!(
        bed.postgres_admin(&who)? == "0",
        "a session of the tenant survived the suspension"
    );
    let again = std::process::Command::new("psql")
        .args(["-X", "-tA", &url, "-c", "SELECT 1"])
        .env("PGPASSWORD", &prod_creds.1)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()?;
    ensure!(
        !again.status.success(),
        "the password still logs in after the suspension"
    );
    eprintln!(
        "a held database session ended {} ms after the suspension",
        ended.as_millis()
    );

    // Resumed: new credentials work again.
    bed.set_state(&t, "Active").await?;
    bed.wait_ready(&t).await?;
    bed.apply(&workload_pod(&bed, &prod, "prod-job-2")?)?;
    let prod_pod = bed.wait_running(&prod, "prod-job-2").await?;
    eventually(
        "new prod credentials to read the listed column",
        WAIT,
        || async {
            let Ok(creds) = credentials(&bed, &prod_pod, &t, "prod") else {
                return Ok(None);
            };
            Ok(query(&bed, &prod_pod, &creds, raw)?.ok())
        },
    )
    .await?;
    Ok(())
}
