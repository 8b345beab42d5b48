//! A party's approval of a scenario, the bureau's decision on an export and
//! its evaluation of an annual report: show what is decided on first, then
//! record it under the caller's own name.

use anyhow::{Context, Result};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use publicdata_operator::api::{
    AnnualReport, DataScenario, ExitRequest, ExportRequest, OperatorAuthorization, RenewalRequest,
    shown,
};
use serde_json::json;

use crate::state::{confirm, params};

/// A party's approval (or rejection) of a scenario's list.
#[derive(clap::Args, Debug)]
pub struct Approval {
    /// `scenario`.
    #[arg(value_parser = ["scenario"])]
    pub what: String,
    /// NAMESPACE/NAME of the scenario.
    pub target: String,
    /// The party you approve for: `bureau` or `agency:<id>`.
    #[arg(long)]
    pub party: String,
    /// Reject instead of approve.
    #[arg(long)]
    pub reject: bool,
    /// A remark recorded with the decision.
    #[arg(long)]
    pub comment: Option<String>,
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// What the bureau decides on.
#[derive(clap::Subcommand, Debug)]
pub enum Decision {
    /// An export, after seeing its checks and findings
    /// (`decide export NS/NAME approve|reject --reason TEXT`).
    Export(ExportDecision),
    /// A unit's early exit, after seeing its date and disposal plan
    /// (`decide exit NS/NAME accept|reject --decision REF --reason TEXT`, R-8).
    Exit(ExitDecision),
    /// A unit's renewal application: approving it records the decision and
    /// starts a new term under it (`decide renewal NS/NAME approve|reject
    /// --decision REF --reason TEXT`, R-6).
    Renewal(RenewalDecision),
}

/// What every decision of the bureau is recorded under.
#[derive(clap::Args, Debug)]
pub struct Under {
    /// The reference of the bureau's decision.
    #[arg(long)]
    pub decision: String,
    /// Why, in a sentence.
    #[arg(long)]
    pub reason: String,
    /// Record it without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// The bureau's decision on a renewal application.
#[derive(clap::Args, Debug)]
pub struct RenewalDecision {
    /// NAMESPACE/NAME of the renewal request (in the unit's dev namespace).
    pub target: String,
    /// `approve` or `reject`.
    #[arg(value_parser = ["approve", "reject"])]
    pub result: String,
    #[command(flatten)]
    pub under: Under,
}

/// The bureau's decision on an early exit.
#[derive(clap::Args, Debug)]
pub struct ExitDecision {
    /// NAMESPACE/NAME of the exit request.
    pub target: String,
    /// `accept` or `reject`.
    #[arg(value_parser = ["accept", "reject"])]
    pub result: String,
    #[command(flatten)]
    pub under: Under,
}

/// The bureau's decision on an export.
#[derive(clap::Args, Debug)]
pub struct ExportDecision {
    /// NAMESPACE/NAME of the export request.
    pub target: String,
    /// `approve` or `reject`.
    #[arg(value_parser = ["approve", "reject"])]
    pub decision: String,
    /// Why (recorded as the decision's comment).
    #[arg(long)]
    pub reason: String,
    /// Approve despite the scan's findings (audited; needs --reason).
    #[arg(long)]
    pub override_findings: bool,
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// The bureau's evaluation of a unit's annual report.
#[derive(clap::Args, Debug)]
pub struct ReportEvaluation {
    /// `report`.
    #[arg(value_parser = ["report"])]
    pub what: String,
    /// NAMESPACE/NAME of the annual report.
    pub target: String,
    /// `passed`, `rectification` (30 days to fix) or `failed`.
    #[arg(value_parser = ["passed", "rectification", "failed"])]
    pub result: String,
    /// The evaluation after a rectification (`passed` or `failed`).
    #[arg(long)]
    pub again: bool,
    #[command(flatten)]
    pub under: Under,
}

fn split(target: &str) -> Result<(&str, &str)> {
    target
        .split_once('/')
        .with_context(|| format!("{target}: expected NAMESPACE/NAME"))
}

/// Who the API server says the caller is.
async fn username(client: &kube::Client) -> Result<String> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .context("asking the API server who you are")?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .context("the API server did not say who you are")
}

/// Shows the scenario's list and digest, then records the party's approval.
pub async fn approve(client: &kube::Client, a: &Approval) -> Result<()> {
    let (ns, name) = split(&a.target)?;
    let api: Api<DataScenario> = Api::namespaced(client.clone(), ns);
    let ds = api.get(name).await?;
    let st = ds.status.clone().unwrap_or_default();
    let digest = st
        .items_digest
        .context("the operator has not computed the scenario's digest yet")?;
    let s = &ds.spec;
    println!(
        "scenario {ns}/{name} of authorization {}",
        shown(&s.authorization)
    );
    println!("  purpose: {}", shown(&s.purpose));
    println!("  plan: {}", shown(&s.plan));
    println!(
        "  window: {} .. {}",
        s.window.not_before, s.window.not_after
    );
    for item in &s.items {
        println!(
            "  - {}: {} ({})",
            shown(&item.dataset),
            shown(&item.fields.join(", ")),
            shown(&item.justification)
        );
    }
    for e in &s.external_sources {
        println!(
            "  - external: {} from {} ({})",
            shown(&e.name),
            shown(&e.provider),
            shown(&e.description)
        );
    }
    println!("  required: {}", st.required_approvals.join(", "));
    println!("  digest: {digest}");
    let by = username(client).await?;
    let decision = if a.reject { "Rejected" } else { "Approved" };
    println!("  {decision} by {by} for {}", a.party);
    if !a.yes {
        confirm("Record it? [y/N] ", None)?;
    }
    let mut approval =
        json!({"party": a.party, "decision": decision, "itemsDigest": digest, "by": by});
    if let Some(c) = &a.comment {
        approval["comment"] = c.clone().into();
    }
    let patch = json!({
        "apiVersion": "publicdata.io/v1alpha1", "kind": "DataScenario",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"approvals": [approval]}
    });
    let manager = format!("kubectl-publicdata-{}", a.party.replace(':', "-"));
    api.patch(name, &PatchParams::apply(&manager), &Patch::Apply(&patch))
        .await
        .with_context(|| format!("recording the approval of {}", a.party))?;
    println!(
        "done: {decision} for {} on digest {}",
        a.party,
        &digest[..12.min(digest.len())]
    );
    Ok(())
}

/// Shows the export's checks and findings, then records the bureau's decision
/// on exactly that: the recipient and digest shown go into the decision (the
/// API server refuses one that does not match the request), and the write
/// applies only to the version read (a request changed meanwhile is refused).
pub async fn decide_export(client: &kube::Client, d: &ExportDecision) -> Result<()> {
    let (ns, name) = split(&d.target)?;
    let api: Api<ExportRequest> = Api::namespaced(client.clone(), ns);
    let er = api.get(name).await?;
    let st = er.status.clone().unwrap_or_default();
    let s = &er.spec;
    println!(
        "export {ns}/{name}: {:?} {} {} to {} ({})",
        s.product.type_,
        shown(&s.product.name),
        shown(&s.product.version),
        shown(&s.recipient.name),
        s.recipient.credit_code
    );
    println!(
        "  purpose: {}\n  permitted use: {}",
        shown(&s.purpose),
        shown(&s.permitted_use)
    );
    println!("  digest: {}", s.digest);
    println!(
        "  phase: {}",
        st.phase.map_or("-".into(), |p| format!("{p:?}"))
    );
    for c in &st.checks {
        println!("  check: {}", shown(c));
    }
    if st.findings.is_empty() {
        println!("  findings: none");
    } else {
        println!("  findings ({}):", st.findings.len());
        for f in &st.findings {
            println!("    - {} at {}", shown(&f.kind), shown(&f.location));
        }
        if d.decision == "approve" && !d.override_findings {
            println!("  (an approval with findings delivers nothing unless --override-findings)");
        }
    }
    let reviewer = username(client).await?;
    let decision = if d.decision == "approve" {
        "Approved"
    } else {
        "Rejected"
    };
    println!("  {decision} by {reviewer}: {}", d.reason);
    if !d.yes {
        confirm("Record it? [y/N] ", None)?;
    }
    let patch = decision_patch(&er, decision, &reviewer, d)?;
    api.patch(name, &params(false), &Patch::Merge(&patch))
        .await
        .with_context(|| {
            format!(
                "recording the decision on {ns}/{name} (if it changed since it was shown, \
                 run the command again to see what you decide on)"
            )
        })?;
    println!("done: {decision}; follow it with `kubectl get er -n {ns} {name}`");
    Ok(())
}

/// The merge patch of the bureau's decision on `er` as it was read: bound
/// to its recipient and digest, and to its resourceVersion.
fn decision_patch(
    er: &ExportRequest,
    decision: &str,
    reviewer: &str,
    d: &ExportDecision,
) -> Result<serde_json::Value> {
    let version = er
        .metadata
        .resource_version
        .clone()
        .context("the export request has no resourceVersion")?;
    let mut value = json!({
        "decision": decision, "reviewer": reviewer, "comment": d.reason,
        "recipientCreditCode": er.spec.recipient.credit_code, "digest": er.spec.digest,
    });
    if d.override_findings {
        value["overrideFindings"] = true.into();
        value["overrideReason"] = d.reason.clone().into();
    }
    Ok(json!({"metadata": {"resourceVersion": version}, "spec": {"decision": value}}))
}

/// A bureau decision about to be recorded on what a unit filed: by the
/// caller, today, under a decision reference.
struct BureauRecord<'a> {
    by: String,
    today: jiff::civil::Date,
    decision: &'a str,
    reason: &'a str,
}

