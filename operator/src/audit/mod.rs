//! The audit log: append-only, hash-chained records of
//! every decision and action of the operator.
//!
//! Each record carries the SHA-256 of the previous record; its own hash covers
//! every other field. `verify` recomputes the chain and names the first record
//! that was edited, removed, inserted or reordered. The sink is a trait; the
//! default (`file.rs`) writes JSON lines to a file on a volume, with an fsync
//! per record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, as the controller reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The tenant (authorization name).
    pub tenant: String,
    /// The object concerned, `Kind/name`.
    pub object: String,
    /// What was decided or done, e.g. `Provisioned`, `MemberAccessRevoked`, `DomainOrphaned`.
    pub action: String,
    /// Why.
    pub reason: String,
    /// `Success` or `Failure: <what failed>`.
    pub outcome: String,
    /// Who caused it, where the API tells (the field manager of the change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The uid of the authorization the record belongs to, where known: a
    /// tenant id used again after an offboarding is another authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// For a delivered export: what went to whom, and its fingerprint (the
    /// record a leaked copy is traced to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

/// A delivered export, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The ExportRequest's uid: the fingerprint's key is derived from it.
    pub export_uid: String,
    /// Where it was delivered (the OpenBao path).
    pub path: String,
    /// The recipient's registered name.
    pub recipient: String,
    /// The recipient's unified social credit code.
    pub recipient_code: String,
    /// SHA-256 of the approved artifact.
    pub digest: String,
    /// SHA-256 of what was delivered: the artifact with its fingerprint.
    pub delivered_digest: String,
    /// The fingerprint; none when the bureau let an untraceable product
    /// leave (its override and reason are a record of their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<DeliveryFingerprint>,
}

/// How a delivery was fingerprinted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryFingerprint {
    /// The technique ([`crate::fingerprint::SCHEME`]).
    pub scheme: String,
    /// The version of OpenBao's transit key the delivery's key was derived with.
    pub key_version: u64,
    /// Distinct values that carry a mark.
    pub marks: u64,
}

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub time: String,
    #[serde(flatten)]
    pub entry: Entry,
    /// Hash of the previous record (GENESIS for the first).
    pub prev: String,
    /// SHA-256 over every field above, in this order, as canonical JSON.
    pub hash: String,
}

/// The hash of a record: SHA-256 of the canonical JSON of every field but `hash`.
pub fn hash_of(seq: u64, time: &str, entry: &Entry, prev: &str) -> String {
    #[derive(Serialize)]
    struct Hashed<'a> {
        seq: u64,
        time: &'a str,
        #[serde(flatten)]
        entry: &'a Entry,
        prev: &'a str,
    }
    // serde_json writes struct fields in declaration order: the encoding is stable.
    let bytes = serde_json::to_vec(&Hashed {
        seq,
        time,
        entry,
        prev,
    })
    .unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

impl Record {
    /// The record following `prev_record` (or the first one).
    pub fn next(prev_record: Option<&Record>, time: String, entry: Entry) -> Self {
        let (seq, prev) = match prev_record {
            Some(p) => (p.seq + 1, p.hash.clone()),
            None => (1, GENESIS.to_string()),
        };
        let hash = hash_of(seq, &time, &entry, &prev);
        Self {
            seq,
            time,
            entry,
            prev,
            hash,
        }
    }
}

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening audit log {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing audit log {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit log task did not finish: {0}")]
    Task(String),
    #[error("the audit log {path} is damaged, refusing to append: {problem}")]
    Damaged { path: PathBuf, problem: Problem },
    #[error(
        "the audit log {path} is damaged ({problem}): the record is held in {held} until the log is repaired"
    )]
    Held {
        path: PathBuf,
        held: PathBuf,
        problem: Problem,
    },
}

/// Where a log fails verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("line {line}: not a record ({message})")]
    Malformed { line: usize, message: String },
    #[error("record {seq} (line {line}) was edited: its hash does not match its content")]
    Edited { line: usize, seq: u64 },
    #[error(
        "record {seq} (line {line}) does not follow record {previous}: records were removed, inserted or reordered"
    )]
    Broken {
        line: usize,
        seq: u64,
        previous: u64,
    },
    #[error("line {line}: unreadable ({message})")]
    Unreadable { line: usize, message: String },
    #[error(
        "line {line} is incomplete ({bytes} bytes with no end of line): a write was cut \
         (a crash or a full disk), not an edit; the operator sets it aside when it starts"
    )]
    TornTail { line: usize, bytes: usize },
    #[error(
        "the log ends at record {end}, but a checkpoint signed at {time} anchors record \
         {anchored}: records were cut off its end"
    )]
    Truncated {
        end: u64,
        anchored: u64,
        time: String,
    },
    #[error(
        "record {seq} is not the record the checkpoint signed at {time} anchors: the log was \
         rewritten (and re-hashed) from there or before"
    )]
    Diverged { seq: u64, time: String },
    #[error(
        "the checkpoint of record {seq} at {time} is not the operator's: {why}; the \
         checkpoints were tampered with"
    )]
    CheckpointForged { seq: u64, time: String, why: String },
    #[error(
        "the log has been anchored since record {seq}, but no checkpoint is stored: the \
         checkpoints were removed"
    )]
    CheckpointMissing { seq: u64 },
    #[error(
        "OpenBao's checkpoint ({found}) is behind the copy locked in the records store \
         (record {locked}, signed at {time}): the checkpoint was rolled back"
    )]
    CheckpointRolledBack {
        found: String,
        locked: u64,
        time: String,
    },
    #[error(
        "OpenBao's checkpoint of record {seq} at {time} has no locked copy in the records \
         store, which the operator writes first: it was written by someone else"
    )]
    CheckpointNotLocked { seq: u64, time: String },
}

