//! Who may open which document, decided in one place and without I/O.
//!
//! The server asks [`admit`] before it opens a document for a connection, with what it
//! knows: the kind of token, who owns the document, whether the message is a `request` and
//! whether it carries changes. Opening costs memory for as long as the connection lasts
//! (and the unload delay after), so nothing is opened for a message that could not store
//! anything: a `sync` without changes for a document this principal does not own is
//! answered as an empty document would answer it ([`empty_reply`]), whether the document
//! is unknown or another account's, so that the answer says nothing about which it is.

use automerge::sync::{Message as SyncMessage, State, SyncDoc};

use crate::document::Access;
use crate::token::TokenKind;

/// Who owns a document, seen from the principal asking for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Nobody: it was never stored.
    Nobody,
    /// The principal's own account.
    Own,
    /// Another account.
    Other,
}

/// What the asking message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asking {
    /// A `request` (asks for a document; never creates one), rather than a `sync`.
    pub is_request: bool,
    /// The sync message carries changes.
    pub carries_changes: bool,
}

/// The decision for one document and one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Open it with this access.
    Open(Access),
    /// Open nothing; answer with [`empty_reply`].
    AnswerAsEmpty,
    /// Open nothing; answer `doc-unavailable`.
    Unavailable,
}

/// Decides whether a connection of `kind` may open a document. `is_its_view`: for a share
/// token, whether this is the one view it reads (and its account still owns it).
pub fn admit(kind: TokenKind, is_its_view: bool, owner: Ownership, asking: Asking) -> Admission {
    match (kind, owner) {
        (TokenKind::Share, Ownership::Own) if is_its_view => Admission::Open(Access::ReadOnly),
        (TokenKind::Share, _) => Admission::Unavailable,
        (_, Ownership::Own) => Admission::Open(Access::ReadWrite),
        // A document nobody owns becomes the account's when it first delivers changes.
        (_, Ownership::Nobody) if !asking.is_request && asking.carries_changes => {
            Admission::Open(Access::ReadWrite)
        }
        (_, Ownership::Nobody | Ownership::Other) if asking.is_request => Admission::Unavailable,
        (_, Ownership::Nobody) => Admission::AnswerAsEmpty,
        (_, Ownership::Other) if asking.carries_changes => Admission::Unavailable,
        (_, Ownership::Other) => Admission::AnswerAsEmpty,
    }
}

/// Whether an account that has `used` bytes of its `quota` (`None`: no quota) may store
/// changes of `incoming` bytes more; the refusal says what to do. Nothing of a refused
/// message is stored, and reading and syncing without changes go on.
pub fn within_quota(used: u64, incoming: u64, quota: Option<u64>) -> Result<(), String> {
    match quota {
        Some(quota) if used.saturating_add(incoming) > quota => {
            let mib = |b: u64| b as f64 / f64::from(1 << 20);
            Err(format!(
                "the account is over its storage quota ({:.1} MiB used of {:.1} MiB, {} KiB more refused); nothing was stored: ask the server's operator for more room (`--quota-mib`)",
                mib(used),
                mib(quota),
                incoming.div_ceil(1024)
            ))
        }
        _ => Ok(()),
    }
}

/// Whether a principal holding a token of `kind` may store `incoming` bytes of changes,
/// its account having `used` bytes of its `quota` (`None`: no quota): a share is read-only
/// (refused out loud, so that a buddy's client never believes its change is pending), and
/// the rest is [`within_quota`]. `used` is asked only for a token that may write.
pub fn may_store(
    kind: TokenKind,
    used: impl FnOnce() -> Result<u64, String>,
    incoming: u64,
    quota: Option<u64>,
) -> Result<(), String> {
    if kind == TokenKind::Share {
        return Err("this share is read-only: changes refused, nothing stored".into());
    }
    within_quota(used()?, incoming, quota)
}