impl<'a> BureauRecord<'a> {
    async fn new(client: &kube::Client, decision: &'a str, reason: &'a str) -> Result<Self> {
        Ok(Self {
            by: username(client).await?,
            today: jiff::Timestamp::now()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date(),
            decision,
            reason,
        })
    }

    /// Says what `result` means and asks, unless `yes`.
    fn confirm(&self, (result, meaning): (&str, &str), yes: bool) -> Result<()> {
        println!(
            "  {result} by {} on {} (decision {}): {meaning}",
            self.by, self.today, self.decision
        );
        if !yes {
            confirm("Record it? [y/N] ", None)?;
        }
        Ok(())
    }

    /// Says what `result` means, asks unless `yes`, and records it under
    /// `spec.<field>` of `name`.
    async fn record<K>(
        &self,
        api: &Api<K>,
        name: &str,
        field: &str,
        (result, meaning): (&str, &str),
        yes: bool,
    ) -> Result<()>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        self.confirm((result, meaning), yes)?;
        self.write(api, name, field, result).await
    }

    /// Records `result` under `spec.<field>` of `name`, without asking.
    async fn write<K>(&self, api: &Api<K>, name: &str, field: &str, result: &str) -> Result<()>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let value = json!({"result": result, "date": self.today.to_string(),
            "decision": self.decision, "by": self.by, "reason": self.reason});
        api.patch(
            name,
            &params(false),
            &Patch::Merge(&json!({"spec": {field: value}})),
        )
        .await
        .with_context(|| format!("recording the decision on {name}"))?;
        Ok(())
    }
}

