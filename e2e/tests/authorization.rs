//! OperatorAuthorization against the real API server, OpenBao and the running
//! operator: provisioning, isolation tried as an attacker would, CEL and
//! admission rules.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::{TestBed, authorization, can_i, eventually, run, run_err, run_ok, unique};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use publicdata_operator::api::OperatorAuthorization;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// Creates a tenant with one trained and one untrained member; returns
/// (tenant, trained user, untrained user).
async fn tenant(bed: &TestBed) -> Result<(String, String, String)> {
    let name = unique("t");
    let trained = unique("alice");
    let untrained = unique("bob");
    bed.apply(&authorization(
        &name,
        &[(&trained, true), (&untrained, false)],
    )?)?;
    bed.wait_ready(&name).await?;
    Ok((name, trained, untrained))
}

/// `examples/` applied as a user would: the authorization becomes Ready and
/// `kubectl get` answers the obvious questions; a second reconcile of the
/// unchanged authorization writes nothing.
#[tokio::test]
async fn example_authorization_becomes_ready_and_reconciling_again_writes_nothing() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    bed.apply_file(&e2e::repo().join("examples/datasets.yaml"))?;
    bed.apply_file(&e2e::repo().join("examples/authorization.yaml"))?;
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    let oa = bed.wait_ready("harbor-analytics").await?;
    let status = oa.status.clone().context("no status")?;
    ensure!(status.namespaces == ["harbor-analytics-dev", "harbor-analytics-prod"]);
    ensure!(status.phase.map(|p| p.as_str()) == Some("Active"));
    let li = status
        .members
        .iter()
        .find(|m| m.user == "li.ming")
        .context("li.ming in status")?;
    ensure!(
        !li.access && li.reason.contains("training"),
        "status says why: {li:?}"
    );

    let table = run_ok(bed.kubectl().args(["get", "oa", "harbor-analytics"]))?;
    for column in [
        "UNIT",
        "STATE",
        "PHASE",
        "READY",
        "EXPIRES",
        "Harbor Analytics",
        "Active",
        "True",
        "2030-12-31",
    ] {
        ensure!(
            table.contains(column),
            "`kubectl get oa` lacks {column}: {table}"
        );
    }
    let roles = run_ok(
        bed.bao()
            .args(["list", &format!("auth/{}/role", e2e::WORKLOAD_AUTH_MOUNT)]),
    )?;
    ensure!(
        roles.contains("harbor-analytics-dev") && roles.contains("harbor-analytics-prod"),
        "{roles}"
    );

    // Reconcile again (an annotation change triggers it, the spec is
    // unchanged): nothing the operator owns gets a new resourceVersion.
    let versions = |client: kube::Client| async move {
        let mut v = BTreeMap::new();
        for ns in ["harbor-analytics-dev", "harbor-analytics-prod"] {
            let n = Api::<Namespace>::all(client.clone()).get(ns).await?;
            v.insert(format!("ns/{ns}"), n.resource_version());
            for np in Api::<NetworkPolicy>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await?
            {
                v.insert(format!("np/{ns}/{}", np.name_any()), np.resource_version());
            }
            for rb in Api::<RoleBinding>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await?
            {
                v.insert(format!("rb/{ns}/{}", rb.name_any()), rb.resource_version());
            }
        }
        let oa = Api::<OperatorAuthorization>::all(client)
            .get("harbor-analytics")
            .await?;
        v.insert(
            "vault".into(),
            Some(serde_json::to_string(&oa.status.and_then(|s| s.vault))?),
        );
        anyhow::Ok(v)
    };
    let before = versions(client.clone()).await?;
    // A change of the spec that changes no object of the domain: the
    // operator reconciles it (a new generation to observe) and must apply
    // nothing new.
    let poke = json!({"spec": {"securityOfficer": {"contact": unique("officer")}}});
    api.patch(
        "harbor-analytics",
        &PatchParams::default(),
        &Patch::Merge(&poke),
    )
    .await?;
    e2e::wait_observed(&api, "harbor-analytics").await?;
    let after = versions(client).await?;
    ensure!(
        before == after,
        "a reconcile of an unchanged authorization changed something:\n{before:#?}\n{after:#?}"
    );
    // Put the example back as written, so applying examples/ again (the
    // walk-through does) meets no conflict over this field.
    let text = std::fs::read_to_string(e2e::repo().join("examples/authorization.yaml"))?;
    let example: serde_json::Value = serde_yaml::from_str(&text)?;
    let restore = json!({"spec": {"securityOfficer": example["spec"]["securityOfficer"]}});
    api.patch(
        "harbor-analytics",
        &PatchParams::default(),
        &Patch::Merge(&restore),
    )
    .await?;
    Ok(())
}

