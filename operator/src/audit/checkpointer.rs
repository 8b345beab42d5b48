//! The task that anchors the audit chain (see `anchor.rs`): soon after the
//! log's head moves, the head is signed by OpenBao's transit engine with a
//! key that never leaves it, and the checkpoint is written to OpenBao's KV
//! (the operator's `publicdata-records` mount), outside the log and out of
//! reach of whoever can reach the log's volume. KV v2 keeps earlier versions.
//!
//! Nothing is written while the log does not move: an idle operator makes no
//! checkpoint writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::anchor::{Anchor, Checkpoint, PublicKeys, message};
use super::{Record, Sink};
use crate::vault::{self, SecretsBackend};

/// The KV v2 mount of the operator's own records.
pub const RECORDS_MOUNT: &str = "publicdata-records";
/// The latest checkpoint, in that mount.
pub const CHECKPOINT_PATH: &str = "audit/checkpoint";
/// The owner mark of that mount.
pub const RECORDS_OWNER: &str = "publicdata-operator records";
/// The transit mount and the key that signs checkpoints.
pub const TRANSIT_MOUNT: &str = "publicdata-transit";
pub const SIGNING_KEY: &str = "audit-checkpoint";

/// Errors of anchoring.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("OpenBao: {0}")]
    Vault(#[from] vault::Error),
    #[error("the stored checkpoint is unreadable: {0}")]
    Stored(String),
}

/// Signs with a key that stays in OpenBao.
#[async_trait]
pub trait Signer: Send + Sync {
    /// Creates the signing key (ed25519, not exportable) unless it exists.
    async fn ensure_key(&self) -> Result<(), vault::Error>;
    /// OpenBao's signature of `message`: `vault:v<N>:<base64>`.
    async fn sign(&self, message: &[u8]) -> Result<String, vault::Error>;
    /// The public halves of every version of the key.
    async fn public_keys(&self) -> Result<PublicKeys, vault::Error>;
}

/// Makes sure the signing key exists, then [`load`]s the anchor: what the
/// leader does before it opens the log.
pub async fn prepare(backend: &dyn SecretsBackend, signer: &dyn Signer) -> Result<Anchor, Error> {
    signer.ensure_key().await?;
    load(backend, signer).await
}

/// The latest checkpoint as stored, and the keys to check it with.
pub async fn load(backend: &dyn SecretsBackend, signer: &dyn Signer) -> Result<Anchor, Error> {
    let keys = signer.public_keys().await?;
    let checkpoint = match backend.read_kv2(RECORDS_MOUNT, CHECKPOINT_PATH).await? {
        None => None,
        Some(data) => Some(decode(&data)?),
    };
    Ok(Anchor { checkpoint, keys })
}

/// Signs `head` and stores it as the latest checkpoint.
pub async fn checkpoint(
    backend: &dyn SecretsBackend,
    signer: &dyn Signer,
    head: &Record,
) -> Result<Checkpoint, Error> {
    let time = jiff::Timestamp::now().to_string();
    let signature = signer.sign(&message(head.seq, &head.hash, &time)).await?;
    let checkpoint = Checkpoint {
        seq: head.seq,
        hash: head.hash.clone(),
        time,
        signature,
    };
    backend
        .write_kv2_once(
            RECORDS_OWNER,
            RECORDS_MOUNT,
            CHECKPOINT_PATH,
            &encode(&checkpoint),
        )
        .await?;
    Ok(checkpoint)
}

fn encode(c: &Checkpoint) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("seq".into(), c.seq.to_string()),
        ("hash".into(), c.hash.clone()),
        ("time".into(), c.time.clone()),
        ("signature".into(), c.signature.clone()),
    ])
}

fn decode(data: &BTreeMap<String, String>) -> Result<Checkpoint, Error> {
    let field = |name: &str| {
        data.get(name)
            .cloned()
            .ok_or_else(|| Error::Stored(format!("no {name}")))
    };
    Ok(Checkpoint {
        seq: field("seq")?
            .parse()
            .map_err(|e| Error::Stored(format!("seq: {e}")))?,
        hash: field("hash")?,
        time: field("time")?,
        signature: field("signature")?,
    })
}

/// Where the checkpointer starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// The log was checked against this anchor when it was opened.
    Checked(Anchor),
    /// The anchor could not be loaded then: load it and check the log
    /// against it before signing anything.
    Unchecked,
}

/// Checkpoints the head of `sink` whenever it moved, looking every `every`.
/// Never signs a log that is damaged or not yet checked against the stored
/// checkpoint: its head would not be the chain's.
pub async fn run(
    sink: Arc<dyn Sink>,
    backend: Arc<dyn SecretsBackend>,
    signer: Arc<dyn Signer>,
    start: Start,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut anchored = match start {
        Start::Checked(anchor) => Some(anchor.checkpoint.map(|c| c.seq)),
        Start::Unchecked => None,
    };
    loop {
        tick.tick().await;
        let Some(last) = anchored else {
            match prepare(backend.as_ref(), signer.as_ref()).await {
                Ok(anchor) => {
                    if let Err(problem) = sink.anchor(&anchor) {
                        tracing::error!(
                            "the audit log does not agree with its checkpoint: {problem}"
                        );
                    }
                    anchored = Some(anchor.checkpoint.map(|c| c.seq));
                }
                Err(e) => tracing::warn!("loading the audit log's checkpoint: {e}"),
            }
            continue;
        };
        if last.is_some() && last == sink.head().map(|h| h.seq) {
            continue;
        }
        let Some(seq) = once(sink.as_ref(), backend.as_ref(), signer.as_ref()).await else {
            continue;
        };
        anchored = Some(Some(seq));
        if last.is_none() {
            // The first checkpoint is stored: from now on the log must have
            // one, and says so (anchored on the next pass). Written after the
            // checkpoint, so no crash leaves this record without one.
            let first = super::Entry {
                tenant: String::new(),
                object: format!("OpenBaoKey/{TRANSIT_MOUNT}/{SIGNING_KEY}"),
                action: super::anchor::ANCHORED.into(),
                reason: format!(
                    "the chain's head is checkpointed from now on, signed by OpenBao \
                     ({TRANSIT_MOUNT}/keys/{SIGNING_KEY}) and kept in \
                     {RECORDS_MOUNT}/{CHECKPOINT_PATH}"
                ),
                outcome: "Success".into(),
                actor: None,
                uid: None,
                delivery: None,
            };
            if let Err(e) = super::append(&sink, first).await {
                tracing::warn!("recording the first checkpoint: {e}");
            }
        }
    }
}

