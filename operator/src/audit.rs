//! The audit log (R-2, R-14, R-33, R-34): append-only, hash-chained records of
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

/// A JSON-lines file, opened for appending only; every record is synced to
/// disk before `append` returns.
///
/// Opening never fails because of what is in the log, so the operator always
/// starts and a freeze is never stopped by the log:
/// - a torn tail (an incomplete last line, left by a write that a crash or a
///   full disk cut short) is set aside in `<log>.torn-<time>`, the log is cut
///   back to its last complete record, and the recovery is recorded in the chain;
/// - damage inside the log (an edited, removed or reordered record) stays an
///   alarm: nothing is appended to it, `health` reports it, and records are
///   held in `<log>.held` until the log is repaired and the operator
///   restarted, when they are chained in the order they were held.
pub struct FileSink {
    path: PathBuf,
    held: PathBuf,
    state: Mutex<State>,
}

struct State {
    file: File,
    last: Option<Record>,
    damage: Option<Problem>,
}

/// An entry kept aside while the log is damaged.
#[derive(Debug, Serialize, Deserialize)]
struct HeldEntry {
    time: String,
    #[serde(flatten)]
    entry: Entry,
}

/// The object named by the log's own records.
fn log_object(path: &Path) -> String {
    format!(
        "AuditLog/{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

fn log_entry(path: &Path, action: &str, reason: String) -> Entry {
    Entry {
        tenant: String::new(),
        object: log_object(path),
        action: action.into(),
        reason,
        outcome: "Success".into(),
        actor: None,
        uid: None,
    }
}

impl FileSink {
    /// Opens (or creates) the log: verifies the chain already there, sets a
    /// torn tail aside, and chains the records held while it was damaged.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::Open {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(io(source)),
        };
        let (complete, tail) = split_tail(&bytes);
        let complete_len = complete.len() as u64;
        let (last, damage) = match verify_bytes(complete) {
            Ok(last) => (last, None),
            Err(problem) => (None, Some(problem)),
        };
        // A torn tail is set aside, and cut off only while the rest is sound.
        let torn = if !tail.is_empty() && damage.is_none() {
            let aside =
                path.with_extension(format!("log.torn-{}", jiff::Timestamp::now().as_second()));
            let mut f = File::create(&aside).map_err(io)?;
            f.write_all(tail).map_err(io)?;
            f.sync_all().map_err(io)?;
            let log = OpenOptions::new().write(true).open(path).map_err(io)?;
            log.set_len(complete_len).map_err(io)?;
            log.sync_all().map_err(io)?;
            Some((aside, tail.len(), hex::encode(Sha256::digest(tail))))
        } else {
            None
        };
        let damage = damage.or_else(|| {
            (!tail.is_empty() && torn.is_none()).then(|| Problem::TornTail {
                line: complete.iter().filter(|b| **b == b'\n').count() + 1,
                bytes: tail.len(),
            })
        });
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let sink = Self {
            path: path.into(),
            held: path.with_extension("log.held"),
            state: Mutex::new(State { file, last, damage }),
        };
        if let Some((aside, len, digest)) = torn {
            sink.append(log_entry(
                path,
                "AuditLogTornTailRecovered",
                format!(
                    "an incomplete last line ({len} bytes, sha256 {digest}) was set aside in {}: \
                     a write cut short by a crash or a full disk",
                    aside.display()
                ),
            ))?;
        }
        sink.release_held()?;
        Ok(sink)
    }

    /// Chains the records held while the log was damaged, once it is sound.
    fn release_held(&self) -> Result<(), Error> {
        if self.health().is_err() {
            return Ok(());
        }
        let text = match std::fs::read_to_string(&self.held) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(Error::Open {
                    path: self.held.clone(),
                    source,
                });
            }
        };
        let mut released = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let entry = match serde_json::from_str::<HeldEntry>(line) {
                Ok(held) => {
                    let mut entry = held.entry;
                    entry.reason = format!(
                        "{} [held from {} while the log was damaged]",
                        entry.reason, held.time
                    );
                    entry
                }
                // A held line cut short: kept in the chain as it is.
                Err(_) => log_entry(
                    &self.path,
                    "AuditLogHeldFragment",
                    format!("an unreadable held line: {line}"),
                ),
            };
            self.append(entry)?;
            released += 1;
        }
        self.append(log_entry(
            &self.path,
            "AuditLogHeldReleased",
            format!(
                "{released} record(s) held while the log was damaged are chained above; {} removed",
                self.held.display()
            ),
        ))?;
        std::fs::remove_file(&self.held).map_err(|source| Error::Write {
            path: self.held.clone(),
            source,
        })
    }

    /// Keeps `entry` beside the damaged log.
    fn hold(&self, entry: Entry, problem: Problem) -> Error {
        let line = serde_json::to_vec(&HeldEntry {
            time: jiff::Timestamp::now().to_string(),
            entry,
        })
        .unwrap_or_default();
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.held)
            .and_then(|mut f| {
                f.write_all(&[line.as_slice(), b"\n"].concat())?;
                f.sync_data()
            });
        match written {
            Ok(()) => Error::Held {
                path: self.path.clone(),
                held: self.held.clone(),
                problem,
            },
            Err(source) => Error::Write {
                path: self.held.clone(),
                source,
            },
        }
    }
}

