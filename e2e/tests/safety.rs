//! Nothing irreversible without the bureau, nothing touched that the operator
//! did not make, nothing leaking by an edit after a decision: each tried as a
//! careless admin, a GitOps sync with a typo or a curious member would, on
//! the test bed with the operator installed by its chart.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::pods::running_containers;
use e2e::{
    TestBed, authorization, eventually, phase, run, run_err, run_ok, unique, wait_authorization,
    wait_phase,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use publicdata_operator::api::{ExportRequest, OperatorAuthorization};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

fn condition(oa: &OperatorAuthorization, type_: &str) -> Option<(String, String, String)> {
    oa.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The API server's refusal of a patch, as text.
async fn refused<K>(api: &Api<K>, name: &str, patch: serde_json::Value) -> Result<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(kube::Error::Api(s)) => Ok(s.message),
        Err(e) => Err(e.into()),
        Ok(_) => bail!("the API server accepted {patch}"),
    }
}

fn yesterday() -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .yesterday()
        .map(|d| d.to_string())
        .unwrap_or_default()
}

async fn create_as(client: &Client, manifest: serde_json::Value) -> Result<()> {
    Api::<OperatorAuthorization>::all(client.clone())
        .create(&PostParams::default(), &serde_json::from_value(manifest)?)
        .await?;
    Ok(())
}

/// R-7 with a domain that is live when its end passes: the bureau ends the
/// validity yesterday. The domain freezes (pods stop, namespaces stay), says
/// when it will be offboarded, and is wiped only after the grace period.
#[tokio::test]
async fn an_ended_validity_freezes_the_live_domain_and_wipes_it_only_after_the_grace_period()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = bed.client().await?;
    let bureau = bed.bureau().await?;
    let api: Api<OperatorAuthorization> = Api::all(admin.clone());
    let t = unique("exp");
    create_as(&bureau, authorization(&t, &[("fay", true)])?).await?;
    let oa = bed.wait_ready(&t).await?;
    ensure!(
        oa.annotations()
            .get("publicdata.io/validity-set-by")
            .map(String::as_str)
            == Some("bureau-admin"),
        "the API server stamps who in the bureau set the validity: {:?}",
        oa.annotations()
    );
    let prod = format!("{t}-prod");
    bed.probe(&prod, "job").await?;
    ensure!(!running_containers(&bed, &prod)?.is_empty());

    // Anyone else moving the end is refused, with the reason.
    let admin_api: Api<OperatorAuthorization> = Api::all(admin.clone());
    let msg = refused(
        &admin_api,
        &t,
        json!({"spec": {"validity": {"notAfter": yesterday()},
                        "validityChange": {"reason": "typo", "decision": "none"}}}),
    )
    .await?;
    ensure!(
        msg.contains("only the bureau (group publicdata:bureau) changes spec.validity"),
        "{msg}"
    );
    // The bureau needs a decision for it.
    let bureau_api: Api<OperatorAuthorization> = Api::all(bureau.clone());
    let msg = refused(
        &bureau_api,
        &t,
        json!({"spec": {"validity": {"notAfter": yesterday()}}}),
    )
    .await?;
    ensure!(msg.contains("needs spec.validityChange"), "{msg}");

    // The bureau ends it yesterday: frozen, not wiped.
    bureau_api
        .patch(
            &t,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"validity": {"notAfter": yesterday()},
                "validityChange": {"reason": "e2e: agreement ended early", "decision": unique("PDB")}}})),
        )
        .await?;
    let expiring = wait_authorization(&api, &t, "Expiring and Frozen", |oa| {
        phase(oa) == "Expiring"
            && condition(oa, "Frozen").is_some_and(|c| c.0 == "True")
            && condition(oa, "Expiring").is_some_and(|c| c.0 == "True" && c.1 == "GracePeriod")
    })
    .await?;
    let st = expiring.status.clone().context("status")?;
    let frozen_at = st.expired_at.context("expiredAt")?.0;
    let offboard_at = st.offboard_after.context("offboardAfter")?.0;
    ensure!(
        offboard_at.duration_since(frozen_at) == jiff::SignedDuration::from_secs(30),
        "the grace period is the configured 30 s: {frozen_at} .. {offboard_at}"
    );
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    ensure!(
        namespaces.get_opt(&prod).await?.is_some(),
        "frozen, the namespace is still there"
    );
    eventually("the prod workload to stop", WAIT, || async {
        Ok(running_containers(&bed, &prod)?.is_empty().then_some(()))
    })
    .await?;

    // After the grace period: offboarded like a revocation, ending Expired.
    let expired = wait_phase(&api, &t, "Expired").await?;
    let cert = expired
        .status
        .and_then(|s| s.disposal)
        .context("certificate")?;
    let completed: jiff::Timestamp = cert.completed_at.parse()?;
    ensure!(
        completed >= offboard_at,
        "wiped at {completed}, before the grace period ended at {offboard_at}"
    );
    ensure!(
        cert.outcome == "Expired" && cert.review.iter().all(|l| l.starts_with("ok")),
        "{cert:?}"
    );
    ensure!(namespaces.get_opt(&prod).await?.is_none());
    let actions: Vec<String> = bed
        .audit_records(&t)?
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default().to_string())
        .collect();
    let at = |a: &str| actions.iter().position(|x| x == a);
    ensure!(
        at("ValidityExpired") < at("OffboardingStarted") && at("ValidityExpired").is_some(),
        "expiry recorded before offboarding: {actions:?}"
    );
    run_ok(bed.kubectl().args(["delete", "oa", &t, "--wait=false"]))?;
    Ok(())
}

