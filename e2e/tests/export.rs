//! ExportRequest against the real API server, OpenBao and operator: products
//! leave only through an approved, digest-pinned export.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::scenarios::{
    RECIPIENT, approve_all, example_scenario, export_request as export, wait_export,
};
use e2e::{TestBed, authorization, eventually, run_ok, unique};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use publicdata_operator::api::{DataScenario, ExportRequest, OperatorAuthorization};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(60);
/// A bureau officer (the chart lets the bureau read the audit log and trace).
const BUREAU: [&str; 4] = ["--as", "zhao.lei", "--as-group", "publicdata:bureau"];

/// A tenant with an Active scenario (approved by the bureau and both agencies).
async fn tenant_with_active_scenario(bed: &TestBed) -> Result<(String, String)> {
    let admin = bed.client().await?;
    bed.apply_file(&e2e::repo().join("examples/datasets.yaml"))?;
    let t = unique("exp");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let scenarios: Api<DataScenario> = Api::namespaced(admin.clone(), &format!("{t}-dev"));
    scenarios
        .create(
            &PostParams::default(),
            &serde_json::from_value(example_scenario(&t)?)?,
        )
        .await?;
    let digest = eventually("the list digest", WAIT, || async {
        Ok(scenarios
            .get("commuter-flows")
            .await?
            .status
            .and_then(|st| st.items_digest))
    })
    .await?;
    approve_all(bed, &t, &digest).await?;
    eventually("scenario Active", WAIT, || async {
        let st = scenarios
            .get("commuter-flows")
            .await?
            .status
            .unwrap_or_default();
        Ok((format!("{:?}", st.phase) == "Some(Active)").then_some(()))
    })
    .await?;
    Ok((t, alice))
}

/// A table a prod job leaves: district flows, counts, shares, peak hours
/// (enough distinct values to carry a fingerprint).
fn product(rows: usize) -> String {
    let districts = ["North", "Harbor", "Old Town", "University", "Airport"];
    let mut out = String::from("district_from,district_to,weekday_commuters,share,peak_hour\n");
    for i in 0..rows {
        out.push_str(&format!(
            "{},{},{},0.{:04},0{}:{}0\n",
            districts[i % 5],
            districts[(i / 5) % 5],
            1000 + 37 * i,
            (i * 7919) % 9973 + 1,
            7 + i % 3,
            i % 6
        ));
    }
    out
}

/// The values of a CSV text as any reader sees them; decimals as numbers.
fn cells(text: &str) -> Result<Vec<Vec<String>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| {
            Ok(r?
                .iter()
                .map(|v| match (v.contains('.'), v.parse::<f64>()) {
                    (true, Ok(x)) => format!("{x}"),
                    _ => v.to_string(),
                })
                .collect())
        })
        .collect()
}

/// What a leaker does with a copy: rows shuffled, column `drop` removed,
/// saved again by a CSV library (quoting only where needed, CRLF).
fn resave(text: &str, drop: usize) -> Result<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| Ok(r?.iter().map(String::from).collect()))
        .collect::<Result<_>>()?;
    let header = rows.remove(0);
    rows.reverse();
    rows.rotate_left(17);
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in std::iter::once(&header).chain(&rows) {
        writer.write_record(
            row.iter()
                .enumerate()
                .filter(|(j, _)| *j != drop)
                .map(|(_, v)| v),
        )?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("saving the copy: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}

/// The test bed, a tenant with an Active scenario and its member, and the
/// tenant's exports as the admin and as the member.
async fn exporting_tenant() -> Result<(
    TestBed,
    String,
    String,
    Api<ExportRequest>,
    Api<ExportRequest>,
)> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, alice) = tenant_with_active_scenario(&bed).await?;
    let api = Api::namespaced(bed.client().await?, &format!("{t}-dev"));
    let as_alice = Api::namespaced(bed.client_as(&alice, &[]).await?, &format!("{t}-dev"));
    Ok((bed, t, alice, api, as_alice))
}

fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

