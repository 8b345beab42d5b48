//! `audit verify | log | dump`: the operator's hash-chained audit log, read
//! through the audit API and verified here, by the caller.
//!
//! The operator serves `audit.publicdata.io/v1alpha1` behind the API
//! server's aggregation layer: the log is `GET logs/audit`, its anchor (the
//! latest checkpoint of the chain's head, signed by a key that never leaves
//! OpenBao) `GET anchors/audit`. RBAC on those resources says who reads them
//! (the chart grants them to the groups in `auditLog.readers.groups`); nobody
//! needs exec into the operator's pods, and the chart grants that to no one.
//! The chain is checked on this side, so a reader does not have to trust the
//! operator's own word for it. The anchor is read before the log: the log
//! only grows, so a checkpoint read first never runs ahead of it.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use publicdata_operator::audit::anchor::{self, Anchor};
use publicdata_operator::audit::api::{GROUP, NAME, VERSION};
use publicdata_operator::audit::{Problem, Record};

#[derive(clap::Subcommand, Debug)]
pub enum Audit {
    /// Verify the hash chain and its anchor: of a local copy with --file,
    /// otherwise of the operator's log. Names the first record edited, removed
    /// or reordered, records cut off the end, and a rewrite re-hashed to the end.
    Verify {
        /// A local copy (from `audit dump`) instead of the operator's log.
        #[arg(long)]
        file: Option<PathBuf>,
        /// With --file: the anchor to check it against (from `audit anchor`,
        /// taken before the dump). Without it, only the chain is checked.
        #[arg(long, requires = "file")]
        anchor: Option<PathBuf>,
    },
    /// One tenant's records, oldest first, after verifying the whole chain.
    Log {
        /// The authorization (tenant id).
        tenant: String,
        /// Output: a readable table (default) or json (one record per line, as logged).
        #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
    /// Write the operator's log as it is to stdout (to keep a copy, or verify it elsewhere).
    Dump,
    /// Write the log's anchor (the latest signed checkpoint and the signing
    /// key's public halves, JSON) to stdout: take it before a dump to verify
    /// the copy elsewhere with `verify --file --anchor`.
    Anchor,
}

/// The audit subcommand that needs no cluster: a local file.
pub fn local(audit: &Audit) -> Option<Result<()>> {
    match audit {
        Audit::Verify {
            file: Some(file),
            anchor,
        } => Some((|| {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let anchor = anchor
                .as_ref()
                .map(|path| {
                    Anchor::from_file(path)
                        .with_context(|| format!("reading the anchor {}", path.display()))
                })
                .transpose()?;
            report(&file.display().to_string(), &text, anchor.as_ref())
        })()),
        _ => None,
    }
}

pub async fn run(client: &kube::Client, audit: &Audit) -> Result<()> {
    let resource = match audit {
        Audit::Anchor => "anchors",
        _ => "logs",
    };
    if !may(client, "get", resource).await? {
        bail!(NotAReader(format!("get {resource}.{GROUP}")));
    }
    let origin = "the operator's audit log".to_string();
    let anchor = || async {
        let json = read(client, "anchors").await?;
        serde_json::from_str::<Anchor>(&json).context("the operator's anchor is not JSON")
    };
    match audit {
        Audit::Verify { .. } => {
            let anchor = anchor().await?;
            let text = read(client, "logs").await?;
            report(&origin, &text, Some(&anchor))
        }
        Audit::Dump => {
            print!("{}", read(client, "logs").await?);
            Ok(())
        }
        Audit::Anchor => {
            println!("{}", serde_json::to_string_pretty(&anchor().await?)?);
            Ok(())
        }
        Audit::Log { tenant, output } => {
            let anchor = anchor().await?;
            let text = read(client, "logs").await?;
            let checked = anchor::verify(text.as_bytes(), Some(&anchor));
            let records: Vec<Record> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Record>(l).ok())
                .filter(|r| &r.entry.tenant == tenant)
                .collect();
            if output == "json" {
                for r in &records {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                print!("{}", table(&records));
            }
            match checked {
                Ok(_) if records.is_empty() => bail!("no record of tenant {tenant} in {origin}"),
                Ok(_) => Ok(()),
                Err(problem) => {
                    bail!("{origin} is damaged, do not rely on the records above: {problem}")
                }
            }
        }
    }
}

/// Verifies `text` (against `anchor` when given) and says what it found.
fn report(origin: &str, text: &str, anchor: Option<&Anchor>) -> Result<()> {
    match anchor::verify(text.as_bytes(), anchor) {
        Ok(anchored) => {
            println!("{origin}: {}", anchor::summary(&anchored));
            Ok(())
        }
        Err(problem) => Err(Damaged(problem).into()),
    }
}

/// A chain that does not verify.
#[derive(Debug, thiserror::Error)]
#[error("the log is damaged: {0}")]
pub struct Damaged(Problem);

/// Records as a table a person reads: time, action, object, outcome, who and why.
fn table(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        let actor = r.entry.actor.as_deref().unwrap_or("operator");
        let failed = r.entry.outcome != "Success";
        out.push_str(&format!(
            "{:>6}  {}  {}  {}  by {actor}\n        {}: {}{}\n",
            r.seq,
            r.time,
            r.entry.action,
            if failed { "FAILURE" } else { "Success" },
            r.entry.object,
            r.entry.reason,
            if failed {
                format!(" ({})", r.entry.outcome)
            } else {
                String::new()
            },
        ));
    }
    out
}