/// Shows the report and what evaluating it means, then records the evaluation.
pub async fn evaluate_report(client: &kube::Client, e: &ReportEvaluation) -> Result<()> {
    let (ns, name) = split(&e.target)?;
    let api: Api<AnnualReport> = Api::namespaced(client.clone(), ns);
    let report = api.get(name).await?;
    let s = &report.spec;
    println!("annual report {ns}/{name} for {}", s.year);
    let sections = [
        ("storage", &s.sections.storage),
        ("processing", &s.sections.processing),
        ("analysis", &s.sections.analysis),
        ("security", &s.sections.security),
        ("utilization", &s.sections.utilization),
        ("market operations", &s.sections.market_operations),
    ];
    for (heading, text) in sections {
        println!("  {heading}: {}", shown(text));
    }
    if let Some(r) = &s.rectification {
        println!(
            "  rectification: {} (completed {})",
            shown(&r.plan),
            r.completed.map_or("not yet".into(), |d| d.to_string())
        );
    }
    if e.again && e.result == "rectification" {
        anyhow::bail!("after a rectification the bureau evaluates `passed` or `failed` (R-19)");
    }
    let result = match e.result.as_str() {
        "passed" => "Passed",
        "rectification" => "Rectification",
        _ => "Failed",
    };
    let bureau = BureauRecord::new(client, &e.under.decision, &e.under.reason).await?;
    let meaning = match result {
        "Passed" => "the unit continues".to_string(),
        "Rectification" => format!(
            "the unit has until {} to rectify, then you evaluate again with --again",
            bureau
                .today
                .checked_add(jiff::Span::new().days(30))
                .unwrap_or(bureau.today)
        ),
        _ => "the authorization is to end: revoke it with `kubectl publicdata revoke` under this decision".into(),
    };
    let field = if e.again {
        "reevaluation"
    } else {
        "evaluation"
    };
    bureau
        .record(&api, name, field, (result, &meaning), e.under.yes)
        .await?;
    println!("done: {result}; the authorization's condition AnnualEvaluation follows it");
    Ok(())
}