async fn put_artifact(bed: &TestBed, t: &str, name: &str, content: &str) -> Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(bed.client().await?, &format!("{t}-prod"));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"report.csv": content}});
    cms.patch(
        name,
        &PatchParams::apply("e2e-tenant-job").force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

async fn decide(
    bed: &TestBed,
    t: &str,
    name: &str,
    user: &str,
    groups: &[&str],
    extra: Value,
) -> Result<(), kube::Error> {
    let client = bed
        .client_as(user, groups)
        .await
        .map_err(|e| kube::Error::Service(e.into()))?;
    let api: Api<ExportRequest> = Api::namespaced(client, &format!("{t}-dev"));
    // On what the reviewer saw: its recipient and digest (unless `extra`
    // says otherwise).
    let seen = api.get(name).await?;
    let mut decision = json!({"decision": "Approved", "reviewer": user,
        "recipientCreditCode": seen.spec.recipient.credit_code, "digest": seen.spec.digest});
    if let (Some(d), Some(e)) = (decision.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"decision": decision}})),
    )
    .await
    .map(|_| ())
}

/// The bureau's reviewer decides on export `name` (approves, with `extra`).
async fn bureau_decides(
    bed: &TestBed,
    t: &str,
    name: &str,
    extra: Value,
) -> Result<(), kube::Error> {
    decide(bed, t, name, "reviewer-li", &["publicdata:bureau"], extra).await
}

/// Where a delivered export was written, inside the `deliveries` mount.
fn delivery_path(er: &ExportRequest) -> Result<String> {
    let location = er
        .status
        .as_ref()
        .and_then(|s| s.delivered_to.clone())
        .context("deliveredTo")?;
    Ok(location
        .strip_prefix("deliveries/")
        .context("delivery path")?
        .to_string())
}

