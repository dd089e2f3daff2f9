//! What the nodes sharing one database tell each other. A store that several processes
//! serve at once (PostgreSQL) announces every write to a document as it commits, and
//! carries the server's own announcements (tokens revoked, documents removed), so that
//! each node can catch its loaded documents up and close what was revoked elsewhere. An
//! embedded store (sled) has one process only: it announces nothing, and hears nothing.

use crate::{DocumentId, Error};

/// One announcement, as another node (or an admin command) made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Changes to `doc` were committed; its log position is now `position`.
    Changed {
        /// The document.
        doc: DocumentId,
        /// Its position after the write.
        position: u64,
    },
    /// Tokens were revoked and documents removed: close the tokens' sockets and forget
    /// the documents' loaded copies.
    Withdrawn {
        /// The revoked tokens' ids.
        tokens: Vec<String>,
        /// The removed documents.
        documents: Vec<DocumentId>,
    },
    /// The announcements were interrupted (the connection to the database was lost and is
    /// back): some may have been missed, so re-read the positions of what is loaded.
    Resumed,
}

/// Called with each announcement from elsewhere, on a thread of the store's own.
pub type Listener = Box<dyn Fn(Signal) + Send + Sync>;

/// A store that several processes serve at once.
pub trait Shared: Send + Sync {
    /// Calls `listener` with every announcement made by any other process from now on
    /// (and [`Signal::Resumed`] each time listening starts again after an interruption).
    fn listen(&self, listener: Listener);

    /// Tells every other process `signal` (once committed: a process that misses it
    /// hears [`Signal::Resumed`]).
    fn announce(&self, signal: &Signal) -> Result<(), Error>;

    /// Whether announcements are being heard right now.
    fn listening(&self) -> bool;
}
