//! The scan runs on bytes a tenant chose, so it runs where it cannot hurt the
//! operator: in a child process of its own (`publicdata-operator
//! scan-worker`), one at a time, with its heap capped by the kernel
//! (`RLIMIT_DATA`, set by the child on itself before it reads a byte) and a
//! time limit. Decompression checks its own, lower budget as it goes (the
//! decoded bytes, and how many times a stream may expand); the kernel's cap
//! is what holds when a decoder allocates past it anyway. A child that runs
//! out of memory or time ends as an `Unreadable` finding that says so, never
//! as an operator out of memory: the controllers, the freeze lane among them,
//! run on in the parent. Verdicts are kept by the product's digest, so a
//! refused product is not scanned again on every resync.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Finding, Limits, Review, Sensitive, UNREADABLE};

/// The default memory budget of one scan: the worker's heap, capped by the
/// kernel. The operator's pod limit (256 Mi in the chart) holds the
/// operator (about 90 MiB at 1,000 tenants) and one worker.
pub const DEFAULT_BUDGET: u64 = 128 * 1024 * 1024;

/// How long one scan may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How many verdicts are kept (each at most [`MAX_FINDINGS`] short findings).
const CACHED: usize = 256;

/// How many findings a review keeps: the rest are counted in the last one.
/// A product with more needs no more to be refused, and each is written to
/// the request's status.
pub const MAX_FINDINGS: usize = 100;

/// How long a finding's location may be, in characters (a part's path is
/// the names of entries a tenant chose).
pub const MAX_LOCATION: usize = 300;

/// The most the parent reads of a worker's answer and of its errors.
const MAX_ANSWER: u64 = 1 << 20;
const MAX_STDERR: u64 = 64 << 10;

/// The decoders' own limits under a worker's memory budget: decoded parts
/// together take at most a quarter of it (the text decoding and Unicode
/// normalization of a part copy it once or twice more).
pub fn limits_for(budget: u64) -> Limits {
    Limits {
        max_total_bytes: budget / 4,
        ..Limits::default()
    }
}

/// What the parent sends the worker ahead of the product's bytes: one JSON
/// line.
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    name: String,
    sensitive: Vec<(String, Vec<String>)>,
}

/// Scans in child processes, one at a time, and remembers verdicts.
pub struct Worker {
    /// The operator's own binary (None: scan in this process, for tests
    /// and the command line).
    exe: Option<PathBuf>,
    budget: u64,
    timeout: Duration,
    one_at_a_time: tokio::sync::Semaphore,
    verdicts: Mutex<(HashMap<String, Review>, VecDeque<String>)>,
}

impl Worker {
    /// Scans in child processes of `exe` (the operator's binary).
    pub fn new(exe: PathBuf, budget: u64, timeout: Duration) -> Self {
        Self {
            exe: Some(exe),
            budget,
            timeout,
            one_at_a_time: tokio::sync::Semaphore::new(1),
            verdicts: Mutex::new(Default::default()),
        }
    }

    /// Scans in this process, under the decoders' limits only.
    pub fn in_process(budget: u64) -> Self {
        Self {
            exe: None,
            budget,
            timeout: DEFAULT_TIMEOUT,
            one_at_a_time: tokio::sync::Semaphore::new(1),
            verdicts: Mutex::new(Default::default()),
        }
    }

    /// The memory budget of one scan, in bytes.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// The review of a product: from the verdicts kept, or a scan.
    pub async fn review(&self, name: &str, bytes: &[u8], sensitive: &Sensitive) -> Review {
        let key = verdict_key(name, bytes, sensitive, self.budget);
        if let Some(kept) = self.kept(&key) {
            return kept;
        }
        let _turn = self.one_at_a_time.acquire().await;
        // Another review may have scanned it while this one waited.
        if let Some(kept) = self.kept(&key) {
            return kept;
        }
        let (review, lasting) = match &self.exe {
            Some(exe) => self.in_child(exe, name, bytes, sensitive).await,
            None => (
                bounded(super::review(
                    name,
                    bytes,
                    sensitive,
                    &limits_for(self.budget),
                )),
                true,
            ),
        };
        // A worker that could not start, or was lost, says nothing of the
        // product: tried again next time.
        if lasting {
            self.keep(key, review.clone());
        }
        review
    }

    fn kept(&self, key: &str) -> Option<Review> {
        let verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        verdicts.0.get(key).cloned()
    }

