//! Renewal against the real API server and operator: the unit
//! applies, only the bureau decides, an approval starts a new term of at
//! most 5 years and extends a live tenant without touching its domain, and a
//! term longer than 5 years is refused with nothing recorded as approved.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use e2e::{TestBed, authorization, unique};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use publicdata_operator::api::{OperatorAuthorization, RenewalRequest};
use serde_json::json;

const BUREAU: [&str; 4] = ["--as", "zhao.lei", "--as-group", "publicdata:bureau"];

async fn renewal_due(api: &Api<OperatorAuthorization>, t: &str, reason: &str) -> Result<String> {
    e2e::wait_condition(api, t, "RenewalDue", reason, "").await
}

/// The resourceVersion of every namespace and RoleBinding of the tenant.
async fn domain(client: &kube::Client, t: &str) -> Result<BTreeMap<String, Option<String>>> {
    let mut v = BTreeMap::new();
    for env in ["dev", "prod"] {
        let ns = format!("{t}-{env}");
        let n = Api::<Namespace>::all(client.clone()).get(&ns).await?;
        v.insert(format!("ns/{ns}"), n.resource_version());
        for rb in Api::<RoleBinding>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await?
        {
            v.insert(format!("rb/{ns}/{}", rb.name_any()), rb.resource_version());
        }
    }
    Ok(v)
}

fn request(t: &str, name: &str, not_after: &str) -> serde_json::Value {
    json!({
        "apiVersion": "publicdata.io/v1alpha1", "kind": "RenewalRequest",
        "metadata": {"name": name, "namespace": format!("{t}-dev")},
        "spec": {"notAfter": not_after, "reason": "the commuter indicators continue for the new transport plan"},
    })
}

#[tokio::test]
async fn an_approved_renewal_starts_a_new_term_without_touching_the_tenant() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let client = bed.client().await?;
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    let t = unique("renew");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let dev = format!("{t}-dev");

    // The unit applies for a second term.
    let unit: Api<RenewalRequest> = Api::namespaced(bed.client_as(&alice, &[]).await?, &dev);
    unit.patch(
        "renewal",
        &PatchParams::apply("unit"),
        &Patch::Apply(&request(&t, "renewal", "2035-12-31")),
    )
    .await?;
    let message = renewal_due(&api, &t, "RenewalRequested").await?;
    ensure!(
        message.contains("renewal renewal to 2035-12-31 filed on")
            && message.contains("(on time: due from 2030-06-30)"),
        "{message}"
    );
    // The unit cannot approve its own application.
    let own = json!({"spec": {"decision": {"result": "Approved", "date": e2e::days_ago(0),
        "decision": "self", "by": "zhao.lei", "reason": "fine"}}});
    let refused = unit
        .patch("renewal", &PatchParams::default(), &Patch::Merge(&own))
        .await
        .expect_err("the unit's own approval is refused");
    ensure!(
        refused
            .to_string()
            .contains("decides on an early exit or a renewal"),
        "{refused}"
    );

    // The bureau approves: a new term, and the domain untouched.
    let before = domain(&client, &t).await?;
    let out = bed.plugin(
        &[
            &[
                "decide",
                "renewal",
                &format!("{dev}/renewal"),
                "approve",
                "--decision",
                "PDB-RN-4",
                "--reason",
                "operates well",
                "--yes",
            ][..],
            &BUREAU[..],
        ]
        .concat(),
    )?;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success() && said.contains("a new term from 2031-01-01 to 2035-12-31"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let message = renewal_due(&api, &t, "WithinValidity").await?;
    ensure!(
        message.starts_with("renewed: the current term runs from 2031-01-01 to 2035-12-31"),
        "{message}"
    );
    let oa = api.get(&t).await?;
    ensure!(oa.spec.validity.not_after.to_string() == "2035-12-31");
    ensure!(
        oa.annotations()
            .get("publicdata.io/validity-set-by")
            .is_some_and(|by| by == "zhao.lei"),
        "the API server stamps who set the validity"
    );
    ensure!(e2e::phase(&oa) == "Active");
    e2e::wait_observed(&api, &t).await?;
    let after = domain(&client, &t).await?;
    ensure!(
        before == after,
        "a renewal changed the domain:\n{before:#?}\n{after:#?}"
    );

    // A term longer than 5 years is refused by the API server, and the
    // application stays undecided.
    unit.patch(
        "again",
        &PatchParams::apply("unit"),
        &Patch::Apply(&request(&t, "again", "2041-06-30")),
    )
    .await?;
    let out = bed.plugin(
        &[
            &[
                "decide",
                "renewal",
                &format!("{dev}/again"),
                "approve",
                "--decision",
                "PDB-RN-5",
                "--reason",
                "too long",
                "--yes",
            ][..],
            &BUREAU[..],
        ]
        .concat(),
    )?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        !out.status.success() && err.contains("at most 5 years"),
        "{err}"
    );
    let again = Api::<RenewalRequest>::namespaced(client, &dev)
        .get("again")
        .await?;
    ensure!(
        again.spec.decision.is_none(),
        "nothing recorded as approved"
    );
    Ok(())
}
