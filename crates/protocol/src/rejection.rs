//! Why a server refused a peer's message, in words a client can read back.
//!
//! automerge-repo's `error` message carries text only. One refusal has to be understood by
//! the client: the server holds other changes numbered like the device's own (a device
//! restored from a copy of its home; `nudge_journal::reauthor` is the way out). The server
//! names the document with [`for_document`]; [`actor_reused`] finds the document, actor
//! and sequence number again.

use automerge::ActorId;
use nudge_store::DocumentId;

/// `reason`, naming the document it is about.
pub fn for_document(doc: &DocumentId, reason: &str) -> String {
    format!("{reason} (document {doc})")
}

/// The document, actor and first sequence number of a "duplicate seq" refusal (automerge's
/// `DuplicateSeqNumber`, as [`for_document`] wrote it); `None` for any other text.
pub fn actor_reused(text: &str) -> Option<(DocumentId, ActorId, u64)> {
    let rest = &text[text.find("duplicate seq ")? + "duplicate seq ".len()..];
    let (seq, rest) = rest.split_once(" found for actor ")?;
    let hex_len = rest.find(|c: char| !c.is_ascii_hexdigit())?;
    let (hex, rest) = rest.split_at(hex_len);
    let doc = rest[rest.find("(document ")? + "(document ".len()..]
        .split(')')
        .next()?;
    Some((
        doc.parse().ok()?,
        hex.parse::<ActorId>().ok()?,
        seq.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_seq_refusal_reads_back() {
        let doc = DocumentId::random();
        let actor = ActorId::random();
        // As the server's session words it (automerge's own text), then names the document.
        let error = automerge::AutomergeError::DuplicateSeqNumber(7, actor.clone());
        let said = for_document(&doc, &format!("invalid sync message: {error}"));
        assert_eq!(actor_reused(&said), Some((doc, actor, 7)));
        assert_eq!(
            actor_reused(&for_document(&doc, "read-only: changes refused")),
            None
        );
        assert_eq!(actor_reused("duplicate seq 7 found for actor zz"), None);
    }
}
