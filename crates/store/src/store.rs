//! The storage trait every backend implements.

use crate::{DocumentId, Error};

/// The 32-byte hash Automerge gives a change; storage is content-addressed by it.
pub type ChangeHash = [u8; 32];

/// A change to append: its hash and its encoded bytes, as Automerge produced them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChange {
    /// The change's hash (`automerge::ChangeHash.0`).
    pub hash: ChangeHash,
    /// The change's encoded bytes (`automerge::Change::raw_bytes`).
    pub bytes: Vec<u8>,
}

/// Everything stored for one document: the latest snapshot and the changes appended after it.
///
/// Loading is `snapshot` followed by `changes` in append order; Automerge accepts the
/// concatenation of a saved document and change chunks as one input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredDoc {
    /// The latest compacted snapshot, if the document was ever compacted.
    pub snapshot: Option<Vec<u8>>,
    /// Changes appended after the snapshot, oldest first.
    pub changes: Vec<Vec<u8>>,
    /// The log position this content corresponds to.
    pub position: u64,
}

impl StoredDoc {
    /// How many bytes the snapshot and changes take.
    pub fn len(&self) -> usize {
        self.snapshot.as_ref().map_or(0, Vec::len)
            + self.changes.iter().map(Vec::len).sum::<usize>()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The snapshot and changes as one byte string for `automerge::Automerge::load`.
    pub fn concat(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        if let Some(snapshot) = &self.snapshot {
            out.extend_from_slice(snapshot);
        }
        for change in &self.changes {
            out.extend_from_slice(change);
        }
        out
    }
}

/// Document storage: per document, an append-only log of changes, content-addressed by hash,
/// plus snapshots that compaction writes.
///
/// The position of a document is a counter that grows with every appended change and never
/// goes back, even across compaction; equal positions mean equal content, which is what
/// caches of derived state key on.
///
/// Durability rule: nothing written is durable until [`DocStore::flush`] returns. Callers
/// must flush before they tell anyone (a user, a peer) that a change is stored.
pub trait DocStore: Send + Sync {
    /// Appends the changes that are not stored yet, in order, and returns how many were new.
    fn append(&self, doc: &DocumentId, changes: &[NewChange]) -> Result<usize, Error>;

    /// Everything stored for `doc`, or `None` if nothing is.
    fn load(&self, doc: &DocumentId) -> Result<Option<StoredDoc>, Error>;

    /// The changes appended after log position `position`, oldest first, or `None` when
    /// compaction has folded some of them into a snapshot (then load the whole document).
    /// This is how a long-running reader catches up with what others appended. Positions
    /// grow by one per change: the position after the changes returned is `position`
    /// plus their count.
    fn changes_after(&self, doc: &DocumentId, position: u64)
    -> Result<Option<Vec<Vec<u8>>>, Error>;

    /// The current log position of `doc` (0 if nothing is stored).
    fn position(&self, doc: &DocumentId) -> Result<u64, Error>;

    /// Whether a change with this hash is stored for `doc` (in the log or in a snapshot).
    fn contains(&self, doc: &DocumentId, hash: &ChangeHash) -> Result<bool, Error>;

    /// Number of changes appended since the last snapshot.
    fn changes_since_snapshot(&self, doc: &DocumentId) -> Result<usize, Error>;

    /// Replaces the changes up to `through` (a position from [`StoredDoc::position`]) with a
    /// snapshot that contains them. The snapshot is flushed before any change is removed, so
    /// a crash in between leaves both, never neither.
    fn compact(&self, doc: &DocumentId, snapshot: &[u8], through: u64) -> Result<(), Error>;

    /// Stores a whole document at once as a snapshot holding the changes with these hashes,
    /// replacing anything stored for `doc`. Its position becomes `hashes.len()`. This is how a
    /// document that arrives whole (a new journal, an import) avoids one log entry per change.
    fn import(&self, doc: &DocumentId, snapshot: &[u8], hashes: &[ChangeHash])
    -> Result<(), Error>;

    /// Appends a big batch of changes as a snapshot instead of one log entry each:
    /// `snapshot` holds everything stored for `doc` plus the changes with hashes `new`
    /// (those not stored yet are counted, and the position grows by that count). The
    /// snapshot, its position and the new hashes land together, and the log entries it
    /// covers are removed only after that is flushed, so a crash leaves the old content or
    /// the new, never less. Returns how many changes were new. Nothing is durable until
    /// [`DocStore::flush`], as for [`DocStore::append`].
    fn append_snapshot(
        &self,
        doc: &DocumentId,
        snapshot: &[u8],
        new: &[ChangeHash],
    ) -> Result<usize, Error>;

    /// Removes everything stored for `doc`.
    fn remove(&self, doc: &DocumentId) -> Result<(), Error>;

    /// The ids of every stored document.
    fn documents(&self) -> Result<Vec<DocumentId>, Error>;

    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), Error>;
}
