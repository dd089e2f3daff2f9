//! The cache of derived state that lets reads skip the Automerge document.
//!
//! It lives in plain files beside the store, not in sled: it is rebuilt whenever in doubt,
//! and rewriting it must not leave garbage in sled's log (which sled rewrites at every
//! open). `cache/meta.bin` holds the log position it was derived at, the catalog, the
//! summary and a CRC-32 of each of the 16 shift files `cache/shifts-<x>.bin` (shifts by the
//! first hex digit of their id). A file whose CRC does not match, or a position that is not
//! the store's, means the cache is stale and is rebuilt from the document. Files are
//! replaced by rename, so a reader sees a whole old file or a whole new one.
//!
//! `cache/ids.bin` holds every shift id, sorted, as 16 raw bytes each, so that short ids
//! and prefix lookups need no shift file at all (ids that are not 32 hex digits, written
//! by other apps, are kept as strings in the index file instead).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use nudge_journal::{Catalog, Shift, Summary};
use serde::{Deserialize, Serialize};

/// Bump when the cache's shape changes; an old cache is then rebuilt.
const FORMAT: u32 = 6;
/// Number of shift files.
pub const BUCKETS: usize = 16;

/// Shifts of one file, by id.
pub type Bucket = BTreeMap<String, Shift>;

/// The cache's index file.
#[derive(Clone, Serialize, Deserialize)]
pub struct Meta {
    format: u32,
    /// The journal's log position the cache was derived at.
    pub position: u64,
    /// Settings, ideas, people, devices.
    pub catalog: Catalog,
    /// Planned shifts and per-day counts.
    pub summary: Summary,
    crcs: [u32; BUCKETS],
    ids_crc: u32,
    other_ids: Vec<String>,
}

/// Every shift id, sorted: 32-hex ids as raw bytes, any others as strings.
#[derive(Clone, Default)]
pub struct IdIndex {
    hex: Vec<[u8; 16]>,
    other: Vec<String>,
}

fn parse_hex(id: &str) -> Option<[u8; 16]> {
    if id.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in id.as_bytes().chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        if pair.iter().any(u8::is_ascii_uppercase) {
            return None;
        }
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

fn to_hex(bytes: &[u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl IdIndex {
    /// The index of these ids.
    pub fn from_ids<'a>(ids: impl IntoIterator<Item = &'a String>) -> Self {
        let mut index = Self::default();
        for id in ids {
            match parse_hex(id) {
                Some(raw) => index.hex.push(raw),
                None => index.other.push(id.clone()),
            }
        }
        index.hex.sort_unstable();
        index.other.sort_unstable();
        index
    }

    /// Adds an id (no-op if present).
    pub fn insert(&mut self, id: &str) {
        match parse_hex(id) {
            Some(raw) => {
                if let Err(at) = self.hex.binary_search(&raw) {
                    self.hex.insert(at, raw);
                }
            }
            None => {
                if let Err(at) = self.other.binary_search_by(|o| o.as_str().cmp(id)) {
                    self.other.insert(at, id.to_owned());
                }
            }
        }
    }

    /// Removes an id (no-op if absent).
    pub fn remove(&mut self, id: &str) {
        match parse_hex(id) {
            Some(raw) => {
                if let Ok(at) = self.hex.binary_search(&raw) {
                    self.hex.remove(at);
                }
            }
            None => self.other.retain(|o| o != id),
        }
    }

    /// The ids just before and just after `id` in sorted order.
    pub fn neighbours(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let lower = id.to_ascii_lowercase();
        let probe = parse_hex(&format!("{lower:0<32}")).unwrap_or([0xff; 16]);
        let at = self.hex.partition_point(|h| *h < probe);
        let after = if self.hex.get(at) == Some(&probe) {
            at + 1
        } else {
            at
        };
        out.extend(at.checked_sub(1).and_then(|i| self.hex.get(i)).map(to_hex));
        out.extend(self.hex.get(after).map(to_hex));
        let at = self.other.partition_point(|o| o.as_str() < id);
        let after = if self.other.get(at).map(String::as_str) == Some(id) {
            at + 1
        } else {
            at
        };
        out.extend(at.checked_sub(1).and_then(|i| self.other.get(i)).cloned());
        out.extend(self.other.get(after).cloned());
        out
    }

    /// Every id that starts with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Vec<String> {
        let prefix = prefix.to_ascii_lowercase();
        let mut out = Vec::new();
        if let Some(low) = parse_hex(&format!("{prefix:0<32}")) {
            let at = self.hex.partition_point(|h| *h < low);
            out.extend(
                self.hex[at..]
                    .iter()
                    .map(to_hex)
                    .take_while(|id| id.starts_with(&prefix)),
            );
        }
        out.extend(
            self.other
                .iter()
                .filter(|o| o.starts_with(&prefix))
                .cloned(),
        );
        out
    }

    fn raw(&self) -> Vec<u8> {
        self.hex.iter().flatten().copied().collect()
    }
}

/// Which file a shift id (or id prefix) belongs in.
pub fn bucket_of(id: &str) -> usize {
    match id.as_bytes().first().map(|b| (*b as char).to_digit(16)) {
        Some(Some(d)) => d as usize,
        // Ids written by other apps need not be hex; spread them all the same.
        _ => crc32fast::hash(id.as_bytes()) as usize % BUCKETS,
    }
}

/// The cache folder.
pub struct Cache {
    dir: PathBuf,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

impl Cache {
    /// The cache in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn bucket_path(&self, b: usize) -> PathBuf {
        self.dir.join(format!("shifts-{b:x}.bin"))
    }

    /// The index, if it is current for `position`.
    pub fn meta(&self, position: u64) -> Option<Meta> {
        let bytes = std::fs::read(self.dir.join("meta.bin")).ok()?;
        postcard::from_bytes::<Meta>(&bytes)
            .ok()
            .filter(|m| m.format == FORMAT && m.position == position)
    }

    /// The id index, if it matches the cache index.
    pub fn ids(&self, meta: &Meta) -> Option<IdIndex> {
        let bytes = std::fs::read(self.dir.join("ids.bin")).ok()?;
        if crc32fast::hash(&bytes) != meta.ids_crc || bytes.len() % 16 != 0 {
            return None;
        }
        let hex = bytes
            .chunks_exact(16)
            .map(|c| c.try_into().expect("chunks of 16"))
            .collect();
        Some(IdIndex {
            hex,
            other: meta.other_ids.clone(),
        })
    }

    /// One shift file, if it matches the index.
    pub fn bucket(&self, meta: &Meta, b: usize) -> Option<Bucket> {
        let bytes = std::fs::read(self.bucket_path(b)).ok()?;
        if crc32fast::hash(&bytes) != meta.crcs[b] {
            return None;
        }
        postcard::from_bytes(&bytes).ok()
    }

    /// Writes the given shift files (the others stay as they are), then the index.
    pub fn write(
        &self,
        old: Option<&Meta>,
        position: u64,
        catalog: Catalog,
        summary: Summary,
        buckets: &[(usize, Arc<Bucket>)],
        ids: &IdIndex,
    ) -> Result<Meta> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let mut crcs = old.map_or([0; BUCKETS], |m| m.crcs);
        for (b, shifts) in buckets {
            let bytes = postcard::to_allocvec(shifts.as_ref()).context("encoding the cache")?;
            crcs[*b] = crc32fast::hash(&bytes);
            write_file(&self.bucket_path(*b), &bytes)?;
        }
        let raw_ids = ids.raw();
        let ids_crc = crc32fast::hash(&raw_ids);
        write_file(&self.dir.join("ids.bin"), &raw_ids)?;
        let meta = Meta {
            format: FORMAT,
            position,
            catalog,
            summary,
            crcs,
            ids_crc,
            other_ids: ids.other.clone(),
        };
        let bytes = postcard::to_allocvec(&meta).context("encoding the cache")?;
        write_file(&self.dir.join("meta.bin"), &bytes)?;
        Ok(meta)
    }

    /// Makes the cache stale (tests).
    #[cfg(test)]
    pub fn damage(&self) {
        let _ = std::fs::write(self.dir.join("meta.bin"), b"garbage");
    }
}