/// What an empty document with a fresh sync state answers to `message`: our heads are
/// none, so the peer's next message carries its changes. Holds nothing afterwards.
pub fn empty_reply(message: SyncMessage) -> Option<SyncMessage> {
    let mut empty = automerge::Automerge::new();
    let mut state = State::new();
    crate::receive_sync_message(&mut empty, &mut state, message).ok()?;
    empty.generate_sync_message(&mut state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    const SYNC: Asking = Asking {
        is_request: false,
        carries_changes: false,
    };
    const DELIVERY: Asking = Asking {
        is_request: false,
        carries_changes: true,
    };
    const REQUEST: Asking = Asking {
        is_request: true,
        carries_changes: false,
    };

    #[test]
    fn every_principal_and_document_kind() {
        use Admission::*;
        use Ownership::*;
        for kind in [TokenKind::Account, TokenKind::Device] {
            for asking in [SYNC, DELIVERY, REQUEST] {
                assert_eq!(admit(kind, false, Own, asking), Open(Access::ReadWrite));
            }
            assert_eq!(
                admit(kind, false, Nobody, DELIVERY),
                Open(Access::ReadWrite)
            );
            assert_eq!(admit(kind, false, Nobody, SYNC), AnswerAsEmpty);
            assert_eq!(admit(kind, false, Nobody, REQUEST), Unavailable);
            // Another account's document looks exactly like an unknown one...
            assert_eq!(admit(kind, false, Other, SYNC), AnswerAsEmpty);
            assert_eq!(admit(kind, false, Other, REQUEST), Unavailable);
            // ...until changes would be written to it.
            assert_eq!(admit(kind, false, Other, DELIVERY), Unavailable);
        }
        for asking in [SYNC, REQUEST] {
            assert_eq!(
                admit(TokenKind::Share, true, Own, asking),
                Open(Access::ReadOnly)
            );
        }
        for owner in [Nobody, Own, Other] {
            for asking in [SYNC, DELIVERY, REQUEST] {
                if owner != Own {
                    assert_eq!(admit(TokenKind::Share, true, owner, asking), Unavailable);
                }
                assert_eq!(admit(TokenKind::Share, false, owner, asking), Unavailable);
            }
        }
    }

    #[test]
    fn only_a_share_is_refused_every_write_and_the_rest_meet_the_quota() {
        let untouched = || -> Result<u64, String> { panic!("a share's usage is never read") };
        let refused = may_store(TokenKind::Share, untouched, 1, None).unwrap_err();
        assert!(refused.contains("read-only"), "{refused}");
        for kind in [TokenKind::Account, TokenKind::Device] {
            assert_eq!(may_store(kind, || Ok(0), 10, Some(10)), Ok(()));
            assert!(may_store(kind, || Ok(1), 10, Some(10)).is_err());
            assert_eq!(
                may_store(kind, || Err("storage failed".into()), 1, None),
                Err("storage failed".into())
            );
        }
    }

    #[test]
    fn a_quota_refuses_what_would_go_past_it_and_nothing_below() {
        assert_eq!(within_quota(u64::MAX, u64::MAX, None), Ok(()));
        assert_eq!(within_quota(90, 10, Some(100)), Ok(()));
        let refused = within_quota(90, 11, Some(100)).unwrap_err();
        assert!(refused.contains("over its storage quota"), "{refused}");
        assert!(within_quota(u64::MAX, 1, Some(100)).is_err());
    }

    #[test]
    fn the_empty_answer_leads_a_peer_to_send_everything() {
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "k", "v").unwrap();
        tx.commit();
        let mut state = State::new();
        let first = doc.generate_sync_message(&mut state).unwrap();
        assert!(first.changes.is_empty());
        let reply = empty_reply(first).expect("an answer");
        assert!(reply.heads.is_empty());
        crate::receive_sync_message(&mut doc, &mut state, reply).unwrap();
        let next = doc.generate_sync_message(&mut state).unwrap();
        assert_eq!(next.changes.len(), 1);
    }
}
