//! One table of the store's [`Records`], as the server's record modules (`accounts.rs`,
//! `usage.rs`, `devices.rs`, `shares.rs`) use it: the store's trait object and the
//! table's name, behind methods that take any key.

use std::sync::Arc;

use nudge_store::{Error, Record, Records};

/// The owner recorded for a retired document: no account's id (those are 16 hex digits).
pub(crate) const RETIRED: &[u8] = b"retired";

/// The store the server keeps its records in.
pub(crate) type RecordStore = Arc<dyn Records>;

/// One table.
#[derive(Clone)]
pub(crate) struct Table {
    store: RecordStore,
    name: nudge_store::Table,
}

impl Table {
    pub(crate) fn new(store: &RecordStore, name: nudge_store::Table) -> Self {
        Self {
            store: store.clone(),
            name,
        }
    }

    pub(crate) fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.store.get(self.name, key.as_ref())
    }

    pub(crate) fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, Error> {
        Ok(self.get(key)?.is_some())
    }

    /// Sets `key`; returns what it replaced.
    pub(crate) fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.store.put(self.name, key.as_ref(), value.as_ref())
    }

    /// Removes `key`; returns what it held.
    pub(crate) fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.store.delete(self.name, key.as_ref())
    }

    /// Sets `key` to `new` only if it holds `expected`; returns whether it did.
    pub(crate) fn swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error> {
        self.store.swap(self.name, key.as_ref(), expected, new)
    }

    /// Replaces the value under `key` with what `f` makes of it, atomically.
    pub(crate) fn update(
        &self,
        key: impl AsRef<[u8]>,
        mut f: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.store.update(self.name, key.as_ref(), &mut f)
    }

    /// Every record, in key order.
    pub(crate) fn all(&self) -> Result<Vec<Record>, Error> {
        self.store.scan(self.name, b"")
    }
}