/// The validity stamp is the API server's: a create by anyone but the bureau
/// carries none (its end would never be acted on), and nobody writes it by hand.
#[tokio::test]
async fn only_a_bureau_change_of_the_validity_is_stamped_and_the_stamp_cannot_be_forged()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(admin.clone());
    let t = unique("stamp");
    bed.apply(&authorization(&t, &[])?)?;
    let oa = api.get(&t).await?;
    ensure!(
        !oa.annotations()
            .contains_key("publicdata.io/validity-set-by"),
        "a GitOps or admin create is not the bureau's: {:?}",
        oa.annotations()
    );
    let msg = refused(
        &api,
        &t,
        json!({"metadata": {"annotations": {"publicdata.io/validity-set-by": "bureau-admin"}}}),
    )
    .await?;
    ensure!(msg.contains("cannot be set by hand"), "{msg}");
    let mut forged = authorization(&unique("stamp"), &[])?;
    forged["metadata"]["annotations"] = json!({"publicdata.io/validity-set-by": "bureau-admin"});
    let out = run_err(
        bed.kubectl()
            .args(["create", "-f", "-"])
            .arg("--dry-run=server")
            .stdin_json(&forged)?,
    )?;
    ensure!(out.contains("cannot be set by hand"), "{out}");
    run_ok(bed.kubectl().args(["patch", "oa", &t, "--type", "merge", "--as", "bureau-admin",
        "--as-group", "publicdata:bureau", "-p",
        r#"{"spec":{"state":"Revoked","stateChange":{"reason":"e2e cleanup","decision":"PDB-cleanup"}}}"#]))?;
    Ok(())
}

/// A namespace with the tenant's name that the operator did not make for this
/// authorization is refused, never adopted, and survives the offboarding.
#[tokio::test]
async fn a_namespace_someone_else_made_is_never_adopted_nor_deleted() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(admin.clone());
    let t = unique("taken");
    let prod = format!("{t}-prod");
    run_ok(bed.kubectl().args(["create", "namespace", &prod]))?;
    run_ok(bed.kubectl().args([
        "-n",
        &prod,
        "create",
        "configmap",
        "payroll",
        "--from-literal=owner=finance",
    ]))?;

    bed.apply(&authorization(&t, &[])?)?;
    let oa = wait_authorization(&api, &t, "Ready=False NameTaken", |oa| {
        condition(oa, "Ready").is_some_and(|c| c.0 == "False" && c.1 == "NameTaken")
    })
    .await?;
    let (_, _, message) = condition(&oa, "NamesAvailable").context("NamesAvailable")?;
    ensure!(
        message.contains(&format!(
            "namespace {prod} exists and was not made by the operator"
        )),
        "{message}"
    );
    let events = run_ok(bed.kubectl().args([
        "get",
        "events",
        "-A",
        "--field-selector",
        &format!("involvedObject.name={t},reason=NameTaken"),
        "-o",
        "name",
    ]))?;
    ensure!(!events.trim().is_empty(), "a NameTaken event");
    let ns = Api::<Namespace>::all(admin.clone()).get(&prod).await?;
    ensure!(
        !ns.labels().contains_key("publicdata.io/tenant"),
        "not adopted: {:?}",
        ns.labels()
    );
    ensure!(
        Api::<Namespace>::all(admin.clone())
            .get_opt(&format!("{t}-dev"))
            .await?
            .is_none(),
        "nothing is provisioned while a name is taken"
    );

    // The bureau revokes it: the foreign namespace and its data stay.
    bed.set_state(&t, "Revoked").await?;
    let revoked = wait_phase(&api, &t, "Revoked").await?;
    let cert = revoked
        .status
        .and_then(|s| s.disposal)
        .context("certificate")?;
    ensure!(
        cert.review.iter().any(|l| l.contains(&format!(
            "namespace {prod} is not this authorization's: untouched"
        ))),
        "{:?}",
        cert.review
    );
    let payroll = Api::<ConfigMap>::namespaced(admin.clone(), &prod)
        .get("payroll")
        .await?;
    ensure!(
        payroll
            .data
            .unwrap_or_default()
            .get("owner")
            .map(String::as_str)
            == Some("finance")
    );
    run_ok(
        bed.kubectl()
            .args(["delete", "namespace", &prod, "--wait=false"]),
    )?;
    Ok(())
}

/// The same for OpenBao: a KV mount at the tenant's path that the operator
/// did not make is neither used nor wiped.
#[tokio::test]
async fn an_openbao_mount_someone_else_made_is_never_adopted_nor_wiped() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(admin.clone());
    let t = unique("bao");
    let mount = format!("areas/{t}-dev");
    run_ok(bed.bao().args([
        "secrets",
        "enable",
        "-version=2",
        "-description=finance team ledger",
        &format!("-path={mount}"),
        "kv",
    ]))?;
    run_ok(bed.bao().args([
        "kv",
        "put",
        &format!("-mount={mount}"),
        "ledger",
        "total=42",
    ]))?;

    bed.apply(&authorization(&t, &[])?)?;
    let oa = wait_authorization(&api, &t, "VaultConfigured=False", |oa| {
        condition(oa, "VaultConfigured").is_some_and(|c| c.0 == "False")
    })
    .await?;
    let (_, _, message) = condition(&oa, "VaultConfigured").context("VaultConfigured")?;
    ensure!(
        message.contains(&format!(
            "mount {mount} exists but was not made by the operator"
        )),
        "{message}"
    );
    ensure!(condition(&oa, "Ready").is_some_and(|c| c.0 == "False"));

    bed.set_state(&t, "Revoked").await?;
    let revoked = wait_phase(&api, &t, "Revoked").await?;
    let cert = revoked
        .status
        .and_then(|s| s.disposal)
        .context("certificate")?;
    ensure!(
        cert.review.iter().any(|l| l.contains(&format!(
            "mount {mount} is not this authorization's: untouched"
        ))),
        "{:?}",
        cert.review
    );
    let ledger = run_ok(bed.bao().args([
        "kv",
        "get",
        "-field=total",
        &format!("-mount={mount}"),
        "ledger",
    ]))?;
    ensure!(
        ledger.trim() == "42",
        "the foreign data is intact: {ledger}"
    );
    run_ok(bed.bao().args(["secrets", "disable", &mount]))?;
    Ok(())
}

