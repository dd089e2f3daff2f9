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

/// The longest run of token ids or documents one announcement carries (a notification's
/// payload is capped at 8,000 bytes).
const PER_MESSAGE: usize = 100;

impl Signal {
    /// The signal as one or more lines of text, each tagged with the sender's `origin`.
    pub(crate) fn encode(&self, origin: u64) -> Vec<String> {
        match self {
            Signal::Changed { doc, position } => vec![format!("c {origin:x} {doc} {position}")],
            Signal::Withdrawn { tokens, documents } => {
                let mut out = Vec::new();
                for chunk in tokens.chunks(PER_MESSAGE) {
                    out.push(format!("t {origin:x} {}", chunk.join(" ")));
                }
                for chunk in documents.chunks(PER_MESSAGE) {
                    let ids: Vec<String> = chunk.iter().map(|d| d.to_string()).collect();
                    out.push(format!("d {origin:x} {}", ids.join(" ")));
                }
                out
            }
            Signal::Resumed => Vec::new(),
        }
    }

    /// A line [`Self::encode`] wrote and its origin; `None` for anything else.
    pub(crate) fn decode(line: &str) -> Option<(u64, Signal)> {
        let mut words = line.split(' ');
        let kind = words.next()?;
        let origin = u64::from_str_radix(words.next()?, 16).ok()?;
        let signal = match kind {
            "c" => {
                let doc = words.next()?.parse().ok()?;
                let position = words.next()?.parse().ok()?;
                Signal::Changed { doc, position }
            }
            "t" => Signal::Withdrawn {
                tokens: words.filter(|w| !w.is_empty()).map(str::to_owned).collect(),
                documents: Vec::new(),
            },
            "d" => Signal::Withdrawn {
                tokens: Vec::new(),
                documents: words.map(str::parse).collect::<Result<_, _>>().ok()?,
            },
            _ => return None,
        };
        Some((origin, signal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_survive_their_encoding_and_long_ones_are_split() {
        let doc = DocumentId::random();
        let changed = Signal::Changed { doc, position: 42 };
        assert_eq!(
            changed
                .encode(7)
                .iter()
                .map(|l| Signal::decode(l))
                .collect::<Vec<_>>(),
            vec![Some((7, changed))]
        );
        let tokens: Vec<String> = (0..250).map(|i| format!("tok{i}")).collect();
        let withdrawn = Signal::Withdrawn {
            tokens: tokens.clone(),
            documents: vec![doc],
        };
        let lines = withdrawn.encode(u64::MAX);
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.len() < 8000));
        let mut heard = Vec::new();
        let mut docs = Vec::new();
        for line in &lines {
            let (origin, signal) = Signal::decode(line).unwrap();
            assert_eq!(origin, u64::MAX);
            let Signal::Withdrawn {
                tokens: t,
                documents: d,
            } = signal
            else {
                panic!("{signal:?}");
            };
            heard.extend(t);
            docs.extend(d);
        }
        assert_eq!(heard, tokens);
        assert_eq!(docs, vec![doc]);
        assert_eq!(Signal::decode("c zz nonsense"), None);
        assert_eq!(Signal::decode(""), None);
    }
}
