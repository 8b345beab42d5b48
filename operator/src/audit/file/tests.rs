//! The file sink: a chain that survives reopening, a torn tail set aside,
//! a damaged log that holds records until it is repaired.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;
use crate::audit::tests::entry;
use crate::audit::{Problem, Record, Sink, verify_file};

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

#[tokio::test]
async fn a_log_cut_behind_its_checkpoint_is_damaged_when_opened_and_holds_records() {
    use crate::audit::checkpointer::{Signer, load, once};
    use crate::vault::memory::{Memory, MemorySigner};
    let path = scratch("anchored");
    let (backend, signer) = (Memory::default(), MemorySigner::default());
    signer.ensure_key().await.unwrap();
    {
        let sink = FileSink::open(&path).unwrap();
        for n in ["one", "two", "three"] {
            sink.append(entry(n)).unwrap();
        }
        assert_eq!(
            once(&sink, &backend, &signer, None, None)
                .await
                .map(|(seq, _)| seq),
            Some(3)
        );
    }
    let anchor = load(&backend, &signer, None).await.unwrap();
    // Sound: opens and appends.
    FileSink::open_anchored(&path, &anchor)
        .unwrap()
        .append(entry("four"))
        .unwrap();
    // The last two records cut off: the chain of the first two alone verifies.
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, kept).unwrap();
    let sink = FileSink::open_anchored(&path, &anchor).unwrap();
    assert!(matches!(
        sink.health(),
        Err(Problem::Truncated {
            end: 2,
            anchored: 3,
            ..
        })
    ));
    assert!(matches!(
        sink.append(entry("five")),
        Err(crate::audit::Error::Held { .. })
    ));
    // The same found by a running sink, checked late.
    let late = FileSink::open(&path).unwrap();
    assert!(late.health().is_ok());
    assert!(late.anchor(&anchor).is_err());
    assert!(late.health().is_err());
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