/// Isolation, tried as an attacker would with `kubectl --as`.
#[tokio::test]
async fn members_get_exactly_their_access_and_nothing_elsewhere() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, alice, bob) = tenant(&bed).await?;
    let (other, _, _) = tenant(&bed).await?;
    let dev = format!("{t}-dev");
    let prod = format!("{t}-prod");

    // A trained member creates a Deployment in dev.
    run_ok(bed.kubectl().args([
        "-n",
        &dev,
        "create",
        "deployment",
        "web",
        "--image=registry.invalid/web:1",
        "--as",
        &alice,
    ]))?;
    // In prod: sees workload controllers and the operator's summary of
    // them; no pod, event, log, Secret, exec, attach, port-forward, create.
    ensure!(can_i(
        &bed,
        &alice,
        &["get", "configmaps/publicdata-workloads", "-n", &prod]
    )?);
    for (verb, resource) in [
        ("list", "pods"),
        ("list", "deployments"),
        ("list", "jobs"),
        ("get", "pods/log"),
        ("list", "events"),
        ("list", "configmaps"),
        ("get", "secrets"),
        ("list", "secrets"),
        ("create", "pods/exec"),
        ("create", "pods/attach"),
        ("create", "pods/portforward"),
        ("create", "deployments"),
        ("delete", "networkpolicies"),
    ] {
        ensure!(
            !can_i(&bed, &alice, &[verb, resource, "-n", &prod])?,
            "{alice} may {verb} {resource} in prod"
        );
    }
    let denied = run_err(
        bed.kubectl()
            .args(["-n", &prod, "get", "secrets", "--as", &alice]),
    )?;
    ensure!(denied.contains("Forbidden"), "{denied}");
    // No member may touch isolation, quotas or RBAC, even in dev.
    for (verb, resource) in [
        ("delete", "networkpolicies"),
        ("update", "resourcequotas"),
        ("create", "rolebindings"),
        ("get", "secrets"),
    ] {
        ensure!(
            !can_i(&bed, &alice, &[verb, resource, "-n", &dev])?,
            "{alice} may {verb} {resource} in dev"
        );
    }
    // Another tenant's namespaces, and cluster-scoped resources: nothing.
    for ns in [format!("{other}-dev"), format!("{other}-prod")] {
        for (verb, resource) in [
            ("list", "pods"),
            ("create", "deployments"),
            ("get", "configmaps"),
        ] {
            ensure!(
                !can_i(&bed, &alice, &[verb, resource, "-n", &ns])?,
                "{alice} may {verb} {resource} in {ns}"
            );
        }
    }
    for (verb, resource) in [
        ("list", "namespaces"),
        ("list", "operatorauthorizations"),
        ("create", "namespaces"),
        ("list", "nodes"),
    ] {
        ensure!(
            !can_i(&bed, &alice, &[verb, resource])?,
            "{alice} may {verb} {resource} cluster-wide"
        );
    }
    let denied = run_err(bed.kubectl().args(["get", "oa", &t, "--as", &alice]))?;
    ensure!(denied.contains("Forbidden"), "{denied}");
    // An untrained member gets nothing anywhere.
    for ns in [&dev, &prod] {
        for (verb, resource) in [
            ("list", "pods"),
            ("create", "deployments"),
            ("get", "pods/log"),
        ] {
            ensure!(
                !can_i(&bed, &bob, &[verb, resource, "-n", ns])?,
                "untrained {bob} may {verb} {resource} in {ns}"
            );
        }
    }
    // The bureau's auditors read everything in the domain.
    let out = run(bed.kubectl().args([
        "auth",
        "can-i",
        "get",
        "secrets",
        "-n",
        &prod,
        "--as",
        "auditor",
        "--as-group",
        "publicdata:bureau",
    ]))?;
    ensure!(
        out.status.success(),
        "the bureau should read everything in a tenant namespace"
    );
    Ok(())
}

