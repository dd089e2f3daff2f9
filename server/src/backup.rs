//! Backups of a data folder, taken while the server runs or not, and restores into an
//! empty one.
//!
//! A backup is one file: `nudge-backup 1\n`, then records, then an end record that counts
//! them and carries the SHA-256 of every byte before it, so a cut-off or damaged backup is
//! recognised before anything is restored from it. A record is a kind byte and
//! length-prefixed fields (u32, big endian):
//! - `D` document id (text), the document's stored bytes (its snapshot and the changes
//!   after it, which Automerge loads as one);
//! - `T` tree name, key, value: one entry of the server's own tables (accounts, token
//!   hashes, ownership, shares, device links);
//! - `E` number of documents and of entries (u64 each), then the 32-byte hash.
//!
//! Consistency while the server runs: documents come first, each read whole at one moment
//! (`DocStore::load` is consistent with compaction); the log is append-only, so every change
//! acknowledged before the backup started is in it. The tables come after the documents,
//! so each document in the backup has its owner. Changes made while the backup runs may or
//! may not be in it, as with any copy of a live system; devices send them again after a
//! restore because the restored server does not have them.

use std::io::{self, Read, Write};

use automerge::Automerge;
use nudge_store::{DocumentId, Store};
use sha2::{Digest, Sha256};

/// The first bytes of every backup.
pub const MAGIC: &[u8] = b"nudge-backup 1\n";

/// What a backup holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Documents.
    pub documents: u64,
    /// Entries of the server's tables.
    pub entries: u64,
    /// Bytes of the whole file.
    pub bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = if self.bytes < 1 << 20 {
            format!("{:.1} KiB", self.bytes as f64 / 1024.0)
        } else {
            format!("{:.1} MiB", self.bytes as f64 / (1 << 20) as f64)
        };
        write!(
            f,
            "{} documents, {} table entries, {size}",
            self.documents, self.entries
        )
    }
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.inner.write_all(bytes)
    }

    fn field(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| io::Error::other("a record field is over 4 GiB"))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }
}

/// Writes a backup of `store` to `out`.
pub fn write(store: &Store, out: impl Write) -> anyhow::Result<Summary> {
    let mut out = Hashing {
        inner: out,
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut summary = Summary::default();
    out.put(MAGIC)?;
    for doc in store.documents()? {
        // Gone since the listing (an account removed meanwhile): nothing to keep.
        let Some(stored) = store.load(&doc)? else {
            continue;
        };
        out.put(b"D")?;
        out.field(doc.to_string().as_bytes())?;
        out.field(&stored.concat())?;
        summary.documents += 1;
    }
    for name in store.tables()? {
        for (key, value) in store.scan(&name, b"")? {
            out.put(b"T")?;
            out.field(name.as_bytes())?;
            out.field(&key)?;
            out.field(&value)?;
            summary.entries += 1;
        }
    }
    out.put(b"E")?;
    out.put(&summary.documents.to_be_bytes())?;
    out.put(&summary.entries.to_be_bytes())?;
    let hash = out.hash.clone().finalize();
    out.inner.write_all(&hash)?;
    out.inner.flush()?;
    summary.bytes = out.bytes + hash.len() as u64;
    Ok(summary)
}

/// One record of a backup.
enum Record {
    Document(DocumentId, Vec<u8>),
    Entry(String, Vec<u8>, Vec<u8>),
}

/// Reads a backup record by record, checking its framing and, at the end, its hash.
struct Reader<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
    seen: Summary,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Damaged(String);

fn damaged(what: impl Into<String>) -> anyhow::Error {
    Damaged(what.into()).into()
}

impl<R: Read> Reader<R> {
    fn new(mut inner: R) -> anyhow::Result<Self> {
        let mut magic = vec![0; MAGIC.len()];
        inner
            .read_exact(&mut magic)
            .map_err(|_| damaged("it is not a nudge backup (too short)"))?;
        if magic != MAGIC {
            return Err(damaged("it is not a nudge backup (wrong header)"));
        }
        let mut hash = Sha256::new();
        hash.update(&magic);
        Ok(Self {
            inner,
            hash,
            bytes: magic.len() as u64,
            seen: Summary::default(),
        })
    }

    fn take(&mut self, len: usize) -> anyhow::Result<Vec<u8>> {
        let mut buf = Vec::new();
        (&mut self.inner)
            .take(len as u64)
            .read_to_end(&mut buf)
            .map_err(|e| damaged(format!("cannot read it: {e}")))?;
        if buf.len() != len {
            return Err(damaged(
                "it ends early (cut off while it was written or copied)",
            ));
        }
        self.hash.update(&buf);
        self.bytes += len as u64;
        Ok(buf)
    }

    fn field(&mut self) -> anyhow::Result<Vec<u8>> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes"));
        // Fields are read into memory; refuse lengths no backup of ours has.
        if len > 1 << 30 {
            return Err(damaged("a record claims more than 1 GiB"));
        }
        self.take(len as usize)
    }

    fn u64(&mut self) -> anyhow::Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// The next record, or `None` after a valid end record.
    fn next(&mut self) -> anyhow::Result<Option<Record>> {
        let kind = self.take(1)?[0];
        match kind {
            b'D' => {
                let id = String::from_utf8(self.field()?)
                    .ok()
                    .and_then(|id| id.parse::<DocumentId>().ok())
                    .ok_or_else(|| damaged("a document id in it is malformed"))?;
                self.seen.documents += 1;
                Ok(Some(Record::Document(id, self.field()?)))
            }
            b'T' => {
                let name = String::from_utf8(self.field()?)
                    .map_err(|_| damaged("a table name in it is malformed"))?;
                let key = self.field()?;
                let value = self.field()?;
                self.seen.entries += 1;
                Ok(Some(Record::Entry(name, key, value)))
            }
            b'E' => {
                let documents = self.u64()?;
                let entries = self.u64()?;
                let expected = self.hash.clone().finalize();
                let mut hash = [0u8; 32];
                self.inner
                    .read_exact(&mut hash)
                    .map_err(|_| damaged("it ends early (in its last record)"))?;
                self.bytes += 32;
                if hash[..] != expected[..] {
                    return Err(damaged("its checksum does not match (the file is damaged)"));
                }
                if documents != self.seen.documents || entries != self.seen.entries {
                    return Err(damaged("its record counts do not match"));
                }
                let mut rest = [0u8; 1];
                if self.inner.read(&mut rest).unwrap_or(0) != 0 {
                    return Err(damaged("it has bytes after its end"));
                }
                self.seen.bytes = self.bytes;
                Ok(None)
            }
            _ => Err(damaged("it has a record of an unknown kind")),
        }
    }
}

