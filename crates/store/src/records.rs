//! The second storage trait: small records beside the documents, by table and key
//! (accounts, tokens, devices, link codes, shares, usage figures, a device's own settings).
//!
//! Keys and values are bytes; each table's code decides their form. Every call is atomic
//! on its own; [`Records::swap`] and [`Records::update`] are the read-modify-writes that
//! need no lock around them (a PostgreSQL backend runs each in a transaction). The
//! durability rule is [`DocStore`](crate::DocStore)'s: nothing written counts before the
//! store's `flush`, which covers records and documents alike.

use crate::Error;

/// A table's name: ASCII letters, digits, `_` and `.` (so that every backend can use it
/// as it is, as a sled tree or a column value). Code names its tables as constants; a
/// backup restores them by the names it carries, so the trait takes any `&str`.
pub type Table = &'static str;

/// One record: its key and value.
pub type Record = (Vec<u8>, Vec<u8>);

/// What [`Records::update`] does to a value (`None`: no record).
pub type Update<'a> = &'a mut dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>>;

/// Small records by table and key.
pub trait Records: Send + Sync {
    /// The value under `key`, if there is one.
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;

    /// Sets `key` to `value`; returns what it replaced.
    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, Error>;

    /// Removes `key`; returns what it held.
    fn delete(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;

    /// Sets `key` to `new` (`None`: removes it) only if it holds `expected` (`None`: no
    /// record); returns whether it did.
    fn swap(
        &self,
        table: &str,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error>;

    /// Replaces the value under `key` with what `f` makes of it (`None` in and out: no
    /// record), atomically; returns the new value. `f` may run more than once.
    fn update(&self, table: &str, key: &[u8], f: Update<'_>) -> Result<Option<Vec<u8>>, Error>;

    /// Every record whose key starts with `prefix`, in key order.
    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<Record>, Error>;

    /// The names of the tables that hold at least one record, sorted (for backups and
    /// copies of a whole store).
    fn tables(&self) -> Result<Vec<String>, Error>;
}

/// A `u64` counter kept as 8 big-endian bytes (0 when absent or malformed).
pub fn counter(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Expands to a module of tests that check a [`Records`] backend against the trait's
/// contract; the argument is a closure returning `(guard, store)`, as for
/// [`doc_store_conformance!`](crate::doc_store_conformance).
#[macro_export]
macro_rules! records_conformance {
    ($make:expr) => {
        mod records_conformance {
            #[allow(unused_imports)]
            use super::*;
            use $crate::Records;

            #[test]
            fn put_get_delete_return_what_was_there() {
                let (_guard, store) = ($make)();
                assert_eq!(store.get("t", b"k").unwrap(), None);
                assert_eq!(store.put("t", b"k", b"one").unwrap(), None);
                assert_eq!(store.put("t", b"k", b"two").unwrap(), Some(b"one".to_vec()));
                assert_eq!(store.get("t", b"k").unwrap(), Some(b"two".to_vec()));
                assert_eq!(store.delete("t", b"k").unwrap(), Some(b"two".to_vec()));
                assert_eq!(store.delete("t", b"k").unwrap(), None);
                assert_eq!(store.get("t", b"k").unwrap(), None);
            }

            #[test]
            fn tables_are_isolated() {
                let (_guard, store) = ($make)();
                store.put("a", b"k", b"in a").unwrap();
                store.put("b", b"k", b"in b").unwrap();
                assert_eq!(store.get("a", b"k").unwrap(), Some(b"in a".to_vec()));
                assert_eq!(store.scan("b", b"").unwrap().len(), 1);
                store.delete("a", b"k").unwrap();
                assert_eq!(store.get("b", b"k").unwrap(), Some(b"in b".to_vec()));
            }

            #[test]
            fn swap_happens_only_on_the_expected_value() {
                let (_guard, store) = ($make)();
                assert!(store.swap("t", b"k", None, Some(b"first")).unwrap());
                assert!(!store.swap("t", b"k", None, Some(b"second")).unwrap());
                assert!(!store.swap("t", b"k", Some(b"other"), Some(b"x")).unwrap());
                assert!(
                    store
                        .swap("t", b"k", Some(b"first"), Some(b"next"))
                        .unwrap()
                );
                assert_eq!(store.get("t", b"k").unwrap(), Some(b"next".to_vec()));
                assert!(store.swap("t", b"k", Some(b"next"), None).unwrap());
                assert_eq!(store.get("t", b"k").unwrap(), None);
            }

            #[test]
            fn updates_from_many_threads_lose_none() {
                let (_guard, store) = ($make)();
                let store = std::sync::Arc::new(store);
                let threads: Vec<_> = (0..4)
                    .map(|_| {
                        let store = store.clone();
                        std::thread::spawn(move || {
                            for _ in 0..250 {
                                store
                                    .update("t", b"n", &mut |old| {
                                        let n = $crate::counter(old) + 1;
                                        Some(n.to_be_bytes().to_vec())
                                    })
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().unwrap();
                }
                assert_eq!(
                    $crate::counter(store.get("t", b"n").unwrap().as_deref()),
                    1000
                );
                let gone = store.update("t", b"n", &mut |_| None).unwrap();
                assert_eq!(gone, None);
                assert_eq!(store.get("t", b"n").unwrap(), None);
            }

            #[test]
            fn scan_returns_a_prefix_in_key_order() {
                let (_guard, store) = ($make)();
                for key in [&b"b2"[..], b"a1", b"b1", b"c", b"b"] {
                    store.put("t", key, key).unwrap();
                }
                let keys: Vec<Vec<u8>> = store
                    .scan("t", b"b")
                    .unwrap()
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                assert_eq!(keys, [b"b".to_vec(), b"b1".to_vec(), b"b2".to_vec()]);
                assert_eq!(store.scan("t", b"").unwrap().len(), 5);
                assert!(store.scan("empty", b"").unwrap().is_empty());
            }

            #[test]
            fn tables_lists_those_holding_records() {
                let (_guard, store) = ($make)();
                assert!(store.tables().unwrap().is_empty());
                store.put("b.two", b"k", b"v").unwrap();
                store.put("a_one", b"k", b"v").unwrap();
                store.get("never_written", b"k").unwrap();
                let table = String::from("c");
                store.put(&table, b"k", b"v").unwrap();
                assert_eq!(store.tables().unwrap(), ["a_one", "b.two", "c"]);
                store.delete("c", b"k").unwrap();
                assert_eq!(store.tables().unwrap(), ["a_one", "b.two"]);
            }
        }
    };
}
