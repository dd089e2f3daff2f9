//! This device's own settings (actor, journal id, name, sync positions...): table `local`
//! of the store's [`Records`], which the same flush makes durable as the documents.

use nudge_store::{Error, Store};

/// The table's name (as it always was).
const TABLE: &str = "local";

/// The settings of one opened store.
#[derive(Clone)]
pub(super) struct Settings {
    store: Store,
}

impl Settings {
    pub(super) fn new(store: &Store) -> Self {
        Self {
            store: store.clone(),
        }
    }

    pub(super) fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.store.get(TABLE, key.as_ref())
    }

    pub(super) fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.store.put(TABLE, key.as_ref(), value.as_ref())
    }

    pub(super) fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.store.delete(TABLE, key.as_ref())
    }

    /// The keys that start with `prefix`.
    pub(super) fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<Vec<u8>>, Error> {
        Ok(self
            .store
            .scan(TABLE, prefix.as_bytes())?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }
}
