//! DataScenarios in e2e tests: the example scenario for a tenant, the
//! catalog's data in OpenBao, and the approvals of each party.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kube::api::{Api, Patch, PatchParams};
use publicdata_operator::api::{DataScenario, ExportRequest};
use serde_json::{Value, json};

use crate::{TestBed, eventually, run};

const WAIT: Duration = Duration::from_secs(60);

/// `examples/scenario.yaml`, filed in the tenant's dev namespace.
pub fn example_scenario(tenant: &str) -> Result<Value> {
    let text = std::fs::read_to_string(crate::repo().join("examples/scenario.yaml"))?;
    let mut v: Value = serde_yaml::from_str(&text)?;
    v["metadata"]["namespace"] = format!("{tenant}-dev").into();
    v["spec"]["authorization"] = tenant.into();
    Ok(v)
}

/// The catalog's data in OpenBao: raw and masked forms; enterprise-registry per field.
pub async fn seed_catalog(bed: &TestBed) -> Result<()> {
    let out = run(bed
        .bao()
        .args(["secrets", "enable", "-path=catalog", "kv-v2"]))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() || stderr.contains("path is already in use"),
        "{stderr}"
    );
    let root = bed.vault_root()?;
    let put = |path: &str, value: &str| {
        let root = &root;
        let path = path.to_string();
        let value = value.to_string();
        async move {
            vaultrs::kv2::set(root, "catalog", &path, &BTreeMap::from([("value", value)])).await
        }
    };
    put("transport/bus-ridership/raw", "raw ridership").await?;
    put("transport/bus-ridership/masked", "masked ridership sample").await?;
    for field in ["credit_code", "industry", "legal_representative_id"] {
        put(
            &format!("market/enterprise-registry/raw/{field}"),
            &format!("raw {field}"),
        )
        .await?;
        put(
            &format!("market/enterprise-registry/masked/{field}"),
            &format!("masked {field}"),
        )
        .await?;
    }
    Ok(())
}

/// The agencies owning the example scenario's datasets: (party, user, group).
pub const AGENCY_APPROVERS: [(&str, &str, &str); 2] = [
    (
        "agency:transport-bureau",
        "agent-t",
        "publicdata:agency:transport-bureau",
    ),
    (
        "agency:market-regulation",
        "agent-m",
        "publicdata:agency:market-regulation",
    ),
];

/// Every party the example scenario needs approves `digest`: the bureau and
/// the two owning agencies.
pub async fn approve_all(bed: &TestBed, tenant: &str, digest: &str) -> Result<()> {
    let bureau = ("bureau", "bureau-admin", "publicdata:bureau");
    for (party, user, group) in std::iter::once(bureau).chain(AGENCY_APPROVERS) {
        approve(bed, tenant, party, user, &[group], digest).await?;
    }
    Ok(())
}

pub async fn approve(
    bed: &TestBed,
    tenant: &str,
    party: &str,
    user: &str,
    groups: &[&str],
    digest: &str,
) -> Result<(), kube::Error> {
    approve_signed(bed, tenant, party, user, groups, digest, user).await
}

pub async fn approve_signed(
    bed: &TestBed,
    tenant: &str,
    party: &str,
    user: &str,
    groups: &[&str],
    digest: &str,
    by: &str,
) -> Result<(), kube::Error> {
    let client = bed
        .client_as(user, groups)
        .await
        .map_err(|e| kube::Error::Service(e.into()))?;
    let api: Api<DataScenario> = Api::namespaced(client, &format!("{tenant}-dev"));
    let patch = json!({
        "apiVersion": "publicdata.io/v1alpha1", "kind": "DataScenario",
        "metadata": {"name": "commuter-flows", "namespace": format!("{tenant}-dev")},
        "spec": {"approvals": [{"party": party, "decision": "Approved", "itemsDigest": digest, "by": by}]}
    });
    api.patch(
        "commuter-flows",
        &PatchParams::apply(&format!("approver-{}", party.replace(':', "-"))),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

pub async fn status_of(api: &Api<DataScenario>) -> Result<(String, String)> {
    let ds = api.get("commuter-flows").await?;
    let st = ds.status.context("status")?;
    Ok((
        format!("{:?}", st.phase.context("phase")?),
        st.items_digest.unwrap_or_default(),
    ))
}

pub async fn wait_phase(api: &Api<DataScenario>, phase: &str) -> Result<String> {
    eventually(&format!("phase {phase}"), WAIT, || async {
        let (p, digest) = status_of(api).await?;
        Ok((p == phase).then_some(digest))
    })
    .await
}

/// Waits until export `name` reaches `phase`; returns it.
pub async fn wait_export(
    api: &Api<ExportRequest>,
    name: &str,
    phase: &str,
) -> Result<ExportRequest> {
    eventually(&format!("{name} {phase}"), WAIT, || async {
        let er = api.get(name).await?;
        let p = er
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .map(|p| format!("{p:?}"));
        Ok((p.as_deref() == Some(phase)).then_some(er))
    })
    .await
}

/// The credit code of the recipient of the e2e exports.
pub const RECIPIENT: &str = "91350100M000100Y43";

/// An ExportRequest of tenant `tenant` (filed in its dev namespace) for the
/// artifact at key `report.csv` of ConfigMap `artifact` in its prod namespace.
pub fn export_request(
    tenant: &str,
    name: &str,
    scenario: &str,
    artifact: &str,
    digest: &str,
) -> Result<ExportRequest> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "publicdata.io/v1alpha1", "kind": "ExportRequest",
        "metadata": {"name": name, "namespace": format!("{tenant}-dev")},
        "spec": {
            "scenario": scenario,
            "product": {"type": "Indicator", "name": "commuter-flow-index", "version": "2026.1"},
            "artifact": {"configMap": artifact, "key": "report.csv"},
            "digest": digest,
            "recipient": {"name": "City Transport Planning Institute", "creditCode": RECIPIENT, "agreement": "DUA-2026-9"},
            "purpose": "the city's transport plan",
            "permittedUse": "internal planning only; no onward transfer",
            "pricing": {"price": "0 CNY", "basis": "public interest use, filed with the bureau"},
        }
    }))?)
}
