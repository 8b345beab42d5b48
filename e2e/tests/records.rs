//! Key records that outlive the tenant (R-28, R-33), with the operator
//! installed by its chart and the test bed's S3 store with Object Lock: a
//! revoked authorization's records are written locked for 20 years, their
//! manifest's digest is in the audit chain, they are read back after the
//! namespaces are gone, the store refuses to delete or overwrite them, and
//! the authorization can be deleted only once they are verified.

use std::process::Output;

use anyhow::{Context, Result, ensure};
use e2e::{TestBed, authorization, eventually, run, run_ok, unique, wait_phase};
use kube::Api;
use publicdata_operator::api::OperatorAuthorization;
use publicdata_operator::oplog::{self, Source};
use publicdata_operator::records::{S3Settings, S3Store, Store};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A request to the test bed's S3 store, signed with its key (curl's own
/// SigV4, not the operator's client).
fn s3(bed: &TestBed, method: &str, key: &str, body: Option<&str>) -> Result<Output> {
    let get = |k: &str| s3_key(bed, k);
    let url = format!(
        "{}/{}/{key}",
        bed.var("S3_ENDPOINT").context("S3_ENDPOINT")?,
        bed.var("S3_BUCKET").context("S3_BUCKET")?
    );
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!(
            "{}:{}",
            get("S3_ACCESS_KEY")?,
            get("S3_SECRET_KEY")?
        ))
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-X", method]);
    if let Some(body) = body {
        cmd.args(["--data-binary", body]);
    }
    cmd.args(["-w", "\n%{http_code}"]).arg(url);
    run(&mut cmd)
}

/// A value of the test bed's S3 key file (S3_ACCESS_KEY, S3_SECRET_KEY).
fn s3_key(bed: &TestBed, k: &str) -> Result<String> {
    let creds = std::fs::read_to_string(bed.var("S3_CREDENTIALS_FILE").context("S3 credentials")?)?;
    creds
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{k}=")))
        .map(str::to_string)
        .with_context(|| format!("{k} in the S3 credentials"))
}

/// The test bed's S3 store through the operator's own client (for listings).
fn store(bed: &TestBed) -> Result<S3Store> {
    Ok(S3Store::new(&S3Settings {
        endpoint: bed.var("S3_ENDPOINT").context("S3_ENDPOINT")?.into(),
        bucket: bed.var("S3_BUCKET").context("S3_BUCKET")?.into(),
        region: "us-east-1".into(),
        access_key: s3_key(bed, "S3_ACCESS_KEY")?,
        secret_key: s3_key(bed, "S3_SECRET_KEY")?,
    }))
}

/// The body and the HTTP status of an S3 answer.
fn answer(out: &Output) -> (String, String) {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match text.rsplit_once('\n') {
        Some((body, code)) => (body.to_string(), code.trim().to_string()),
        None => (String::new(), text),
    }
}