/// Removing an environment would leave its namespace and credentials live and
/// untracked: the API server refuses it.
#[tokio::test]
async fn an_environment_cannot_be_removed_from_an_authorization() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("envs");
    bed.apply(&authorization(&t, &[])?)?;
    let api: Api<OperatorAuthorization> = Api::all(bed.bureau().await?);
    let msg = refused(&api, &t, json!({"spec": {"environments": ["dev"]}})).await?;
    ensure!(msg.contains("an environment cannot be removed"), "{msg}");
    bed.set_state(&t, "Revoked").await?;
    Ok(())
}

/// Once the bureau decided on an export, what it decided on cannot be
/// redirected: recipient, purpose, permitted use, artifact.
#[tokio::test]
async fn an_export_decision_fixes_what_was_decided() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("xfix");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    let ns = format!("{t}-dev");
    let request = json!({
        "apiVersion": "publicdata.io/v1alpha1", "kind": "ExportRequest",
        "metadata": {"name": "report", "namespace": ns},
        "spec": {
            "scenario": "commuter-flows",
            "product": {"type": "Report", "name": "flows", "version": "1"},
            "artifact": {"configMap": "out", "key": "report.csv"},
            "digest": "0".repeat(64),
            "recipient": {"name": "City Transport Planning", "creditCode": "91310000MA1K4CM92X", "agreement": "A-1"},
            "purpose": "transport plan",
            "permittedUse": "internal planning only",
            "pricing": {"price": "0", "basis": "public interest"},
            "decision": {"decision": "Approved", "reviewer": "bureau-admin", "comment": "e2e",
                         "recipientCreditCode": "91310000MA1K4CM92X", "digest": "0".repeat(64)}
        }
    });
    let bureau: Api<ExportRequest> = Api::namespaced(bed.bureau().await?, &ns);
    bureau
        .create(&PostParams::default(), &serde_json::from_value(request)?)
        .await?;
    let admin: Api<ExportRequest> = Api::namespaced(bed.client().await?, &ns);
    for patch in [
        json!({"spec": {"recipient": {"name": "Data Broker Ltd", "creditCode": "91110000802100433B", "agreement": "X"}}}),
        json!({"spec": {"purpose": "resale"}}),
        json!({"spec": {"permittedUse": "anything"}}),
        json!({"spec": {"artifact": {"configMap": "other", "key": "raw.csv"}}}),
        json!({"spec": {"pricing": {"price": "1000000", "basis": "resale"}}}),
    ] {
        let msg = refused(&admin, "report", patch.clone()).await?;
        ensure!(
            msg.contains("the bureau decided on this request"),
            "{patch}: {msg}"
        );
    }
    bed.set_state(&t, "Revoked").await?;
    Ok(())
}

