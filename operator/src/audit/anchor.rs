//! Anchors for the audit chain: what a hash chain alone cannot
//! show.
//!
//! A chain proves each record follows the one before it, but not where it
//! ends: cutting records off the end, or rewriting one and re-hashing all
//! after it, leaves a chain that verifies. So the operator checkpoints the
//! chain's head (sequence, hash, time) after every change, at most a few
//! seconds late, signed by a key that never leaves OpenBao (transit,
//! ed25519), and keeps the latest checkpoint outside the log. A log is then
//! checked against it: it must still hold the signed record, unchanged.
//! Records written after the latest checkpoint are reported as not yet
//! anchored.
//!
//! This module is pure: the message that is signed, the check of a log
//! against a checkpoint, and the check of a signature against the public
//! keys OpenBao reports. The task that signs and stores checkpoints is in
//! `checkpointer.rs`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{Problem, Record, split_tail, verify_lines_with};

/// What the signature covers, besides the head: the purpose and its version,
/// so that no other signature by the same key can pass for a checkpoint.
const PURPOSE: &str = "publicdata-audit-checkpoint/v1";

/// A signed statement that the chain held record `seq`, with `hash`, at `time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The sequence number of the chain's head.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// When it was signed (RFC 3339, UTC).
    pub time: String,
    /// OpenBao's transit signature over [`message`]: `vault:v<key version>:<base64>`.
    pub signature: String,
}

/// The public halves of the signing key's versions (base64, as OpenBao
/// reports them), by version.
pub type PublicKeys = BTreeMap<u32, String>;

/// What a log is checked against: the latest checkpoint (none before the
/// first one is written) and the keys to check its signature with.
///
/// Every checkpoint is also written, locked, to the records store (S3 Object
/// Lock, compliance mode): `locked` is the latest there. Whoever holds the
/// operator's OpenBao token can write an older checkpoint to OpenBao again,
/// but cannot remove a locked copy, so a rollback shows as an OpenBao
/// checkpoint behind the locked one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub checkpoint: Option<Checkpoint>,
    pub keys: PublicKeys,
    /// The latest checkpoint in the records store (none when no store is
    /// configured, or before the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<Checkpoint>,
    /// The records store holds locked copies, but none of OpenBao's
    /// checkpoint: the operator locks each copy before it writes OpenBao, so
    /// that checkpoint was written by someone else (one signed ahead of the
    /// chain with the operator's token, say).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unlocked: bool,
}

/// Where the records store keeps checkpoint copies: one object per
/// checkpoint, named so that key order is sequence order.
pub const LOCKED_PREFIX: &str = "audit/checkpoints/";

/// The records store key of a checkpoint copy.
pub fn locked_key(c: &Checkpoint) -> String {
    format!(
        "{LOCKED_PREFIX}{:020}-{}.json",
        c.seq,
        c.time.replace(':', "")
    )
}

/// What the operator checks its own log against when it opens it: the
/// anchor, or, when OpenBao's checkpoint was rolled back behind its locked
/// copy, the locked copy in its place (the log is not damaged by that: the
/// checkpoint was), with the rollback to report.
pub fn trusted(anchor: &Anchor) -> (Anchor, Option<Problem>) {
    match not_rolled_back(anchor) {
        Ok(()) => (anchor.clone(), None),
        Err(problem) => (
            Anchor {
                checkpoint: anchor.locked.clone(),
                unlocked: false,
                ..anchor.clone()
            },
            Some(problem),
        ),
    }
}

/// `Err` when OpenBao's checkpoint is behind (or without) the locked copy.
pub fn not_rolled_back(anchor: &Anchor) -> Result<(), Problem> {
    if let (true, Some(c)) = (anchor.unlocked, &anchor.checkpoint) {
        return Err(Problem::CheckpointNotLocked {
            seq: c.seq,
            time: c.time.clone(),
        });
    }
    let Some(locked) = &anchor.locked else {
        return Ok(());
    };
    match &anchor.checkpoint {
        Some(c) if c.seq >= locked.seq => Ok(()),
        found => Err(Problem::CheckpointRolledBack {
            found: found.as_ref().map_or_else(
                || "none".to_string(),
                |c| format!("record {}, signed at {}", c.seq, c.time),
            ),
            locked: locked.seq,
            time: locked.time.clone(),
        }),
    }
}

/// The action of the record the operator writes once its first checkpoint
/// is stored: from then on, a log without a checkpoint has lost it.
pub const ANCHORED: &str = "AuditChainAnchored";

/// The bytes OpenBao signs for a checkpoint of `seq`, `hash` at `time`.
pub fn message(seq: u64, hash: &str, time: &str) -> Vec<u8> {
    format!("{PURPOSE}\nseq {seq}\nhash {hash}\ntime {time}\n").into_bytes()
}

/// Checks `checkpoint`'s signature against `keys`.
pub fn verify_signature(checkpoint: &Checkpoint, keys: &PublicKeys) -> Result<(), Problem> {
    let forged = |why: String| Problem::CheckpointForged {
        seq: checkpoint.seq,
        time: checkpoint.time.clone(),
        why,
    };
    let (version, signature) = checkpoint
        .signature
        .strip_prefix("vault:v")
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(|| forged("the signature is not OpenBao's (vault:v<N>:<base64>)".into()))?;
    let version: u32 = version
        .parse()
        .map_err(|_| forged(format!("key version {version:?} is not a number")))?;
    let public = keys
        .get(&version)
        .ok_or_else(|| forged(format!("the signing key has no version {version}")))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let public: [u8; 32] = b64
        .decode(public)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| {
            forged(format!(
                "key version {version} is not an ed25519 public key"
            ))
        })?;
    let public = ed25519_dalek::VerifyingKey::from_bytes(&public)
        .map_err(|e| forged(format!("key version {version}: {e}")))?;
    let signature: [u8; 64] = b64
        .decode(signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| forged("the signature is not 64 bytes of base64".into()))?;
    public
        .verify_strict(
            &message(checkpoint.seq, &checkpoint.hash, &checkpoint.time),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .map_err(|_| forged(format!("it does not verify with key version {version}")))
}