/// OpenBao: the dev workload token gets the dev policy only.
#[tokio::test]
async fn workload_tokens_reach_only_their_own_environment_in_openbao() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, _, _) = tenant(&bed).await?;
    let (other, _, _) = tenant(&bed).await?;
    let token = |ns: &str| -> Result<String> {
        Ok(run_ok(bed.kubectl().args([
            "-n",
            ns,
            "create",
            "token",
            "workload",
            "--audience",
            "openbao",
            "--duration",
            "10m",
        ]))?
        .trim()
        .to_string())
    };
    let root = bed.vault_root()?;
    let auth = e2e::WORKLOAD_AUTH_MOUNT;
    let (dev_area, prod_area) = (format!("areas/{t}-dev"), format!("areas/{t}-prod"));
    let dev_token = token(&format!("{t}-dev"))?;

    let login =
        vaultrs::auth::kubernetes::login(&root, auth, &format!("{t}-dev"), &dev_token).await?;
    // The platform's one policy; everything else comes from the login.
    // Not even `default` (its cubbyhole and response wrapping).
    ensure!(
        login.policies == ["publicdata-workload"],
        "{:?}",
        login.policies
    );
    let dev = bed.vault_with_token(&login.client_token)?;
    let data = BTreeMap::from([("k", "v")]);
    vaultrs::kv2::set(&dev, &dev_area, "scratch", &data).await?;
    let back: BTreeMap<String, String> = vaultrs::kv2::read(&dev, &dev_area, "scratch").await?;
    ensure!(back.get("k").map(String::as_str) == Some("v"));

    // Prod's area, written by root, and another tenant's are out of reach.
    vaultrs::kv2::set(&root, &prod_area, "raw", &data).await?;
    vaultrs::kv2::set(&root, &format!("areas/{other}-dev"), "theirs", &data).await?;
    for (mount, path) in [
        (prod_area.as_str(), "raw"),
        (&format!("areas/{other}-dev"), "theirs"),
    ] {
        match vaultrs::kv2::read::<BTreeMap<String, String>>(&dev, mount, path).await {
            Err(vaultrs::error::ClientError::APIError { code: 403, .. }) => {}
            other => bail!("a dev token must not read {mount}/{path}: {other:?}"),
        }
    }
    // The dev token cannot log in as prod; another tenant's token cannot log in here.
    for (role, jwt, why) in [
        (format!("{t}-prod"), dev_token.clone(), "dev token as prod"),
        (
            format!("{t}-dev"),
            token(&format!("{other}-dev"))?,
            "another tenant's token",
        ),
        (
            format!("{other}-dev"),
            dev_token.clone(),
            "this token as another tenant's role",
        ),
    ] {
        match vaultrs::auth::kubernetes::login(&root, auth, &role, &jwt).await {
            Err(vaultrs::error::ClientError::APIError { code: 403, .. }) => {}
            other => bail!("{why} must be refused: {other:?}"),
        }
    }
    // A token without the OpenBao audience is refused too.
    let wrong_audience =
        run_ok(
            bed.kubectl()
                .args(["-n", &format!("{t}-dev"), "create", "token", "workload"]),
        )?;
    ensure!(
        vaultrs::auth::kubernetes::login(&root, auth, &format!("{t}-dev"), wrong_audience.trim())
            .await
            .is_err()
    );
    Ok(())
}