#[tokio::test]
async fn products_leave_only_through_an_approved_digest_pinned_export() -> Result<()> {
    let (bed, t, alice, api, as_alice) = exporting_tenant().await?;

    // A clean indicator table: checked, approved by the bureau, delivered.
    let clean = &product(80);
    put_artifact(&bed, &t, "index", clean).await?;
    as_alice
        .create(
            &PostParams::default(),
            &export(&t, "clean", "commuter-flows", "index", &sha256(clean))?,
        )
        .await?;
    wait_export(&api, "clean", "AwaitingReview").await?;
    match decide(&bed, &t, "clean", &alice, &[], json!({})).await {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => bail!("a tenant member must not approve an export: {other:?}"),
    }
    bureau_decides(
        &bed,
        &t,
        "clean",
        json!({"comment": "aggregated, no personal data"}),
    )
    .await?;
    let path = delivery_path(&wait_export(&api, "clean", "Delivered").await?)?;

    // The recipient reads it, with the policy the bureau wrote when it
    // admitted the recipient (the operator writes none); the digest
    // matches; the tenant's credentials cannot.
    let root = bed.vault_root()?;
    run_ok(bed.openbao_setup().args(["recipient", RECIPIENT]))?;
    let recipient_token = run_ok(bed.bao().args([
        "token",
        "create",
        &format!("-policy=recipient-{}", RECIPIENT.to_lowercase()),
        "-ttl=10m",
        "-field=token",
    ]))?;
    let recipient = bed.vault_with_token(recipient_token.trim())?;
    let got: BTreeMap<String, String> = vaultrs::kv2::read(&recipient, "deliveries", &path).await?;
    let delivered = got.get("artifact").context("artifact")?;
    // What was delivered is the approved table with its delivery's
    // fingerprint: every value the same, the bytes its own.
    ensure!(
        sha256(delivered) != sha256(clean),
        "a delivery carries a fingerprint"
    );
    ensure!(
        cells(delivered)? == cells(clean)?,
        "the fingerprint changes no value"
    );
    let status = api.get("clean").await?.status.context("status")?;
    ensure!(
        status.delivered_digest.as_deref() == Some(sha256(delivered).as_str())
            && status.fingerprint_marks.is_some_and(|m| m >= 64),
        "{status:?}"
    );
    let manifest: Value = serde_json::from_str(got.get("manifest").context("manifest")?)?;
    ensure!(
        manifest["digest"] == sha256(clean)
            && manifest["deliveredDigest"] == sha256(delivered)
            && manifest["permittedUse"]
                .as_str()
                .is_some_and(|s| s.contains("no onward"))
    );
    for env in ["dev", "prod"] {
        let tenant_client = bed.vault_with_token(&bed.workload_login(&t, env).await?)?;
        ensure!(
            vaultrs::kv2::read::<BTreeMap<String, String>>(&tenant_client, "deliveries", &path)
                .await
                .is_err(),
            "{env} must not read deliveries"
        );
    }

    // Personal data blocks the export: two findings, kinds and locations, no values.
    let id = "11010519491231002X";
    let pii = format!("district,contact\nNorth,{id}\nSouth,13812345678\nWest,110105194912310021\n");
    put_artifact(&bed, &t, "leaky", &pii).await?;
    as_alice
        .create(
            &PostParams::default(),
            &export(&t, "leaky", "commuter-flows", "leaky", &sha256(&pii))?,
        )
        .await?;
    let er = wait_export(&api, "leaky", "AwaitingReview").await?;
    let findings = er.status.clone().context("status")?.findings;
    let kinds: Vec<_> = findings.iter().map(|f| f.kind.as_str()).collect();
    // (Three lines are too few to carry a fingerprint: a finding too.)
    ensure!(
        kinds == ["ResidentId", "MobilePhone", "Untraceable"],
        "findings: {findings:?}"
    );
    ensure!(findings[0].location == "line 2, column 7", "{findings:?}");
    let status_json = serde_json::to_string(&er.status)?;
    ensure!(
        !status_json.contains(id) && !status_json.contains("13812345678"),
        "no values in the status"
    );
    bureau_decides(&bed, &t, "leaky", json!({})).await?;
    let er = e2e::wait_observed(&api, "leaky").await?;
    ensure!(
        er.status.and_then(|s| s.delivered_to).is_none(),
        "findings block delivery without an override"
    );
    // The bureau may override, with a reason, and that is audited.
    bureau_decides(
        &bed,
        &t,
        "leaky",
        json!({"overrideFindings": true, "overrideReason": "test data of the bureau itself"}),
    )
    .await?;
    wait_export(&api, "leaky", "Delivered").await?;

    // The artifact changed after it was checked: delivery refused, and the status says why.
    let v1 = "district,commuters\nNorth,1\n";
    put_artifact(&bed, &t, "moving", v1).await?;
    as_alice
        .create(
            &PostParams::default(),
            &export(&t, "moving", "commuter-flows", "moving", &sha256(v1))?,
        )
        .await?;
    wait_export(&api, "moving", "AwaitingReview").await?;
    put_artifact(&bed, &t, "moving", "district,commuters\nNorth,999999\n").await?;
    bureau_decides(&bed, &t, "moving", json!({})).await?;
    let er = wait_export(&api, "moving", "Failed").await?;
    let checks = er.status.context("status")?.checks.join("; ");
    ensure!(
        checks.contains("is not the product declared") && checks.contains("delivery refused"),
        "{checks}"
    );

    // A member cannot learn which prod ConfigMaps exist, nor the digest of
    // one it did not write: a request naming one that exists (the changed
    // artifact above, the control) under a guessed digest and one naming a
    // ConfigMap that does not exist get the same words, neither the digest.
    let real = sha256("district,commuters\nNorth,999999\n");
    let guess = sha256("a guess");
    for (name, config_map) in [("probe-there", "moving"), ("probe-gone", "no-such-map")] {
        as_alice
            .create(
                &PostParams::default(),
                &export(&t, name, "commuter-flows", config_map, &guess)?,
            )
            .await?;
    }
    let said = |er: ExportRequest| er.status.map(|s| s.checks.join("; ")).unwrap_or_default();
    let there = said(e2e::wait_observed(&api, "probe-there").await?);
    let gone = said(e2e::wait_observed(&api, "probe-gone").await?);
    ensure!(
        there.contains("is not the product declared")
            && there.replace("moving", "X") == gone.replace("no-such-map", "X"),
        "an existing and a missing ConfigMap are told apart: {there:?} / {gone:?}"
    );
    ensure!(!there.contains(&real), "the real digest is shown: {there}");

    // A scenario that does not exist: the checks say so.
    as_alice
        .create(
            &PostParams::default(),
            &export(&t, "orphan", "no-such-scenario", "index", &sha256(clean))?,
        )
        .await?;
    let er = wait_export(&api, "orphan", "Failed").await?;
    ensure!(
        er.status
            .context("status")?
            .checks
            .iter()
            .any(|c| c.contains("scenario no-such-scenario does not exist"))
    );

    // A raw value of a catalog field marked Sensitive, unmasked in an artifact.
    // (The same value the scenario test seeds; seeding is idempotent.)
    let out = e2e::run(
        bed.bao()
            .args(["secrets", "enable", "-path=catalog", "kv-v2"]),
    )?;
    ensure!(
        out.status.success() || String::from_utf8_lossy(&out.stderr).contains("already in use")
    );
    let raw_value = "raw legal_representative_id";
    vaultrs::kv2::set(
        &root,
        "catalog",
        "market/enterprise-registry/raw/legal_representative_id",
        &BTreeMap::from([("value", raw_value)]),
    )
    .await?;
    let named = format!("district,owner\nNorth,{raw_value}\n");
    put_artifact(&bed, &t, "named", &named).await?;
    as_alice
        .create(
            &PostParams::default(),
            &export(&t, "named", "commuter-flows", "named", &sha256(&named))?,
        )
        .await?;
    let er = wait_export(&api, "named", "AwaitingReview").await?;
    let findings: Vec<_> = er
        .status
        .context("status")?
        .findings
        .into_iter()
        .filter(|f| f.kind != "Untraceable")
        .collect();
    ensure!(
        findings.len() == 1
            && findings[0].kind == "SensitiveField:enterprise-registry.legal_representative_id"
            && findings[0].location == "line 2, column 7",
        "{findings:?}"
    );

    // A suspended authorization: new exports fail their checks, precisely.
    let bureau: Api<OperatorAuthorization> = Api::all(bed.bureau().await?);
    let suspend = json!({"spec": {"state": "Suspended", "stateChange": {"reason": "e2e", "decision": unique("PDB")}}});
    bureau
        .patch(&t, &PatchParams::default(), &Patch::Merge(&suspend))
        .await?;
    let oas: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    eventually("the authorization suspended", WAIT, || async {
        let oa = oas.get(&t).await?;
        Ok(
            (oa.status.and_then(|s| s.phase).map(|p| p.as_str()) == Some("Suspended"))
                .then_some(()),
        )
    })
    .await?;
    api.create(
        &PostParams::default(),
        &export(&t, "late", "commuter-flows", "index", &sha256(clean))?,
    )
    .await?;
    let er = wait_export(&api, "late", "Failed").await?;
    let checks = er.status.context("status")?.checks;
    ensure!(
        checks
            .iter()
            .any(|c| c.contains("is not Active (phase Some(Suspended))")),
        "{checks:?}"
    );

    let actions: Vec<String> = bed
        .audit_records(&t)?
        .iter()
        .filter_map(|r| r["action"].as_str().map(String::from))
        .collect();
    for a in [
        "ExportChecked",
        "ExportDelivered",
        "ExportRefused",
        "FindingsOverridden",
    ] {
        ensure!(actions.contains(&a.to_string()), "no {a} in {actions:?}");
    }
    ensure!(
        actions.iter().filter(|a| *a == "ExportDelivered").count() == 2,
        "each export delivered once"
    );
    Ok(())
}

