use base64::Engine as _;
use ed25519_dalek::Signer as _;

use super::*;
use crate::audit::{Entry, GENESIS, Record, hash_of};

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn keys(k: &ed25519_dalek::SigningKey) -> PublicKeys {
    BTreeMap::from([(1, b64().encode(k.verifying_key().to_bytes()))])
}

fn signed(k: &ed25519_dalek::SigningKey, record: &Record) -> Checkpoint {
    let time = "2026-11-27T10:00:00Z".to_string();
    let signature = k.sign(&message(record.seq, &record.hash, &time)).to_bytes();
    Checkpoint {
        seq: record.seq,
        hash: record.hash.clone(),
        time,
        signature: format!("vault:v1:{}", b64().encode(signature)),
    }
}

fn entry(action: &str) -> Entry {
    Entry {
        tenant: "acme".into(),
        object: "OperatorAuthorization/acme".into(),
        action: action.into(),
        reason: "decision PDB-1".into(),
        outcome: "Success".into(),
        actor: None,
        uid: None,
        delivery: None,
    }
}

fn chain(actions: &[&str]) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for a in actions {
        let next = Record::next(out.last(), format!("t{}", out.len()), entry(a));
        out.push(next);
    }
    out
}

fn bytes(records: &[Record]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| {
            let mut line = serde_json::to_vec(r).unwrap();
            line.push(b'\n');
            line
        })
        .collect()
}

fn anchored_at(records: &[Record], seq: usize, k: &ed25519_dalek::SigningKey) -> Anchor {
    Anchor {
        checkpoint: Some(signed(k, &records[seq - 1])),
        keys: keys(k),
        locked: None,
        unlocked: false,
    }
}