/// The API server itself rejects what the schema can say is wrong.
#[tokio::test]
async fn api_server_rejects_invalid_authorizations() -> Result<()> {
    let bed = TestBed::from_env()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let create = |mut v: serde_json::Value, f: &dyn Fn(&mut serde_json::Value)| {
        f(&mut v);
        v
    };
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "a 6-year validity",
            create(authorization(&unique("six"), &[])?, &|v| {
                v["spec"]["validity"] = json!({"notBefore": "2026-01-01", "notAfter": "2031-12-31"})
            }),
            "at most 5 years",
        ),
        (
            "notAfter before notBefore",
            create(authorization(&unique("backwards"), &[])?, &|v| {
                v["spec"]["validity"] = json!({"notBefore": "2027-01-01", "notAfter": "2026-01-01"})
            }),
            "notBefore must be before",
        ),
        (
            "a malformed credit code",
            create(authorization(&unique("code"), &[])?, &|v| {
                v["spec"]["unit"]["creditCode"] = "91330100MA2H3K5L7".into()
            }),
            "creditCode",
        ),
        (
            "letters I/O in the credit code",
            create(authorization(&unique("code"), &[])?, &|v| {
                v["spec"]["unit"]["creditCode"] = "9133O100MA2H3K5L7U".into()
            }),
            "should match",
        ),
    ];
    for (what, manifest, expected) in cases {
        let oa: OperatorAuthorization = serde_json::from_value(manifest)?;
        match api.create(&PostParams::default(), &oa).await {
            Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains(expected) => {}
            other => bail!("{what} must be rejected with {expected:?}, got {other:?}"),
        }
    }

    // Changing the credit code, and leaving a final state.
    let name = unique("immutable");
    let oa: OperatorAuthorization = serde_json::from_value(authorization(&name, &[])?)?;
    api.create(&PostParams::default(), &oa).await?;
    let change = json!({"spec": {"unit": {"creditCode": "91350100M000100Y43"}}});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&change))
        .await
    {
        Err(kube::Error::Api(s)) if s.message.contains("cannot change") => {}
        other => bail!("a change of the credit code must be rejected, got {other:?}"),
    }
    // State changes are the bureau's, with a reason and a decision reference.
    let bureau: Api<OperatorAuthorization> = Api::all(bed.bureau().await?);
    let change = |state: &str, decision: &str| json!({"spec": {"state": state, "stateChange": {"reason": "e2e", "decision": decision}}});
    match bureau
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"state": "Suspended"}})),
        )
        .await
    {
        Err(kube::Error::Api(s)) if s.message.contains("needs spec.stateChange") => {}
        other => bail!("a state change without a decision must be rejected, got {other:?}"),
    }
    bureau
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&change("Revoked", "D-1")),
        )
        .await?;
    match bureau
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&change("Active", "D-2")),
        )
        .await
    {
        Err(kube::Error::Api(s)) if s.message.contains("terminal") => {}
        other => bail!("Revoked -> Active must be rejected, got {other:?}"),
    }
    Ok(())
}

/// A wrong check character passes the schema (CEL cannot afford the checksum)
/// but the operator refuses to provision and says why.
#[tokio::test]
async fn wrong_credit_code_check_character_is_refused_by_the_operator() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    let name = unique("checksum");
    let mut manifest = authorization(&name, &[])?;
    manifest["spec"]["unit"]["creditCode"] = "91330100MA2H3K5L7A".into();
    bed.apply(&manifest)?;
    let reason = eventually("the InvalidSpec condition", WAIT, || async {
        let oa = api.get(&name).await?;
        Ok(oa.status.and_then(|s| {
            s.conditions
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.reason == "InvalidSpec")
        }))
    })
    .await?;
    ensure!(
        reason.message.contains("check character"),
        "{}",
        reason.message
    );
    let ns = Api::<Namespace>::all(client)
        .get_opt(&format!("{name}-dev"))
        .await?;
    ensure!(
        ns.is_none(),
        "nothing may be provisioned for an invalid spec"
    );
    Ok(())
}

/// Deleting an Active authorization is refused by the admission policy.
#[tokio::test]
async fn deleting_an_active_authorization_is_refused() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    let (t, _, _) = tenant(&bed).await?;
    let stderr = run_err(bed.kubectl().args(["delete", "oa", &t, "--wait=false"]))?;
    ensure!(
        stderr.contains("publicdata-authorization-deletion") && stderr.contains("not offboarded"),
        "{stderr}"
    );
    ensure!(api.get(&t).await?.metadata.deletion_timestamp.is_none());
    // Deleting a tenant namespace by hand: the operator puts it back, isolated.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let dev = format!("{t}-dev");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &dev);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "keep"}}))?,
    )
    .await?;
    namespaces.delete(&dev, &DeleteParams::default()).await?;
    eventually(
        "the namespace to be recreated with its isolation policy",
        Duration::from_secs(90),
        || async {
            let ns = namespaces.get_opt(&dev).await?;
            let live = ns
                .map(|n| n.metadata.deletion_timestamp.is_none())
                .unwrap_or(false);
            if !live {
                return Ok(None);
            }
            let np = Api::<NetworkPolicy>::namespaced(client.clone(), &dev)
                .get_opt("tenant-isolation")
                .await?;
            Ok(np.map(|_| ()))
        },
    )
    .await
}

