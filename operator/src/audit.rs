//! The audit log: append-only, hash-chained records of
//! every decision and action of the operator.
//!
//! Each record carries the SHA-256 of the previous record; its own hash covers
//! every other field. `verify` recomputes the chain and names the first record
//! that was edited, removed, inserted or reordered. The sink is a trait; the
//! default writes JSON lines to a file on a volume, with an fsync per record.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
}

/// Verifies a log read line by line; returns the last record (None for an empty log).
pub fn verify_lines<I>(lines: I) -> Result<Option<Record>, Problem>
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
        last = Some(record);
    }
    Ok(last)
}

/// Verifies the log file at `path`; returns the number of records.
pub fn verify_file(path: &Path) -> Result<u64, Error> {
    let file = File::open(path).map_err(|source| Error::Open {
        path: path.into(),
        source,
    })?;
    let last = verify_lines(BufReader::new(file).lines()).map_err(|problem| Error::Damaged {
        path: path.into(),
        problem,
    })?;
    Ok(last.map_or(0, |r| r.seq))
}

/// Where records go.
pub trait Sink: Send + Sync {
    /// Appends one record for `entry`; returns it.
    fn append(&self, entry: Entry) -> Result<Record, Error>;
    /// Every record of one tenant, as written (for the offboarding archive).
    fn trail(&self, tenant: &str) -> Result<Vec<Record>, Error>;
}

/// Appends `entry` from async code: the sink writes and syncs a file, so it
/// runs on the blocking pool.
pub async fn append(sink: &std::sync::Arc<dyn Sink>, entry: Entry) -> Result<Record, Error> {
    let sink = sink.clone();
    tokio::task::spawn_blocking(move || sink.append(entry))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

/// Reads one tenant's trail from async code.
pub async fn trail(sink: &std::sync::Arc<dyn Sink>, tenant: &str) -> Result<Vec<Record>, Error> {
    let sink = sink.clone();
    let tenant = tenant.to_string();
    tokio::task::spawn_blocking(move || sink.trail(&tenant))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

/// A JSON-lines file, opened for appending only; every record is synced to
/// disk before `append` returns.
pub struct FileSink {
    path: PathBuf,
    state: Mutex<(File, Option<Record>)>,
}

impl FileSink {
    /// Opens (or creates) the log, verifying the chain that is already there.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Open {
                path: path.into(),
                source,
            })?;
        }
        let last = match File::open(path) {
            Ok(f) => verify_lines(BufReader::new(f).lines()).map_err(|problem| Error::Damaged {
                path: path.into(),
                problem,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(Error::Open {
                    path: path.into(),
                    source,
                });
            }
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Open {
                path: path.into(),
                source,
            })?;
        Ok(Self {
            path: path.into(),
            state: Mutex::new((file, last)),
        })
    }
}

impl Sink for FileSink {
    fn append(&self, entry: Entry) -> Result<Record, Error> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (file, last) = &mut *state;
        let record = Record::next(last.as_ref(), jiff::Timestamp::now().to_string(), entry);
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        let write = |file: &mut File| -> std::io::Result<()> {
            file.write_all(&line)?;
            file.sync_data()
        };
        write(file).map_err(|source| Error::Write {
            path: self.path.clone(),
            source,
        })?;
        *last = Some(record.clone());
        Ok(record)
    }

    fn trail(&self, tenant: &str) -> Result<Vec<Record>, Error> {
        // Hold the lock so no append interleaves with the read.
        let _state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let file = File::open(&self.path).map_err(|source| Error::Open {
            path: self.path.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|source| Error::Open {
                path: self.path.clone(),
                source,
            })?;
            if let Ok(record) = serde_json::from_str::<Record>(&line)
                && record.entry.tenant == tenant
            {
                out.push(record);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> Entry {
        Entry {
            tenant: "acme".into(),
            object: "OperatorAuthorization/acme".into(),
            action: action.into(),
            reason: "test".into(),
            outcome: "Success".into(),
            actor: Some("kubectl".into()),
            uid: None,
        }
    }

    fn chain(n: usize) -> Vec<String> {
        let mut last: Option<Record> = None;
        let mut lines = Vec::new();
        for i in 0..n {
            let r = Record::next(
                last.as_ref(),
                format!("2026-11-26T00:00:0{i}Z"),
                entry(&format!("a{i}")),
            );
            lines.push(serde_json::to_string(&r).unwrap());
            last = Some(r);
        }
        lines
    }

    fn check(lines: &[String]) -> Result<Option<Record>, Problem> {
        verify_lines(lines.iter().cloned().map(Ok))
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(check(&chain(4)).unwrap().unwrap().seq, 4);
        assert_eq!(check(&[]).unwrap(), None);
    }

    #[test]
    fn an_edited_record_is_named() {
        let mut lines = chain(4);
        lines[2] = lines[2].replace("\"reason\":\"test\"", "\"reason\":\"tset\"");
        assert_eq!(check(&lines), Err(Problem::Edited { line: 3, seq: 3 }));
    }

    #[test]
    fn a_removed_record_breaks_the_chain() {
        let mut lines = chain(4);
        lines.remove(1);
        assert_eq!(
            check(&lines),
            Err(Problem::Broken {
                line: 2,
                seq: 3,
                previous: 1
            })
        );
    }

    #[test]
    fn reordered_records_break_the_chain() {
        let mut lines = chain(4);
        lines.swap(1, 2);
        assert!(matches!(
            check(&lines),
            Err(Problem::Broken { line: 2, .. })
        ));
    }

    #[test]
    fn a_rehashed_edit_still_breaks_the_next_link() {
        // An attacker who edits a record and recomputes its hash breaks the
        // link to the record after it.
        let mut lines = chain(3);
        let mut r: Record = serde_json::from_str(&lines[1]).unwrap();
        r.entry.outcome = "Failure".into();
        r.hash = hash_of(r.seq, &r.time, &r.entry, &r.prev);
        lines[1] = serde_json::to_string(&r).unwrap();
        assert_eq!(
            check(&lines),
            Err(Problem::Broken {
                line: 3,
                seq: 3,
                previous: 2
            })
        );
    }

    #[test]
    fn the_file_sink_appends_a_chain_that_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("audit-{}", std::process::id()));
        let path = dir.join("audit.log");
        let _ = std::fs::remove_file(&path);
        {
            let sink = FileSink::open(&path).unwrap();
            sink.append(entry("one")).unwrap();
            sink.append(entry("two")).unwrap();
        }
        let sink = FileSink::open(&path).unwrap();
        assert_eq!(sink.append(entry("three")).unwrap().seq, 3);
        assert_eq!(verify_file(&path).unwrap(), 3);
        // One byte changed: verification fails and names the record.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replacen("\"two\"", "\"twO\"", 1);
        std::fs::write(&path, text).unwrap();
        let err = verify_file(&path).unwrap_err().to_string();
        assert!(err.contains("record 2 (line 2) was edited"), "{err}");
        assert!(
            FileSink::open(&path).is_err(),
            "no appending to a damaged log"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
