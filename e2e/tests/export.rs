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
    let mut decision = json!({"decision": "Approved", "reviewer": user});
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
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, alice) = tenant_with_active_scenario(&bed).await?;
    let api: Api<ExportRequest> = Api::namespaced(bed.client().await?, &format!("{t}-dev"));
    let as_alice: Api<ExportRequest> =
        Api::namespaced(bed.client_as(&alice, &[]).await?, &format!("{t}-dev"));

    // A clean indicator report: checked, approved by the bureau, delivered.
    let clean = "district,commuters,avg_minutes\nNorth,40213,37.5\nSouth,18877,29.1\n";
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
    decide(
        &bed,
        &t,
        "clean",
        "reviewer-li",
        &["publicdata:bureau"],
        json!({"comment": "aggregated, no personal data"}),
    )
    .await?;
    let path = delivery_path(&wait_export(&api, "clean", "Delivered").await?)?;

    // The recipient reads it; the digest matches; the tenant's credentials cannot.
    let root = bed.vault_root()?;
    let recipient_token = run_ok(bed.bao().args([
        "token",
        "create",
        &format!("-policy=recipient-{}", RECIPIENT.to_lowercase()),
        "-ttl=10m",
        "-field=token",
    ]))?;
    let recipient = bed.vault_with_token(recipient_token.trim())?;
    let got: BTreeMap<String, String> = vaultrs::kv2::read(&recipient, "deliveries", &path).await?;
    ensure!(sha256(got.get("artifact").context("artifact")?) == sha256(clean));
    let manifest: Value = serde_json::from_str(got.get("manifest").context("manifest")?)?;
    ensure!(
        manifest["digest"] == sha256(clean)
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
    ensure!(
        kinds == ["ResidentId", "MobilePhone"],
        "findings: {findings:?}"
    );
    ensure!(findings[0].location == "line 2, column 7", "{findings:?}");
    let status_json = serde_json::to_string(&er.status)?;
    ensure!(
        !status_json.contains(id) && !status_json.contains("13812345678"),
        "no values in the status"
    );
    decide(
        &bed,
        &t,
        "leaky",
        "reviewer-li",
        &["publicdata:bureau"],
        json!({}),
    )
    .await?;
    let er = e2e::wait_observed(&api, "leaky").await?;
    ensure!(
        er.status.and_then(|s| s.delivered_to).is_none(),
        "findings block delivery without an override"
    );
    // The bureau may override, with a reason, and that is audited.
    decide(
        &bed,
        &t,
        "leaky",
        "reviewer-li",
        &["publicdata:bureau"],
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
    decide(
        &bed,
        &t,
        "moving",
        "reviewer-li",
        &["publicdata:bureau"],
        json!({}),
    )
    .await?;
    let er = wait_export(&api, "moving", "Failed").await?;
    let checks = er.status.context("status")?.checks.join("; ");
    ensure!(
        checks.contains("does not match the declared") && checks.contains("delivery refused"),
        "{checks}"
    );

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
    let findings = er.status.context("status")?.findings;
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
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, alice) = tenant_with_active_scenario(&bed).await?;
    let api: Api<ExportRequest> = Api::namespaced(bed.client().await?, &format!("{t}-dev"));
    let as_alice: Api<ExportRequest> =
        Api::namespaced(bed.client_as(&alice, &[]).await?, &format!("{t}-dev"));
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
    let cases: [(&str, &str, Vec<u8>); 3] = [
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
    let leaky = wait_export(&api, "leaky", "AwaitingReview").await?;
    ensure!(
        findings(&leaky)
            == [(
                "ResidentId".to_string(),
                "flows.csv.gz > flows.csv: line 2, column 3".to_string()
            )],
        "{:?}",
        findings(&leaky)
    );
    let scanned = wait_export(&api, "scanned", "AwaitingReview").await?;
    let f = findings(&scanned);
    ensure!(
        f.len() == 1 && f[0].0 == "Unreadable" && f[0].1.starts_with("flows.pdf: a PDF"),
        "{f:?}"
    );
    let cleaned = wait_export(&api, "cleaned", "AwaitingReview").await?;
    ensure!(findings(&cleaned).is_empty(), "{:?}", findings(&cleaned));

    // The bureau approves all three without an override: findings block
    // delivery; the clean one leaves, byte for byte.
    for (name, _, _) in &cases {
        decide(
            &bed,
            &t,
            name,
            "reviewer-li",
            &["publicdata:bureau"],
            json!({}),
        )
        .await?;
    }
    let path = delivery_path(&wait_export(&api, "cleaned", "Delivered").await?)?;
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
    for name in ["leaky", "scanned"] {
        let er = e2e::wait_observed(&api, name).await?;
        ensure!(
            er.status.and_then(|s| s.delivered_to).is_none(),
            "{name}: findings block delivery without an override"
        );
    }
    Ok(())
}
