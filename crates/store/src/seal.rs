//! The seal: how a store notices that sled lost writes it had confirmed.
//!
//! sled recovers a damaged log by cutting it at the first bad record, when it opens, and
//! goes on as if the records after it had never been written: a server started on such a
//! store served a journal with 1 of its 6 shifts, and said nothing. So every
//! [`DocStore::flush`](crate::DocStore::flush) writes a *generation* into the store (tree
//! `seal`, before sled's own flush) and, once sled has synced, into `nudge.seal` beside
//! sled's files. Whatever a flush confirmed was written before its generation, and sled's
//! recovery keeps a prefix of its log, so a store that holds a lower generation than its
//! seal has lost confirmed writes, and is refused.
//!
//! `nudge.seal` is overwritten in place and not synced: after a power cut it may hold an
//! older generation than the store (a weaker check for the last seconds, never a false
//! alarm); after a `kill -9` it is current. A missing seal (a store from before seals, or
//! a new one) is written at the next flush.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::Error;

/// The seal file's name, in the store's folder.
pub(crate) const FILE: &str = "nudge.seal";
/// The sled tree (and its one key) holding the generation.
pub(crate) const TREE: &str = "seal";
const KEY: &[u8] = b"generation";
const MAGIC: &str = "nudge-seal 1";

/// A store's seal: the generation counter and the file that confirms it.
pub(crate) struct Seal {
    path: PathBuf,
    tree: sled::Tree,
    /// The last generation written into the store; a lock so that the store's values
    /// follow in the order of the numbers.
    next: Mutex<u64>,
    /// The seal file and the highest generation written to it.
    file: Mutex<(Option<File>, u64)>,
}

impl Seal {
    /// Checks the store's generation against its seal file, and returns the seal to keep
    /// up from now on. Refuses a store that holds less than its seal confirmed.
    pub(crate) fn check(store: &Path, tree: sled::Tree) -> Result<Self, Error> {
        let path = store.join(FILE);
        let held = match tree.get(KEY) {
            Ok(Some(bytes)) => decode(&bytes).ok_or_else(|| Error::Malformed {
                path: store.to_path_buf(),
                detail: "the seal's generation".into(),
            })?,
            Ok(None) => 0,
            Err(e) => {
                return Err(Error::Corrupt {
                    path: store.to_path_buf(),
                    detail: e.to_string(),
                });
            }
        };
        let sealed = read(&path)?.unwrap_or(0);
        if held < sealed {
            return Err(Error::Lost {
                path: store.to_path_buf(),
                held,
                sealed,
            });
        }
        Ok(Self {
            path,
            tree,
            next: Mutex::new(held),
            file: Mutex::new((None, sealed)),
        })
    }

    /// Writes the next generation into the store (before sled's flush) and returns it.
    pub(crate) fn begin(&self) -> Result<u64, sled::Error> {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let generation = *next + 1;
        self.tree.insert(KEY, &generation.to_be_bytes())?;
        *next = generation;
        Ok(generation)
    }

    /// Records in the seal file that the store durably holds `generation` (after sled's
    /// flush). Never lowers the seal: flushes may finish out of order.
    pub(crate) fn confirm(&self, generation: u64) -> Result<(), Error> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if generation <= file.1 {
            return Ok(());
        }
        let io = |e: std::io::Error| Error::Io {
            path: self.path.clone(),
            detail: e.to_string(),
        };
        if file.0.is_none() {
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)
                .map_err(io)?;
            file.0 = Some(opened);
        }
        let record = encode(generation);
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            file.0
                .as_ref()
                .expect("opened above")
                .write_all_at(record.as_bytes(), 0)
                .map_err(io)?;
        }
        #[cfg(not(unix))]
        std::fs::write(&self.path, record.as_bytes()).map_err(io)?;
        file.1 = generation;
        Ok(())
    }
}

fn decode(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// One line of fixed length, so that overwriting it in place never leaves a longer old tail:
/// `nudge-seal 1 <generation, 20 digits> <CRC-32 of what precedes it, 8 hex digits>`.
fn encode(generation: u64) -> String {
    let body = format!("{MAGIC} {generation:020}");
    format!("{body} {:08x}\n", crc32fast::hash(body.as_bytes()))
}

/// The generation a seal file confirms; `None` without a file.
pub(crate) fn read(path: &Path) -> Result<Option<u64>, Error> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                detail: e.to_string(),
            });
        }
    };
    // The file is made by the first flush's confirmation and written just after: a process
    // killed between the two leaves it empty, which confirms nothing (as no file does).
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = (|| {
        let text = std::str::from_utf8(&text).ok()?.trim_end();
        let (body, crc) = text.rsplit_once(' ')?;
        let generation = body.strip_prefix(MAGIC)?.trim_start().parse().ok()?;
        (u32::from_str_radix(crc, 16).ok()? == crc32fast::hash(body.as_bytes()))
            .then_some(generation)
    })();
    parsed.map(Some).ok_or_else(|| Error::BadSeal {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> (sled::Db, sled::Tree) {
        let db = sled::Config::new().path(dir.join("db")).open().unwrap();
        let tree = db.open_tree(TREE).unwrap();
        (db, tree)
    }

    #[test]
    fn a_record_reads_back_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        assert_eq!(read(&path).unwrap(), None);
        std::fs::write(&path, encode(42)).unwrap();
        assert_eq!(read(&path).unwrap(), Some(42));
        let mut damaged = encode(42).into_bytes();
        damaged[20] ^= 1;
        std::fs::write(&path, damaged).unwrap();
        assert!(matches!(read(&path), Err(Error::BadSeal { .. })));
        // Made and not yet written (a kill between the two): nothing confirmed yet.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(read(&path).unwrap(), None);
    }

    #[test]
    fn generations_grow_and_the_file_follows_the_highest_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, tree) = tree(dir.path());
        let seal = Seal::check(dir.path(), tree.clone()).unwrap();
        let first = seal.begin().unwrap();
        let second = seal.begin().unwrap();
        assert!(second > first);
        seal.confirm(second).unwrap();
        seal.confirm(first).unwrap();
        assert_eq!(read(&dir.path().join(FILE)).unwrap(), Some(second));
        // A store behind its seal is refused; one at or past it opens.
        assert!(Seal::check(dir.path(), tree.clone()).is_ok());
        std::fs::write(dir.path().join(FILE), encode(second + 1)).unwrap();
        let err = Seal::check(dir.path(), tree).err().unwrap();
        assert!(
            matches!(err, Error::Lost { held, sealed, .. } if held == second && sealed == second + 1)
        );
    }
}
