//! `journal.position`, beside the store: the journal's id and the highest log position this
//! device has confirmed. sled recovers a damaged log by cutting it short, silently, on
//! open; this file, written outside sled after every change, is how such a loss is noticed
//! instead of hidden (docs/storage.md).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use nudge_store::DocumentId;

/// The position marker file.
pub struct Marker {
    path: PathBuf,
}

impl Marker {
    /// The marker at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal id and confirmed position, if the file exists.
    pub fn read(&self) -> Result<Option<(DocumentId, u64)>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        let mut parts = text.split_whitespace();
        let parsed = (|| Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?)))();
        parsed.map(Some).ok_or_else(|| {
                anyhow!(
                    "{} is damaged; nothing was changed: delete that file and run the command again (it only guards against a store that lost changes; see docs/storage.md)",
                    self.path.display()
                )
            })
    }

    /// Records the journal's confirmed position, atomically (temporary file, then rename).
    pub fn write(&self, id: &DocumentId, position: u64) -> Result<()> {
        use std::io::Write;
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        writeln!(file, "{id} {position}")?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let marker = Marker::new(dir.path().join("journal.position"));
        assert_eq!(marker.read().unwrap(), None);
        let id = DocumentId::random();
        marker.write(&id, 42).unwrap();
        assert_eq!(marker.read().unwrap(), Some((id, 42)));
        std::fs::write(marker.path(), "not a marker").unwrap();
        let err = marker.read().unwrap_err().to_string();
        assert!(err.contains("delete that file"), "{err}");
    }
}
