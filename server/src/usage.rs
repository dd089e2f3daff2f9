//! How many bytes each account's documents take in the store, for the per-account storage
//! quota (`serve --quota-mib`). Kept beside the owners (`accounts.rs`, which calls it when
//! a document is retired or an account removed), grown with every store of changes, set
//! anew by every snapshot, and counted from the store once for a store older than it.
//!
//! The figure is what nudge stored (snapshots and change bytes), not the files' size:
//! the database's own overhead and free space are the operator's (docs/operations.md).

use nudge_store::{DocStore, DocumentId, counter};

use nudge_store::Error;

use crate::table::{RETIRED, RecordStore, Table};

/// Under this key (no account id looks like it), the store's usage was counted once.
const COUNTED: &[u8] = b"\0counted";

/// Bytes per document and per account.
#[derive(Clone)]
pub(crate) struct Usage {
    /// Document id → its bytes (u64, big-endian), for documents an account owns.
    docs: Table,
    /// Account id → the sum over its documents.
    accounts: Table,
}

impl Usage {
    /// The figures kept in `store`; the first open of an older store counts them from the
    /// documents `owners` lists (document id → owning account).
    pub(crate) fn open(
        records: &RecordStore,
        documents: &dyn DocStore,
        owners: &Table,
    ) -> Result<Self, Error> {
        let usage = Self {
            docs: Table::new(records, "usage.docs"),
            accounts: Table::new(records, "usage.accounts"),
        };
        if usage.accounts.get(COUNTED)?.is_none() {
            for (doc, owner) in owners.all()? {
                if owner == RETIRED {
                    continue;
                }
                let Ok(doc) = <[u8; 16]>::try_from(doc.as_ref()).map(DocumentId::from_bytes) else {
                    continue;
                };
                let size = documents.load(&doc)?.map_or(0, |d| d.len() as u64);
                usage.resized(&doc, &String::from_utf8_lossy(&owner), size)?;
            }
            usage.accounts.insert(COUNTED, [1])?;
        }
        Ok(usage)
    }

    /// `doc`, owned by `account`, now takes `bytes` more. The caller flushes.
    pub(crate) fn grew(&self, doc: &DocumentId, account: &str, bytes: u64) -> Result<(), Error> {
        self.add(self.docs.clone(), doc.as_bytes(), bytes as i64)?;
        self.add(self.accounts.clone(), account.as_bytes(), bytes as i64)
    }

    /// `doc`, owned by `account`, now takes `size` bytes (a snapshot replaced its log).
    /// The caller flushes.
    pub(crate) fn resized(&self, doc: &DocumentId, account: &str, size: u64) -> Result<(), Error> {
        let before = counter(
            self.docs
                .insert(doc.as_bytes(), size.to_be_bytes())?
                .as_deref(),
        );
        self.add(
            self.accounts.clone(),
            account.as_bytes(),
            size as i64 - before as i64,
        )
    }

    /// `doc`, owned by `account`, is gone from the store. The caller flushes.
    pub(crate) fn dropped(&self, doc: &DocumentId, account: &str) -> Result<(), Error> {
        let before = counter(self.docs.remove(doc.as_bytes())?.as_deref());
        self.add(self.accounts.clone(), account.as_bytes(), -(before as i64))
    }

    /// The account is gone: its figure with it. The caller flushes.
    pub(crate) fn forget(&self, account: &str) -> Result<(), Error> {
        self.accounts.remove(account.as_bytes())?;
        Ok(())
    }

    /// The bytes the documents of `account` take.
    pub(crate) fn used(&self, account: &str) -> Result<u64, Error> {
        Ok(counter(self.accounts.get(account.as_bytes())?.as_deref()))
    }

    /// Adds `delta` to a counter, atomically (documents of one account are stored from
    /// several threads at once); it never goes below zero.
    fn add(&self, table: Table, key: &[u8], delta: i64) -> Result<(), Error> {
        if delta == 0 {
            return Ok(());
        }
        table.update(key, |old| {
            let now = (counter(old) as i64).saturating_add(delta).max(0) as u64;
            Some(now.to_be_bytes().to_vec())
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_store::{MemoryStore, NewChange};
    use std::sync::Arc;

    fn store() -> (Arc<MemoryStore>, RecordStore) {
        let store = Arc::new(MemoryStore::new());
        let records: RecordStore = store.clone();
        (store, records)
    }

    #[test]
    fn figures_follow_growth_snapshots_and_removal_per_account() {
        let (store, records) = store();
        let owners = Table::new(&records, "owners");
        let usage = Usage::open(&records, store.as_ref(), &owners).unwrap();
        let (a, b) = (DocumentId::random(), DocumentId::random());
        usage.grew(&a, "ana", 100).unwrap();
        usage.grew(&a, "ana", 50).unwrap();
        usage.grew(&b, "ana", 10).unwrap();
        usage.grew(&DocumentId::random(), "bo", 7).unwrap();
        assert_eq!(usage.used("ana").unwrap(), 160);
        usage.resized(&a, "ana", 40).unwrap();
        assert_eq!(usage.used("ana").unwrap(), 50);
        usage.dropped(&b, "ana").unwrap();
        assert_eq!(usage.used("ana").unwrap(), 40);
        assert_eq!(usage.used("bo").unwrap(), 7);
        usage.forget("bo").unwrap();
        assert_eq!(usage.used("bo").unwrap(), 0);
    }

    #[test]
    fn an_older_store_is_counted_once_from_its_documents() {
        let (store, records) = store();
        let owners = Table::new(&records, "owners");
        let doc = DocumentId::random();
        let change = NewChange {
            hash: [3; 32],
            bytes: vec![9; 1000],
        };
        store.append(&doc, &[change]).unwrap();
        owners.insert(doc.as_bytes(), b"ana").unwrap();
        let usage = Usage::open(&records, store.as_ref(), &owners).unwrap();
        assert_eq!(usage.used("ana").unwrap(), 1000);
        // Counted once: a second open does not add it again.
        let again = Usage::open(&records, store.as_ref(), &owners).unwrap();
        assert_eq!(again.used("ana").unwrap(), 1000);
    }
}