/// Raw data ends up in prod logs: members never read them; the bureau's
/// auditors do. Tried with a real pod and `kubectl logs`.
#[tokio::test]
async fn members_cannot_read_prod_logs_and_auditors_can() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("logs");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let speak = json!({"containers": [{"command": ["sh", "-c",
        "echo resident-110101199003077777; mkdir -p /tmp/www; exec httpd -f -p 8080 -h /tmp/www"]}]});
    for env in ["dev", "prod"] {
        bed.probe_with(&format!("{t}-{env}"), "job", speak.clone())
            .await?;
    }
    let logs = |env: &str, as_: &[&str]| {
        run(bed
            .kubectl()
            .args(["-n", &format!("{t}-{env}"), "logs", "job"])
            .args(as_))
    };
    let member = ["--as", alice.as_str()];
    let auditor = ["--as", "auditor-ann", "--as-group", "publicdata:bureau"];
    let prod = logs("prod", &member)?;
    ensure!(
        !prod.status.success() && String::from_utf8_lossy(&prod.stderr).contains("Forbidden"),
        "a member reads prod logs: {}",
        String::from_utf8_lossy(&prod.stdout)
    );
    let audited = logs("prod", &auditor)?;
    ensure!(
        String::from_utf8_lossy(&audited.stdout).contains("resident-110101199003077777"),
        "the auditor reads prod logs: {}",
        String::from_utf8_lossy(&audited.stderr)
    );
    let dev = logs("dev", &member)?;
    ensure!(dev.status.success(), "members read dev logs (masked data)");
    bed.set_state(&t, "Revoked").await?;
    Ok(())
}

/// A tenant never opens a port on the node or takes an outside address,
/// whoever asks (a member in dev, a cluster admin).
#[tokio::test]
async fn tenant_namespaces_refuse_node_ports_load_balancers_and_external_ips() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let t = unique("svc");
    let dev_member = unique("dora");
    bed.apply(&authorization(&t, &[(&dev_member, true)])?)?;
    bed.wait_ready(&t).await?;
    let ns = format!("{t}-dev");
    let service = |name: &str, spec: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": ns},
               "spec": spec})
    };
    let port = json!([{"port": 80, "targetPort": 8080}]);
    let cases = [
        (
            "np",
            json!({"type": "NodePort", "ports": port, "selector": {"app": "x"}}),
            "type NodePort",
        ),
        (
            "lb",
            json!({"type": "LoadBalancer", "ports": port, "selector": {"app": "x"}}),
            "type LoadBalancer",
        ),
        (
            "ext",
            json!({"ports": port, "selector": {"app": "x"}, "externalIPs": ["10.213.0.77"]}),
            "externalIPs",
        ),
    ];
    for (name, spec, expected) in cases {
        for as_ in [vec![], vec!["--as", dev_member.as_str()]] {
            let out = run_err(
                bed.kubectl()
                    .args(["create", "-f", "-"])
                    .args(&as_)
                    .stdin_json(&service(name, spec.clone()))?,
            )?;
            ensure!(
                out.contains(expected) && out.contains("publicdata-tenant-services"),
                "{name} {as_:?}: {out}"
            );
        }
    }
    run_ok(
        bed.kubectl()
            .args(["create", "-f", "-", "--as", &dev_member])
            .stdin_json(&service(
                "web",
                json!({"ports": port, "selector": {"app": "x"}}),
            ))?,
    )?;
    bed.set_state(&t, "Revoked").await?;
    Ok(())
}