/// A binary product in the tenant's prod namespace (a `binaryData` key).
async fn put_binary(bed: &TestBed, t: &str, name: &str, key: &str, bytes: &[u8]) -> Result<()> {
    use base64::Engine;
    let cms: Api<ConfigMap> = Api::namespaced(bed.client().await?, &format!("{t}-prod"));
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                    "binaryData": {key: encoded}});
    cms.patch(
        name,
        &PatchParams::apply("e2e-tenant-job").force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

/// Rows a prod job put in the names of a zip's entries.
const ROW_NAMES: [&str; 2] = ["11010519491231002X", "13812345678"];

/// A zip whose entries are named after rows (and hold them too).
fn zip_named_after_rows() -> Result<Vec<u8>> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for row in ROW_NAMES {
        w.start_file(
            format!("{row}.csv"),
            zip::write::SimpleFileOptions::default(),
        )?;
        w.write_all(row.as_bytes())?;
    }
    Ok(w.finish()?.into_inner())
}

fn gzip_utf16(text: &str) -> Result<Vec<u8>> {
    use std::io::Write;
    // What spreadsheet tools write: UTF-16 with a BOM; then gzip'd.
    let mut utf16 = vec![0xff, 0xfe];
    for unit in text.encode_utf16() {
        utf16.extend(unit.to_le_bytes());
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&utf16)?;
    Ok(gz.finish()?)
}