/// Revokes `t` and waits until it is offboarded; returns where its records
/// are, verified.
async fn revoked(
    bed: &TestBed,
    api: &Api<OperatorAuthorization>,
    t: &str,
) -> Result<publicdata_operator::api::authorization::RecordsArchive> {
    bed.set_state(t, "Revoked").await?;
    let done = wait_phase(api, t, "Revoked").await?;
    let records = done
        .status
        .and_then(|s| s.records)
        .context("status.records")?;
    ensure!(records.verified, "{records:?}");
    Ok(records)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn a_revoked_authorization_leaves_locked_records_that_are_read_back_and_cannot_be_erased()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("records");
    let member = unique("records-member");
    bed.apply(&authorization(&t, &[(&member, true)])?)?;
    let uid = bed.wait_ready(&t).await?.metadata.uid.context("uid")?;
    let records = revoked(&bed, &api, &t).await?;
    ensure!(
        records.location == format!("s3://publicdata-records/{t}/{uid}/"),
        "{records:?}"
    );
    ensure!(records.mode == "COMPLIANCE", "{records:?}");
    let until: jiff::Timestamp = records.retain_until.parse()?;
    let twenty = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(jiff::Span::new().years(20).hours(-1))?
        .timestamp();
    ensure!(until >= twenty, "locked until {until}, not 20 years");

    // The manifest's digest is in the audit chain.
    let archived = bed
        .audit_records(&t)?
        .into_iter()
        .find(|r| r["action"] == "RecordsArchived")
        .context("a RecordsArchived record")?;
    ensure!(
        archived["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("manifest sha256 {}", records.manifest_digest)),
        "{archived}"
    );

    // The namespaces are gone; the records are read back from the store.
    for env in ["dev", "prod"] {
        let out = run(bed
            .kubectl()
            .args(["get", "namespace", &format!("{t}-{env}")]))?;
        ensure!(!out.status.success(), "{t}-{env} still exists");
    }
    let base = format!("{t}/{uid}");
    let (manifest, code) = answer(&s3(&bed, "GET", &format!("{base}/manifest.json"), None)?);
    ensure!(code == "200", "{code} {manifest}");
    ensure!(sha256(manifest.as_bytes()) == records.manifest_digest);
    let manifest: Value = serde_json::from_str(&manifest)?;
    let names: Vec<&str> = manifest["objects"]
        .as_array()
        .context("objects")?
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    for name in [
        "authorization.json",
        "scenarios.json",
        "exports.json",
        "filings.json",
        "inventory.json",
        "audit-trail.jsonl",
    ] {
        ensure!(names.contains(&name), "{name} not in {names:?}");
    }
    for object in manifest["objects"].as_array().context("objects")? {
        let name = object["name"].as_str().unwrap_or_default();
        let (body, code) = answer(&s3(&bed, "GET", &format!("{base}/{name}"), None)?);
        ensure!(code == "200", "{name}: {code}");
        ensure!(
            sha256(body.as_bytes()) == object["sha256"],
            "{name} differs"
        );
    }
    let (body, _) = answer(&s3(
        &bed,
        "GET",
        &format!("{base}/authorization.json"),
        None,
    )?);
    let granted: Value = serde_json::from_str(&body)?;
    ensure!(granted["spec"]["unit"]["creditCode"] == "91330100MA2H3K5L7U");
    ensure!(
        body.contains(&member),
        "the members are in the archived authorization"
    );
    let (trail, _) = answer(&s3(
        &bed,
        "GET",
        &format!("{base}/audit-trail.jsonl"),
        None,
    )?);
    ensure!(trail.contains("TenantFrozen") || trail.contains("OffboardingStarted"));
    let (certificate, _) = answer(&s3(&bed, "GET", &format!("{base}/certificate.json"), None)?);
    ensure!(
        Some(sha256(certificate.as_bytes())) == records.certificate_digest,
        "the archived certificate is the one in the status"
    );

    // The store refuses to delete or overwrite a locked record.
    for (method, body) in [("DELETE", None), ("PUT", Some("{}"))] {
        let (said, code) = answer(&s3(
            &bed,
            method,
            &format!("{base}/authorization.json"),
            body,
        )?);
        ensure!(
            code == "403" && said.contains("object lock"),
            "{method}: {code} {said}"
        );
    }
    let (body, _) = answer(&s3(
        &bed,
        "GET",
        &format!("{base}/authorization.json"),
        None,
    )?);
    ensure!(body == serde_json::to_string_pretty(&granted)? || body.contains(&member));

    // Verified: the final authorization may be deleted now.
    run_ok(bed.kubectl().args(["delete", "oa", &t, "--wait=true"]))?;
    Ok(())
}

#[tokio::test]
async fn a_final_authorization_without_verified_records_cannot_be_deleted() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("unarchived");
    bed.apply(&authorization(&t, &[("frank", true)])?)?;
    bed.wait_ready(&t).await?;
    // A final phase written over the status with the operator's own identity
    // (nobody else may write status), with no records: the operator writes
    // its own status back soon, so try until the API server judges the
    // forged one.
    let mut said = String::new();
    for _ in 0..20 {
        run_ok(bed.kubectl().args([
            "--as",
            "system:serviceaccount:publicdata-system:publicdata-operator",
            "patch",
            "oa",
            &t,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Revoked","records":null}}"#,
        ]))?;
        let out =
            run(bed
                .kubectl()
                .args(["delete", "oa", &t, "--dry-run=server", "--wait=false"]))?;
        ensure!(!out.status.success(), "deleting {t} was admitted");
        said = String::from_utf8_lossy(&out.stderr).into_owned();
        if said.contains("key records are not verified") {
            break;
        }
    }
    ensure!(
        said.contains("publicdata-authorization-deletion")
            && said.contains("its key records are not verified in the records store yet"),
        "{said}"
    );
    Ok(())
}

