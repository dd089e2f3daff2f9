//! The PostgreSQL backend against the same conformance suites as sled and memory, each
//! test on a fresh database of a throwaway cluster (`nudge_testkit::postgres`). Without
//! PostgreSQL installed, outside CI, the tests say they skipped and why; under `CI=true`
//! they fail.

#![cfg(feature = "postgres")]

use nudge_store::{DocStore, DocumentId, NewChange, PgStore, Records};

/// A store on a new database, or `None` (skipped) without PostgreSQL outside CI.
fn fresh() -> Option<((), PgStore)> {
    let cluster = nudge_testkit::postgres::cluster().expect("a PostgreSQL cluster")?;
    let url = cluster.database().expect("a new database");
    Some(((), PgStore::open(&url).expect("the store opens")))
}

/// A store for the conformance suites; a skipped run ends the test quietly.
fn store() -> ((), PgStore) {
    match fresh() {
        Some(store) => store,
        None => {
            eprintln!("skipped: PostgreSQL is not installed");
            std::process::exit(0);
        }
    }
}

nudge_store::doc_store_conformance!(store);
nudge_store::records_conformance!(store);

#[test]
fn a_second_open_finds_the_schema_and_the_data() {
    let Some(cluster) = nudge_testkit::postgres::cluster().unwrap() else {
        return;
    };
    let url = cluster.database().unwrap();
    let doc = DocumentId::random();
    {
        let store = PgStore::open(&url).unwrap();
        let change = NewChange {
            hash: [4; 32],
            bytes: vec![4; 40],
        };
        store.append(&doc, &[change]).unwrap();
        store.put("accounts", b"ana", b"1").unwrap();
    }
    let again = PgStore::open(&url).unwrap();
    assert_eq!(again.position(&doc).unwrap(), 1);
    assert_eq!(
        again.get("accounts", b"ana").unwrap().as_deref(),
        Some(&b"1"[..])
    );
}

#[test]
fn a_bad_url_or_an_unreachable_database_is_a_clear_error() {
    let err = PgStore::open("not a url").err().unwrap().to_string();
    assert!(err.contains("postgres://"), "{err}");
    // Nothing listens there: the error names the database, never a password.
    let port = nudge_testkit::free_port();
    let err = PgStore::open(&format!("postgres://nudge:secret@127.0.0.1:{port}/x"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("127.0.0.1"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

/// Waits up to ten seconds for `pred` over what `rx` delivered.
fn heard(
    rx: &std::sync::mpsc::Receiver<nudge_store::Signal>,
    mut pred: impl FnMut(&nudge_store::Signal) -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(signal) if pred(&signal) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn a_node_hears_the_others_writes_and_announcements_but_not_its_own() {
    use nudge_store::{Shared, Signal};
    let Some(cluster) = nudge_testkit::postgres::cluster().unwrap() else {
        return;
    };
    let url = cluster.database().unwrap();
    let (one, two) = (PgStore::open(&url).unwrap(), PgStore::open(&url).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    one.listen(Box::new(move |signal| {
        let _ = tx.lock().unwrap().send(signal);
    }));
    // Listening starts with a resume: whatever was missed before, re-read.
    assert!(heard(&rx, |s| *s == Signal::Resumed));
    assert!(one.listening());
    let doc = DocumentId::random();
    let change = |n: u8| NewChange {
        hash: [n; 32],
        bytes: vec![n; 10],
    };
    // Its own write first: it must not hear that one.
    one.append(&doc, &[change(1)]).unwrap();
    two.append(&doc, &[change(2), change(3)]).unwrap();
    let mut first = None;
    assert!(heard(&rx, |s| {
        first.get_or_insert(s.clone());
        matches!(s, Signal::Changed { .. })
    }));
    assert_eq!(first, Some(Signal::Changed { doc, position: 3 }));
    // A write that adds nothing says nothing; an announcement is heard as sent.
    two.append(&doc, &[change(2)]).unwrap();
    let withdrawn = Signal::Withdrawn {
        tokens: vec!["tok1".into()],
        documents: vec![doc],
    };
    two.announce(&withdrawn).unwrap();
    let mut got = Vec::new();
    assert!(heard(&rx, |s| {
        got.push(s.clone());
        matches!(s, Signal::Withdrawn { documents, .. } if !documents.is_empty())
    }));
    assert_eq!(
        got,
        vec![
            Signal::Withdrawn {
                tokens: vec!["tok1".into()],
                documents: vec![]
            },
            Signal::Withdrawn {
                tokens: vec![],
                documents: vec![doc]
            }
        ]
    );
}

#[test]
fn a_compaction_behind_another_nodes_puts_no_older_snapshot_back() {
    let Some(cluster) = nudge_testkit::postgres::cluster().unwrap() else {
        return;
    };
    let url = cluster.database().unwrap();
    let (one, two) = (PgStore::open(&url).unwrap(), PgStore::open(&url).unwrap());
    let doc = DocumentId::random();
    let changes: Vec<NewChange> = (1..=4)
        .map(|n| NewChange {
            hash: [n; 32],
            bytes: vec![n; 10],
        })
        .collect();
    one.append(&doc, &changes).unwrap();
    two.compact(&doc, b"through four", 4).unwrap();
    // One's copy held only the first two: its snapshot would lose three and four.
    one.compact(&doc, b"through two", 2).unwrap();
    let stored = one.load(&doc).unwrap().unwrap();
    assert_eq!(stored.snapshot.as_deref(), Some(&b"through four"[..]));
    assert_eq!(stored.position, 4);
}
