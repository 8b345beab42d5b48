//! Pure rules of a DataScenario: validation against the catalog and the
//! authorization, the digest approvals name, who must approve, the approval
//! state, and the grants that follow. No I/O.

use std::collections::BTreeSet;

use jiff::civil::Date;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use crate::api::authorization::{Environment, OperatorAuthorization};
use crate::api::dataset::{Classification, Layout, PublicDataset};
use crate::api::scenario::{ColumnGrant, DataScenarioSpec, Decision, ScenarioPhase};

/// SHA-256 of everything an approval decides on, as canonical JSON: the
/// purpose, the expected value, the plan, the security measures, the window
/// and the list (items and external sources). Editing any of them after an
/// approval voids the approval; only the approvals and `withdrawn` are left out.
pub fn items_digest(spec: &DataScenarioSpec) -> String {
    let decided = (
        &spec.purpose,
        &spec.expected_value,
        &spec.plan,
        &spec.security_measures,
        &spec.window,
        &spec.items,
        &spec.external_sources,
    );
    let json = serde_json::to_vec(&decided).unwrap_or_default();
    hex::encode(Sha256::digest(json))
}

/// Everything wrong with a scenario, each problem precise enough to act on.
pub fn validate(
    spec: &DataScenarioSpec,
    namespace_tenant: Option<&str>,
    oa: Option<&OperatorAuthorization>,
    catalog: &[PublicDataset],
) -> Vec<String> {
    let mut problems = Vec::new();
    if namespace_tenant != Some(spec.authorization.as_str()) {
        problems.push(format!(
            "the scenario is in a namespace of tenant {:?}, but names authorization {:?}",
            namespace_tenant.unwrap_or("none"),
            spec.authorization
        ));
    }
    match oa {
        None => problems.push(format!(
            "authorization {} does not exist",
            spec.authorization
        )),
        Some(oa) => {
            let v = &oa.spec.validity;
            // grants last no longer than the authorization.
            if spec.window.not_before < v.not_before || spec.window.not_after > v.not_after {
                problems.push(format!(
                    "window {}..{} is not inside the authorization's validity {}..{} (R-23)",
                    spec.window.not_before, spec.window.not_after, v.not_before, v.not_after
                ));
            }
            // the authorization covers its domains, and no other.
            for item in &spec.items {
                let Some(ds) = catalog.iter().find(|d| d.name_any() == item.dataset) else {
                    continue;
                };
                if !oa.spec.domains.contains(&ds.spec.domain) {
                    problems.push(format!(
                        "dataset {} is in domain {:?}, which authorization {} does not cover (its domains: {:?}; R-4)",
                        item.dataset,
                        ds.spec.domain,
                        spec.authorization,
                        oa.spec.domains
                    ));
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    for item in &spec.items {
        if !seen.insert(item.dataset.as_str()) {
            problems.push(format!(
                "dataset {} is listed twice: one list, each dataset once",
                item.dataset
            ));
        }
        let Some(ds) = catalog.iter().find(|d| d.name_any() == item.dataset) else {
            problems.push(format!("dataset {} is not in the catalog", item.dataset));
            continue;
        };
        if ds.spec.classification == Classification::Core {
            problems.push(format!(
                "dataset {} is classified Core: never grantable (R-3)",
                item.dataset
            ));
        }
        for field in &item.fields {
            if !ds.spec.fields.iter().any(|f| &f.name == field) {
                problems.push(format!("dataset {} has no field {field}", item.dataset));
            }
        }
        // Minimum necessary: a dataset stored whole can only be granted
        // whole, so a list naming some of its fields is refused rather than
        // silently widened to every field. (A table is granted by column.)
        if ds
            .spec
            .vault
            .as_ref()
            .is_some_and(|v| v.layout == Layout::Whole)
        {
            let left_out: Vec<&str> = ds
                .spec
                .fields
                .iter()
                .map(|f| f.name.as_str())
                .filter(|f| !item.fields.iter().any(|l| l == f))
                .collect();
            if !left_out.is_empty() {
                problems.push(format!(
                    "dataset {} is stored whole (layout Whole): a grant would hand over every field, \
                     but the list leaves out {}; list every field, or ask the catalog's owner for a PerField layout (R-21)",
                    item.dataset,
                    left_out.join(", ")
                ));
            }
        }
    }
    problems
}

/// Who must approve: the bureau, and each agency owning a listed dataset
/// . External sources need the bureau, which is always required.
pub fn required_parties(spec: &DataScenarioSpec, catalog: &[PublicDataset]) -> Vec<String> {
    let mut parties: BTreeSet<String> = BTreeSet::from(["bureau".to_string()]);
    for item in &spec.items {
        if let Some(ds) = catalog.iter().find(|d| d.name_any() == item.dataset) {
            parties.insert(format!("agency:{}", ds.spec.owner_agency));
        }
    }
    parties.into_iter().collect()
}

/// Where the approvals stand.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApprovalState {
    pub given: Vec<String>,
    pub needed: Vec<String>,
    pub rejected_by: Vec<String>,
    /// Approvals of an earlier version of the list: void.
    pub stale: Vec<String>,
}

impl ApprovalState {
    pub fn complete(&self) -> bool {
        self.rejected_by.is_empty() && self.needed.iter().all(|p| self.given.contains(p))
    }
}

/// Which approvals count: a party's decision counts only if it names the
/// current list digest.
pub fn approval_state(spec: &DataScenarioSpec, digest: &str, required: &[String]) -> ApprovalState {
    let mut state = ApprovalState {
        needed: required.to_vec(),
        ..Default::default()
    };
    for a in &spec.approvals {
        if !required.contains(&a.party) {
            continue;
        }
        if a.items_digest != digest {
            state.stale.push(a.party.clone());
            continue;
        }
        match a.decision {
            Decision::Approved => state.given.push(a.party.clone()),
            Decision::Rejected => state.rejected_by.push(a.party.clone()),
        }
    }
    state
}

/// The phase, from validity, approvals, the window and the authorization.
pub fn phase(
    spec: &DataScenarioSpec,
    valid: bool,
    approvals: &ApprovalState,
    authorization_active: bool,
    today: Date,
) -> ScenarioPhase {
    if spec.withdrawn {
        ScenarioPhase::Withdrawn
    } else if !valid || !approvals.rejected_by.is_empty() {
        ScenarioPhase::Rejected
    } else if today > spec.window.not_after {
        ScenarioPhase::Expired
    } else if !approvals.complete() {
        if approvals.given.is_empty() && approvals.stale.is_empty() {
            ScenarioPhase::Draft
        } else {
            ScenarioPhase::PendingApproval
        }
    } else if authorization_active && today >= spec.window.not_before {
        ScenarioPhase::Active
    } else {
        ScenarioPhase::Approved
    }
}

/// The PostgreSQL columns a grant opens, per environment: for each listed
/// dataset that lives in a table (and is not `Core`), its listed fields, on
/// the masked sample in dev and on the table in prod. Nothing else.
pub fn column_grants(spec: &DataScenarioSpec, catalog: &[PublicDataset]) -> Vec<ColumnGrant> {
    let mut out = Vec::new();
    for item in &spec.items {
        let Some(ds) = catalog.iter().find(|d| d.name_any() == item.dataset) else {
            continue;
        };
        if ds.spec.classification == Classification::Core {
            continue;
        }
        let Some(table) = &ds.spec.table else {
            continue;
        };
        let mut columns = item.fields.clone();
        columns.sort();
        columns.dedup();
        for env in [Environment::Dev, Environment::Prod] {
            let (schema, relation) = crate::database::sql::relation(env, &item.dataset, table);
            out.push(ColumnGrant {
                environment: env.as_str().into(),
                schema,
                relation,
                columns: columns.clone(),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The OpenBao paths a grant opens, per environment (`dev`, `prod`), as
/// `mount/data/rest` policy paths. Dev gets only masked forms: never a
/// raw path; an `Important` dataset without a masked form goes to prod only;
/// a `PerField` layout limits the grant to the listed fields.
pub fn grant_paths(spec: &DataScenarioSpec, catalog: &[PublicDataset]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for item in &spec.items {
        let Some(ds) = catalog.iter().find(|d| d.name_any() == item.dataset) else {
            continue;
        };
        if ds.spec.classification == Classification::Core {
            continue;
        }
        let Some(vault) = &ds.spec.vault else {
            continue;
        };
        let paths = |base: &str| -> Vec<String> {
            let policy_path = kv2_policy_path(base);
            match vault.layout {
                Layout::Whole => vec![policy_path],
                Layout::PerField => item
                    .fields
                    .iter()
                    .map(|f| format!("{policy_path}/{f}"))
                    .collect(),
            }
        };
        if let Some(masked) = &vault.masked_path {
            out.extend(paths(masked).into_iter().map(|p| ("dev".to_string(), p)));
        }
        out.extend(
            paths(&vault.raw_path)
                .into_iter()
                .map(|p| ("prod".to_string(), p)),
        );
    }
    out.sort();
    out.dedup();
    out
}

/// `catalog/transport/x` (mount `catalog`) -> `catalog/data/transport/x`.
pub fn kv2_policy_path(path: &str) -> String {
    match path.split_once('/') {
        Some((mount, rest)) => format!("{mount}/data/{rest}"),
        None => format!("{path}/data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::scenario::{Approval, DataScenario};
    use jiff::civil::date;

    fn catalog() -> Vec<PublicDataset> {
        let text = include_str!("../../../examples/datasets.yaml");
        serde_yaml::Deserializer::from_str(text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect()
    }

    fn authorization() -> OperatorAuthorization {
        serde_yaml::from_str(include_str!("../../../examples/authorization.yaml")).unwrap()
    }

    fn scenario() -> DataScenario {
        serde_yaml::from_str(include_str!("../../../examples/scenario.yaml")).unwrap()
    }

    #[test]
    fn the_example_is_valid_and_needs_the_bureau_and_both_owning_agencies() {
        let s = scenario();
        assert_eq!(
            validate(
                &s.spec,
                Some("harbor-analytics"),
                Some(&authorization()),
                &catalog()
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            required_parties(&s.spec, &catalog()),
            [
                "agency:market-regulation",
                "agency:transport-bureau",
                "bureau"
            ]
        );
    }

    #[test]
    fn core_datasets_unknown_fields_and_windows_past_the_authorization_are_precise_problems() {
        let mut s = scenario().spec;
        s.items[0].fields.push("no_such_field".into());
        s.items.push(crate::api::scenario::RequestedItem {
            dataset: "water-network".into(),
            fields: vec!["pipe_id".into()],
            justification: "x".into(),
        });
        s.window.not_after = date(2031, 6, 1);
        let problems = validate(
            &s,
            Some("harbor-analytics"),
            Some(&authorization()),
            &catalog(),
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("has no field no_such_field")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("water-network is classified Core")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("not inside the authorization's validity")),
            "{problems:?}"
        );
        let wrong_ns = validate(
            &scenario().spec,
            Some("other"),
            Some(&authorization()),
            &catalog(),
        );
        assert!(wrong_ns[0].contains("names authorization"));
    }

    #[test]
    fn datasets_outside_the_authorizations_domains_are_refused() {
        let mut oa = authorization();
        oa.spec
            .domains
            .retain(|d| format!("{d:?}") != "EnterpriseRegistration");
        let problems = validate(
            &scenario().spec,
            Some("harbor-analytics"),
            Some(&oa),
            &catalog(),
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("enterprise-registry is in domain EnterpriseRegistration"),
            "{problems:?}"
        );
    }

    #[test]
    fn some_fields_of_a_dataset_stored_whole_are_refused_not_widened() {
        let mut s = scenario().spec;
        // bus-ridership is stored whole in the example catalog.
        s.items[0].fields = vec!["line_id".into(), "boardings".into()];
        let problems = validate(
            &s,
            Some("harbor-analytics"),
            Some(&authorization()),
            &catalog(),
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("bus-ridership is stored whole")
                && problems[0].contains("leaves out stop_id, service_date"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_edit_of_purpose_plan_or_window_voids_the_digest() {
        let s = scenario().spec;
        let digest = items_digest(&s);
        let mut purpose = s.clone();
        purpose.purpose.push_str(" And marketing.");
        let mut plan = s.clone();
        plan.plan = "Q1: export the raw data.".into();
        let mut window = s.clone();
        window.window.not_after = date(2028, 6, 30);
        let mut measures = s.clone();
        measures.security_measures = "none".into();
        for edited in [purpose, plan, window, measures] {
            assert_ne!(items_digest(&edited), digest);
        }
        let mut withdrawn = s.clone();
        withdrawn.withdrawn = true;
        withdrawn.approvals.clear();
        assert_eq!(items_digest(&withdrawn), digest);
    }

    #[test]
    fn approvals_count_only_for_the_current_list() {
        let mut s = scenario().spec;
        let digest = items_digest(&s);
        let required = required_parties(&s, &catalog());
        let approve = |party: &str, digest: &str| Approval {
            party: party.into(),
            decision: Decision::Approved,
            items_digest: digest.into(),
            by: "someone".into(),
            comment: None,
        };
        s.approvals = vec![approve("bureau", &digest)];
        let st = approval_state(&s, &digest, &required);
        assert!(!st.complete());
        assert_eq!(
            phase(&s, true, &st, true, date(2026, 12, 1)),
            ScenarioPhase::PendingApproval
        );
        s.approvals
            .push(approve("agency:transport-bureau", &digest));
        s.approvals
            .push(approve("agency:market-regulation", &digest));
        let st = approval_state(&s, &digest, &required);
        assert!(st.complete());
        assert_eq!(
            phase(&s, true, &st, true, date(2026, 12, 1)),
            ScenarioPhase::Active
        );
        assert_eq!(
            phase(&s, true, &st, false, date(2026, 12, 1)),
            ScenarioPhase::Approved
        );
        // Editing the list voids every approval.
        s.items[0].fields.pop();
        let new_digest = items_digest(&s);
        assert_ne!(digest, new_digest);
        let st = approval_state(&s, &new_digest, &required);
        assert!(!st.complete() && st.stale.len() == 3 && st.given.is_empty());
        // An approval by a party that is not required does not count.
        s.approvals = vec![approve("agency:water-authority", &new_digest)];
        assert!(approval_state(&s, &new_digest, &required).given.is_empty());
    }

    #[test]
    fn dev_gets_only_masked_forms_and_per_field_layouts_limit_to_the_fields() {
        let s = scenario().spec;
        let grants = grant_paths(&s, &catalog());
        assert!(!grants.is_empty());
        for (env, path) in &grants {
            if env == "dev" {
                assert!(
                    path.contains("/masked"),
                    "dev must never get a raw path: {path}"
                );
            }
        }
        assert!(
            grants
                .iter()
                .any(|(e, p)| e == "prod" && p.contains("/raw"))
        );
        // enterprise-registry is PerField in the example: only the listed fields.
        let er: Vec<_> = grants
            .iter()
            .filter(|(e, p)| e == "dev" && p.contains("enterprise-registry"))
            .collect();
        let listed = &s
            .items
            .iter()
            .find(|i| i.dataset == "enterprise-registry")
            .unwrap()
            .fields;
        assert_eq!(er.len(), listed.len());
        assert!(
            er.iter()
                .all(|(_, p)| listed.iter().any(|f| p.ends_with(&format!("/{f}"))))
        );
    }

    #[test]
    fn a_table_is_granted_the_listed_columns_on_the_sample_in_dev_and_the_table_in_prod() {
        let grants = column_grants(&scenario().spec, &catalog());
        let shown: Vec<String> = grants
            .iter()
            .map(|g| {
                format!(
                    "{} {}.{} {}",
                    g.environment,
                    g.schema,
                    g.relation,
                    g.columns.join(",")
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "dev publicdata_sample.bus-ridership boardings,line_id,service_date,stop_id",
                "dev publicdata_sample.enterprise-registry credit_code,industry",
                "prod market.enterprise_registry credit_code,industry",
                "prod transport.bus_ridership boardings,line_id,service_date,stop_id",
            ]
        );
        // A dataset kept only in OpenBao KV has no column grant; a Core one
        // none at all.
        let mut cat = catalog();
        for d in &mut cat {
            d.spec.table = None;
        }
        assert!(column_grants(&scenario().spec, &cat).is_empty());
    }

    #[test]
    fn an_important_dataset_without_a_masked_form_goes_to_prod_only() {
        let mut cat = catalog();
        for d in &mut cat {
            if d.name_any() == "enterprise-registry"
                && let Some(v) = d.spec.vault.as_mut()
            {
                v.masked_path = None;
            }
        }
        let grants = grant_paths(&scenario().spec, &cat);
        assert!(
            !grants
                .iter()
                .any(|(e, p)| e == "dev" && p.contains("enterprise-registry"))
        );
        assert!(
            grants
                .iter()
                .any(|(e, p)| e == "prod" && p.contains("enterprise-registry"))
        );
    }

    #[test]
    fn kv2_paths_gain_the_data_segment() {
        assert_eq!(
            kv2_policy_path("catalog/transport/x/raw"),
            "catalog/data/transport/x/raw"
        );
    }
}
