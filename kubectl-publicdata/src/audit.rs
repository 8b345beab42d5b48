//! `audit verify | log | dump`: the operator's hash-chained audit log, read
//! where it lives (the operator's volume) and verified here, by the caller.
//!
//! The log is fetched by running `publicdata-operator audit cat` in the
//! operator's container: the image holds that one binary and no shell, and
//! the subcommand reads the configured log and nothing else. That needs
//! `pods/exec` on the operator's pods, which the chart grants to the groups in
//! `auditReaders.groups` only. The chain is checked on this side, so a reader
//! does not have to trust the operator's own word for it, and against its
//! anchor: the latest checkpoint of the chain's head, signed by a key that
//! never leaves OpenBao, which `publicdata-operator audit anchor` reads with
//! the operator's login. The anchor is read before the log: the log only
//! grows, so a checkpoint read first never runs ahead of it.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, ListParams, PostParams};
use publicdata_operator::audit::anchor::{self, Anchor};
use publicdata_operator::audit::{Problem, Record};
use tokio::io::AsyncReadExt;

/// Where the operator runs.
#[derive(clap::Args, Debug)]
pub struct Source {
    /// The operator's namespace.
    #[arg(
        long,
        env = "PUBLICDATA_OPERATOR_NAMESPACE",
        default_value = "publicdata-system",
        global = true
    )]
    pub operator_namespace: String,
    /// The label selector of the operator's pods.
    #[arg(
        long,
        default_value = "app.kubernetes.io/name=publicdata-operator",
        global = true
    )]
    pub operator_selector: String,
    /// The operator's Lease: with several replicas, the log is read from its holder.
    #[arg(long, default_value = "publicdata-operator", global = true)]
    pub operator_lease: String,
}

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

pub async fn run(client: &kube::Client, source: &Source, audit: &Audit) -> Result<()> {
    let ns = &source.operator_namespace;
    if !may_exec(client, ns).await? {
        bail!(NotAReader(ns.clone()));
    }
    let pod = operator_pod(client, source).await?;
    let origin = format!("the operator's audit log (namespace {ns})");
    let anchor = || async {
        let json = in_operator(client, ns, &pod, &["audit", "anchor"], None).await?;
        serde_json::from_str::<Anchor>(&json).context("the operator's anchor is not JSON")
    };
    match audit {
        Audit::Verify { .. } => {
            let anchor = anchor().await?;
            let text = in_operator(client, ns, &pod, &["audit", "cat"], None).await?;
            report(&origin, &text, Some(&anchor))
        }
        Audit::Dump => {
            print!(
                "{}",
                in_operator(client, ns, &pod, &["audit", "cat"], None).await?
            );
            Ok(())
        }
        Audit::Anchor => {
            println!("{}", serde_json::to_string_pretty(&anchor().await?)?);
            Ok(())
        }
        Audit::Log { tenant, output } => {
            let anchor = anchor().await?;
            let text = in_operator(client, ns, &pod, &["audit", "cat"], None).await?;
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

/// What `publicdata-operator <args>` prints, run in the operator's container
/// (with `stdin` written to it, when given).
pub async fn in_operator(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let command: Vec<&str> = std::iter::once("/usr/local/bin/publicdata-operator")
        .chain(args.iter().copied())
        .collect();
    let shown = format!("publicdata-operator {}", args.join(" "));
    let mut process = pods
        .exec(
            pod,
            command,
            &AttachParams::default()
                .container("operator")
                .stdin(stdin.is_some())
                .stdout(true)
                .stderr(true),
        )
        .await
        .with_context(|| format!("running `{shown}` in pod {ns}/{pod}"))?;
    if let Some(bytes) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut writer = process.stdin().context("no stdin to the operator's pod")?;
        writer
            .write_all(bytes)
            .await
            .with_context(|| format!("sending the file to `{shown}`"))?;
        writer.flush().await.context("sending the file")?;
    }
    let status = process.take_status();
    let (mut stdout, mut stderr) = (
        process
            .stdout()
            .context("no stdout from the operator's pod")?,
        process
            .stderr()
            .context("no stderr from the operator's pod")?,
    );
    let (mut out, mut err) = (String::new(), String::new());
    let (read_out, read_err) = tokio::join!(
        stdout.read_to_string(&mut out),
        stderr.read_to_string(&mut err)
    );
    read_out.with_context(|| format!("reading what `{shown}` printed"))?;
    read_err.context("reading the operator's messages")?;
    if let Some(status) = status
        && let Some(s) = status.await
        && s.status.as_deref() == Some("Failure")
    {
        bail!(
            "`{shown}` in pod {ns}/{pod} failed: {} {}",
            s.message.unwrap_or_default(),
            err.trim()
        );
    }
    Ok(out)
}

/// The caller may not run the reader in the operator's pods.
#[derive(Debug, thiserror::Error)]
#[error(
    "reading the operator's audit log needs pods/exec on the operator's pods in namespace {0} \
     (the chart grants it to the groups in auditLog.readers.groups)"
)]
pub struct NotAReader(pub String);

pub async fn may_exec(client: &kube::Client, ns: &str) -> Result<bool> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.into()),
                verb: Some("create".into()),
                resource: Some("pods".into()),
                subresource: Some("exec".into()),
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

/// The pod to read from: the Lease holder when it is one of the operator's
/// running pods, otherwise any running one (they share the log's volume).
pub async fn operator_pod(client: &kube::Client, source: &Source) -> Result<String> {
    let ns = &source.operator_namespace;
    let running: Vec<String> = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&source.operator_selector))
        .await
        .with_context(|| format!("listing the operator's pods in {ns}"))?
        .into_iter()
        .filter(|p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && p.metadata.deletion_timestamp.is_none()
        })
        .filter_map(|p| p.metadata.name)
        .collect();
    let holder = Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt(&source.operator_lease)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity);
    match holder.filter(|h| running.contains(h)) {
        Some(leader) => Ok(leader),
        None => running.into_iter().next().with_context(|| {
            format!(
                "no running pod of the operator in namespace {ns} (selector {})",
                source.operator_selector
            )
        }),
    }
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