    fn keep(&self, key: String, review: Review) {
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *verdicts;
        if map.insert(key.clone(), review).is_none() {
            order.push_back(key);
        }
        while order.len() > CACHED {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    async fn in_child(
        &self,
        exe: &std::path::Path,
        name: &str,
        bytes: &[u8],
        sensitive: &Sensitive,
    ) -> (Review, bool) {
        let verdict = |why: String| Review {
            findings: vec![Finding {
                kind: UNREADABLE.into(),
                location: why,
            }],
            marks: None,
        };
        // Said of the product (kept), or of the worker (tried again).
        let refused = |why: String| (verdict(why), true);
        let failed = |why: String| (verdict(why), false);
        let job = Job {
            name: name.into(),
            sensitive: sensitive.to_vec(),
        };
        let mut header = match serde_json::to_vec(&job) {
            Ok(h) => h,
            Err(e) => return failed(format!("the scan could not be started: {e}")),
        };
        header.push(b'\n');
        let child = tokio::process::Command::new(exe)
            .args(["scan-worker", "--memory-budget", &self.budget.to_string()])
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return failed(format!("the scan worker could not be started: {e}")),
        };
        let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return failed("the scan worker has no pipes".into());
        };
        let run = async {
            let feed = async {
                // A worker that dies early closes its end: its exit says why.
                let _ = stdin.write_all(&header).await;
                let _ = stdin.write_all(bytes).await;
                drop(stdin);
            };
            let mut out = Vec::new();
            let mut err = Vec::new();
            let mut answer = (&mut stdout).take(MAX_ANSWER + 1);
            let mut said = (&mut stderr).take(MAX_STDERR);
            let (_, out_read, err_read) = tokio::join!(
                feed,
                answer.read_to_end(&mut out),
                said.read_to_end(&mut err)
            );
            // The answer is read no further than the bound: a worker still
            // writing is ended with it.
            if out.len() as u64 > MAX_ANSWER {
                let _ = child.kill().await;
            }
            let status = child.wait().await;
            (status, out_read.map(|_| out), err_read.map(|_| err))
        };
        let (status, out, err) = match tokio::time::timeout(self.timeout, run).await {
            Ok(done) => done,
            Err(_) => {
                return failed(format!(
                    "the scan took longer than {} s and was stopped",
                    self.timeout.as_secs()
                ));
            }
        };
        let err = String::from_utf8_lossy(&err.unwrap_or_default()).into_owned();
        match (status, out) {
            (_, Ok(out)) if out.len() as u64 > MAX_ANSWER => refused(format!(
                "the scan's answer is longer than {MAX_ANSWER} bytes"
            )),
            (Ok(s), Ok(out)) if s.success() => match serde_json::from_slice::<Review>(&out) {
                Ok(review) => (bounded(review), true),
                Err(e) => failed(format!("the scan worker's answer is unreadable: {e}")),
            },
            // Rust's allocator aborts with "memory allocation of N bytes
            // failed"; a read that reserves first returns "out of memory".
            (Ok(_), _) if err.contains("memory allocation") || err.contains("out of memory") => {
                refused(format!(
                    "unpacking it needs more than the scan's memory budget of {} MiB (a decompression bomb?)",
                    self.budget / (1024 * 1024)
                ))
            }
            (Ok(s), _) => {
                // What the worker said can quote the product (a decoder's
                // panic): the operator's log has it, which only the bureau
                // reads; the finding says only that the worker stopped.
                tracing::warn!(
                    artifact = name,
                    said = last_line(&err).unwrap_or_default(),
                    "the scan worker stopped ({s})"
                );
                refused(format!("the scan worker stopped ({s})"))
            }
            (Err(e), _) => failed(format!("the scan worker was lost: {e}")),
        }
    }
}

/// A review with at most [`MAX_FINDINGS`] findings, each location at most
/// [`MAX_LOCATION`] characters (control characters shown escaped): what is
/// written to a status, held in memory, and passed between processes.
pub fn bounded(mut review: Review) -> Review {
    let total = review.findings.len();
    if total > MAX_FINDINGS {
        review.findings.truncate(MAX_FINDINGS - 1);
        review.findings.push(Finding {
            kind: UNREADABLE.into(),
            location: format!(
                "and {} more findings (only the first {} are listed)",
                total - (MAX_FINDINGS - 1),
                MAX_FINDINGS - 1
            ),
        });
    }
    for f in &mut review.findings {
        let mut shown = crate::api::shown(&f.location);
        if shown.chars().count() > MAX_LOCATION {
            shown = shown.chars().take(MAX_LOCATION - 1).collect::<String>() + "…";
        }
        f.location = shown;
    }
    review
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().rev().find(|l| !l.trim().is_empty())
}