/// Shows the exit request, its notice and disposal plan, then records the decision.
pub async fn decide_exit(client: &kube::Client, d: &ExitDecision) -> Result<()> {
    let (ns, name) = split(&d.target)?;
    let api: Api<ExitRequest> = Api::namespaced(client.clone(), ns);
    let request = api.get(name).await?;
    let s = &request.spec;
    let filed = request
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_zoned(jiff::tz::TimeZone::UTC).date());
    println!("early exit {ns}/{name}: to end on {}", s.effective_date);
    if let Some(filed) = filed {
        let earliest = publicdata_operator::early_exit::earliest(filed);
        let notice = if s.effective_date < earliest {
            format!("LESS than 6 months' notice: the earliest date is {earliest} (R-8)")
        } else {
            format!("6 months' notice given (earliest date {earliest})")
        };
        println!("  filed {filed}: {notice}");
    }
    println!(
        "  reason: {}\n  disposal plan: {}",
        shown(&s.reason),
        shown(&s.disposal_plan)
    );
    let (result, meaning) = if d.result == "accept" {
        (
            "Accepted",
            format!(
                "the domain is offboarded on {} (wiped, records kept) and the authorization ends Terminated",
                s.effective_date
            ),
        )
    } else {
        ("Rejected", "the unit continues".to_string())
    };
    BureauRecord::new(client, &d.under.decision, &d.under.reason)
        .await?
        .record(&api, name, "decision", (result, &meaning), d.under.yes)
        .await?;
    println!("done: {result}; the authorization's condition EarlyExit follows it");
    Ok(())
}

/// Shows the renewal application against the authorization's term, then
/// records the decision; an approval starts the new term under it.
pub async fn decide_renewal(client: &kube::Client, d: &RenewalDecision) -> Result<()> {
    let (ns, name) = split(&d.target)?;
    let api: Api<RenewalRequest> = Api::namespaced(client.clone(), ns);
    let request = api.get(name).await?;
    let tenant = ns
        .strip_suffix("-dev")
        .with_context(|| format!("{ns}: renewal requests are filed in a tenant's dev namespace"))?;
    let authorizations: Api<OperatorAuthorization> = Api::all(client.clone());
    let oa = authorizations.get(tenant).await?;
    let v = &oa.spec.validity;
    let start = v.not_after.tomorrow()?;
    println!(
        "renewal {ns}/{name} of {tenant} ({}): in force {} .. {}, asks to continue to {}",
        oa.spec.unit.name, v.not_before, v.not_after, request.spec.not_after
    );
    println!("  reason: {}", shown(&request.spec.reason));
    let bureau = BureauRecord::new(client, &d.under.decision, &d.under.reason).await?;
    let approve = d.result == "approve";
    let result = if approve { "Approved" } else { "Rejected" };
    let meaning = if approve {
        format!(
            "a new term from {start} to {} (at most 5 years, R-5); the domain is not touched",
            request.spec.not_after
        )
    } else {
        format!("the authorization ends on {}", v.not_after)
    };
    bureau.confirm((result, &meaning), d.under.yes)?;
    if approve {
        // The validity first: if the API server refuses it (more than 5
        // years, say), nothing is recorded as approved.
        let patch = json!({"spec": {
            "validity": {"termStart": start.to_string(), "notAfter": request.spec.not_after.to_string()},
            "validityChange": {"reason": format!("renewal {ns}/{name}: {}", d.under.reason), "decision": d.under.decision},
        }});
        authorizations
            .patch(tenant, &params(false), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("extending the validity of {tenant}"))?;
    }
    bureau.write(&api, name, "decision", result).await?;
    println!("done: {result}; follow it with `kubectl publicdata status {tenant}`");
    Ok(())
}

#[cfg(test)]
mod export_tests {
    use super::*;

    #[test]
    fn the_decision_is_bound_to_the_request_as_it_was_read() {
        let er: ExportRequest = serde_json::from_value(json!({
            "apiVersion": "publicdata.io/v1alpha1", "kind": "ExportRequest",
            "metadata": {"name": "q1", "namespace": "t-dev", "resourceVersion": "42"},
            "spec": {
                "scenario": "s", "product": {"type": "Indicator", "name": "p", "version": "1"},
                "artifact": {"configMap": "a", "key": "report.csv"}, "digest": "ab".repeat(32),
                "recipient": {"name": "R", "creditCode": "91350100M000100Y43", "agreement": "A"},
                "purpose": "p", "permittedUse": "u", "pricing": {"price": "0", "basis": "b"}
            }
        }))
        .unwrap();
        let d = ExportDecision {
            target: "t-dev/q1".into(),
            decision: "approve".into(),
            reason: "fine".into(),
            override_findings: false,
            yes: true,
        };
        let p = decision_patch(&er, "Approved", "zhao.lei", &d).unwrap();
        assert_eq!(p["metadata"]["resourceVersion"], "42");
        assert_eq!(
            p["spec"]["decision"]["recipientCreditCode"],
            "91350100M000100Y43"
        );
        assert_eq!(p["spec"]["decision"]["digest"], "ab".repeat(32));
        assert_eq!(p["spec"]["decision"]["reviewer"], "zhao.lei");
    }
}