/// The review reads what a product really is: a gzip'd UTF-16 CSV with a
/// resident ID is blocked with the finding and its place inside; a product
/// the scanner cannot read is blocked as Unreadable; the same product with
/// the data removed passes and is delivered byte for byte.
#[tokio::test]
async fn the_review_reads_compressed_re_encoded_products_and_blocks_what_it_cannot_read()
-> Result<()> {
    let (bed, t, alice, api, as_alice) = exporting_tenant().await?;
    let file = |name: &str, key: &str, bytes: &[u8]| -> Result<ExportRequest> {
        let mut er = export(
            &t,
            name,
            "commuter-flows",
            name,
            &hex::encode(Sha256::digest(bytes)),
        )?;
        er.spec.artifact.key = key.into();
        Ok(er)
    };
    let cases: [(&str, &str, Vec<u8>); 4] = [
        (
            "leaky",
            "flows.csv.gz",
            gzip_utf16("区,居民身份证\n北,11010519491231002X\n")?,
        ),
        (
            "scanned",
            "flows.pdf",
            b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n".to_vec(),
        ),
        (
            "cleaned",
            "flows.csv.gz",
            gzip_utf16("区,通勤人数\n北,40213\n")?,
        ),
        // A prod job names a zip's entries after rows: the review must say
        // where a finding is without repeating a name.
        ("named", "flows.zip", zip_named_after_rows()?),
    ];
    for (name, key, bytes) in &cases {
        put_binary(&bed, &t, name, key, bytes).await?;
        as_alice
            .create(&PostParams::default(), &file(name, key, bytes)?)
            .await?;
    }
    let findings = |er: &ExportRequest| -> Vec<(String, String)> {
        er.status
            .iter()
            .flat_map(|s| {
                s.findings
                    .iter()
                    .map(|f| (f.kind.clone(), f.location.clone()))
            })
            .collect()
    };
    // A compressed product cannot carry a fingerprint: a finding of its own.
    let untraceable = (
        "Untraceable".to_string(),
        "only CSV and TSV tables (a key ending in .csv or .tsv, UTF-8) carry a fingerprint"
            .to_string(),
    );
    let leaky = wait_export(&api, "leaky", "AwaitingReview").await?;
    ensure!(
        findings(&leaky)
            == [
                (
                    "ResidentId".to_string(),
                    "gzip: line 2, column 3".to_string()
                ),
                untraceable.clone()
            ],
        "{:?}",
        findings(&leaky)
    );
    let scanned = wait_export(&api, "scanned", "AwaitingReview").await?;
    let f = findings(&scanned);
    ensure!(
        f.len() == 2
            && f[0].0 == "Unreadable"
            && f[0].1.starts_with("a PDF")
            && f[1].0 == "Untraceable",
        "{f:?}"
    );
    let cleaned = wait_export(&api, "cleaned", "AwaitingReview").await?;
    ensure!(
        findings(&cleaned) == [untraceable],
        "{:?}",
        findings(&cleaned)
    );

    let named = wait_export(&api, "named", "AwaitingReview").await?;
    ensure!(
        findings(&named).starts_with(&[
            (
                "ResidentId".to_string(),
                "entry 1: line 1, column 1".to_string()
            ),
            (
                "MobilePhone".to_string(),
                "entry 2: line 1, column 1".to_string()
            ),
        ]),
        "{:?}",
        findings(&named)
    );
    // Nothing a member reads holds a row: not the request, not its events.
    let seen = serde_json::to_string(&as_alice.get("named").await?)?
        + &run_ok(bed.kubectl().args([
            "--as",
            &alice,
            "-n",
            &format!("{t}-dev"),
            "get",
            "events",
            "-o",
            "json",
        ]))?;
    for row in ROW_NAMES {
        ensure!(
            !seen.contains(row),
            "a member reads the row {row} named in the artifact"
        );
    }

    // The bureau approves them without an override: findings block
    // delivery.
    for (name, _, _) in &cases {
        bureau_decides(&bed, &t, name, json!({})).await?;
    }
    for name in ["leaky", "scanned", "cleaned", "named"] {
        let er = e2e::wait_observed(&api, name).await?;
        ensure!(
            er.status.and_then(|s| s.delivered_to).is_none(),
            "{name}: findings block delivery without an override"
        );
    }
    // The bureau lets the clean one leave without a fingerprint, saying why:
    // it leaves byte for byte, and the record says it carries none.
    bureau_decides(&bed, &t, "cleaned", json!({"overrideFindings": true, "overrideReason": "two aggregate figures: nothing to trace"}))
    .await?;
    let cleaned = wait_export(&api, "cleaned", "Delivered").await?;
    ensure!(
        cleaned
            .status
            .as_ref()
            .is_some_and(|s| s.fingerprint_marks.is_none()),
        "no marks: {:?}",
        cleaned.status
    );
    let path = delivery_path(&cleaned)?;
    let got: BTreeMap<String, String> =
        vaultrs::kv2::read(&bed.vault_root()?, "deliveries", &path).await?;
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        got.get("artifactBase64").context("artifactBase64")?,
    )?;
    ensure!(
        bytes == cases[2].2,
        "the delivered bytes are the approved ones"
    );
    let record = bed
        .audit_records(&t)?
        .into_iter()
        .find(|r| {
            r["action"] == "ExportDelivered"
                && r["object"]
                    .as_str()
                    .is_some_and(|o| o.ends_with("/cleaned"))
        })
        .context("the delivery's record")?;
    ensure!(
        record["delivery"]["digest"] == hex::encode(Sha256::digest(&cases[2].2))
            && record["delivery"].get("fingerprint").is_none(),
        "{record}"
    );
    Ok(())
}