/// One byte of the audit log changed: `audit verify` fails and names the record.
#[tokio::test]
async fn an_edited_audit_log_fails_verification_and_names_the_record() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let (t, _, _) = tenant(&bed).await?;
    let text = std::fs::read_to_string(bed.audit_log())?;
    let (line_no, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| {
            l.contains(&format!("\"tenant\":\"{t}\"")) && l.contains("DomainProvisioned")
        })
        .context("the tenant's provisioning record")?;
    let seq = serde_json::from_str::<serde_json::Value>(line)?["seq"]
        .as_u64()
        .context("seq")?;
    // A copy, so the live log stays intact for the other tests.
    let copy = bed.dir.join(format!("{}.log", unique("tampered")));
    let edited: Vec<String> = text
        .lines()
        .take(line_no + 1)
        .enumerate()
        .map(|(i, l)| {
            if i == line_no {
                l.replacen("Success", "Succest", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&copy, edited.join("\n") + "\n")?;
    let out = bed.verify_audit(&copy)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "verify must fail on an edited log");
    ensure!(
        stderr.contains(&format!("record {seq} (line {}) was edited", line_no + 1)),
        "{stderr}"
    );
    std::fs::remove_file(&copy)?;
    Ok(())
}

/// Only the bureau changes `spec.state`: the cluster admin, a tenant member
/// and a GitOps controller are refused by the admission policy, and the API
/// server stamps who made each change.
#[tokio::test]
async fn only_the_bureau_changes_the_state_and_the_api_server_stamps_who_did() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let (t, alice, _) = tenant(&bed).await?;
    let suspend = json!({"spec": {"state": "Suspended", "stateChange": {"reason": "e2e", "decision": unique("D")}}});
    // A GitOps controller with broad rights (Argo CD often runs as cluster-admin).
    let gitops = unique("argocd");
    run_ok(bed.kubectl().args([
        "create",
        "clusterrolebinding",
        &gitops,
        "--clusterrole=cluster-admin",
        "--user",
        &gitops,
    ]))?;
    for (who, client, by_policy) in [
        ("the cluster admin", bed.client().await?, true),
        (
            "a GitOps controller",
            bed.client_as(&gitops, &[]).await?,
            true,
        ),
        ("a tenant member", bed.client_as(&alice, &[]).await?, false),
    ] {
        let api: Api<OperatorAuthorization> = Api::all(client);
        match api
            .patch(&t, &PatchParams::default(), &Patch::Merge(&suspend))
            .await
        {
            Err(kube::Error::Api(s))
                if s.code == 403 && (!by_policy || s.message.contains("only the bureau")) => {}
            other => bail!("{who} must not change the state, got {other:?}"),
        }
    }
    // The GitOps controller still manages the terms.
    let gitops_api: Api<OperatorAuthorization> = Api::all(bed.client_as(&gitops, &[]).await?);
    gitops_api
        .patch(
            &t,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"securityOfficer": {"name": "Zhou Min"}}})),
        )
        .await?;
    // The stamp cannot be forged.
    let forge =
        json!({"metadata": {"annotations": {"publicdata.io/state-changed-by": "someone-else"}}});
    let bureau: Api<OperatorAuthorization> = Api::all(bed.bureau().await?);
    match bureau
        .patch(&t, &PatchParams::default(), &Patch::Merge(&forge))
        .await
    {
        Err(kube::Error::Api(s)) if s.message.contains("cannot be set by hand") => {}
        other => bail!("forging the stamp must be refused, got {other:?}"),
    }
    // The bureau can, and the API server stamps its name.
    bureau
        .patch(&t, &PatchParams::default(), &Patch::Merge(&suspend))
        .await?;
    let stamped = admin
        .get(&t)
        .await?
        .annotations()
        .get("publicdata.io/state-changed-by")
        .cloned();
    ensure!(
        stamped.as_deref() == Some("bureau-admin"),
        "stamp: {stamped:?}"
    );
    Ok(())
}