#[tokio::test]
async fn an_offboarding_archived_before_the_records_store_existed_writes_its_records_when_it_resumes()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("upgraded");
    bed.apply(&authorization(&t, &[("grace", true)])?)?;
    let uid = bed.wait_ready(&t).await?.metadata.uid.context("uid")?;
    // What an operator without a records store left: the archive's index in
    // ConfigMaps, with its inventory part, and nothing in the store.
    let name = publicdata_operator::controllers::offboard::archive_name(&t, &uid);
    let inventory = r#"[{"kind":"Namespace","name":"before-the-upgrade"}]"#;
    let part = format!("{name}-inventory-0");
    let manifest = serde_json::json!({
    "apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": part, "namespace": "publicdata-archive"},
         "data": {"inventory.json": inventory}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": name, "namespace": "publicdata-archive",
                      "annotations": {"publicdata.io/inventory-digest": sha256(inventory.as_bytes())}},
         "data": {"parts.json": serde_json::json!([{"configMap": part, "key": "inventory.json"}]).to_string()}},
    ]});
    bed.apply(&manifest)?;
    revoked(&bed, &api, &t).await?;
    let (body, code) = answer(&s3(
        &bed,
        "GET",
        &format!("{t}/{uid}/inventory.json"),
        None,
    )?);
    ensure!(code == "200" && body == inventory, "{code} {body}");
    Ok(())
}

/// The entries of a tenant's operation logs from `source` that `matches`
/// finds, once there are any (read back and checked against their names).
async fn logged(
    store: &S3Store,
    t: &str,
    uid: &str,
    source: Source,
    what: &str,
    matches: impl Fn(&Value) -> bool,
) -> Result<Vec<Value>> {
    eventually(what, std::time::Duration::from_secs(60), || async {
        let entries = oplog::read(store, t, uid, source).await?;
        let found: Vec<Value> = entries.into_iter().filter(|e| matches(e)).collect();
        Ok((!found.is_empty()).then_some(found))
    })
    .await
}