/// Checks a whole backup (framing, hash, every document loads) without writing anything.
pub fn verify(input: impl Read) -> anyhow::Result<Summary> {
    let mut reader = Reader::new(input)?;
    while let Some(record) = reader.next()? {
        if let Record::Document(id, bytes) = record {
            Automerge::load(&bytes)
                .map_err(|e| damaged(format!("document {id} in it does not load: {e}")))?;
        }
    }
    Ok(reader.seen)
}

/// Restores a backup into `store`, which must hold nothing yet. Call [`verify`] on the same
/// file first: a backup that turns out damaged half way leaves a half-restored folder.
pub fn restore(store: &Store, input: impl Read) -> anyhow::Result<Summary> {
    if !store.is_empty()? {
        anyhow::bail!(
            "{} already holds data; restore into a new, empty folder or database (then point the server at it)",
            store.location()
        );
    }
    let mut reader = Reader::new(input)?;
    while let Some(record) = reader.next()? {
        match record {
            Record::Document(id, bytes) => {
                let doc = Automerge::load(&bytes)
                    .map_err(|e| damaged(format!("document {id} in it does not load: {e}")))?;
                let hashes: Vec<[u8; 32]> =
                    doc.get_changes(&[]).iter().map(|c| c.hash().0).collect();
                store.import(&id, &doc.save(), &hashes)?;
            }
            Record::Entry(name, key, value) => {
                store.put(&name, &key, &value)?;
            }
        }
    }
    store.flush()?;
    Ok(reader.seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use nudge_store::{Location, NewChange, OpenOptions};

    fn store(dir: &std::path::Path) -> Store {
        let location = Location::Folder(dir.to_path_buf());
        Store::open(&location, &OpenOptions::default()).unwrap()
    }

    fn filled(dir: &std::path::Path) -> (Store, DocumentId, Automerge) {
        let store = store(dir);
        let id = DocumentId::random();
        let mut doc = Automerge::new();
        for i in 0..20 {
            let mut tx = doc.transaction();
            tx.put(automerge::ROOT, format!("k{i}"), i).unwrap();
            tx.commit();
        }
        let changes: Vec<NewChange> = doc
            .get_changes(&[])
            .iter()
            .map(|c| NewChange {
                hash: c.hash().0,
                bytes: c.raw_bytes().to_vec(),
            })
            .collect();
        store.append(&id, &changes[..10]).unwrap();
        let first = doc
            .fork_at(&[automerge::ChangeHash(changes[9].hash)])
            .unwrap();
        store
            .compact(&id, &first.save(), store.position(&id).unwrap())
            .unwrap();
        store.append(&id, &changes[10..]).unwrap();
        store.put("accounts", b"ana", b"1").unwrap();
        (store, id, doc)
    }

    #[test]
    fn a_backup_restores_into_an_empty_store_with_everything() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (source, id, doc) = filled(a.path());
        let mut file = Vec::new();
        let written = write(&source, &mut file).unwrap();
        assert_eq!((written.documents, written.entries), (1, 1));
        assert_eq!(written.bytes, file.len() as u64);
        assert_eq!(verify(&file[..]).unwrap(), written);
        let target = store(b.path());
        restore(&target, &file[..]).unwrap();
        let loaded = Automerge::load(&target.load(&id).unwrap().unwrap().concat()).unwrap();
        assert_eq!(loaded.get_heads(), doc.get_heads());
        assert!(target.contains(&id, &doc.get_heads()[0].0).unwrap());
        assert_eq!(target.get("accounts", b"ana").unwrap().unwrap(), b"1");
        // Not twice, and not over data.
        let err = restore(&target, &file[..]).unwrap_err();
        assert!(err.to_string().contains("already holds data"), "{err}");
    }

    #[test]
    fn damaged_or_cut_off_backups_are_refused() {
        let a = tempfile::tempdir().unwrap();
        let (source, ..) = filled(a.path());
        let mut file = Vec::new();
        write(&source, &mut file).unwrap();
        for cut in [0, 5, MAGIC.len(), file.len() / 2, file.len() - 1] {
            let err = verify(&file[..cut]).unwrap_err().to_string();
            assert!(
                err.contains("ends early") || err.contains("not a nudge backup"),
                "{cut}: {err}"
            );
        }
        let mut flipped = file.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 1;
        assert!(verify(&flipped[..]).is_err());
        let mut longer = file.clone();
        longer.push(0);
        assert!(
            verify(&longer[..])
                .unwrap_err()
                .to_string()
                .contains("after its end")
        );
    }
}
