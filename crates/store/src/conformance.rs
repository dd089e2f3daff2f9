//! The conformance suite every [`DocStore`](crate::DocStore) backend runs.

/// Expands to a module of tests that check a [`DocStore`](crate::DocStore) backend against
/// the trait's contract. The argument is a closure returning `(guard, store)`; the guard
/// (say, a temporary folder) lives as long as the test.
#[macro_export]
macro_rules! doc_store_conformance {
    ($make:expr) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            use $crate::{DocStore, DocumentId, NewChange};

            fn change(n: u8) -> NewChange {
                NewChange {
                    hash: [n; 32],
                    bytes: vec![n; 10 + n as usize],
                }
            }

            #[test]
            fn unknown_documents_load_as_none() {
                let (_guard, store) = ($make)();
                let doc = DocumentId::random();
                assert_eq!(store.load(&doc).unwrap(), None);
                assert_eq!(store.position(&doc).unwrap(), 0);
                assert!(!store.contains(&doc, &[1; 32]).unwrap());
            }

            #[test]
            fn appends_load_in_order() {
                let (_guard, store) = ($make)();
                let doc = DocumentId::random();
                assert_eq!(store.append(&doc, &[change(1), change(2)]).unwrap(), 2);
                assert_eq!(store.append(&doc, &[change(3)]).unwrap(), 1);
                store.flush().unwrap();
                let loaded = store.load(&doc).unwrap().unwrap();
                assert_eq!(loaded.snapshot, None);
                assert_eq!(
                    loaded.changes,
                    vec![change(1).bytes, change(2).bytes, change(3).bytes]
                );
                assert_eq!(loaded.position, 3);
                assert_eq!(store.position(&doc).unwrap(), 3);
                assert_eq!(store.changes_since_snapshot(&doc).unwrap(), 3);
            }

            #[test]
            fn changes_after_a_position_until_compaction_covers_it() {
                let (_guard, store) = ($make)();
                let doc = DocumentId::random();
                assert_eq!(store.changes_after(&doc, 0).unwrap(), Some(vec![]));
                store
                    .append(&doc, &[change(1), change(2), change(3)])
                    .unwrap();
                assert_eq!(
                    store.changes_after(&doc, 1).unwrap(),
                    Some(vec![change(2).bytes, change(3).bytes])
                );
                assert_eq!(store.changes_after(&doc, 3).unwrap(), Some(vec![]));
                store.compact(&doc, b"snapshot", 2).unwrap();
                assert_eq!(store.changes_after(&doc, 1).unwrap(), None);
                assert_eq!(
                    store.changes_after(&doc, 2).unwrap(),
                    Some(vec![change(3).bytes])
                );
                // The position after them is the one asked about plus their count.
                store.append(&doc, &[change(4), change(3)]).unwrap();
                let after = store.changes_after(&doc, 2).unwrap().unwrap();
                assert_eq!(2 + after.len() as u64, store.position(&doc).unwrap());
            }

            #[test]
            fn a_change_is_stored_once_by_hash() {
                let (_guard, store) = ($make)();
                let doc = DocumentId::random();
                store.append(&doc, &[change(1)]).unwrap();
                assert_eq!(store.append(&doc, &[change(1), change(2)]).unwrap(), 1);
                assert_eq!(store.load(&doc).unwrap().unwrap().changes.len(), 2);
                assert!(store.contains(&doc, &[2; 32]).unwrap());
            }

            #[test]
            fn documents_are_isolated() {
                let (_guard, store) = ($make)();
                let a = DocumentId::random();
                let b = DocumentId::random();
                store.append(&a, &[change(1)]).unwrap();
                store.append(&b, &[change(1), change(2)]).unwrap();
                assert_eq!(store.load(&a).unwrap().unwrap().changes.len(), 1);
                assert_eq!(store.load(&b).unwrap().unwrap().changes.len(), 2);
                let mut expected = vec![a, b];
                expected.sort();
                assert_eq!(store.documents().unwrap(), expected);
                store.remove(&a).unwrap();
                assert_eq!(store.load(&a).unwrap(), None);
                assert!(!store.contains(&a, &[1; 32]).unwrap());
                assert_eq!(store.documents().unwrap(), vec![b]);
            }

            #[test]
            fn compaction_keeps_later_changes_and_the_position() {
                let (_guard, store) = ($make)();
                let doc = DocumentId::random();
                store.append(&doc, &[change(1), change(2)]).unwrap();
                let through = store.position(&doc).unwrap();
                store.append(&doc, &[change(3)]).unwrap();
                store
                    .compact(&doc, b"snapshot-of-1-and-2", through)
                    .unwrap();
                let loaded = store.load(&doc).unwrap().unwrap();
                assert_eq!(
                    loaded.snapshot.as_deref(),
                    Some(&b"snapshot-of-1-and-2"[..])
                );
                assert_eq!(loaded.changes, vec![change(3).bytes]);
                assert_eq!(loaded.position, 3);
                assert_eq!(store.changes_since_snapshot(&doc).unwrap(), 1);
                // Compacted changes stay content-addressed: appending one again adds nothing.
                assert_eq!(store.append(&doc, &[change(1)]).unwrap(), 0);
                assert!(store.contains(&doc, &[1; 32]).unwrap());
                assert!(store.contains(&doc, &[3; 32]).unwrap());
                // The position keeps growing after compaction, never reusing a number.
                store.compact(&doc, b"all", 3).unwrap();
                assert_eq!(store.position(&doc).unwrap(), 3);
                assert_eq!(store.changes_since_snapshot(&doc).unwrap(), 0);
                store.append(&doc, &[change(4)]).unwrap();
                assert_eq!(store.position(&doc).unwrap(), 4);
                assert_eq!(store.changes_since_snapshot(&doc).unwrap(), 1);
                let loaded = store.load(&doc).unwrap().unwrap();
                assert_eq!(loaded.changes, vec![change(4).bytes]);
                assert_eq!(store.documents().unwrap(), vec![doc]);
                // Known changes beside new ones, from both compactions and the log.
                assert_eq!(
                    store
                        .append(&doc, &[change(2), change(4), change(5), change(3)])
                        .unwrap(),
                    1
                );
                for n in 1..=5 {
                    assert!(store.contains(&doc, &[n; 32]).unwrap(), "change {n}");
                }
                assert!(!store.contains(&doc, &[6; 32]).unwrap());
            }

            #[test]
            fn import_stores_a_whole_document_as_a_snapshot() {
                let (_guard, store) = ($make)();
                let doc = DocumentId::random();
                store.append(&doc, &[change(9)]).unwrap();
                store.import(&doc, b"whole", &[[1; 32], [2; 32]]).unwrap();
                let loaded = store.load(&doc).unwrap().unwrap();
                assert_eq!(loaded.snapshot.as_deref(), Some(&b"whole"[..]));
                assert!(loaded.changes.is_empty(), "the old log is replaced");
                assert_eq!(loaded.position, 2);
                assert!(store.contains(&doc, &[2; 32]).unwrap());
                assert!(!store.contains(&doc, &[9; 32]).unwrap());
                assert_eq!(store.append(&doc, &[change(1), change(3)]).unwrap(), 1);
                assert_eq!(store.position(&doc).unwrap(), 3);
                assert_eq!(store.changes_since_snapshot(&doc).unwrap(), 1);
            }

            #[test]
            fn a_batch_appended_as_a_snapshot_keeps_positions_growing() {
                let (_guard, store) = ($make)();
                let doc = DocumentId::random();
                store.append(&doc, &[change(1), change(2)]).unwrap();
                // 2 is stored already; 3 and 4 are new.
                let added = store
                    .append_snapshot(&doc, b"S4", &[[2; 32], [3; 32], [4; 32]])
                    .unwrap();
                assert_eq!(added, 2);
                assert_eq!(store.position(&doc).unwrap(), 4);
                let loaded = store.load(&doc).unwrap().unwrap();
                assert_eq!(loaded.snapshot.as_deref(), Some(&b"S4"[..]));
                assert!(loaded.changes.is_empty(), "the snapshot covers the log");
                assert_eq!(loaded.position, 4);
                assert!(store.contains(&doc, &[3; 32]).unwrap());
                assert_eq!(store.changes_since_snapshot(&doc).unwrap(), 0);
                assert_eq!(store.changes_after(&doc, 2).unwrap(), None);
                store.append(&doc, &[change(5)]).unwrap();
                assert_eq!(store.position(&doc).unwrap(), 5);
                assert_eq!(store.changes_since_snapshot(&doc).unwrap(), 1);
                assert_eq!(store.changes_after(&doc, 4).unwrap().unwrap().len(), 1);
                // Hashes the earlier snapshot holds, repeats, and new ones.
                let added = store
                    .append_snapshot(&doc, b"S7", &[[6; 32], [3; 32], [6; 32], [1; 32], [7; 32]])
                    .unwrap();
                assert_eq!(added, 2);
                assert_eq!(store.position(&doc).unwrap(), 7);
                assert_eq!(store.append(&doc, &[change(5), change(6)]).unwrap(), 0);
                for n in 1..=7 {
                    assert!(store.contains(&doc, &[n; 32]).unwrap(), "change {n}");
                }
                // On a document with nothing stored yet.
                let other = DocumentId::random();
                assert_eq!(store.append_snapshot(&other, b"T", &[[7; 32]]).unwrap(), 1);
                assert_eq!(store.position(&other).unwrap(), 1);
                assert!(!store.contains(&other, &[1; 32]).unwrap());
                assert_eq!(store.documents().unwrap().len(), 2);
            }

            #[test]
            fn concat_is_snapshot_then_changes() {
                let (_guard, store) = ($make)();
                let doc = DocumentId::random();
                store.append(&doc, &[change(1)]).unwrap();
                store.compact(&doc, b"S", 1).unwrap();
                store.append(&doc, &[change(2)]).unwrap();
                let mut expected = b"S".to_vec();
                expected.extend(change(2).bytes);
                assert_eq!(store.load(&doc).unwrap().unwrap().concat(), expected);
            }
        }
    };
}
