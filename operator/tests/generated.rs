//! Generated files stay in sync with the types, and every example parses.

use std::path::{Path, PathBuf};

use publicdata_operator::api::{
    AnnualReport, DataScenario, ExportRequest, OperatorAuthorization, PublicDataset,
};
use serde::Deserialize;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn crds_in_the_repo_and_the_chart_match_the_types() {
    for dir in publicdata_operator::crdgen::DIRS {
        for (file, crd) in publicdata_operator::crdgen::all() {
            let path = repo().join(dir).join(file);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            let generated = publicdata_operator::crdgen::to_yaml(&crd).unwrap();
            assert!(
                on_disk == generated,
                "{} is out of date with operator/src/api: run `make crds`",
                path.display()
            );
        }
        // Nothing else in the directory: a removed kind leaves no stale CRD.
        let mut names: Vec<String> = std::fs::read_dir(repo().join(dir))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        names.sort();
        let mut expected: Vec<String> = publicdata_operator::crdgen::all()
            .into_iter()
            .map(|(f, _)| f.to_string())
            .collect();
        expected.sort();
        assert_eq!(
            names, expected,
            "{dir} holds other YAML than the generated CRDs"
        );
    }
}

#[test]
fn the_charts_tenant_roles_match_the_types() {
    let path = repo().join(publicdata_operator::crdgen::TENANT_ROLES);
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == publicdata_operator::crdgen::tenant_roles_yaml().unwrap(),
        "{} is out of date with operator/src/controllers/tenant: run `make crds`",
        path.display()
    );
}

#[test]
fn every_example_deserializes_into_its_kind() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).unwrap();
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let result = match kind.as_str() {
                "OperatorAuthorization" => {
                    serde_yaml::from_value::<OperatorAuthorization>(value).map(|_| ())
                }
                "PublicDataset" => serde_yaml::from_value::<PublicDataset>(value).map(|_| ()),
                "DataScenario" => serde_yaml::from_value::<DataScenario>(value).map(|_| ()),
                "ExportRequest" => serde_yaml::from_value::<ExportRequest>(value).map(|_| ()),
                "AnnualReport" => serde_yaml::from_value::<AnnualReport>(value).map(|_| ()),
                "Deployment" => {
                    serde_yaml::from_value::<k8s_openapi::api::apps::v1::Deployment>(value)
                        .map(|_| ())
                }
                other => panic!("{}: unknown kind {other:?}", path.display()),
            };
            result.unwrap_or_else(|e| panic!("{}: {kind} does not parse: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(
        seen >= 2,
        "examples/ should hold a catalog and an authorization"
    );
}

#[test]
fn example_credit_codes_carry_a_valid_check_character() {
    let text = std::fs::read_to_string(repo().join("examples/authorization.yaml")).unwrap();
    let oa: OperatorAuthorization = serde_yaml::from_str(&text).unwrap();
    assert!(
        publicdata_operator::api::authorization::credit_code_is_valid(&oa.spec.unit.credit_code)
    );
}

/// Every property of every CRD's schema, with its path, that has no description.
fn undocumented(path: &str, schema: &serde_json::Value, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            // metadata, apiVersion and kind are documented by Kubernetes itself.
            let standard =
                path.is_empty() && matches!(name.as_str(), "metadata" | "apiVersion" | "kind");
            let described = prop
                .get("description")
                .and_then(|d| d.as_str())
                .is_some_and(|d| !d.trim().is_empty());
            if !described && !standard {
                out.push(here.clone());
            }
            undocumented(&here, prop, out);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(&format!("{path}[]"), items, out);
    }
}

#[test]
fn every_field_of_every_crd_has_a_description_for_kubectl_explain() {
    let mut missing = Vec::new();
    for (file, crd) in publicdata_operator::crdgen::all() {
        let crd = serde_json::to_value(&crd).unwrap();
        for version in crd["spec"]["versions"].as_array().unwrap() {
            let schema = &version["schema"]["openAPIV3Schema"];
            let mut here = Vec::new();
            undocumented("", schema, &mut here);
            missing.extend(here.into_iter().map(|p| format!("{file}: {p}")));
        }
    }
    assert!(
        missing.is_empty(),
        "fields without a description ({}):\n{}",
        missing.len(),
        missing.join("\n")
    );
}