/// A file on disk, as a bureau officer would hold a copy found outside.
fn found_file(name: &str, content: &str) -> Result<String> {
    let path = std::env::temp_dir().join(format!("{}-{name}", unique("found")));
    std::fs::write(&path, content)?;
    Ok(path.to_string_lossy().into_owned())
}

/// A delivered table, leaked and altered the way a leaker would (rows
/// reordered, a column dropped, saved again), is traced to its delivery,
/// recipient and date; a part of another delivery is traced to that one;
/// the undelivered original and an unrelated table are traced to none; and a
/// tenant member may not run a trace.
#[tokio::test]
async fn a_leaked_copy_is_traced_to_its_delivery_and_an_unrelated_file_to_none() -> Result<()> {
    let (bed, t, alice, api, as_alice) = exporting_tenant().await?;
    let original = product(120);
    put_artifact(&bed, &t, "flows", &original).await?;

    // One product, two recipients.
    let university = "12350100MB01234567";
    let mut to_university = export(
        &t,
        "to-university",
        "commuter-flows",
        "flows",
        &sha256(&original),
    )?;
    to_university.spec.recipient.name = "Harbor University Transport Lab".into();
    to_university.spec.recipient.credit_code = university.into();
    for er in [
        export(
            &t,
            "to-institute",
            "commuter-flows",
            "flows",
            &sha256(&original),
        )?,
        to_university,
    ] {
        as_alice.create(&PostParams::default(), &er).await?;
    }
    let root = bed.vault_root()?;
    let mut copies = BTreeMap::new();
    for name in ["to-institute", "to-university"] {
        wait_export(&api, name, "AwaitingReview").await?;
        bureau_decides(&bed, &t, name, json!({})).await?;
        let er = wait_export(&api, name, "Delivered").await?;
        let got: BTreeMap<String, String> =
            vaultrs::kv2::read(&root, "deliveries", &delivery_path(&er)?).await?;
        copies.insert(name, got.get("artifact").context("artifact")?.clone());
    }
    ensure!(
        copies["to-institute"] != copies["to-university"],
        "each delivery carries its own fingerprint"
    );
    let records = bed.audit_records(&t)?;
    let delivered_at = |name: &str| -> Result<String> {
        let record = records
            .iter()
            .find(|r| {
                r["action"] == "ExportDelivered"
                    && r["object"] == format!("ExportRequest/{t}-dev/{name}")
            })
            .with_context(|| format!("no delivery record of {name}"))?;
        ensure!(
            record["delivery"]["fingerprint"]["marks"]
                .as_u64()
                .is_some_and(|m| m >= 64)
                && record["delivery"]["recipientCode"].is_string(),
            "the record names the recipient and the fingerprint: {record}"
        );
        Ok(record["time"].as_str().context("time")?.to_string())
    };
    let trace = |file: &str, who: &[&str]| -> Result<(Option<i32>, String)> {
        let out = bed.plugin(&[&["trace", file][..], who].concat())?;
        Ok((
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    };

    let traced_to = |file: &str, name: &str, recipient: String, other: &str| -> Result<()> {
        let (code, said) = trace(file, &BUREAU)?;
        ensure!(
            code == Some(0)
                && said.contains(&format!(
                    "traced to the delivery of ExportRequest/{t}-dev/{name} on {}",
                    delivered_at(name)?
                ))
                && said.contains(&recipient)
                && !said.contains(other),
            "{said}"
        );
        Ok(())
    };

    // The institute's copy, reordered, cut and saved again by a CSV library.
    let leaked = resave(&copies["to-institute"], 1)?;
    ensure!(
        !leaked.contains('"') && leaked.contains("\r\n") && !leaked.contains("district_to"),
        "the re-save took the quoting and the column: {leaked}"
    );
    traced_to(
        &found_file("leak.csv", &leaked)?,
        "to-institute",
        format!("City Transport Planning Institute ({RECIPIENT})"),
        "to-university",
    )?;

    // Forty rows of the university's copy, copied out as text.
    let part: String = copies["to-university"]
        .lines()
        .skip(50)
        .take(40)
        .map(|l| format!("{l}\n"))
        .collect();
    traced_to(
        &found_file("part.csv", &part)?,
        "to-university",
        format!("Harbor University Transport Lab ({university})"),
        "to-institute",
    )?;

    // The undelivered original, and a table that never was a product here:
    // not traced, and the trace says so (exit 3).
    for (name, content) in [
        ("original.csv", original.clone()),
        ("unrelated.csv", product(300).replace("0.", "0.9")),
    ] {
        let (code, said) = trace(&found_file(name, &content)?, &BUREAU)?;
        ensure!(
            code == Some(3) && said.contains("not traced"),
            "{name}: {said}"
        );
    }

    // A tenant member cannot run a trace (no create traces in the audit API).
    let (code, said) = trace(&found_file("leak.csv", &leaked)?, &["--as", &alice])?;
    ensure!(
        code == Some(1) && said.contains("create traces.audit.publicdata.io"),
        "a member must not trace: {said}"
    );
    Ok(())
}
