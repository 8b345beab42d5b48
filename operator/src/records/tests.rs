use super::*;

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "authorization.json",
            br#"{"kind":"OperatorAuthorization"}"#.to_vec(),
        ),
        ("audit-trail.jsonl", b"{\"seq\":1}\n{\"seq\":2}\n".to_vec()),
    ]
}

fn until() -> jiff::Timestamp {
    years_after("2026-11-27T10:00:00Z".parse().unwrap(), KEY_RECORD_YEARS)
}

#[tokio::test]
async fn an_archive_is_written_locked_read_back_and_survives_a_restart() {
    let store = MemoryStore::default();
    let a = write(&store, "acme", "u1", &files(), until())
        .await
        .unwrap();
    assert_eq!(a.location, "memory://records/acme/u1/");
    assert_eq!(a.manifest.retain_until, "2046-11-27T10:00:00Z");
    assert_eq!(a.manifest.objects.len(), 2);
    let stored = store.get("acme/u1/manifest.json").await.unwrap().unwrap();
    assert_eq!(a.digest, sha256(&stored.bytes));
    // Written again (a restart): nothing changes, the same archive.
    let again = write(&store, "acme", "u1", &files(), until())
        .await
        .unwrap();
    assert_eq!(again, a);
    assert_eq!(store.objects.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_record_is_never_overwritten() {
    let store = MemoryStore::default();
    store
        .put_locked("acme/u1/x.json", b"one", until())
        .await
        .unwrap();
    let e = store
        .put_locked("acme/u1/x.json", b"two", until())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Differs { .. }), "{e}");
}

#[tokio::test]
async fn a_changed_missing_or_unlocked_record_fails_verification_and_is_named() {
    let store = MemoryStore::default();
    write(&store, "acme", "u1", &files(), until())
        .await
        .unwrap();
    let edit = |key: &str, f: &dyn Fn(&mut Stored)| {
        let mut objects = store.objects.lock().unwrap();
        f(objects.get_mut(key).unwrap());
    };
    edit("acme/u1/audit-trail.jsonl", &|s| s.bytes.push(b'x'));
    let e = verify(&store, "acme", "u1").await.unwrap_err().to_string();
    assert!(
        e.contains("acme/u1/audit-trail.jsonl does not match its manifest"),
        "{e}"
    );
    edit("acme/u1/audit-trail.jsonl", &|s| {
        s.bytes.pop();
        s.lock = Some(("GOVERNANCE".into(), until()));
    });
    let e = verify(&store, "acme", "u1").await.unwrap_err().to_string();
    assert!(
        e.contains("is not locked as required (GOVERNANCE until"),
        "{e}"
    );
    store
        .objects
        .lock()
        .unwrap()
        .remove("acme/u1/authorization.json");
    let e = verify(&store, "acme", "u1").await.unwrap_err().to_string();
    assert!(e.contains("acme/u1/authorization.json is missing"), "{e}");
    let e = verify(&store, "acme", "other")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("acme/other/manifest.json is missing"), "{e}");
}

#[test]
fn twenty_years_is_counted_in_calendar_years() {
    let leap: jiff::Timestamp = "2028-02-29T12:00:00Z".parse().unwrap();
    assert_eq!(years_after(leap, 20).to_string(), "2048-02-29T12:00:00Z");
    assert_eq!(years_after(leap, 1).to_string(), "2029-02-28T12:00:00Z");
}
