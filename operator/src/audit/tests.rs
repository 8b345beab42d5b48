//! The chain: every way a log can be edited, cut or reordered is named.

use super::*;

/// An entry of tenant `acme` doing `action`.
pub(super) fn entry(action: &str) -> Entry {
    Entry {
        tenant: "acme".into(),
        object: "OperatorAuthorization/acme".into(),
        action: action.into(),
        reason: "test".into(),
        outcome: "Success".into(),
        actor: Some("kubectl".into()),
        uid: None,
        delivery: None,
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