/// a security training counts for the platform's period (the chart's
/// `trainingValidDays`); a member trained longer ago than that has no access,
/// and the status says when it lapsed, while one trained a day later works.
#[tokio::test]
async fn a_member_whose_training_lapsed_has_no_access_and_is_told_why() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let env = run_ok(bed.kubectl().args([
        "-n",
        "publicdata-system",
        "get",
        "deployment/publicdata-operator",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env[?(@.name==\"TRAINING_VALID_DAYS\")].value}",
    ]))?;
    let period: i64 = env
        .trim()
        .parse()
        .context("the operator's training period")?;
    let name = unique("lapse");
    let (lapsed, current) = (unique("lapsed"), unique("current"));
    let mut oa = authorization(&name, &[(&lapsed, true), (&current, true)])?;
    oa["spec"]["members"][0]["trainingCompleted"] = e2e::days_ago(period).into();
    oa["spec"]["members"][1]["trainingCompleted"] = e2e::days_ago(period - 1).into();
    bed.apply(&oa)?;
    let ready = bed.wait_ready(&name).await?;
    let members = ready.status.context("status")?.members;
    let said = |user: &str| members.iter().find(|m| m.user == user).cloned();
    let l = said(&lapsed).context("the lapsed member in status")?;
    ensure!(
        !l.access
            && l.reason.contains("lapsed on")
            && l.reason.contains(&format!("every {period} days")),
        "{l:?}"
    );
    let c = said(&current).context("the current member in status")?;
    ensure!(c.access && c.reason.contains("trained (until"), "{c:?}");
    let dev = format!("{name}-dev");
    ensure!(!can_i(&bed, &lapsed, &["list", "pods", "-n", &dev])?);
    ensure!(can_i(&bed, &current, &["list", "pods", "-n", &dev])?);
    Ok(())
}

/// one emergency plan per authorization. With a plan drilled ten days
/// ago the condition says whom to call and when the next drill is due;
/// without one it says what is missing.
#[tokio::test]
async fn the_emergency_plan_and_its_last_drill_are_in_the_status() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let condition = |oa: &OperatorAuthorization| {
        oa.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "EmergencyPlanReady")
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        })
    };
    let drilled = unique("drilled");
    let mut oa = authorization(&drilled, &[])?;
    oa["spec"]["emergencyPlan"]["drills"] =
        json!([{"date": e2e::days_ago(10), "result": "Passed"}]);
    bed.apply(&oa)?;
    let (status, reason, message) =
        condition(&bed.wait_ready(&drilled).await?).context("EmergencyPlanReady")?;
    ensure!(
        status == "True" && reason == "PlanOnFile",
        "{reason}: {message}"
    );
    ensure!(
        message.contains("call Chen Jing (unit security officer, +86 571 8800 0042) first")
            && message.contains(&format!("last drill {} (Passed)", e2e::days_ago(10))),
        "{message}"
    );

    let without = unique("noplan");
    let mut oa = authorization(&without, &[])?;
    oa["spec"]
        .as_object_mut()
        .context("spec")?
        .remove("emergencyPlan");
    bed.apply(&oa)?;
    let (status, reason, message) =
        condition(&bed.wait_ready(&without).await?).context("EmergencyPlanReady")?;
    ensure!(
        status == "False" && reason == "NoEmergencyPlan" && message.contains("R-31"),
        "{reason}: {message}"
    );
    Ok(())
}

/// The operator's requests in the API server's audit log that touch tenant
/// `t`, received after `since`: (verb, resource/subresource, name, when).
fn operator_requests(
    bed: &TestBed,
    t: &str,
    since: &str,
) -> Result<Vec<(String, String, String, String)>> {
    let path = bed.var("KUBE_AUDIT_LOG").context("KUBE_AUDIT_LOG")?;
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let ours = e["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("publicdata-operator/"));
        let at = e["requestReceivedTimestamp"].as_str().unwrap_or_default();
        let o = &e["objectRef"];
        let (ns, name) = (
            o["namespace"].as_str().unwrap_or_default(),
            o["name"].as_str().unwrap_or_default(),
        );
        let tenant =
            ns.starts_with(&format!("{t}-")) || name == t || name.starts_with(&format!("{t}-"));
        let after = at.parse::<jiff::Timestamp>().ok() > since.parse::<jiff::Timestamp>().ok();
        if ours && tenant && after && e["stage"] == "ResponseComplete" {
            out.push((
                e["verb"].as_str().unwrap_or_default().to_string(),
                format!(
                    "{}/{}",
                    o["resource"].as_str().unwrap_or_default(),
                    o["subresource"].as_str().unwrap_or_default()
                ),
                name.to_string(),
                at.to_string(),
            ));
        }
    }
    Ok(out)
}

/// The operator's OpenBao requests about tenant `t` after `since`: (operation, path, when).
fn operator_openbao_requests(
    bed: &TestBed,
    t: &str,
    since: &str,
) -> Result<Vec<(String, String, jiff::Timestamp)>> {
    let path = bed.var("OPENBAO_AUDIT_LOG").context("OPENBAO_AUDIT_LOG")?;
    let text = std::fs::read_to_string(path)?;
    let since: jiff::Timestamp = since.parse()?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let ours = e["auth"]["policies"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "publicdata-operator"));
        let at = e["time"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let path = e["request"]["path"].as_str().unwrap_or_default();
        if let Some(at) = at.filter(|a| *a > since)
            && e["type"] == "request"
            && ours
            && path.contains(t)
        {
            out.push((
                e["request"]["operation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                path.to_string(),
                at,
            ));
        }
    }
    Ok(out)
}

