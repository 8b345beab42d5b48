//! One screen for a tenant: the authorization, its scenarios and exports.

use anyhow::Result;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use kube::Api;
use kube::api::ListParams;
use publicdata_operator::api::{DataScenario, ExportRequest, OperatorAuthorization};
use publicdata_operator::lifecycle;
use serde_json::json;

/// Prints the tenant `name` as a tree, or as JSON or YAML.
pub async fn show(client: &kube::Client, name: &str, output: &str) -> Result<()> {
    let oa = Api::<OperatorAuthorization>::all(client.clone())
        .get(name)
        .await?;
    let mut scenarios = Vec::new();
    let mut exports = Vec::new();
    for env in ["dev", "prod"] {
        let ns = format!("{name}-{env}");
        // A namespace that is gone (offboarded) or not readable lists nothing.
        if let Ok(list) = Api::<DataScenario>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
        {
            scenarios.extend(list.items);
        }
        if let Ok(list) = Api::<ExportRequest>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
        {
            exports.extend(list.items);
        }
    }
    match output {
        "json" | "yaml" => {
            let all = json!({"authorization": oa, "scenarios": scenarios, "exports": exports});
            if output == "json" {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{}", serde_yaml::to_string(&all)?);
            }
        }
        _ => print!("{}", tree(&oa, &scenarios, &exports, today())),
    }
    Ok(())
}

fn today() -> Date {
    jiff::Timestamp::now().to_zoned(TimeZone::UTC).date()
}

fn days(from: Date, to: Date) -> i64 {
    from.until(to)
        .map(|s| i64::from(s.get_days()))
        .unwrap_or_default()
}

/// The readable tree.
pub fn tree(
    oa: &OperatorAuthorization,
    scenarios: &[DataScenario],
    exports: &[ExportRequest],
    today: Date,
) -> String {
    let name = oa.metadata.name.clone().unwrap_or_default();
    let st = oa.status.clone().unwrap_or_default();
    let phase = st.phase.map_or("-", |p| p.as_str());
    let cond = |t: &str| st.conditions.iter().find(|c| c.type_ == t);
    let mut out = format!(
        "{name}  {} ({})\n",
        oa.spec.unit.name, oa.spec.unit.credit_code
    );
    let ready = cond("Ready").map_or("-".to_string(), |c| format!("{} ({})", c.status, c.reason));
    out += &format!(
        "├─ state {:?}, phase {phase}, Ready {ready}\n",
        oa.spec.state
    );
    let v = &oa.spec.validity;
    let end = lifecycle::expiry_day(v);
    let due = lifecycle::renewal_due_from(v);
    let left = days(today, end);
    out += &format!(
        "├─ validity {} .. {}: {}; renewal due from {due}{}\n",
        v.not_before,
        v.not_after,
        if left > 0 {
            format!("{left} days left")
        } else {
            "ended".into()
        },
        if today >= due { " (due now)" } else { "" }
    );
    if let Some(c) = oa.spec.state_change.as_ref() {
        out += &format!("├─ last decision {}: {}\n", c.decision, c.reason);
    }
    let frozen = cond("Frozen").is_some_and(|c| c.status == "True");
    out += &format!(
        "├─ frozen: {}\n",
        if frozen {
            "yes: no member access, no traffic, no pod, no OpenBao login"
        } else {
            "no"
        }
    );
    out += &match &oa.spec.emergency_plan {
        None => "├─ emergency plan: none on record (R-31)\n".to_string(),
        Some(plan) => {
            let first = plan
                .contacts
                .first()
                .map(|c| format!("; call {} ({}) first", c.name, c.contact))
                .unwrap_or_default();
            let last = plan
                .drills
                .iter()
                .filter(|d| d.date <= today)
                .max_by_key(|d| d.date)
                .map_or("no drill yet".to_string(), |d| {
                    format!(
                        "last drill {} ({:?}, {} days ago)",
                        d.date,
                        d.result,
                        days(d.date, today)
                    )
                });
            format!("├─ emergency plan {}{first}; {last}\n", plan.reference)
        }
    };
    if let Some(c) = cond("AnnualEvaluation") {
        out += &format!("├─ annual standing {}: {}\n", c.reason, c.message);
    }
    out += "├─ conditions\n";
    for c in &st.conditions {
        out += &format!(
            "│  ├─ {} {} {}: {}\n",
            c.type_, c.status, c.reason, c.message
        );
    }
    out += &format!(
        "├─ namespaces {}\n",
        if st.namespaces.is_empty() {
            "-".into()
        } else {
            st.namespaces.join(", ")
        }
    );
    out += "├─ members\n";
    for m in &st.members {
        out += &format!(
            "│  ├─ {}: {} ({})\n",
            m.user,
            if m.access { "access" } else { "no access" },
            m.reason
        );
    }
    out += "├─ scenarios\n";
    for s in scenarios {
        let ss = s.status.clone().unwrap_or_default();
        out += &format!(
            "│  ├─ {}/{} {}, approvals {}{}\n",
            s.metadata.namespace.clone().unwrap_or_default(),
            s.metadata.name.clone().unwrap_or_default(),
            ss.phase.map_or("-".into(), |p| format!("{p:?}")),
            ss.approvals.unwrap_or_else(|| "-".into()),
            if ss.required_approvals.is_empty() {
                String::new()
            } else {
                format!(" (required: {})", ss.required_approvals.join(", "))
            }
        );
    }
    out += "└─ exports\n";
    for e in exports {
        let es = e.status.clone().unwrap_or_default();
        out += &format!(
            "   ├─ {}/{} {} to {}{}\n",
            e.metadata.namespace.clone().unwrap_or_default(),
            e.metadata.name.clone().unwrap_or_default(),
            es.phase.map_or("-".into(), |p| format!("{p:?}")),
            e.spec.recipient.name,
            if es.findings.is_empty() {
                String::new()
            } else {
                format!(", {} finding(s)", es.findings.len())
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_says_phase_validity_and_what_is_frozen() {
        let oa: OperatorAuthorization =
            serde_yaml::from_str(include_str!("../../examples/authorization.yaml")).unwrap();
        let text = tree(&oa, &[], &[], jiff::civil::date(2030, 7, 1));
        assert!(text.starts_with("harbor-analytics  "), "{text}");
        assert!(text.contains("validity 2026-01-01 .. 2030-12-31: 184 days left; renewal due from 2030-06-30 (due now)"), "{text}");
        assert!(text.contains("frozen: no"), "{text}");
        assert!(
            text.contains("emergency plan EP-2026-0042; call Chen Jing (+86 571 8800 0042) first; last drill 2026-10-15 (Passed, 1355 days ago)"),
            "{text}"
        );
    }
}
