//! Removing the CRDs deletes every OperatorAuthorization. That must never
//! wipe a tenant domain: the operator orphans it (kept, labelled), and adopts
//! it again when the CRDs and the authorization come back.
//!
//! Runs alone (hack/test.sh runs it after the other e2e tests): removing a
//! CRD deletes every authorization on the test bed.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{TestBed, authorization, eventually, run_ok, unique};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use publicdata_operator::api::OperatorAuthorization;
use publicdata_operator::api::labels;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn removing_and_reinstalling_the_crds_keeps_every_tenant_domain() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let t = unique("crd");
    let manifest = authorization(&t, &[("carol", true)])?;
    bed.apply(&manifest)?;
    let ready = |client: kube::Client, t: String| async move {
        let api: Api<OperatorAuthorization> = Api::all(client);
        eventually("the authorization to be Ready", WAIT, || async {
            let oa = api.get_opt(&t).await?;
            let ready = oa
                .and_then(|o| o.status)
                .map(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
                .unwrap_or(false);
            Ok(ready.then_some(()))
        })
        .await
    };
    ready(client.clone(), t.clone()).await?;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let dev = format!("{t}-dev");
    let prod = format!("{t}-prod");
    let uid = |ns: Namespace| ns.metadata.uid.unwrap_or_default();
    let dev_uid = uid(namespaces.get(&dev).await?);
    let prod_uid = uid(namespaces.get(&prod).await?);
    Api::<ConfigMap>::namespaced(client.clone(), &dev)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "work"}, "data": {"k": "v"}}))?,
        )
        .await?;

    // Remove the CRD of authorizations: the API server deletes every instance.
    let crd_file = e2e::repo().join("crds/operatorauthorizations.yaml");
    run_ok(
        bed.kubectl()
            .args(["delete", "--wait=false", "-f"])
            .arg(&crd_file),
    )?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    eventually("the CRD to be gone", WAIT, || async {
        Ok(crds
            .get_opt("operatorauthorizations.publicdata.io")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;

    // The domain is still there, whole, and flagged as orphaned.
    for (ns, before) in [(&dev, &dev_uid), (&prod, &prod_uid)] {
        let n = namespaces
            .get(ns)
            .await
            .with_context(|| format!("{ns} must survive"))?;
        ensure!(
            n.metadata.deletion_timestamp.is_none(),
            "{ns} is being deleted"
        );
        ensure!(&uid(n.clone()) == before, "{ns} was recreated, not kept");
        ensure!(
            n.labels().get(labels::ORPHANED).map(String::as_str) == Some("true"),
            "{ns} not flagged orphaned"
        );
        Api::<NetworkPolicy>::namespaced(client.clone(), ns)
            .get("tenant-isolation")
            .await?;
    }
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &dev)
        .get("work")
        .await?;
    ensure!(cm.data.and_then(|d| d.get("k").cloned()).as_deref() == Some("v"));
    let roles = run_ok(
        bed.bao()
            .args(["list", &format!("auth/{}/role", e2e::WORKLOAD_AUTH_MOUNT)]),
    )?;
    ensure!(
        roles.contains(&format!("{t}-dev")),
        "the OpenBao role must survive: {roles}"
    );

    // Reinstall and re-apply: the operator adopts the same namespaces.
    run_ok(
        bed.kubectl()
            .args(["apply", "--server-side", "-f"])
            .arg(&crd_file),
    )?;
    run_ok(
        bed.kubectl()
            .args([
                "wait",
                "--for",
                "condition=established",
                "--timeout=60s",
                "-f",
            ])
            .arg(&crd_file),
    )?;
    eventually("the authorization to be accepted again", WAIT, || async {
        Ok(bed.apply(&manifest).ok())
    })
    .await?;
    ready(client.clone(), t.clone()).await?;
    eventually("the orphaned label to be removed", WAIT, || async {
        let n = namespaces.get(&dev).await?;
        Ok((!n.labels().contains_key(labels::ORPHANED)).then_some(n))
    })
    .await?;
    ensure!(
        uid(namespaces.get(&dev).await?) == dev_uid
            && uid(namespaces.get(&prod).await?) == prod_uid
    );
    Api::<ConfigMap>::namespaced(client, &dev)
        .get("work")
        .await?;
    Ok(())
}