/// A resync of an unchanged domain sends no write, to the API server or to
/// OpenBao (counted from their own audit logs); what someone changes by hand
/// is put back: a NetworkPolicy and a Role at once (their watch), a tenant
/// policy in OpenBao within one resync.
#[tokio::test]
async fn a_resync_writes_nothing_and_what_is_changed_by_hand_is_put_back() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let (t, _, _) = tenant(&bed).await?;
    let (dev, prod) = (format!("{t}-dev"), format!("{t}-prod"));
    // The prod workload summary is written once by its own controller, after
    // the namespace is made: that first write is not a resync's.
    eventually(
        "prod's workload summary",
        Duration::from_secs(60),
        || async {
            Ok(run(bed
                .kubectl()
                .args(["-n", &prod, "get", "configmap", "publicdata-workloads"]))?
            .status
            .success()
            .then_some(()))
        },
    )
    .await?;
    // Watch one resync: it lies between the operator's next two reads of the
    // authorization (a reconcile starts with one; reconciles of one
    // authorization never overlap).
    let since = jiff::Timestamp::now().to_string();
    let until = eventually(
        "two resyncs of the tenant (the operator reads its authorization twice)",
        Duration::from_secs(120),
        || async {
            let gets: Vec<String> = operator_requests(&bed, &t, &since)?
                .into_iter()
                .filter(|(verb, what, name, _)| {
                    verb == "get" && what == "operatorauthorizations/" && name == &t
                })
                .map(|(_, _, _, at)| at)
                .collect();
            Ok(gets.get(1).cloned())
        },
    )
    .await?;
    let kube: Vec<_> = operator_requests(&bed, &t, &since)?
        .into_iter()
        .filter(|(_, _, _, at)| at.parse::<jiff::Timestamp>().ok() < until.parse().ok())
        .collect();
    // (The provisioning's Events may be posted just after Ready: not counted.)
    let writes: Vec<_> = kube
        .iter()
        .filter(|(verb, what, _, _)| {
            !matches!(verb.as_str(), "get" | "list" | "watch") && what != "events/"
        })
        .collect();
    ensure!(
        writes.is_empty(),
        "a resync of an unchanged domain wrote to the API server: {writes:?}"
    );
    let until_bao: jiff::Timestamp = until.parse()?;
    let bao: Vec<_> = operator_openbao_requests(&bed, &t, &since)?
        .into_iter()
        .filter(|(_, _, at)| at < &until_bao)
        .collect();
    let bao_writes: Vec<_> = bao
        .iter()
        .filter(|(op, _, _)| !matches!(op.as_str(), "read" | "list"))
        .collect();
    ensure!(
        bao_writes.is_empty(),
        "a resync wrote to OpenBao: {bao_writes:?}"
    );
    ensure!(
        bao.len() <= 1,
        "a resync of an unchanged tenant reads at most one OpenBao object: {bao:?} (between {since} and {until})"
    );

    // The isolation policy opened by hand, and a RoleBinding deleted: both
    // back at once.
    let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), &dev);
    let desired = nps.get("tenant-isolation").await?.spec;
    let open = json!({"spec": {"ingress": [{}], "egress": [{}]}});
    nps.patch(
        "tenant-isolation",
        &PatchParams::default(),
        &Patch::Merge(&open),
    )
    .await?;
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        Api::namespaced(client.clone(), &prod);
    let audit = bindings.get("bureau-audit").await?;
    bindings
        .delete("bureau-audit", &DeleteParams::default())
        .await?;
    eventually(
        "the NetworkPolicy and the RoleBinding put back",
        Duration::from_secs(30),
        || async {
            let np = nps.get("tenant-isolation").await?.spec;
            let back = bindings
                .get_opt("bureau-audit")
                .await?
                .is_some_and(|b| b.role_ref == audit.role_ref && b.subjects == audit.subjects);
            Ok((np == desired && back).then_some(()))
        },
    )
    .await?;

    // An identity's grants widened in OpenBao by hand (dev given the raw
    // data, as root can): back within one resync.
    let name = format!("identity/entity/name/publicdata-{t}-dev");
    let before = run_ok(
        bed.bao()
            .args(["read", "-format=json", "-field=metadata", &name]),
    )?;
    let before: serde_json::Value = serde_json::from_str(&before)?;
    let mut wider = before.clone();
    for (i, segment) in ["transport", "bus-ridership", "raw"].iter().enumerate() {
        wider[publicdata_operator::vault::catalog_key(31, 3, i + 1)] = json!(segment);
    }
    let body = json!({ "metadata": wider }).to_string();
    let file = std::env::temp_dir().join(format!("{t}-identity.json"));
    std::fs::write(&file, body)?;
    run_ok(
        bed.bao()
            .args(["write", &name])
            .arg(format!("@{}", file.display())),
    )?;
    eventually(
        "the identity's grants put back in OpenBao",
        Duration::from_secs(90),
        || async {
            let now = run_ok(
                bed.bao()
                    .args(["read", "-format=json", "-field=metadata", &name]),
            )?;
            let now: serde_json::Value = serde_json::from_str(&now)?;
            Ok((now == before).then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// A domain an earlier version provisioned (a Role copy per namespace, four
/// NetworkPolicies, bindings to the namespace's Roles) is brought to this
/// version's shape by the operator: the Roles and old policies pruned, the
/// bindings made again for the chart's ClusterRoles (a roleRef cannot be
/// edited), and the member keeps exactly their access.
#[tokio::test]
async fn a_domain_made_by_an_earlier_version_takes_this_versions_shape() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let (t, trained, _) = tenant(&bed).await?;
    let dev = format!("{t}-dev");
    let labels = json!({
        "app.kubernetes.io/managed-by": "publicdata-operator",
        "publicdata.io/tenant": t,
        "publicdata.io/environment": "dev",
    });
    let old = |kind: &str, name: &str, body: serde_json::Value| {
        let mut o = json!({
            "apiVersion": if kind == "NetworkPolicy" { "networking.k8s.io/v1" } else { "rbac.authorization.k8s.io/v1" },
            "kind": kind,
            "metadata": {"name": name, "namespace": dev, "labels": labels},
        });
        if let (Some(o), Some(b)) = (o.as_object_mut(), body.as_object()) {
            o.extend(b.clone());
        }
        o
    };
    let read_pods =
        json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
    bed.apply(&json!({"apiVersion": "v1", "kind": "List", "items": [
        old("Role", "tenant-observer", read_pods.clone()),
        old("Role", "tenant-developer", read_pods),
        old("NetworkPolicy", "default-deny-all", json!({"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})),
        old("NetworkPolicy", "allow-dns-egress", json!({"spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}})),
    ]}))?;
    // The binding of the earlier version: deleted and made at once for a
    // namespaced Role. The operator may make its own first; then again.
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &dev);
    let develop = bindings.get("members-develop").await?;
    let earlier: RoleBinding = serde_json::from_value(old(
        "RoleBinding",
        "members-develop",
        json!({
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant-developer"},
            "subjects": develop.subjects,
        }),
    ))?;
    let mut made = false;
    for _ in 0..20 {
        bindings
            .delete("members-develop", &DeleteParams::default())
            .await?;
        match bindings.create(&PostParams::default(), &earlier).await {
            Ok(_) => {
                made = true;
                break;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    ensure!(
        made,
        "the operator made its binding first, 20 times in a row"
    );
    eventually(
        "the earlier version's objects pruned and the binding made again",
        WAIT,
        || async {
            let roles = Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(client.clone(), &dev)
                .list(&ListParams::default())
                .await?;
            let nps: Vec<String> = Api::<NetworkPolicy>::namespaced(client.clone(), &dev)
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .map(|n| n.name_any())
                .collect();
            let binding = bindings.get_opt("members-develop").await?;
            Ok((roles.items.is_empty()
                && nps == ["tenant-isolation"]
                && binding.is_some_and(|b| {
                    b.role_ref == develop.role_ref && b.subjects == develop.subjects
                }))
            .then_some(()))
        },
    )
    .await?;
    ensure!(
        develop.role_ref.kind == "ClusterRole"
            && develop.role_ref.name == "publicdata-tenant-developer"
    );
    // The member develops in dev again, through the chart's ClusterRole, and
    // still reads no Secret.
    ensure!(can_i(
        &bed,
        &trained,
        &["create", "deployments", "-n", &dev]
    )?);
    ensure!(!can_i(&bed, &trained, &["get", "secrets", "-n", &dev])?);
    Ok(())
}