/// The path of an audit API resource.
pub fn path(resource: &str) -> String {
    match resource {
        "traces" => format!("/apis/{GROUP}/{VERSION}/traces"),
        _ => format!("/apis/{GROUP}/{VERSION}/{resource}/{NAME}"),
    }
}

/// The object `resource/audit` of the audit API, as text.
async fn read(client: &kube::Client, resource: &str) -> Result<String> {
    let request = http::Request::get(path(resource))
        .body(Vec::new())
        .context("building the request")?;
    client
        .request_text(request)
        .await
        .with_context(|| format!("reading {resource}/{NAME}.{GROUP} (the operator's audit API)"))
}

/// The caller may not read the audit API.
#[derive(Debug, thiserror::Error)]
#[error(
    "reading the operator's audit log needs {0} (the chart's audit-reader role grants it to the \
     groups in auditLog.readers.groups)"
)]
pub struct NotAReader(pub String);

/// Whether the caller may `verb` the audit API's `resource`.
pub async fn may(client: &kube::Client, verb: &str, resource: &str) -> Result<bool> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.into()),
                version: Some(VERSION.into()),
                resource: Some(resource.into()),
                verb: Some(verb.into()),
                name: (resource != "traces").then(|| NAME.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .context("asking the API server what you may do")?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use publicdata_operator::audit::Entry;

    fn record(prev: Option<&Record>, tenant: &str, action: &str, outcome: &str) -> Record {
        Record::next(
            prev,
            "2026-11-27T10:00:00Z".into(),
            Entry {
                tenant: tenant.into(),
                object: format!("OperatorAuthorization/{tenant}"),
                action: action.into(),
                reason: "the bureau's decision PDB-1".into(),
                outcome: outcome.into(),
                actor: None,
                uid: None,
                delivery: None,
            },
        )
    }

    #[test]
    fn the_table_shows_failures_loudly_and_says_who() {
        let first = record(None, "t", "Provisioned", "Success");
        let second = record(Some(&first), "t", "Frozen", "Failure: OpenBao unreachable");
        let text = table(&[first, second]);
        assert!(
            text.contains("Provisioned") && text.contains("by operator"),
            "{text}"
        );
        assert!(
            text.contains("FAILURE") && text.contains("(Failure: OpenBao unreachable)"),
            "{text}"
        );
    }

    #[test]
    fn a_local_copy_with_an_edited_record_is_refused_and_named() {
        let first = record(None, "t", "Provisioned", "Success");
        let second = record(Some(&first), "t", "Suspended", "Success");
        let mut edited = second.clone();
        edited.entry.reason = "nothing happened".into();
        let lines = [&first, &edited]
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        let err = report("copy", &lines, None).unwrap_err().to_string();
        assert!(err.contains("record 2 (line 2) was edited"), "{err}");
        let intact = [&first, &second]
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        assert!(report("copy", &intact, None).is_ok());
    }
}
