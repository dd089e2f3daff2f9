//! The sled backend.
//!
//! Layout (all keys start with the 16 document-id bytes, so one document is one key range):
//! - tree `log`: `doc ‖ seq (u64 BE)` -> change bytes, the append-only log;
//! - tree `hashes`: `doc ‖ change hash` -> `seq (u64 BE)`, the content address of every
//!   change in the log after the snapshot;
//! - tree `snapshot_hashes`: `doc` -> the hashes of every change the snapshot holds, 32
//!   bytes each, sorted, concatenated. With `hashes`, every change ever stored is known, so
//!   none is stored twice. One value per document instead of an entry per change: a
//!   10,000-change document's index cost 12 MiB of resident sled cache, 3 MiB on disk, and
//!   a burst of garbage that sled's epoch collector took 15 s to hand back
//!   (docs/PERFORMANCE.md). Compaction moves the entries its snapshot covers from `hashes`
//!   to here (stores written before this existed are moved the same way);
//! - tree `snapshots`: `doc` -> the latest snapshot (a saved document);
//! - tree `snapshot_through`: `doc` -> `through (u64 BE)`, the log position that snapshot
//!   covers, kept apart so that asking for a position never reads the snapshot itself.
//!
//! Other trees of the same database belong to the application ([`SledStore::tree`]).

use std::path::{Path, PathBuf};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::seal::{self, Seal};
use crate::store::{ChangeHash, DocStore, NewChange, StoredDoc};
use crate::{DocumentId, Error};

/// The trees the store keeps its documents in (and sled's own): no record table may use
/// these names.
const OWN_TREES: [&str; 7] = [
    "log",
    "hashes",
    "snapshot_hashes",
    "snapshots",
    "snapshot_through",
    "__sled__default",
    seal::TREE,
];

/// A [`DocStore`] on a sled database in one folder.
#[derive(Clone)]
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    log: sled::Tree,
    hashes: sled::Tree,
    snapshot_hashes: sled::Tree,
    snapshots: sled::Tree,
    snapshot_through: sled::Tree,
    /// The generation every flush confirms (`seal.rs`).
    seal: std::sync::Arc<Seal>,
    /// Appends compute the next sequence number before writing; one at a time per store.
    append_lock: std::sync::Arc<std::sync::Mutex<()>>,
    /// The record tables opened so far (`sled_records.rs`).
    tables: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, sled::Tree>>>,
}

impl SledStore {
    /// The folder the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An application tree in the same database, flushed by the same [`DocStore::flush`].
    pub fn tree(&self, name: &str) -> Result<sled::Tree, Error> {
        self.db.open_tree(name).map_err(|e| self.io(e))
    }

