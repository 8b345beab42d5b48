//! DataScenario against the real API server, OpenBao and operator: one list,
//! one approval per party, and the grants that follow (and go).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::scenarios::{
    approve, approve_signed, example_scenario, seed_catalog, status_of, wait_phase,
};
use e2e::{TestBed, authorization, eventually, run, unique};
use kube::api::{Api, Patch, PatchParams, PostParams};
use publicdata_operator::api::DataScenario;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

async fn readable(bed: &TestBed, token: &str, path: &str) -> Result<bool> {
    let client = bed.vault_with_token(token)?;
    match vaultrs::kv2::read::<BTreeMap<String, String>>(&client, "catalog", path).await {
        Ok(_) => Ok(true),
        Err(vaultrs::error::ClientError::APIError { code: 403, .. }) => Ok(false),
        Err(e) => bail!("reading {path}: {e}"),
    }
}

#[tokio::test]
async fn a_scenario_grants_masked_data_to_dev_and_raw_to_prod_only_after_every_approval()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = bed.client().await?;
    bed.apply_file(&e2e::repo().join("examples/datasets.yaml"))?;
    seed_catalog(&bed).await?;
    let t = unique("scn");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;

    // The tenant's member files the scenario.
    let as_alice: Api<DataScenario> =
        Api::namespaced(bed.client_as(&alice, &[]).await?, &format!("{t}-dev"));
    as_alice
        .create(
            &PostParams::default(),
            &serde_json::from_value(example_scenario(&t)?)?,
        )
        .await?;
    let api: Api<DataScenario> = Api::namespaced(admin.clone(), &format!("{t}-dev"));
    let digest = wait_phase(&api, "Draft").await?;

    let masked = "transport/bus-ridership/masked";
    let raw = "transport/bus-ridership/raw";
    let dev = bed.workload_login(&t, "dev").await?;
    let prod = bed.workload_login(&t, "prod").await?;
    ensure!(
        !readable(&bed, &dev, masked).await? && !readable(&bed, &prod, raw).await?,
        "nothing before approval"
    );

    // Who may approve what: nobody but the party itself.
    for (party, user, groups, who) in [
        ("bureau", alice.as_str(), vec![], "a tenant member"),
        (
            "agency:market-regulation",
            "agent-t",
            vec!["publicdata:agency:transport-bureau"],
            "another agency",
        ),
    ] {
        match approve(&bed, &t, party, user, &groups, &digest).await {
            Err(kube::Error::Api(s)) if s.code == 403 => {}
            other => bail!("{who} must not record the {party} approval: {other:?}"),
        }
    }
    match approve_signed(
        &bed,
        &t,
        "bureau",
        "bureau-admin",
        &["publicdata:bureau"],
        &digest,
        "someone-else",
    )
    .await
    {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => bail!("an approval signed with another name must be refused: {other:?}"),
    }
    // A member of another tenant cannot even read the scenario.
    let denied = run(bed.kubectl().args([
        "get",
        "datascenarios",
        "-n",
        &format!("{t}-dev"),
        "--as",
        "mallory-of-another-tenant",
    ]))?;
    ensure!(!denied.status.success());

    approve(
        &bed,
        &t,
        "bureau",
        "bureau-admin",
        &["publicdata:bureau"],
        &digest,
    )
    .await?;
    wait_phase(&api, "PendingApproval").await?;
    // The operator decided on the bureau's approval (its generation
    // observed) and granted nothing: the grants follow from this status.
    let observed = e2e::wait_observed(&api, "commuter-flows").await?;
    ensure!(
        observed.status.is_some_and(|s| s.grants.is_empty()),
        "no grant on the bureau's approval alone"
    );
    ensure!(
        !readable(&bed, &dev, masked).await?,
        "the bureau alone grants nothing"
    );
    approve(
        &bed,
        &t,
        "agency:transport-bureau",
        "agent-t",
        &["publicdata:agency:transport-bureau"],
        &digest,
    )
    .await?;
    approve(
        &bed,
        &t,
        "agency:market-regulation",
        "agent-m",
        &["publicdata:agency:market-regulation"],
        &digest,
    )
    .await?;
    wait_phase(&api, "Active").await?;

    // A token obtained after the grant: dev reads masked, never raw, only listed fields; prod reads raw.
    let dev = bed.workload_login(&t, "dev").await?;
    let prod = bed.workload_login(&t, "prod").await?;
    eventually("the grant in OpenBao", WAIT, || async {
        Ok(readable(&bed, &dev, masked).await?.then_some(()))
    })
    .await?;
    ensure!(readable(&bed, &dev, "market/enterprise-registry/masked/industry").await?);
    ensure!(
        !readable(&bed, &dev, raw).await?,
        "dev never reads raw data"
    );
    ensure!(!readable(&bed, &dev, "market/enterprise-registry/raw/industry").await?);
    ensure!(
        !readable(
            &bed,
            &dev,
            "market/enterprise-registry/masked/legal_representative_id"
        )
        .await?,
        "an unlisted field"
    );
    ensure!(
        readable(&bed, &prod, raw).await?
            && readable(&bed, &prod, "market/enterprise-registry/raw/credit_code").await?
    );

    // Editing the list voids the approvals, and the grant goes from the token that held it.
    let edit = json!({"spec": {"items": [example_scenario(&t)?["spec"]["items"][0].clone()]}});
    as_alice
        .patch(
            "commuter-flows",
            &PatchParams::default(),
            &Patch::Merge(&edit),
        )
        .await?;
    wait_phase(&api, "PendingApproval").await?;
    let ds = api.get("commuter-flows").await?;
    let approved = ds
        .status
        .context("status")?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Approved")
        .context("Approved")?;
    ensure!(approved.reason == "ApprovalsVoided", "{approved:?}");
    eventually("the grant to disappear", WAIT, || async {
        Ok((!readable(&bed, &dev, masked).await?).then_some(()))
    })
    .await?;

    // Approved again, then withdrawn: the held token loses the data again.
    let (_, digest) = status_of(&api).await?;
    approve(
        &bed,
        &t,
        "bureau",
        "bureau-admin",
        &["publicdata:bureau"],
        &digest,
    )
    .await?;
    approve(
        &bed,
        &t,
        "agency:transport-bureau",
        "agent-t",
        &["publicdata:agency:transport-bureau"],
        &digest,
    )
    .await?;
    wait_phase(&api, "Active").await?;
    eventually("the grant again", WAIT, || async {
        Ok(readable(&bed, &dev, masked).await?.then_some(()))
    })
    .await?;
    as_alice
        .patch(
            "commuter-flows",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"withdrawn": true}})),
        )
        .await?;
    wait_phase(&api, "Withdrawn").await?;
    eventually("the grant to go on withdrawal", WAIT, || async {
        Ok((!readable(&bed, &dev, masked).await?).then_some(()))
    })
    .await?;

    let actions: Vec<String> = bed
        .audit_records(&t)?
        .iter()
        .filter_map(|r| r["action"].as_str().map(String::from))
        .collect();
    ensure!(
        actions.iter().filter(|a| *a == "ScenarioGranted").count() >= 2
            && actions.contains(&"ScenarioRevoked".to_string()),
        "{actions:?}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_scenarios_are_refused_precisely() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let admin = bed.client().await?;
    bed.apply_file(&e2e::repo().join("examples/datasets.yaml"))?;
    let t = unique("bad");
    bed.apply(&authorization(&t, &[])?)?;
    let ns = format!("{t}-dev");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
    eventually("the dev namespace", WAIT, || async {
        Ok(namespaces.get_opt(&ns).await?.map(|_| ()))
    })
    .await?;
    let api: Api<DataScenario> = Api::namespaced(admin, &ns);

    // The API server: wildcards and empty justifications.
    let mut wildcard = example_scenario(&t)?;
    wildcard["spec"]["items"][0]["fields"] = json!(["*"]);
    match api
        .create(&PostParams::default(), &serde_json::from_value(wildcard)?)
        .await
    {
        Err(kube::Error::Api(s)) if s.message.contains("no wildcard") => {}
        other => bail!("a wildcard must be refused by the API server: {other:?}"),
    }
    // The operator: Core, unknown fields, a window past the authorization,
    // part of a dataset stored whole, a domain not authorized.
    let cases = [
        (
            "core",
            json!([{"dataset": "water-network", "fields": ["pipe_id"], "justification": "x"}]),
            None,
            "classified Core",
        ),
        (
            "field",
            json!([{"dataset": "bus-ridership", "fields": ["passenger_name"], "justification": "x"}]),
            None,
            "has no field passenger_name",
        ),
        (
            "window",
            json!([{"dataset": "bus-ridership", "fields": ["line_id", "stop_id", "service_date", "boardings"], "justification": "x"}]),
            Some("2031-06-30"),
            "not inside the authorization's validity",
        ),
        // Minimum necessary: bus-ridership is stored whole, so some of its
        // fields would be all of them.
        (
            "whole",
            json!([{"dataset": "bus-ridership", "fields": ["line_id", "boardings"], "justification": "x"}]),
            None,
            "bus-ridership is stored whole (layout Whole): a grant would hand over every field, but the list leaves out stop_id, service_date",
        ),
        // A dataset of a domain the authorization does not cover.
        (
            "domain",
            json!([{"dataset": "water-network", "fields": ["pipe_id", "geometry"], "justification": "x"}]),
            None,
            "is in domain Environment, which authorization",
        ),
    ];
    for (name, items, not_after, expected) in cases {
        let mut s = example_scenario(&t)?;
        s["metadata"]["name"] = name.into();
        s["spec"]["items"] = items;
        if let Some(end) = not_after {
            s["spec"]["window"]["notAfter"] = end.into();
        }
        api.create(&PostParams::default(), &serde_json::from_value(s)?)
            .await?;
        let message = eventually(&format!("{name} rejected"), WAIT, || async {
            let ds = api.get(name).await?;
            let st = ds.status.unwrap_or_default();
            let valid = st
                .conditions
                .iter()
                .find(|c| c.type_ == "Valid" && c.status == "False")
                .map(|c| c.message.clone());
            Ok(valid.filter(|_| format!("{:?}", st.phase) == "Some(Rejected)"))
        })
        .await?;
        ensure!(message.contains(expected), "{name}: {message}");
    }
    Ok(())
}