#[tokio::test]
async fn what_members_and_workloads_do_is_kept_in_the_tenants_locked_records() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let store = store(&bed)?;
    let t = unique("oplog");
    let member = unique("oplog-member");
    bed.apply(&authorization(&t, &[(&member, true)])?)?;
    let uid = bed.wait_ready(&t).await?.metadata.uid.context("uid")?;
    let (dev, prod) = (format!("{t}-dev"), format!("{t}-prod"));

    // A member works in dev, then tries prod's Secrets and another namespace.
    run_ok(
        bed.kubectl()
            .args(["-n", &dev, "get", "pods", "--as", &member]),
    )?;
    for ns in [prod.as_str(), "kube-system"] {
        let out = run(bed
            .kubectl()
            .args(["-n", ns, "get", "secrets", "--as", &member]))?;
        ensure!(!out.status.success(), "{member} read the Secrets of {ns}");
    }
    // A workload logs in to OpenBao and reads its tenant's mount.
    let token = bed.workload_login(&t, "dev").await?;
    let client = bed.vault_with_token(&token)?;
    let _ = vaultrs::kv2::read::<Value>(&client, &format!("areas/{t}-dev"), "anything").await;

    let by_member = |e: &Value| e["impersonatedUser"]["username"] == member.as_str();
    let api_share = logged(
        &store,
        &t,
        &uid,
        Source::Kubernetes,
        "the member's requests",
        |e| {
            by_member(e)
                && e["objectRef"]["resource"] == "secrets"
                && e["objectRef"]["namespace"] == "kube-system"
        },
    )
    .await?;
    ensure!(
        api_share[0]["responseStatus"]["code"] == 403 && api_share[0]["verb"] == "list",
        "a refused attempt is kept as refused: {}",
        api_share[0]
    );
    let api_share = logged(
        &store,
        &t,
        &uid,
        Source::Kubernetes,
        "all three requests",
        |e| by_member(e),
    )
    .await?;
    for (ns, resource, code) in [(dev.as_str(), "pods", 200), (prod.as_str(), "secrets", 403)] {
        ensure!(
            api_share.iter().any(|e| e["objectRef"]["namespace"] == ns
                && e["objectRef"]["resource"] == resource
                && e["responseStatus"]["code"] == code),
            "no {resource} request in {ns} answered {code} in {api_share:?}"
        );
    }
    let all = oplog::read(&store, &t, &uid, Source::Kubernetes).await?;
    ensure!(
        !all.iter().any(|e| e["user"]["username"]
            .as_str()
            .is_some_and(|u| u.starts_with("system:serviceaccount:publicdata-system:"))),
        "the operator's own requests are in its audit chain, not in the tenant's share"
    );
    ensure!(
        all.iter()
            .all(|e| e["requestObject"].is_null() && e["responseObject"].is_null()),
        "metadata only: no request or response body is logged"
    );
    let login = logged(
        &store,
        &t,
        &uid,
        Source::OpenBao,
        "the workload's login",
        |e| {
            e["request"]["path"] == format!("auth/{}/login", e2e::WORKLOAD_AUTH_MOUNT).as_str()
                && e["auth"]["metadata"]["service_account_namespace"] == format!("{t}-dev").as_str()
        },
    )
    .await?;
    ensure!(login[0]["type"] == "response", "{}", login[0]);
    logged(
        &store,
        &t,
        &uid,
        Source::OpenBao,
        "the workload's read",
        |e| e["request"]["path"] == format!("areas/{t}-dev/data/anything").as_str(),
    )
    .await?;
    // The platform's own files have them too (the complete record).
    for (file, needle) in [
        ("KUBE_AUDIT_LOG", member.clone()),
        (
            "OPENBAO_AUDIT_LOG",
            format!("\"service_account_namespace\":\"{t}-dev\""),
        ),
    ] {
        let text = std::fs::read_to_string(bed.var(file).context(file)?)?;
        ensure!(text.contains(&needle), "{needle} not in {file}");
    }

    // Nobody without the token adds to a tenant's share.
    let url = bed.var("TESTBED_OPLOG_URL").context("TESTBED_OPLOG_URL")?;
    let forged = serde_json::json!({"items": [{"stage": "ResponseComplete",
        "user": {"username": member}, "objectRef": {"namespace": dev}, "verb": "forged"}]});
    for token in ["", "not-the-token"] {
        let out = run(std::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(bed.var("KUBE_CA_FILE").context("KUBE_CA_FILE")?)
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(forged.to_string())
            .arg(format!("{url}/v1/kubernetes")))?;
        let status = String::from_utf8_lossy(&out.stdout).into_owned();
        ensure!(status == "401", "token {token:?}: {status}");
    }

    // Offboarded: the certificate lists them, and they outlive the namespaces,
    // locked.
    let records = revoked(&bed, &api, &t).await?;
    let done = api.get(&t).await?;
    let kept = done
        .status
        .and_then(|s| s.disposal)
        .context("a disposal certificate")?
        .kept;
    for (source, what) in [
        (Source::Kubernetes, "Kubernetes API requests"),
        (Source::OpenBao, "OpenBao calls"),
    ] {
        let item = kept
            .iter()
            .find(|k| k.what.contains(what))
            .with_context(|| format!("{what} in {kept:?}"))?;
        let listed: usize = item
            .what
            .strip_prefix(&format!("operation logs: {what}, "))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("the number of entries in {item:?}"))?;
        let now = oplog::summary(&store, &t, &uid, source).await?;
        ensure!(
            listed > 0 && listed <= now.entries,
            "the certificate lists {listed}, the store holds {now:?}"
        );
        ensure!(
            item.location == format!("{}operation-logs/{}/", records.location, source.as_str()),
            "{item:?}"
        );
    }
    let first = store
        .list(&oplog::prefix(&t, &uid, Source::Kubernetes))
        .await?
        .into_iter()
        .next()
        .context("an object of operation logs")?;
    let (said, code) = answer(&s3(&bed, "DELETE", &first.key, None)?);
    ensure!(
        code == "403" && said.contains("object lock"),
        "DELETE: {code} {said}"
    );
    ensure!(
        oplog::read(&store, &t, &uid, Source::Kubernetes)
            .await?
            .iter()
            .any(by_member),
        "the member's requests are read back after the namespaces are gone"
    );
    Ok(())
}

