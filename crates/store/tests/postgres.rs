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