/// The key of a verdict: everything the review depends on.
fn verdict_key(name: &str, bytes: &[u8], sensitive: &Sensitive, budget: u64) -> String {
    let mut h = Sha256::new();
    h.update(Sha256::digest(bytes));
    h.update(name.as_bytes());
    h.update([0]);
    h.update(budget.to_be_bytes());
    for (kind, values) in sensitive {
        h.update(kind.as_bytes());
        h.update([0]);
        for v in values {
            h.update(v.as_bytes());
            h.update([0]);
        }
        h.update([1]);
    }
    hex::encode(h.finalize())
}

/// The worker's side (`publicdata-operator scan-worker`): caps its own heap
/// at `budget`, reads the job and the product from `input`, writes the
/// review to `output` as JSON.
pub fn serve(budget: u64, input: impl Read, mut output: impl Write) -> std::io::Result<()> {
    cap_heap(budget)?;
    let mut input = std::io::BufReader::new(input);
    let mut line = Vec::new();
    std::io::BufRead::read_until(&mut input, b'\n', &mut line)?;
    let job: Job = serde_json::from_slice(&line)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    let review = bounded(super::review(
        &job.name,
        &bytes,
        &job.sensitive,
        &limits_for(budget),
    ));
    serde_json::to_writer(&mut output, &review).map_err(std::io::Error::other)?;
    output.flush()
}

/// The kernel's cap on this process's heap (and every private anonymous
/// mapping: what the allocator takes).
fn cap_heap(budget: u64) -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    setrlimit(
        Resource::Data,
        Rlimit {
            current: Some(budget),
            maximum: Some(budget),
        },
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_kept_for_exactly_what_it_judged() {
        let s: Vec<(String, Vec<String>)> = vec![("SensitiveField:a.b".into(), vec!["x".into()])];
        let k = verdict_key("p.csv", b"a,b\n", &s, DEFAULT_BUDGET);
        assert_eq!(k, verdict_key("p.csv", b"a,b\n", &s, DEFAULT_BUDGET));
        assert_ne!(k, verdict_key("p.csv", b"a,c\n", &s, DEFAULT_BUDGET));
        assert_ne!(k, verdict_key("q.csv", b"a,b\n", &s, DEFAULT_BUDGET));
        assert_ne!(k, verdict_key("p.csv", b"a,b\n", &[], DEFAULT_BUDGET));
        assert_ne!(k, verdict_key("p.csv", b"a,b\n", &s, DEFAULT_BUDGET / 2));
    }

    #[tokio::test]
    async fn the_worker_keeps_verdicts_and_forgets_the_oldest() {
        let w = Worker::in_process(DEFAULT_BUDGET);
        let first = w.review("p.csv", b"id\n11010519491231002X\n", &[]).await;
        assert!(first.findings.iter().any(|f| f.kind == "ResidentId"));
        assert_eq!(
            w.review("p.csv", b"id\n11010519491231002X\n", &[]).await,
            first
        );
        for i in 0..CACHED {
            w.keep(format!("k{i}"), first.clone());
        }
        let verdicts = w.verdicts.lock().unwrap();
        assert_eq!(verdicts.0.len(), CACHED);
        assert_eq!(verdicts.1.len(), CACHED);
    }

    #[test]
    fn a_review_is_bounded_in_findings_and_in_what_each_says() {
        let many = Review {
            findings: (0..500)
                .map(|i| Finding {
                    kind: "Email".into(),
                    location: format!("{}\u{1b}[2J: line {i}", "n".repeat(1000)),
                })
                .collect(),
            marks: None,
        };
        let b = bounded(many);
        assert_eq!(b.findings.len(), MAX_FINDINGS);
        assert!(b.findings.last().unwrap().location.contains("and 401 more"));
        for f in &b.findings {
            assert!(f.location.chars().count() <= MAX_LOCATION, "{}", f.location);
            assert!(!f.location.chars().any(char::is_control), "{}", f.location);
        }
        let few = Review {
            findings: vec![Finding {
                kind: "Email".into(),
                location: "line 2, column 3".into(),
            }],
            marks: Some(3),
        };
        assert_eq!(bounded(few.clone()), few);
    }

    #[test]
    fn the_decoders_take_a_quarter_of_the_budget() {
        assert_eq!(limits_for(128 << 20).max_total_bytes, 32 << 20);
    }
}