/// Splits a log into its complete lines and an incomplete last one (the
/// bytes after the last end of line, empty when there are none).
pub fn split_tail(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => bytes.split_at(i + 1),
        None => (&[], bytes),
    }
}

/// Verifies a whole log: the chain of its complete lines first (damage there
/// is an alarm), then whether its last line was cut short (a torn tail).
pub fn verify_bytes(bytes: &[u8]) -> Result<Option<Record>, Problem> {
    let (complete, tail) = split_tail(bytes);
    let lines = complete
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8(l.to_vec()).map_err(std::io::Error::other));
    let last = verify_lines(lines)?;
    if !tail.is_empty() {
        return Err(Problem::TornTail {
            line: complete.iter().filter(|b| **b == b'\n').count() + 1,
            bytes: tail.len(),
        });
    }
    Ok(last)
}

/// Verifies a log read line by line; returns the last record (None for an empty log).
pub fn verify_lines<I>(lines: I) -> Result<Option<Record>, Problem>
where
    I: IntoIterator<Item = std::io::Result<String>>,
{
    verify_lines_with(lines, |_| {})
}

/// [`verify_lines`], showing `seen` each record once it is verified.
pub fn verify_lines_with<I>(
    lines: I,
    mut seen: impl FnMut(&Record),
) -> Result<Option<Record>, Problem>
where
    I: IntoIterator<Item = std::io::Result<String>>,
{
    let mut last: Option<Record> = None;
    for (i, line) in lines.into_iter().enumerate() {
        let line_no = i + 1;
        let text = line.map_err(|e| Problem::Unreadable {
            line: line_no,
            message: e.to_string(),
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&text).map_err(|e| Problem::Malformed {
            line: line_no,
            message: e.to_string(),
        })?;
        if hash_of(record.seq, &record.time, &record.entry, &record.prev) != record.hash {
            return Err(Problem::Edited {
                line: line_no,
                seq: record.seq,
            });
        }
        let (expected_seq, expected_prev) = match &last {
            Some(p) => (p.seq + 1, p.hash.as_str()),
            None => (1, GENESIS),
        };
        if record.seq != expected_seq || record.prev != expected_prev {
            return Err(Problem::Broken {
                line: line_no,
                seq: record.seq,
                previous: last.as_ref().map_or(0, |p| p.seq),
            });
        }
        seen(&record);
        last = Some(record);
    }
    Ok(last)
}

/// Verifies the log file at `path`; returns the number of records.
pub fn verify_file(path: &Path) -> Result<u64, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Open {
        path: path.into(),
        source,
    })?;
    let last = verify_bytes(&bytes).map_err(|problem| Error::Damaged {
        path: path.into(),
        problem,
    })?;
    Ok(last.map_or(0, |r| r.seq))
}

/// Where records go.
pub trait Sink: Send + Sync {
    /// Appends one record for `entry`; returns it. `Error::Held` when the log
    /// is damaged: the entry is kept durably beside it, to be chained once
    /// the log is repaired.
    fn append(&self, entry: Entry) -> Result<Record, Error>;
    /// Whether the log takes records now. Actions that widen access
    /// (provisioning, grants, deliveries) wait while it does not; actions
    /// that restrict access never do.
    fn health(&self) -> Result<(), Problem> {
        Ok(())
    }
    /// The last record written (None for an empty log).
    fn head(&self) -> Option<Record> {
        None
    }
    /// Checks the log against its latest checkpoint; a log that does not
    /// agree with it is damaged from then on (records are held).
    fn anchor(&self, _anchor: &anchor::Anchor) -> Result<(), Problem> {
        Ok(())
    }
    /// Every record of one tenant, as written (for the offboarding archive).
    fn trail(&self, tenant: &str) -> Result<Vec<Record>, Error>;
}

/// Appends `entry` from async code: the sink writes and syncs a file, so it
/// runs on the blocking pool. A record held beside a damaged log counts as
/// kept: it is durable, and chained once the log is repaired.
pub async fn append(sink: &std::sync::Arc<dyn Sink>, entry: Entry) -> Result<(), Error> {
    let sink = sink.clone();
    let written = tokio::task::spawn_blocking(move || sink.append(entry))
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    match written {
        Ok(_) => Ok(()),
        Err(held @ Error::Held { .. }) => {
            tracing::error!("{held}");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Reads one tenant's trail from async code.
pub async fn trail(sink: &std::sync::Arc<dyn Sink>, tenant: &str) -> Result<Vec<Record>, Error> {
    let sink = sink.clone();
    let tenant = tenant.to_string();
    tokio::task::spawn_blocking(move || sink.trail(&tenant))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

pub mod anchor;
pub mod api;
pub mod checkpointer;
mod file;
pub use file::FileSink;

#[cfg(test)]
mod tests;