#[test]
fn an_openbao_checkpoint_behind_its_locked_copy_is_a_rollback() {
    let k = key(1);
    let records = chain(&[ANCHORED, "TenantFrozen", "TenantResumed", "DomainUpdated"]);
    // The locked copy agrees (or lags): fine.
    let mut anchor = anchored_at(&records, 3, &k);
    anchor.locked = Some(signed(&k, &records[1]));
    check(&bytes(&records), &anchor).unwrap();
    anchor.locked = anchor.checkpoint.clone();
    check(&bytes(&records), &anchor).unwrap();
    // OpenBao's checkpoint written back to an older one: named.
    let mut rolled = anchored_at(&records, 2, &k);
    rolled.locked = Some(signed(&k, &records[3]));
    let e = check(&bytes(&records), &rolled).unwrap_err();
    assert!(
        matches!(e, Problem::CheckpointRolledBack { locked: 4, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("rolled back"), "{e}");
    // Or removed.
    rolled.checkpoint = None;
    assert!(matches!(
        check(&bytes(&records), &rolled),
        Err(Problem::CheckpointRolledBack { .. })
    ));
    // A log cut back to an older checkpoint, the checkpoint with it: the
    // locked copy still names the end that was there.
    let cut = &records[..2];
    let mut both = anchored_at(&records, 2, &k);
    both.locked = Some(signed(&k, &records[1]));
    check(&bytes(cut), &both).unwrap();
    both.locked = Some(signed(&k, &records[3]));
    assert!(check(&bytes(cut), &both).is_err());
    // A locked copy not signed by the key is forged.
    let mut forged = anchored_at(&records, 4, &k);
    forged.locked = Some(signed(&key(2), &records[3]));
    assert!(matches!(
        check(&bytes(&records), &forged),
        Err(Problem::CheckpointForged { .. })
    ));
}

#[test]
fn a_log_that_holds_the_signed_record_passes_and_says_what_is_not_yet_anchored() {
    let k = key(1);
    let records = chain(&[ANCHORED, "TenantFrozen", "TenantResumed", "DomainUpdated"]);
    let anchor = anchored_at(&records, 3, &k);
    let a = check(&bytes(&records), &anchor).unwrap();
    assert_eq!(a.last.as_ref().map(|r| r.seq), Some(4));
    assert_eq!(a.unanchored(), 1);
    let said = summary(&a);
    assert!(said.contains("4 records, chain intact"), "{said}");
    assert!(said.contains("record 3 checkpointed"), "{said}");
    assert!(said.contains("1 record(s) after the checkpoint"), "{said}");
}

#[test]
fn records_cut_off_the_end_are_named_as_truncation() {
    let k = key(1);
    let records = chain(&["A", "B", "C", "D"]);
    let anchor = anchored_at(&records, 4, &k);
    // The chain of the first two verifies on its own: only the checkpoint knows.
    assert!(crate::audit::verify_bytes(&bytes(&records[..2])).is_ok());
    assert_eq!(
        check(&bytes(&records[..2]), &anchor),
        Err(Problem::Truncated {
            end: 2,
            anchored: 4,
            time: "2026-11-27T10:00:00Z".into()
        })
    );
    // An emptied log, too.
    assert!(matches!(
        check(b"", &anchor),
        Err(Problem::Truncated { end: 0, .. })
    ));
}

#[test]
fn a_rewrite_rehashed_to_the_end_is_named() {
    let k = key(1);
    let records = chain(&["A", "TenantFrozen", "C", "D"]);
    let anchor = anchored_at(&records, 3, &k);
    // Record 2 says something else, and every hash after it is recomputed.
    let mut forged: Vec<Record> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut e = r.entry.clone();
        if i == 1 {
            e.action = "TenantResumed".into();
        }
        let prev = forged
            .last()
            .map_or(GENESIS.to_string(), |p| p.hash.clone());
        forged.push(Record {
            seq: r.seq,
            time: r.time.clone(),
            hash: hash_of(r.seq, &r.time, &e, &prev),
            entry: e,
            prev,
        });
    }
    assert!(crate::audit::verify_bytes(&bytes(&forged)).is_ok());
    assert!(matches!(
        check(&bytes(&forged), &anchor),
        Err(Problem::Diverged { seq: 3, .. })
    ));
}

#[test]
fn a_checkpoint_not_signed_by_the_key_or_altered_is_forged() {
    let records = chain(&["A", "B", "C"]);
    let mut other = anchored_at(&records, 3, &key(2));
    other.keys = keys(&key(1));
    let why = |r: Result<Anchored, Problem>| match r {
        Err(Problem::CheckpointForged { why, .. }) => why,
        other => panic!("expected a forged checkpoint, got {other:?}"),
    };
    assert!(why(check(&bytes(&records), &other)).contains("does not verify"));
    // The true signature, moved to an earlier record.
    let mut moved = anchored_at(&records, 3, &key(1));
    if let Some(c) = moved.checkpoint.as_mut() {
        c.seq = 2;
        c.hash = records[1].hash.clone();
    }
    assert!(why(check(&bytes(&records[..2]), &moved)).contains("does not verify"));
    // A key version OpenBao does not have.
    let mut unknown = anchored_at(&records, 3, &key(1));
    if let Some(c) = unknown.checkpoint.as_mut() {
        c.signature = c.signature.replacen("vault:v1:", "vault:v9:", 1);
    }
    assert!(why(check(&bytes(&records), &unknown)).contains("no version 9"));
}

#[test]
fn a_log_anchored_once_without_a_checkpoint_has_lost_it() {
    let records = chain(&["A", ANCHORED, "B"]);
    assert_eq!(
        check(&bytes(&records), &Anchor::default()),
        Err(Problem::CheckpointMissing { seq: 2 })
    );
    // A log never anchored yet is just a chain.
    let plain = chain(&["A", "B"]);
    let a = check(&bytes(&plain), &Anchor::default()).unwrap();
    assert!(summary(&a).contains("no checkpoint to anchor it yet"));
}

#[test]
fn a_torn_tail_after_the_checkpoint_is_told_apart_from_tampering() {
    let k = key(1);
    let records = chain(&["A", "B"]);
    let anchor = anchored_at(&records, 2, &k);
    let mut torn = bytes(&records);
    torn.extend_from_slice(b"{\"seq\":3,\"ti");
    assert!(matches!(
        check(&torn, &anchor),
        Err(Problem::TornTail { line: 3, .. })
    ));
}

#[test]
fn a_copy_checked_without_its_anchor_says_what_that_cannot_see() {
    let records = chain(&[ANCHORED, "A", "B"]);
    let a = verify(&bytes(&records[..2]), None).unwrap();
    assert!(!a.checked);
    let said = summary(&a);
    assert!(
        said.contains("2 records, chain intact; not checked against a checkpoint"),
        "{said}"
    );
}
