//! The audit log as a file on a volume: JSON lines, appended only, synced
//! per record; a torn tail set aside, a damaged log never appended to.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::anchor::Anchor;
use super::{Entry, Error, Problem, Record, Sink, split_tail, verify_bytes};

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
        delivery: None,
    }
}

impl FileSink {
    /// Opens (or creates) the log: verifies the chain already there, sets a
    /// torn tail aside, and chains the records held while it was damaged.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::open_with(path, None)
    }

    /// [`FileSink::open`], checking the log against its latest checkpoint
    /// too: a log cut short or rewritten since is damaged, like a broken chain.
    pub fn open_anchored(path: &Path, anchor: &Anchor) -> Result<Self, Error> {
        Self::open_with(path, Some(anchor))
    }

    fn open_with(path: &Path, anchor: Option<&Anchor>) -> Result<Self, Error> {
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
        let verified = match anchor {
            Some(anchor) => super::anchor::check(complete, anchor).map(|a| a.last),
            None => verify_bytes(complete),
        };
        let (last, damage) = match verified {
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

    fn head(&self) -> Option<Record> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.last.clone()
    }

    fn anchor(&self, anchor: &Anchor) -> Result<(), Problem> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(problem) = &state.damage {
            return Err(problem.clone());
        }
        let checked = std::fs::read(&self.path)
            .map_err(|e| Problem::Unreadable {
                line: 0,
                message: e.to_string(),
            })
            .and_then(|bytes| super::anchor::check(&bytes, anchor).map(|_| ()));
        if let Err(problem) = &checked {
            state.damage = Some(problem.clone());
        }
        checked
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
mod tests;
