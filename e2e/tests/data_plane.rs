//! The data plane on a real node, with a real PostgreSQL and OpenBao's
//! database secrets engine (R-12, R-21, R-27): a dataset's masked sample for
//! dev and its table for prod; an approved scenario's columns and nothing
//! else, enforced by PostgreSQL; short-lived users from OpenBao through a
//! workload's login; a suspension ends every session at once.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::data_plane::{
    credentials, hold_session, is_listening, listen, listened, logs_in, query, query_from_host,
    query_in, sessions_of,
};
use e2e::pods::workload_pod;
use e2e::scenarios::{approve_all, example_scenario, export_request, wait_export, wait_phase};
use e2e::{TestBed, authorization, eventually, unique};
use kube::api::{Api, PostParams};
use publicdata_operator::api::{DataScenario, ExportRequest, PublicDataset};
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(90);

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
    // An unlisted column of the sample: PostgreSQL refuses it. The raw
    // table, the masked view and the hash keys are not even in dev's
    // database.
    for sql in [
        r#"SELECT industry FROM publicdata_sample."enterprise-registry""#,
        r#"SELECT * FROM publicdata_sample."enterprise-registry""#,
    ] {
        match query(&bed, &dev_pod, &dev_creds, sql)? {
            Err(e) if e.contains("permission denied") => {}
            other => bail!("dev ran {sql:?}: {other:?}"),
        }
    }
    for sql in [
        raw,
        r#"SELECT credit_code FROM publicdata_masked."enterprise-registry""#,
        "SELECT key FROM publicdata_keys.hash_key",
    ] {
        match query(&bed, &dev_pod, &dev_creds, sql)? {
            Err(e) if e.contains("does not exist") => {}
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
    // The platform's enroll function, which made these very credentials a
    // member of prod's role (the control: the raw column read above), is
    // OpenBao's alone: a workload cannot enroll itself, or a user of its
    // making, in a role (dev's here, or any other tenant's).
    for sql in [
        format!("SELECT publicdata_platform.enroll('{t}-dev.x')"),
        format!(r#"GRANT "{t}-dev" TO CURRENT_USER"#),
    ] {
        match query(&bed, &prod_pod, &prod_creds, &sql)? {
            // PostgreSQL says "permission denied" for the function's schema
            // and "must have admin option" for the role.
            Err(e) if e.contains("permission denied") || e.contains("must have admin option") => {}
            other => bail!("prod ran {sql:?}: {other:?}"),
        }
    }
    // Dev and prod share nothing in the database (R-1, R-12): each user
    // connects only to its own environment's database (the control: each
    // reads its own above), and what PostgreSQL lets anyone make by default
    // (a large object granted to PUBLIC, a table in `public`) prod cannot
    // make; the superuser can (the paths exist).
    let raw_db = bed.var("POSTGRES_DB").context("no POSTGRES_DB")?;
    let sample_db = bed
        .var("POSTGRES_SAMPLE_DB")
        .context("no POSTGRES_SAMPLE_DB")?;
    match query_in(&bed, &dev_pod, &dev_creds, raw_db, "SELECT 1")? {
        Err(e) if e.contains("permission denied for database") => {}
        other => bail!("dev connected to the raw database: {other:?}"),
    }
    match query_in(&bed, &prod_pod, &prod_creds, sample_db, "SELECT 1")? {
        Err(e) if e.contains("permission denied for database") => {}
        other => bail!("prod connected to the samples database: {other:?}"),
    }
    for (sql, control) in [
        (
            format!("SELECT lo_from_bytea(0, convert_to('{id}', 'UTF8'))"),
            "SELECT lo_unlink(lo_from_bytea(0, convert_to('x', 'UTF8')))",
        ),
        (
            "CREATE TABLE public.leak AS SELECT 1 AS x".to_string(),
            "CREATE TABLE public.leak_control (x int); DROP TABLE public.leak_control",
        ),
        (
            "CREATE TEMP TABLE leak AS SELECT 1 AS x".to_string(),
            "CREATE TEMP TABLE leak_control (x int)",
        ),
    ] {
        match query(&bed, &prod_pod, &prod_creds, &sql)? {
            Err(e) if e.contains("permission denied") => {}
            other => bail!("prod ran {sql:?}: {other:?}"),
        }
        bed.postgres_admin(control)
            .with_context(|| format!("the control: the superuser runs {control:?}"))?;
    }
    // A notification from prod reaches a listener in prod's database (the
    // control) and none in dev's: they are another database's.
    let heard_in_prod = listen(&bed, &prod_creds, "leak")?;
    let heard_in_dev = listen(&bed, &dev_creds, "leak")?;
    eventually("both listeners to listen", WAIT, || async {
        Ok((is_listening(&bed, &prod_creds.0)? && is_listening(&bed, &dev_creds.0)?).then_some(()))
    })
    .await?;
    query_from_host(&bed, &prod_creds, &format!("NOTIFY leak, '{id}'"))?
        .map_err(|e| anyhow::anyhow!("prod's NOTIFY: {e}"))?;
    let (in_prod, in_dev) = (listened(heard_in_prod)?, listened(heard_in_dev)?);
    ensure!(
        in_prod.contains("Asynchronous notification \"leak\""),
        "the control: prod's own listener hears it: {in_prod}"
    );
    ensure!(
        !in_dev.contains("notification") && !in_dev.contains(&id),
        "dev heard prod's notification: {in_dev}"
    );
    // Dev's credentials are dev's: a dev pod cannot get prod's.
    ensure!(
        credentials(&bed, &dev_pod, &t, "prod").is_err(),
        "a dev pod got prod's database credentials"
    );

    // A product carrying that raw resident ID, as prod read it from the
    // table: the export review finds it, reading the table's own values.
    let product = format!("district,contact\nNorth,{id}\n");
    bed.apply(&serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "contacts", "namespace": &prod},
        "data": {"report.csv": &product},
    }))?;
    Api::<ExportRequest>::namespaced(bed.client_as(&alice, &[]).await?, &dev)
        .create(
            &PostParams::default(),
            &export_request(
                &t,
                "contacts",
                "commuter-flows",
                "contacts",
                &hex::encode(Sha256::digest(product.as_bytes())),
            )?,
        )
        .await?;
    let exports: Api<ExportRequest> = Api::namespaced(client.clone(), &dev);
    let er = wait_export(&exports, "contacts", "AwaitingReview").await?;
    let findings = er.status.map(|s| s.findings).unwrap_or_default();
    ensure!(
        findings.iter().any(|f| f.kind
            == "SensitiveField:enterprise-registry.legal_representative_id"
            && f.location == "line 2, column 7"),
        "the table's raw value must be found: {findings:?}"
    );

    // A session held open with prod's credentials, from outside the
    // cluster (a leaked password): the suspension ends it, and the
    // password no longer logs in.
    let session = hold_session(&bed, &prod_creds)?;
    eventually("the held session to be open", WAIT, || async {
        Ok((sessions_of(&bed, &prod_creds.0)? == 1).then_some(()))
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
        sessions_of(&bed, &prod_creds.0)? == 0,
        "a session of the tenant survived the suspension"
    );
    ensure!(
        !logs_in(&bed, &prod_creds)?,
        "the password still logs in after the suspension"
    );
    eprintln!(
        "a held database session ended {} ms after the suspension",
        ended.as_millis()
    );

    // Resumed: new credentials work again.
    bed.set_state(&t, "Active").await?;
    bed.wait_resumed(&t).await?;
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