/// One pass: checkpoints the head unless the log is damaged or empty;
/// returns the sequence anchored.
pub async fn once(
    sink: &dyn Sink,
    backend: &dyn SecretsBackend,
    signer: &dyn Signer,
) -> Option<u64> {
    if let Err(problem) = sink.health() {
        // Reported where the damage was found; nothing to sign meanwhile.
        tracing::debug!("not checkpointing the audit log: {problem}");
        return None;
    }
    let head = sink.head()?;
    match checkpoint(backend, signer, &head).await {
        Ok(c) => {
            tracing::debug!(seq = c.seq, "audit chain checkpointed");
            Some(c.seq)
        }
        Err(e) => {
            tracing::warn!(seq = head.seq, "checkpointing the audit log failed: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::anchor::check;
    use crate::audit::{Entry, FileSink};
    use crate::vault::memory::Memory;

    fn entry(n: usize) -> Entry {
        Entry {
            tenant: "acme".into(),
            object: "OperatorAuthorization/acme".into(),
            action: format!("Step{n}"),
            reason: "test".into(),
            outcome: "Success".into(),
            actor: None,
            uid: None,
            delivery: None,
        }
    }

    #[tokio::test]
    async fn a_checkpoint_is_signed_stored_and_read_back_and_anchors_the_log() {
        let dir = std::env::temp_dir().join(format!("anchor-{}", std::process::id()));
        let path = dir.join("audit.log");
        let _ = std::fs::remove_dir_all(&dir);
        let sink = FileSink::open(&path).unwrap();
        let backend = Memory::default();
        let signer = crate::vault::memory::MemorySigner::default();
        signer.ensure_key().await.unwrap();
        assert_eq!(once(&sink, &backend, &signer).await, None, "empty log");
        for n in 0..3 {
            sink.append(entry(n)).unwrap();
        }
        assert_eq!(once(&sink, &backend, &signer).await, Some(3));
        let anchor = load(&backend, &signer).await.unwrap();
        assert_eq!(anchor.checkpoint.as_ref().map(|c| c.seq), Some(3));
        sink.append(entry(3)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let anchored = check(&bytes, &anchor).unwrap();
        assert_eq!(anchored.unanchored(), 1);
        // Cut back to two records: the checkpoint says three were there.
        let two: Vec<&str> = std::str::from_utf8(&bytes)
            .unwrap()
            .lines()
            .take(2)
            .collect();
        let cut = format!("{}\n", two.join("\n"));
        assert!(matches!(
            check(cut.as_bytes(), &anchor),
            Err(crate::audit::Problem::Truncated {
                end: 2,
                anchored: 3,
                ..
            })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Signs like OpenBao while `up`, refuses while down.
    struct Flaky {
        up: std::sync::atomic::AtomicBool,
        inner: crate::vault::memory::MemorySigner,
    }

    #[async_trait]
    impl Signer for Flaky {
        async fn ensure_key(&self) -> Result<(), vault::Error> {
            Ok(())
        }
        async fn sign(&self, message: &[u8]) -> Result<String, vault::Error> {
            if self.up.load(std::sync::atomic::Ordering::SeqCst) {
                self.inner.sign(message).await
            } else {
                Err(vault::Error::Settings("OpenBao is down".into()))
            }
        }
        async fn public_keys(&self) -> Result<PublicKeys, vault::Error> {
            self.inner.public_keys().await
        }
    }

    #[tokio::test]
    async fn the_log_says_it_is_anchored_once_and_only_after_its_first_checkpoint() {
        let dir = std::env::temp_dir().join(format!("anchor-first-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("audit.log");
        let sink: Arc<dyn Sink> = Arc::new(FileSink::open(&path).unwrap());
        sink.append(entry(0)).unwrap();
        let backend = Arc::new(Memory::default());
        let signer = Arc::new(Flaky {
            up: false.into(),
            inner: Default::default(),
        });
        let task = tokio::spawn(run(
            sink.clone(),
            backend.clone(),
            signer.clone(),
            Start::Checked(Anchor::default()),
            Duration::from_millis(5),
        ));
        // OpenBao down for many passes: nothing is claimed.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(sink.head().map(|h| h.seq), Some(1));
        signer.up.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut anchored = None;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            anchored = load(backend.as_ref(), signer.as_ref())
                .await
                .unwrap()
                .checkpoint
                .map(|c| c.seq);
            if anchored == Some(2) {
                break;
            }
        }
        task.abort();
        assert_eq!(anchored, Some(2), "the record saying so is anchored too");
        let text = std::fs::read_to_string(&path).unwrap();
        let actions: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Record>(l).unwrap().entry.action)
            .collect();
        assert_eq!(actions, ["Step0", super::super::anchor::ANCHORED]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
