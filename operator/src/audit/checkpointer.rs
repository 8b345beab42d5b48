//! The task that anchors the audit chain (see `anchor.rs`): soon after the
//! log's head moves, the head is signed by OpenBao's transit engine with a
//! key that never leaves it, and the checkpoint is written to OpenBao's KV
//! (the operator's `publicdata-records` mount), outside the log and out of
//! reach of whoever can reach the log's volume. Each write is a
//! check-and-set on the version the checkpointer wrote last, so a version it
//! did not write is noticed (and recorded) at its next pass.
//!
//! Each checkpoint is also written to the records store, locked in
//! compliance mode for the key records' 20 years. The operator's OpenBao
//! policy cannot delete or destroy a checkpoint version, but whoever holds
//! its token can write an older checkpoint again; a locked copy nobody can
//! remove then says the chain went further (`anchor::not_rolled_back`).
//!
//! Nothing is written while the log does not move: an idle operator makes no
//! checkpoint writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::anchor::{Anchor, Checkpoint, LOCKED_PREFIX, PublicKeys, locked_key, message};
use super::{Record, Sink};
use crate::records::{self, Store};
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
    #[error("the records store: {0}")]
    Records(#[from] records::Error),
}

/// The action recorded when the stored checkpoint is not the one the
/// operator wrote last.
pub const OVERWRITTEN: &str = "AuditCheckpointOverwritten";

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
pub async fn prepare(
    backend: &dyn SecretsBackend,
    signer: &dyn Signer,
    records: Option<&dyn Store>,
) -> Result<Anchor, Error> {
    signer.ensure_key().await?;
    load(backend, signer, records).await
}

/// The latest checkpoint as stored, and the keys to check it with.
///
/// With a records store, also the latest locked copy at or after OpenBao's
/// checkpoint (listed from there, so the normal case reads one or none).
pub async fn load(
    backend: &dyn SecretsBackend,
    signer: &dyn Signer,
    records: Option<&dyn Store>,
) -> Result<Anchor, Error> {
    let keys = signer.public_keys().await?;
    let checkpoint = match backend.read_kv2(RECORDS_MOUNT, CHECKPOINT_PATH).await? {
        None => None,
        Some(data) => Some(decode(&data)?),
    };
    let (mut locked, mut unlocked) = (None, false);
    if let Some(store) = records {
        let read = |key: String| async move {
            let stored = store.get(&key).await?;
            stored
                .map(|s| {
                    serde_json::from_slice::<Checkpoint>(&s.bytes)
                        .map_err(|e| Error::Stored(format!("{key}: {e}")))
                })
                .transpose()
        };
        let from = checkpoint
            .as_ref()
            .map(|c| format!("{LOCKED_PREFIX}{:020}", c.seq))
            .unwrap_or_default();
        if let Some(latest) = store.list_after(LOCKED_PREFIX, &from).await?.last() {
            locked = read(latest.key.clone()).await?;
        }
        if let Some(c) = &checkpoint {
            let own = read(locked_key(c)).await?;
            unlocked = own.as_ref() != Some(c) && store.any(LOCKED_PREFIX).await?;
        }
    }
    Ok(Anchor {
        checkpoint,
        keys,
        locked,
        unlocked,
    })
}