/// A planned shift with this id, for tests.
#[cfg(test)]
pub(crate) fn sample_shift(id: &str) -> Shift {
    Shift {
        id: id.into(),
        text: format!("text of {id}"),
        status: nudge_journal::ShiftStatus::Planned,
        created_at_ms: 0,
        done: None,
        minutes: 5,
        kind: nudge_journal::Kind::Other,
        ideas: Default::default(),
        people: Default::default(),
        note: None,
        little_yes: None,
        shrunk_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_spread_over_all_files() {
        assert_eq!(bucket_of("0abc"), 0);
        assert_eq!(bucket_of("f123"), 15);
        assert_eq!(bucket_of("A1"), 10);
        assert!(bucket_of("not-hex") < BUCKETS);
    }

    #[test]
    fn a_changed_file_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        let mut bucket = Bucket::new();
        bucket.insert("0abc".into(), sample_shift("0abc"));
        let meta = cache
            .write(
                None,
                7,
                Catalog::default(),
                Summary::default(),
                &[(0, Arc::new(bucket))],
                &IdIndex::from_ids(&["0abc".to_string()]),
            )
            .unwrap();
        assert!(cache.meta(7).is_some());
        assert!(cache.meta(8).is_none(), "another position is stale");
        assert_eq!(cache.bucket(&meta, 0).unwrap().len(), 1);
        std::fs::write(dir.path().join("shifts-0.bin"), b"other").unwrap();
        assert!(cache.bucket(&meta, 0).is_none());
    }

    #[test]
    fn the_id_index_finds_prefixes_and_neighbours() {
        let ids: Vec<String> = [
            "0123456789abcdef0123456789abcdef",
            "0123456789abcdef0000000000000000",
            "ffff0000000000000000000000000000",
            "not-hex",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut index = IdIndex::from_ids(&ids);
        assert_eq!(index.with_prefix("0123").len(), 2);
        assert_eq!(
            index.with_prefix("0123456789abcdef01"),
            vec![ids[0].clone()]
        );
        assert_eq!(index.with_prefix("FFFF"), vec![ids[2].clone()]);
        assert_eq!(index.with_prefix("not-"), vec!["not-hex".to_string()]);
        assert!(index.with_prefix("abcd").is_empty());
        let n = index.neighbours(&ids[0]);
        assert!(n.contains(&ids[1]) && n.contains(&ids[2]), "{n:?}");
        index.remove(&ids[1]);
        assert_eq!(index.with_prefix("0123").len(), 1);
        index.insert("00000000000000000000000000000000");
        assert_eq!(index.with_prefix("0000").len(), 1);
        let raw = index.raw();
        assert_eq!(raw.len(), 3 * 16);
    }
}
