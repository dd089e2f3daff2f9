//! The sled backend under test: the conformance suite, locking, damage and recovery.

use super::*;
use crate::OpenOptions;
use std::time::Duration;

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir, &OpenOptions::default()).unwrap()
}

crate::doc_store_conformance!(|| {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    (dir, store)
});

fn change(n: u8) -> NewChange {
    NewChange {
        hash: [n; 32],
        bytes: vec![n],
    }
}

fn index_entries(store: &SledStore, doc: &DocumentId) -> usize {
    store.hashes.scan_prefix(doc.as_bytes()).count()
}

#[test]
fn the_hash_index_holds_only_the_log_after_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let doc = DocumentId::random();
    let many: Vec<ChangeHash> = (0..=255).map(|n| [n; 32]).collect();
    store.import(&doc, b"whole", &many).unwrap();
    assert_eq!(index_entries(&store, &doc), 0);
    assert_eq!(
        store
            .snapshot_hashes
            .get(doc.as_bytes())
            .unwrap()
            .unwrap()
            .len(),
        256 * 32
    );

    let other = DocumentId::random();
    store
        .append(&other, &[change(1), change(2), change(3)])
        .unwrap();
    assert_eq!(index_entries(&store, &other), 3);
    store.compact(&other, b"1-2", 2).unwrap();
    assert_eq!(
        index_entries(&store, &other),
        1,
        "only change 3 is in the log"
    );
    store.append(&other, &[change(4)]).unwrap();
    store.append_snapshot(&other, b"1-5", &[[5; 32]]).unwrap();
    assert_eq!(index_entries(&store, &other), 0);
    for n in 1..=5 {
        assert!(store.contains(&other, &[n; 32]).unwrap());
    }
    assert_eq!(
        store
            .append(&other, &[change(4), change(5), change(6)])
            .unwrap(),
        1
    );
}

#[test]
fn an_index_entry_per_snapshotted_change_from_an_older_store_is_folded_by_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let doc = DocumentId::random();
    {
        let store = open(dir.path());
        store.append(&doc, &[change(1), change(2)]).unwrap();
        // What compaction left behind before `snapshot_hashes` existed.
        let compacted = (&store.snapshots, &store.snapshot_through).transaction(|(s, t)| {
            s.insert(doc.as_bytes(), &b"1-2"[..])?;
            t.insert(doc.as_bytes(), &2u64.to_be_bytes())?;
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        store.committed(compacted).unwrap();
        store.drop_log_through(&doc, 2).unwrap();
        store.flush().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(index_entries(&store, &doc), 2);
    assert_eq!(store.append(&doc, &[change(1), change(3)]).unwrap(), 1);
    store.compact(&doc, b"1-3", 3).unwrap();
    assert_eq!(index_entries(&store, &doc), 0);
    assert_eq!(
        store
            .append(&doc, &[change(1), change(2), change(3)])
            .unwrap(),
        0
    );
    assert!(store.contains(&doc, &[2; 32]).unwrap());
}

#[test]
fn damaged_snapshot_hashes_are_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let doc = DocumentId::random();
    store.import(&doc, b"whole", &[[1; 32]]).unwrap();
    store
        .snapshot_hashes
        .insert(doc.as_bytes(), &[0u8; 31][..])
        .unwrap();
    let err = store.contains(&doc, &[1; 32]).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    assert!(store.append(&doc, &[change(2)]).is_err());
}

#[test]
fn flushed_changes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let doc = DocumentId::random();
    {
        let store = open(dir.path());
        let change = NewChange {
            hash: [7; 32],
            bytes: b"abc".to_vec(),
        };
        store.append(&doc, &[change]).unwrap();
        store.flush().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(
        store.load(&doc).unwrap().unwrap().changes,
        vec![b"abc".to_vec()]
    );
    assert!(store.contains(&doc, &[7; 32]).unwrap());
}

#[test]
fn a_second_opener_is_told_the_store_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let quick = OpenOptions {
        lock_wait: Duration::from_millis(50),
        ..OpenOptions::default()
    };
    let err = SledStore::open(dir.path(), &quick).err().unwrap();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use by another process"));
}

/// What a process killed while sled wrote its snapshot leaves: the unfinished file,
/// named after a later position than the last finished one.
fn leave_unfinished_snapshots(dir: &Path) -> Vec<PathBuf> {
    let empty = dir.join("snap.FFFFFFFFFFFFFFFF.generating");
    let torn = dir.join("snap.FFFFFFFFFFFFFFFE.generating");
    std::fs::write(&empty, b"").unwrap();
    std::fs::write(&torn, [9; 100]).unwrap();
    vec![empty, torn]
}

#[test]
fn a_snapshot_a_killed_process_left_unfinished_does_not_stop_the_store_opening() {
    let dir = tempfile::tempdir().unwrap();
    let doc = DocumentId::random();
    {
        let store = open(dir.path());
        store.append(&doc, &[change(1), change(2)]).unwrap();
        store.flush().unwrap();
    }
    let unfinished = leave_unfinished_snapshots(dir.path());
    let store = open(dir.path());
    assert_eq!(
        store.load(&doc).unwrap().unwrap().changes,
        vec![vec![1], vec![2]]
    );
    assert!(unfinished.iter().all(|file| !file.exists()));
    // What the reopened store writes survives the next opening too.
    store.append(&doc, &[change(3)]).unwrap();
    store.flush().unwrap();
    drop(store);
    assert_eq!(
        open(dir.path()).load(&doc).unwrap().unwrap().changes.len(),
        3
    );
}

#[test]
fn snapshot_files_are_left_alone_while_another_opener_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let unfinished = leave_unfinished_snapshots(dir.path());
    let quick = OpenOptions {
        lock_wait: Duration::from_millis(50),
        ..OpenOptions::default()
    };
    let err = SledStore::open(dir.path(), &quick).err().unwrap();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(unfinished.iter().all(|file| file.exists()));
}

#[test]
fn damaged_files_are_an_error_and_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let change = NewChange {
            hash: [1; 32],
            bytes: vec![1; 100],
        };
        store.append(&DocumentId::random(), &[change]).unwrap();
        store.flush().unwrap();
    }
    let conf = dir.path().join("conf");
    std::fs::write(&conf, b"garbage that is not a sled config").unwrap();
    let before = std::fs::read(&conf).unwrap();
    let err = SledStore::open(dir.path(), &OpenOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::Corrupt { .. } | Error::Io { .. }),
        "unexpected: {err}"
    );
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    assert_eq!(std::fs::read(&conf).unwrap(), before);
}