    /// The sled tree of a record table, opened once.
    pub(crate) fn table(&self, name: &str) -> Result<sled::Tree, Error> {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tree) = tables.get(name) {
            return Ok(tree.clone());
        }
        if OWN_TREES.contains(&name) {
            return Err(self.malformed(format!(
                "a record table may not be called {name:?}: the store keeps its documents there"
            )));
        }
        let tree = self.tree(name)?;
        tables.insert(name.to_owned(), tree.clone());
        Ok(tree)
    }

    pub(crate) fn io(&self, e: sled::Error) -> Error {
        io_error(&self.path, e)
    }

    /// The result of a transaction that never aborts (its closures return only storage
    /// errors).
    fn committed<T>(&self, result: Result<T, TransactionError<()>>) -> Result<T, Error> {
        match result {
            Ok(value) => Ok(value),
            Err(TransactionError::Storage(e)) => Err(self.io(e)),
            Err(TransactionError::Abort(())) => unreachable!("our transactions never abort"),
        }
    }

    /// Removes `doc`'s log entries up to position `through` (a snapshot covers them).
    fn drop_log_through(&self, doc: &DocumentId, through: u64) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for k in self
            .log
            .range(key(doc, &[0; 8])..=key(doc, &through.to_be_bytes()))
            .keys()
        {
            batch.remove(k.map_err(|e| self.io(e))?);
        }
        self.log.apply_batch(batch).map_err(|e| self.io(e))
    }

    /// Writes `doc`'s snapshot, the sorted hashes of every change it holds and the log
    /// position it covers, together or not at all: a known hash without its change would
    /// make later appends skip that change as present.
    fn put_snapshot(
        &self,
        doc: &DocumentId,
        snapshot: &[u8],
        hashes: &[u8],
        through: u64,
    ) -> Result<(), Error> {
        let written = (
            &self.snapshot_hashes,
            &self.snapshots,
            &self.snapshot_through,
        )
            .transaction(|(known, snaps, thr)| {
                known.insert(doc.as_bytes(), hashes)?;
                snaps.insert(doc.as_bytes(), snapshot)?;
                thr.insert(doc.as_bytes(), &through.to_be_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            });
        self.committed(written)
    }

    /// The sorted hashes of the changes `doc`'s snapshot holds (empty without one).
    fn snapshot_hashes(&self, doc: &DocumentId) -> Result<SortedHashes, Error> {
        let value = self
            .snapshot_hashes
            .get(doc.as_bytes())
            .map_err(|e| self.io(e))?
            .unwrap_or_default();
        SortedHashes::new(value)
            .ok_or_else(|| self.malformed(format!("snapshot hashes of document {doc}")))
    }

    /// Moves the index entries of `doc`'s changes up to position `through` (which its
    /// snapshot now holds) into the document's one sorted value. Called with the append
    /// lock held, so that no append checks a hash while it is between the two.
    fn fold_index_through(&self, doc: &DocumentId, through: u64) -> Result<(), Error> {
        let mut folded = Vec::new();
        for entry in self.hashes.scan_prefix(doc.as_bytes()) {
            let (k, v) = entry.map_err(|e| self.io(e))?;
            let seq = read_u64(&v)
                .ok_or_else(|| self.malformed(format!("hash index of document {doc}")))?;
            if seq <= through {
                let hash: ChangeHash = k[16..]
                    .try_into()
                    .map_err(|_| self.malformed(format!("hash index key of document {doc}")))?;
                folded.push(hash);
            }
        }
        if folded.is_empty() {
            return Ok(());
        }
        let merged = self.snapshot_hashes(doc)?.merged(folded.iter());
        let written = (&self.hashes, &self.snapshot_hashes).transaction(|(index, covered)| {
            covered.insert(doc.as_bytes(), merged.as_slice())?;
            for hash in &folded {
                index.remove(key(doc, hash))?;
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        self.committed(written)
    }

    fn malformed(&self, detail: impl Into<String>) -> Error {
        Error::Malformed {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    /// The log position the latest snapshot covers, if there is one.
    fn through(&self, doc: &DocumentId) -> Result<Option<u64>, Error> {
        let Some(value) = self
            .snapshot_through
            .get(doc.as_bytes())
            .map_err(|e| self.io(e))?
        else {
            return Ok(None);
        };
        read_u64(&value)
            .map(Some)
            .ok_or_else(|| self.malformed(format!("snapshot position of document {doc}")))
    }

    /// One read of `doc`'s snapshot (as of `through`) and the log after it.
    fn load_once(
        &self,
        doc: &DocumentId,
        through: Option<u64>,
    ) -> Result<Option<StoredDoc>, Error> {
        let snapshot = match through {
            Some(_) => Some(
                self.snapshots
                    .get(doc.as_bytes())
                    .map_err(|e| self.io(e))?
                    .ok_or_else(|| self.malformed(format!("snapshot of document {doc}")))?,
            ),
            None => None,
        };
        let through = through.unwrap_or(0);
        let mut changes = Vec::new();
        let mut position = through;
        for entry in self
            .log
            .range(key(doc, &(through + 1).to_be_bytes())..key(doc, &[0xff; 8]))
        {
            let (k, v) = entry.map_err(|e| self.io(e))?;
            if !k.starts_with(doc.as_bytes()) {
                break;
            }
            position = read_u64(&k[16..])
                .ok_or_else(|| self.malformed(format!("log key of document {doc}")))?;
            changes.push(v.to_vec());
        }
        if snapshot.is_none() && changes.is_empty() {
            return Ok(None);
        }
        Ok(Some(StoredDoc {
            snapshot: snapshot.map(|value| value.to_vec()),
            changes,
            position,
        }))
    }

    /// The names of the application's trees (every tree but the store's own and sled's
    /// default one), for backups.
    pub fn application_trees(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .db
            .tree_names()
            .into_iter()
            .filter_map(|name| String::from_utf8(name.to_vec()).ok())
            .filter(|name| !OWN_TREES.contains(&name.as_str()))
            .collect())
    }

    fn last_seq(&self, doc: &DocumentId) -> Result<u64, Error> {
        let last = self
            .log
            .scan_prefix(doc.as_bytes())
            .keys()
            .next_back()
            .transpose()
            .map_err(|e| self.io(e))?;
        match last {
            None => Ok(0),
            Some(key) => read_u64(&key[16..])
                .ok_or_else(|| self.malformed(format!("log key of document {doc}"))),
        }
    }
}

fn io_error(path: &Path, e: sled::Error) -> Error {
    match e {
        sled::Error::Corruption { .. } => Error::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        // sled passes on a full disk as the Debug form of the OS error; say it plainly.
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => Error::Io {
            path: path.to_path_buf(),
            detail: "No space left on device".into(),
        },
        other => Error::Io {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

fn key(doc: &DocumentId, suffix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + suffix.len());
    key.extend_from_slice(doc.as_bytes());
    key.extend_from_slice(suffix);
    key
}

impl DocStore for SledStore {
    fn append(&self, doc: &DocumentId, changes: &[NewChange]) -> Result<usize, Error> {
        if changes.is_empty() {
            return Ok(0);
        }
        let _guard = self.append_lock.lock().unwrap_or_else(|p| p.into_inner());
        let start = self.position(doc)?;
        let covered = self.snapshot_hashes(doc)?;
        let result = (&self.log, &self.hashes).transaction(|(log, hashes)| {
            let mut seq = start;
            let mut added = 0;
            for change in changes {
                let hash_key = key(doc, &change.hash);
                if covered.contains(&change.hash) || hashes.get(&hash_key)?.is_some() {
                    continue;
                }
                seq += 1;
                log.insert(key(doc, &seq.to_be_bytes()), change.bytes.as_slice())?;
                hashes.insert(hash_key, &seq.to_be_bytes())?;
                added += 1;
            }
            Ok::<_, ConflictableTransactionError<()>>(added)
        });
        self.committed(result)
    }

    fn load(&self, doc: &DocumentId) -> Result<Option<StoredDoc>, Error> {
        // A compaction between reading the snapshot and reading the log would leave out
        // the changes it folded into a newer snapshot; positions only grow, so an unchanged
        // `through` after the log read means no compaction got in between.
        loop {
            let through = self.through(doc)?;
            let loaded = self.load_once(doc, through)?;
            if self.through(doc)? == through {
                return Ok(loaded);
            }
        }
    }

    fn changes_after(
        &self,
        doc: &DocumentId,
        position: u64,
    ) -> Result<Option<Vec<Vec<u8>>>, Error> {
        if self.through(doc)?.is_some_and(|through| through > position) {
            return Ok(None);
        }
        let mut changes = Vec::new();
        for entry in self
            .log
            .range(key(doc, &(position + 1).to_be_bytes())..key(doc, &[0xff; 8]))
        {
            let (k, v) = entry.map_err(|e| self.io(e))?;
            if !k.starts_with(doc.as_bytes()) {
                break;
            }
            changes.push(v.to_vec());
        }
        Ok(Some(changes))
    }

    fn position(&self, doc: &DocumentId) -> Result<u64, Error> {
        let through = self.through(doc)?.unwrap_or(0);
        Ok(self.last_seq(doc)?.max(through))
    }

    fn contains(&self, doc: &DocumentId, hash: &ChangeHash) -> Result<bool, Error> {
        Ok(self
            .hashes
            .contains_key(key(doc, hash))
            .map_err(|e| self.io(e))?
            || self.snapshot_hashes(doc)?.contains(hash))
    }

    fn changes_since_snapshot(&self, doc: &DocumentId) -> Result<usize, Error> {
        // A document's log positions are consecutive (appends number them one by one and
        // compaction drops a prefix), so this needs the last key, not a walk over the log:
        // the server asks after every batch it stores.
        let through = self.through(doc)?.unwrap_or(0);
        let count = self.last_seq(doc)?.saturating_sub(through);
        usize::try_from(count).map_err(|_| self.malformed(format!("log key of document {doc}")))
    }

    fn compact(&self, doc: &DocumentId, snapshot: &[u8], through: u64) -> Result<(), Error> {
        let written = (&self.snapshots, &self.snapshot_through).transaction(|(snaps, thr)| {
            snaps.insert(doc.as_bytes(), snapshot)?;
            thr.insert(doc.as_bytes(), &through.to_be_bytes())?;
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        self.committed(written)?;
        self.flush()?;
        self.drop_log_through(doc, through)?;
        let _guard = self.append_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.fold_index_through(doc, through)
    }

    fn import(
        &self,
        doc: &DocumentId,
        snapshot: &[u8],
        hashes: &[ChangeHash],
    ) -> Result<(), Error> {
        let _guard = self.append_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.remove(doc)?;
        let through = hashes.len() as u64;
        let covered = SortedHashes::default().merged(hashes.iter());
        self.put_snapshot(doc, snapshot, &covered, through)
    }

    fn append_snapshot(
        &self,
        doc: &DocumentId,
        snapshot: &[u8],
        new: &[ChangeHash],
    ) -> Result<usize, Error> {
        let _guard = self.append_lock.lock().unwrap_or_else(|p| p.into_inner());
        let start = self.position(doc)?;
        let covered = self.snapshot_hashes(doc)?;
        // The new changes: neither in the snapshot so far nor in the log's index.
        let mut fresh = Vec::with_capacity(new.len());
        for hash in new {
            if !covered.contains(hash)
                && !self
                    .hashes
                    .contains_key(key(doc, hash))
                    .map_err(|e| self.io(e))?
            {
                fresh.push(*hash);
            }
        }
        fresh.sort_unstable();
        fresh.dedup();
        let through = start + fresh.len() as u64;
        self.put_snapshot(doc, snapshot, &covered.merged(fresh.iter()), through)?;
        // The log entries the snapshot covers go once it is durable (as in `compact`), and
        // their index entries join the snapshot's hashes.
        if self.log.scan_prefix(doc.as_bytes()).next().is_some() {
            self.flush()?;
            self.drop_log_through(doc, start)?;
            self.fold_index_through(doc, start)?;
        }
        Ok(fresh.len())
    }

    fn remove(&self, doc: &DocumentId) -> Result<(), Error> {
        for tree in [&self.log, &self.hashes] {
            let mut batch = sled::Batch::default();
            for k in tree.scan_prefix(doc.as_bytes()).keys() {
                batch.remove(k.map_err(|e| self.io(e))?);
            }
            tree.apply_batch(batch).map_err(|e| self.io(e))?;
        }
        for tree in [
            &self.snapshot_through,
            &self.snapshots,
            &self.snapshot_hashes,
        ] {
            tree.remove(doc.as_bytes()).map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    fn documents(&self) -> Result<Vec<DocumentId>, Error> {
        let mut docs = std::collections::BTreeSet::new();
        for k in self.snapshot_through.iter().keys() {
            let k = k.map_err(|e| self.io(e))?;
            docs.insert(doc_of(&k).ok_or_else(|| self.malformed("snapshot key"))?);
        }
        // One step per document: after reading a key, jump past its document's range.
        let mut cursor: Vec<u8> = Vec::new();
        loop {
            let Some(k) = self
                .log
                .range(cursor.clone()..)
                .keys()
                .next()
                .transpose()
                .map_err(|e| self.io(e))?
            else {
                break;
            };
            let doc = doc_of(&k).ok_or_else(|| self.malformed("log key"))?;
            docs.insert(doc);
            cursor = key(&doc, &[0xff; 9]);
        }
        Ok(docs.into_iter().collect())
    }

    fn flush(&self) -> Result<(), Error> {
        // The generation goes in after everything this flush confirms, and the seal file
        // names it only once sled has synced it (`seal.rs`).
        let generation = self.seal.begin().map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        self.seal.confirm(generation)
    }
}

/// Change hashes, 32 bytes each, sorted and without repeats, in one byte string.
#[derive(Default)]
struct SortedHashes(sled::IVec);

impl SortedHashes {
    fn new(bytes: sled::IVec) -> Option<Self> {
        bytes.len().is_multiple_of(32).then_some(Self(bytes))
    }

    fn hash(&self, i: usize) -> &[u8] {
        &self.0[i * 32..(i + 1) * 32]
    }

    fn len(&self) -> usize {
        self.0.len() / 32
    }

    fn contains(&self, hash: &ChangeHash) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.hash(mid).cmp(hash.as_slice()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// These hashes and `more` (in any order, repeats allowed), as one sorted byte string.
    fn merged<'a>(&self, more: impl Iterator<Item = &'a ChangeHash>) -> Vec<u8> {
        let mut all: Vec<&[u8]> = (0..self.len()).map(|i| self.hash(i)).collect();
        all.extend(more.map(|h| h.as_slice()));
        all.sort_unstable();
        all.dedup();
        all.concat()
    }
}

fn doc_of(key: &[u8]) -> Option<DocumentId> {
    Some(DocumentId::from_bytes(key.get(..16)?.try_into().ok()?))
}

#[cfg(test)]
#[path = "sled_store_tests.rs"]
mod tests;

#[path = "sled_open.rs"]
mod open;