/// `kubectl exec`, `cp`, `attach` and `port-forward` into dev are how masked
/// samples and models leave without an export (R-12, R-24): under
/// `interactiveAccess: Audited` (the default) each session is kept in the
/// tenant's operation log, who and which pod; under `None` there is none.
#[tokio::test]
async fn a_session_into_a_dev_pod_is_kept_and_none_refuses_every_one() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let store = store(&bed)?;
    let t = unique("session");
    let dev_member = unique("session-dev");
    bed.apply(&authorization(&t, &[(&dev_member, true)])?)?;
    let uid = bed.wait_ready(&t).await?.metadata.uid.context("uid")?;
    let dev = format!("{t}-dev");
    let pod = bed.probe(&dev, "box").await?;

    // Audited: the session happens, and the log has it.
    let said = run_ok(bed.kubectl().args([
        "--as",
        &dev_member,
        "-n",
        &dev,
        "exec",
        &pod.name,
        "--",
        "echo",
        "in-session",
    ]))?;
    ensure!(said.contains("in-session"), "{said}");
    let sessions = logged(
        &store,
        &t,
        &uid,
        Source::Kubernetes,
        "the exec session",
        |e| {
            e["impersonatedUser"]["username"] == dev_member.as_str()
                && e["objectRef"]["subresource"] == "exec"
        },
    )
    .await?;
    ensure!(
        sessions[0]["objectRef"]["name"] == pod.name.as_str()
            && sessions[0]["objectRef"]["namespace"] == dev.as_str(),
        "the record names the pod: {}",
        sessions[0]
    );

    // None: no exec, attach or port-forward, by the same member.
    run_ok(bed.kubectl().args([
        "patch",
        "operatorauthorization",
        &t,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"interactiveAccess":"None"}}"#,
    ]))?;
    eventually(
        "the sessions to be refused",
        std::time::Duration::from_secs(60),
        || async {
            let out = run(bed.kubectl().args([
                "--as",
                &dev_member,
                "-n",
                &dev,
                "exec",
                &pod.name,
                "--",
                "true",
            ]))?;
            Ok((!out.status.success()
                && String::from_utf8_lossy(&out.stderr).contains("forbidden"))
            .then_some(()))
        },
    )
    .await?;
    for sub in ["pods/portforward", "pods/attach", "pods/exec"] {
        ensure!(
            !e2e::can_i(&bed, &dev_member, &["create", sub, "-n", &dev])?,
            "{sub} must be refused under interactiveAccess None"
        );
    }
    // A port-forward tried for real: refused at once (one that were allowed
    // would run until the timeout).
    let out = run(bed.kubectl().args([
        "--as",
        &dev_member,
        "-n",
        &dev,
        "port-forward",
        &format!("pod/{}", pod.name),
        "--request-timeout=20s",
        ":8080",
    ]))?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("forbidden"),
        "a port-forward under interactiveAccess None: {out:?}"
    );
    // The member still develops there: the refusal is of sessions only.
    ensure!(
        e2e::can_i(&bed, &dev_member, &["create", "deployments", "-n", &dev])?,
        "the control: the member still creates deployments in dev"
    );
    Ok(())
}