impl Sink for FileSink {
    fn append(&self, entry: Entry) -> Result<Record, Error> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(problem) = state.damage.clone() {
            return Err(self.hold(entry, problem));
        }
        let record = Record::next(
            state.last.as_ref(),
            jiff::Timestamp::now().to_string(),
            entry,
        );
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        let file = &mut state.file;
        let before = file.metadata().map(|m| m.len());
        let written = file.write_all(&line).and_then(|()| file.sync_data());
        if let Err(source) = written {
            // Cut a partial write back off, so the next record does not
            // follow half a line; if even that fails, the log is damaged.
            let cut = before.and_then(|len| {
                file.set_len(len)?;
                file.sync_data()
            });
            if cut.is_err() {
                state.damage = Some(Problem::TornTail {
                    line: 0,
                    bytes: line.len(),
                });
            }
            return Err(Error::Write {
                path: self.path.clone(),
                source,
            });
        }
        state.last = Some(record.clone());
        Ok(record)
    }

    fn health(&self) -> Result<(), Problem> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &state.damage {
            Some(problem) => Err(problem.clone()),
            None => Ok(()),
        }
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
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("audit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("audit.log")
    }

    fn actions(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Record>(l).unwrap().entry.action)
            .collect()
    }

    #[test]
    fn a_torn_tail_is_set_aside_and_its_recovery_chained() {
        let path = scratch("torn");
        {
            let sink = FileSink::open(&path).unwrap();
            sink.append(entry("one")).unwrap();
            sink.append(entry("two")).unwrap();
        }
        let fragment = br#"{"seq":3,"time":"2026-11-27T10:0"#;
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(fragment).unwrap();
        drop(f);
        let err = verify_file(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("line 3 is incomplete ({} bytes", fragment.len())),
            "{err}"
        );

        let sink = FileSink::open(&path).unwrap();
        assert_eq!(sink.health(), Ok(()));
        assert_eq!(sink.append(entry("three")).unwrap().seq, 4);
        assert_eq!(verify_file(&path).unwrap(), 4);
        assert_eq!(
            actions(&path),
            ["one", "two", "AuditLogTornTailRecovered", "three"]
        );
        let aside: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("audit.log.torn-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(std::fs::read(&aside[0]).unwrap(), fragment);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&aside[0].display().to_string()), "{text}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_damaged_log_holds_records_aside_and_chains_them_once_repaired() {
        let path = scratch("held");
        {
            let sink = FileSink::open(&path).unwrap();
            sink.append(entry("one")).unwrap();
            sink.append(entry("two")).unwrap();
        }
        let sound = std::fs::read(&path).unwrap();
        let edited = String::from_utf8(sound.clone())
            .unwrap()
            .replacen("\"one\"", "\"One\"", 1);
        std::fs::write(&path, &edited).unwrap();

        // The operator starts; the damage is reported, never written over.
        let sink = FileSink::open(&path).unwrap();
        assert!(matches!(sink.health(), Err(Problem::Edited { seq: 1, .. })));
        let err = sink.append(entry("frozen")).unwrap_err();
        assert!(matches!(err, Error::Held { .. }), "{err}");
        assert!(err.to_string().contains("held in"), "{err}");
        sink.append(entry("frozen-again")).unwrap_err();
        drop(sink);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
        // Still damaged after a restart: still held, nothing chained.
        assert!(FileSink::open(&path).unwrap().health().is_err());

        // Repaired (here: the original restored), the held records are chained.
        std::fs::write(&path, &sound).unwrap();
        let sink = FileSink::open(&path).unwrap();
        assert_eq!(sink.health(), Ok(()));
        assert_eq!(
            actions(&path),
            [
                "one",
                "two",
                "frozen",
                "frozen-again",
                "AuditLogHeldReleased"
            ]
        );
        assert_eq!(verify_file(&path).unwrap(), 5);
        assert!(!path.with_extension("log.held").exists());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("while the log was damaged"), "{text}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn damage_inside_is_named_before_a_torn_tail() {
        let lines = chain(3);
        let mut text = lines.join("\n").replacen("\"a1\"", "\"A1\"", 1);
        text.push_str("\n{\"seq\":4");
        let err = verify_bytes(text.as_bytes()).unwrap_err();
        assert!(matches!(err, Problem::Edited { seq: 2, .. }), "{err}");
        let sound = lines.join("\n") + "\n{\"seq\":4";
        let err = verify_bytes(sound.as_bytes()).unwrap_err();
        assert!(matches!(err, Problem::TornTail { line: 4, .. }), "{err}");
    }
}