/// A tenant id used again after an offboarding is a new authorization: its
/// offboarding runs in full, with an archive and audit history of its own.
#[tokio::test]
async fn a_name_used_again_gets_a_fresh_archive_and_a_full_offboarding() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(admin.clone());
    let t = unique("again");
    let mut certificates = Vec::new();
    for round in 0..2 {
        bed.apply(&authorization(&t, &[])?)?;
        let oa = bed.wait_ready(&t).await?;
        ensure!(
            oa.status.as_ref().is_some_and(|s| s.disposal.is_none()),
            "round {round}: a fresh authorization carries no old certificate"
        );
        bed.set_state(&t, "Revoked").await?;
        let done = wait_phase(&api, &t, "Revoked").await?;
        certificates.push(
            done.status
                .and_then(|s| s.disposal)
                .context("certificate")?,
        );
        run_ok(bed.kubectl().args(["delete", "oa", &t, "--wait=true"]))?;
    }
    ensure!(
        certificates[0].inventory != certificates[1].inventory,
        "each authorization has its own archive: {} vs {}",
        certificates[0].inventory,
        certificates[1].inventory
    );
    let records = bed.audit_records(&t)?;
    for action in [
        "OffboardingStarted",
        "DomainArchived",
        "DomainDisposed",
        "DomainProvisioned",
    ] {
        let n = records.iter().filter(|r| r["action"] == action).count();
        ensure!(
            n == 2,
            "{action} recorded {n} times over two authorizations"
        );
    }
    Ok(())
}

/// The exit review reads the world: a volume of the tenant that would outlive
/// it (reclaim policy Retain) stops the offboarding with a condition naming
/// it, and no certificate, until it is dealt with.
#[tokio::test]
async fn a_volume_that_would_outlive_the_tenant_stops_the_offboarding_until_it_is_gone()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(admin.clone());
    let t = unique("vol");
    bed.apply(&authorization(&t, &[])?)?;
    bed.wait_ready(&t).await?;
    let prod = format!("{t}-prod");
    bed.apply(&json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "ledger", "namespace": prod},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}
    }))?;
    bed.probe_with(
        &prod,
        "writer",
        json!({
            "volumes": [{"name": "ledger", "persistentVolumeClaim": {"claimName": "ledger"}}],
            "containers": [{"volumeMounts": [{"name": "ledger", "mountPath": "/ledger"}]}]
        }),
    )
    .await?;
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(admin.clone(), &prod);
    let pv = claims
        .get("ledger")
        .await?
        .spec
        .and_then(|s| s.volume_name)
        .context("the claim is bound")?;
    run_ok(bed.kubectl().args([
        "patch",
        "pv",
        &pv,
        "-p",
        r#"{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}"#,
    ]))?;

    bed.set_state(&t, "Revoked").await?;
    let stuck = wait_authorization(&api, &t, "the exit review to name the volume", |oa| {
        condition(oa, "Degraded")
            .is_some_and(|c| c.0 == "True" && c.1 == "ExitReviewFailed" && c.2.contains(&pv))
    })
    .await?;
    ensure!(
        phase(&stuck) == "Offboarding",
        "no final phase while data is left: {}",
        phase(&stuck)
    );
    let stuck_status = stuck.status.clone().context("status")?;
    ensure!(
        stuck_status.offboarding.as_deref() == Some("ExitReviewFailed"),
        "the offboarding stops in a state that names it: {:?}",
        stuck_status.offboarding
    );
    ensure!(
        stuck_status.disposal.is_none(),
        "no certificate while data is left"
    );
    ensure!(
        bed.audit_records(&t)?
            .iter()
            .any(|r| r["action"] == "ExitReviewFailed"
                && r["reason"].as_str().is_some_and(|s| s.contains(&pv))),
        "the failed review is in the audit trail"
    );

    // Dealt with: the offboarding finishes by itself.
    run_ok(bed.kubectl().args(["delete", "pv", &pv, "--wait=true"]))?;
    let done = wait_phase(&api, &t, "Revoked").await?;
    let cert = done
        .status
        .and_then(|s| s.disposal)
        .context("certificate")?;
    ensure!(
        cert.review.iter().all(|l| l.starts_with("ok")),
        "{:?}",
        cert.review
    );
    Ok(())
}

/// Feeding JSON to `kubectl ... -f -`.
trait StdinJson {
    fn stdin_json(&mut self, value: &serde_json::Value) -> Result<&mut Self>;
}

impl StdinJson for std::process::Command {
    fn stdin_json(&mut self, value: &serde_json::Value) -> Result<&mut Self> {
        let path = std::env::temp_dir().join(format!("{}.json", unique("manifest")));
        std::fs::write(&path, serde_json::to_vec(value)?)?;
        self.stdin(std::fs::File::open(&path)?);
        Ok(self)
    }
}