/// A log that agrees with its anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    /// The last record of the log (None for an empty log).
    pub last: Option<Record>,
    /// The checkpoint the log was checked against (None before the first).
    pub checkpoint: Option<Checkpoint>,
    /// Whether it was checked against an anchor at all (not when [`verify`] had none).
    pub checked: bool,
}

impl Anchored {
    /// Records written after the latest checkpoint (not yet anchored).
    pub fn unanchored(&self) -> u64 {
        let last = self.last.as_ref().map_or(0, |r| r.seq);
        last.saturating_sub(self.checkpoint.as_ref().map_or(0, |c| c.seq))
    }
}

/// What `audit verify` says of a log that agrees with its anchor.
pub fn summary(a: &Anchored) -> String {
    let records = a.last.as_ref().map_or(0, |r| r.seq);
    let mut text = format!("{records} records, chain intact");
    match &a.checkpoint {
        Some(c) => text.push_str(&format!(
            "; anchored: record {} checkpointed and signed by OpenBao at {}",
            c.seq, c.time
        )),
        None if a.checked => text.push_str("; no checkpoint to anchor it yet"),
        None => text.push_str(
            "; not checked against a checkpoint (no anchor given: a cut end or a rewrite \
             re-hashed to the end would pass)",
        ),
    }
    match a.unanchored() {
        0 => {}
        n => text.push_str(&format!(
            "; {n} record(s) after the checkpoint, not yet anchored"
        )),
    }
    if let Some(last) = &a.last {
        text.push_str(&format!(
            "; last record {} at {} ({} {})",
            last.seq, last.time, last.entry.action, last.entry.object
        ));
    }
    text
}

/// Checks a whole log against `anchor`: the checkpoint's signature, the
/// chain, and that the log still holds the signed record unchanged.
///
/// Names what it finds: a forged checkpoint, damage inside the chain, records
/// cut off the end (the log ends before the signed record), or a rewrite
/// re-hashed to the end (the record at the signed sequence has another hash).
pub fn check(bytes: &[u8], anchor: &Anchor) -> Result<Anchored, Problem> {
    for checkpoint in anchor.checkpoint.iter().chain(&anchor.locked) {
        verify_signature(checkpoint, &anchor.keys)?;
    }
    not_rolled_back(anchor)?;
    let (complete, tail) = split_tail(bytes);
    let mut at_checkpoint = None;
    let mut at_locked = None;
    let mut anchored_at = None;
    let wanted = anchor.checkpoint.as_ref().map(|c| c.seq);
    let locked = anchor.locked.as_ref().map(|c| c.seq);
    let lines = complete
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8(l.to_vec()).map_err(std::io::Error::other));
    let last = verify_lines_with(lines, |record| {
        if Some(record.seq) == wanted {
            at_checkpoint = Some(record.hash.clone());
        }
        if Some(record.seq) == locked {
            at_locked = Some(record.hash.clone());
        }
        if record.entry.action == ANCHORED && anchored_at.is_none() {
            anchored_at = Some(record.seq);
        }
    })?;
    if let (None, Some(seq)) = (&anchor.checkpoint, anchored_at) {
        return Err(Problem::CheckpointMissing { seq });
    }
    against(anchor.checkpoint.as_ref(), last.as_ref(), at_checkpoint)?;
    against(anchor.locked.as_ref(), last.as_ref(), at_locked)?;
    if !tail.is_empty() {
        return Err(Problem::TornTail {
            line: complete.iter().filter(|b| **b == b'\n').count() + 1,
            bytes: tail.len(),
        });
    }
    Ok(Anchored {
        last,
        checkpoint: anchor.checkpoint.clone(),
        checked: true,
    })
}

/// A log against its anchor when there is one ([`check`]), otherwise the
/// chain alone, saying so (a copy whose anchor is not at hand).
pub fn verify(bytes: &[u8], anchor: Option<&Anchor>) -> Result<Anchored, Problem> {
    match anchor {
        Some(anchor) => check(bytes, anchor),
        None => Ok(Anchored {
            last: super::verify_bytes(bytes)?,
            checkpoint: None,
            checked: false,
        }),
    }
}

impl Anchor {
    /// An anchor saved as `audit anchor` prints it.
    pub fn from_file(path: &std::path::Path) -> std::io::Result<Self> {
        serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)
    }
}

/// Whether a chain whose last record is `last`, and whose record at the
/// checkpoint's sequence has hash `at_checkpoint`, is the chain `checkpoint`
/// signed (or its continuation).
pub fn against(
    checkpoint: Option<&Checkpoint>,
    last: Option<&Record>,
    at_checkpoint: Option<String>,
) -> Result<(), Problem> {
    let Some(checkpoint) = checkpoint else {
        return Ok(());
    };
    let end = last.map_or(0, |r| r.seq);
    if end < checkpoint.seq {
        return Err(Problem::Truncated {
            end,
            anchored: checkpoint.seq,
            time: checkpoint.time.clone(),
        });
    }
    if at_checkpoint.as_deref() != Some(checkpoint.hash.as_str()) {
        return Err(Problem::Diverged {
            seq: checkpoint.seq,
            time: checkpoint.time.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