/// Signs `head` and stores it as the latest checkpoint: locked in the
/// records store first, then in OpenBao, with check-and-set on `version`
/// (the version there now). Returns the checkpoint and the OpenBao version
/// written. A failure leaves OpenBao as it was: nothing there is ever a
/// checkpoint without its locked copy.
pub async fn checkpoint(
    backend: &dyn SecretsBackend,
    signer: &dyn Signer,
    records: Option<&dyn Store>,
    head: &Record,
    version: u64,
) -> Result<(Checkpoint, u64), Error> {
    let time = jiff::Timestamp::now().to_string();
    let signature = signer.sign(&message(head.seq, &head.hash, &time)).await?;
    let checkpoint = Checkpoint {
        seq: head.seq,
        hash: head.hash.clone(),
        time,
        signature,
    };
    if let Some(store) = records {
        let bytes = serde_json::to_vec(&checkpoint)
            .map_err(|e| Error::Stored(format!("encoding the checkpoint: {e}")))?;
        let until = records::years_after(jiff::Timestamp::now(), records::KEY_RECORD_YEARS);
        store
            .put_locked(&locked_key(&checkpoint), &bytes, until)
            .await?;
    }
    let written = backend
        .write_kv2_cas(
            RECORDS_OWNER,
            RECORDS_MOUNT,
            CHECKPOINT_PATH,
            &encode(&checkpoint),
            version,
        )
        .await?;
    Ok((checkpoint, written))
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

/// The action recorded when OpenBao's checkpoint was found behind its
/// locked copy.
pub const ROLLED_BACK: &str = "AuditCheckpointRolledBack";

/// Reports and records a checkpoint found rolled back (see
/// `anchor::trusted`); the next checkpoint replaces it.
pub async fn record_rollback(sink: &Arc<dyn Sink>, problem: &super::Problem) {
    tracing::error!("{problem}; the log is checked against the locked copy instead");
    let record = super::Entry {
        tenant: String::new(),
        object: format!("OpenBaoSecret/{RECORDS_MOUNT}/{CHECKPOINT_PATH}"),
        action: ROLLED_BACK.into(),
        reason: problem.to_string(),
        outcome: "Success".into(),
        actor: None,
        uid: None,
        delivery: None,
    };
    if let Err(e) = super::append(sink, record).await {
        tracing::warn!("recording the rolled-back checkpoint: {e}");
    }
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
    records: Option<Arc<dyn Store>>,
    start: Start,
    every: Duration,
) {
    let records = records.as_deref();
    // The OpenBao version the checkpointer wrote last (none yet).
    let mut wrote: Option<u64> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut anchored = match start {
        Start::Checked(anchor) => Some(anchor.checkpoint.map(|c| c.seq)),
        Start::Unchecked => None,
    };
    loop {
        tick.tick().await;
        let Some(last) = anchored else {
            match prepare(backend.as_ref(), signer.as_ref(), records).await {
                Ok(anchor) => {
                    let (anchor, rollback) = super::anchor::trusted(&anchor);
                    if let Some(problem) = rollback {
                        record_rollback(&sink, &problem).await;
                    }
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
        let Some((seq, version)) = once(
            sink.as_ref(),
            backend.as_ref(),
            signer.as_ref(),
            records,
            wrote,
        )
        .await
        else {
            continue;
        };
        wrote = Some(version);
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
/// returns the sequence anchored and the OpenBao version written. `wrote` is
/// the version this checkpointer wrote last: another one there now was
/// written by someone else, and is recorded before it is replaced.
pub async fn once(
    sink: &dyn Sink,
    backend: &dyn SecretsBackend,
    signer: &dyn Signer,
    records: Option<&dyn Store>,
    wrote: Option<u64>,
) -> Option<(u64, u64)> {
    if let Err(problem) = sink.health() {
        // Reported where the damage was found; nothing to sign meanwhile.
        tracing::debug!("not checkpointing the audit log: {problem}");
        return None;
    }
    let head = sink.head()?;
    let version = match backend.kv2_version(RECORDS_MOUNT, CHECKPOINT_PATH).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("reading the checkpoint's version: {e}");
            return None;
        }
    };
    if let Some(mine) = wrote.filter(|mine| *mine != version) {
        tracing::error!(
            mine,
            found = version,
            "the audit checkpoint in OpenBao was written by someone else; recorded, and replaced"
        );
        let record = super::Entry {
            tenant: String::new(),
            object: format!("OpenBaoSecret/{RECORDS_MOUNT}/{CHECKPOINT_PATH}"),
            action: OVERWRITTEN.into(),
            reason: format!(
                "version {version} is there, but the operator wrote version {mine} last: someone \
                 else with write access to the checkpoint wrote it (the locked copies in the \
                 records store show what the chain really reached)"
            ),
            outcome: "Success".into(),
            actor: None,
            uid: None,
            delivery: None,
        };
        if let Err(e) = sink.append(record) {
            tracing::warn!("recording the overwritten checkpoint: {e}");
        }
    }
    let head = sink.head().unwrap_or(head);
    match checkpoint(backend, signer, records, &head, version).await {
        Ok((c, written)) => {
            tracing::debug!(seq = c.seq, "audit chain checkpointed");
            Some((c.seq, written))
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
        assert_eq!(
            once(&sink, &backend, &signer, None, None).await,
            None,
            "empty log"
        );
        for n in 0..3 {
            sink.append(entry(n)).unwrap();
        }
        assert_eq!(
            once(&sink, &backend, &signer, None, None).await,
            Some((3, 1))
        );
        let anchor = load(&backend, &signer, None).await.unwrap();
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

    #[tokio::test]
    async fn every_checkpoint_is_locked_too_and_one_written_back_by_another_is_recorded_and_shown()
    {
        let dir = std::env::temp_dir().join(format!("anchor-locked-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("audit.log");
        let sink = FileSink::open(&path).unwrap();
        let backend = Memory::default();
        let signer = crate::vault::memory::MemorySigner::default();
        let store = crate::records::MemoryStore::default();
        signer.ensure_key().await.unwrap();
        sink.append(entry(0)).unwrap();
        sink.append(entry(1)).unwrap();
        let (seq, v1) = once(&sink, &backend, &signer, Some(&store), None)
            .await
            .unwrap();
        assert_eq!((seq, v1), (2, 1));
        let old = load(&backend, &signer, Some(&store)).await.unwrap();
        assert_eq!(old.locked, old.checkpoint, "the copy is the checkpoint");
        sink.append(entry(2)).unwrap();
        let (seq, v2) = once(&sink, &backend, &signer, Some(&store), Some(v1))
            .await
            .unwrap();
        assert_eq!((seq, v2), (3, 2));
        let objects = store.objects.lock().unwrap().len();
        assert_eq!(objects, 2, "one locked copy per checkpoint");
        // Whoever holds the operator's token writes the older checkpoint back.
        let older = old.checkpoint.clone().unwrap();
        backend
            .write_kv2_cas(
                RECORDS_OWNER,
                RECORDS_MOUNT,
                CHECKPOINT_PATH,
                &encode(&older),
                2,
            )
            .await
            .unwrap();
        let rolled = load(&backend, &signer, Some(&store)).await.unwrap();
        assert_eq!(rolled.locked.as_ref().map(|c| c.seq), Some(3));
        let bytes = std::fs::read(&path).unwrap();
        let e = crate::audit::anchor::check(&bytes, &rolled).unwrap_err();
        assert!(
            matches!(
                e,
                crate::audit::Problem::CheckpointRolledBack { locked: 3, .. }
            ),
            "{e}"
        );
        // Nor can one signed ahead with the operator's key pass: it has no
        // locked copy, which the operator always writes first.
        let head = sink.head().unwrap();
        let time = "2099-01-01T00:00:00Z".to_string();
        let ahead = Checkpoint {
            seq: head.seq,
            hash: head.hash.clone(),
            signature: signer
                .sign(&message(head.seq, &head.hash, &time))
                .await
                .unwrap(),
            time,
        };
        backend
            .write_kv2_cas(
                RECORDS_OWNER,
                RECORDS_MOUNT,
                CHECKPOINT_PATH,
                &encode(&ahead),
                3,
            )
            .await
            .unwrap();
        let forged = load(&backend, &signer, Some(&store)).await.unwrap();
        assert!(forged.unlocked);
        let e = crate::audit::anchor::check(&bytes, &forged).unwrap_err();
        assert!(
            matches!(e, crate::audit::Problem::CheckpointNotLocked { .. }),
            "{e}"
        );
        // A blind write (not on the current version) is refused.
        assert!(
            backend
                .write_kv2_cas(
                    RECORDS_OWNER,
                    RECORDS_MOUNT,
                    CHECKPOINT_PATH,
                    &encode(&older),
                    1
                )
                .await
                .is_err()
        );
        // The next pass notices a version it did not write, records it, and
        // checkpoints the head again.
        let (seq, _) = once(&sink, &backend, &signer, Some(&store), Some(v2))
            .await
            .unwrap();
        assert_eq!(seq, 4, "the record of the overwrite is anchored");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(OVERWRITTEN), "{text}");
        let again = load(&backend, &signer, Some(&store)).await.unwrap();
        crate::audit::anchor::check(text.as_bytes(), &again).unwrap();
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
            None,
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
            anchored = load(backend.as_ref(), signer.as_ref(), None)
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
