//! An in-memory backend, for tests of the layers above the store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use crate::records::{Record, Records, Update};
use crate::store::{ChangeHash, DocStore, NewChange, StoredDoc};
use crate::{DocumentId, Error};

#[derive(Default)]
struct Doc {
    log: BTreeMap<u64, Vec<u8>>,
    hashes: HashSet<ChangeHash>,
    snapshot: Option<(u64, Vec<u8>)>,
    next: u64,
}

/// A [`DocStore`] and [`Records`] that keeps everything in memory; `flush` does nothing.
#[derive(Default)]
pub struct MemoryStore {
    docs: Mutex<HashMap<DocumentId, Doc>>,
    records: Mutex<RecordMap>,
}

/// Records by table and key.
type RecordMap = BTreeMap<(String, Vec<u8>), Vec<u8>>;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<DocumentId, Doc>) -> T) -> T {
        f(&mut self.docs.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl DocStore for MemoryStore {
    fn append(&self, doc: &DocumentId, changes: &[NewChange]) -> Result<usize, Error> {
        Ok(self.with(|docs| {
            let entry = docs.entry(*doc).or_default();
            let mut added = 0;
            for change in changes {
                if entry.hashes.insert(change.hash) {
                    entry.next += 1;
                    entry.log.insert(entry.next, change.bytes.clone());
                    added += 1;
                }
            }
            added
        }))
    }

    fn load(&self, doc: &DocumentId) -> Result<Option<StoredDoc>, Error> {
        Ok(self.with(|docs| {
            let entry = docs.get(doc)?;
            if entry.snapshot.is_none() && entry.log.is_empty() {
                return None;
            }
            Some(StoredDoc {
                snapshot: entry.snapshot.as_ref().map(|(_, s)| s.clone()),
                changes: entry.log.values().cloned().collect(),
                position: entry.next,
            })
        }))
    }

    fn changes_after(
        &self,
        doc: &DocumentId,
        position: u64,
    ) -> Result<Option<Vec<Vec<u8>>>, Error> {
        Ok(self.with(|docs| {
            let Some(entry) = docs.get(doc) else {
                return Some(Vec::new());
            };
            if entry
                .snapshot
                .as_ref()
                .is_some_and(|(through, _)| *through > position)
            {
                return None;
            }
            Some(
                entry
                    .log
                    .range(position + 1..)
                    .map(|(_, bytes)| bytes.clone())
                    .collect(),
            )
        }))
    }

    fn position(&self, doc: &DocumentId) -> Result<u64, Error> {
        Ok(self.with(|docs| docs.get(doc).map_or(0, |d| d.next)))
    }

    fn contains(&self, doc: &DocumentId, hash: &ChangeHash) -> Result<bool, Error> {
        Ok(self.with(|docs| docs.get(doc).is_some_and(|d| d.hashes.contains(hash))))
    }

    fn changes_since_snapshot(&self, doc: &DocumentId) -> Result<usize, Error> {
        Ok(self.with(|docs| docs.get(doc).map_or(0, |d| d.log.len())))
    }

    fn compact(&self, doc: &DocumentId, snapshot: &[u8], through: u64) -> Result<(), Error> {
        self.with(|docs| {
            let entry = docs.entry(*doc).or_default();
            entry.snapshot = Some((through, snapshot.to_vec()));
            entry.log.retain(|seq, _| *seq > through);
            entry.next = entry.next.max(through);
        });
        Ok(())
    }

    fn import(
        &self,
        doc: &DocumentId,
        snapshot: &[u8],
        hashes: &[ChangeHash],
    ) -> Result<(), Error> {
        self.with(|docs| {
            docs.insert(
                *doc,
                Doc {
                    log: BTreeMap::new(),
                    hashes: hashes.iter().copied().collect(),
                    snapshot: Some((hashes.len() as u64, snapshot.to_vec())),
                    next: hashes.len() as u64,
                },
            );
        });
        Ok(())
    }

    fn append_snapshot(
        &self,
        doc: &DocumentId,
        snapshot: &[u8],
        new: &[ChangeHash],
    ) -> Result<usize, Error> {
        Ok(self.with(|docs| {
            let entry = docs.entry(*doc).or_default();
            let added = new.iter().filter(|h| entry.hashes.insert(**h)).count();
            entry.next += added as u64;
            entry.snapshot = Some((entry.next, snapshot.to_vec()));
            entry.log.clear();
            added
        }))
    }

    fn remove(&self, doc: &DocumentId) -> Result<(), Error> {
        self.with(|docs| docs.remove(doc));
        Ok(())
    }

    fn documents(&self) -> Result<Vec<DocumentId>, Error> {
        let mut ids: Vec<_> = self.with(|docs| docs.keys().copied().collect());
        ids.sort();
        Ok(ids)
    }

    fn flush(&self) -> Result<(), Error> {
        Ok(())
    }
}

impl MemoryStore {
    fn table<T>(&self, f: impl FnOnce(&mut RecordMap) -> T) -> T {
        f(&mut self.records.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Records for MemoryStore {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.table(|t| t.get(&(table.to_owned(), key.to_vec())).cloned()))
    }

    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.table(|t| t.insert((table.to_owned(), key.to_vec()), value.to_vec())))
    }

    fn delete(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.table(|t| t.remove(&(table.to_owned(), key.to_vec()))))
    }

    fn swap(
        &self,
        table: &str,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error> {
        Ok(self.table(|t| {
            let k = (table.to_owned(), key.to_vec());
            if t.get(&k).map(Vec::as_slice) != expected {
                return false;
            }
            match new {
                Some(v) => t.insert(k, v.to_vec()),
                None => t.remove(&k),
            };
            true
        }))
    }

    fn update(&self, table: &str, key: &[u8], f: Update<'_>) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.table(|t| {
            let k = (table.to_owned(), key.to_vec());
            let new = f(t.get(&k).map(Vec::as_slice));
            match &new {
                Some(v) => t.insert(k, v.clone()),
                None => t.remove(&k),
            };
            new
        }))
    }

    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<Record>, Error> {
        Ok(self.table(|t| {
            t.range((table.to_owned(), prefix.to_vec())..)
                .take_while(|((name, k), _)| name == table && k.starts_with(prefix))
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect()
        }))
    }

    fn tables(&self) -> Result<Vec<String>, Error> {
        Ok(self.table(|t| {
            let mut names: Vec<String> = t.keys().map(|(name, _)| name.clone()).collect();
            names.dedup();
            names
        }))
    }
}

#[cfg(test)]
mod tests {
    crate::doc_store_conformance!(|| ((), crate::MemoryStore::new()));
    crate::records_conformance!(|| ((), crate::MemoryStore::new()));
}
