//! Receiving a sync message without automerge 0.12's walk over the whole history.
//!
//! `SyncDoc::receive_sync_message` in automerge 0.12 trims the hashes it has sent a peer
//! (`State::sent_hashes`) to those the peer's heads do not cover, and does it by visiting
//! every ancestor of those heads into a `BTreeSet`: on every message, whether it carries
//! changes or not, and whether anything was sent or not. That is about 4.5 ms a message on
//! a 100,000-change journal, 0.4 ms at 10,000 (`docs/PERFORMANCE.md`): nearly all of the
//! cost of a message without changes, and most of that of a message with one.
//!
//! [`receive_sync_message`] gives automerge the message without its heads (so that its
//! walk has nowhere to start) and then does what automerge does with the heads itself,
//! through the sync state's public fields. The trim asks the document which changes the
//! heads do not cover (`get_changes_meta`, which automerge answers from its vector clocks
//! without a walk), and is skipped when nothing was sent. The outcome is the same state,
//! field for field (`tests/receive.rs` checks it against automerge's own on random
//! exchanges).

use std::collections::HashSet;

use automerge::sync::{Message, MessageFlags, State, SyncDoc};
use automerge::{Automerge, AutomergeError, ChangeHash};

/// Applies `message` to `doc` and `state` as `SyncDoc::receive_sync_message` does, without
/// its walk over the document's history (applying the changes still costs what automerge
/// makes it cost).
pub fn receive_sync_message(
    doc: &mut Automerge,
    state: &mut State,
    mut message: Message,
) -> Result<(), AutomergeError> {
    let heads = std::mem::take(&mut message.heads);
    let changes_is_empty = message.changes.is_empty();
    let before = doc.get_heads();
    // Without heads, automerge takes the peer for one that lost everything and resets these
    // (and sets the shared heads to none); they are put back below.
    let shared = state.shared_heads.clone();
    let last_sent = state.last_sent_heads.clone();
    let mut sent = std::mem::take(&mut state.sent_hashes);
    // Automerge empties them first thing for this flag (and adds none while receiving).
    if message
        .flags
        .is_some_and(|f| f.contains(MessageFlags::SYNC_RESET))
    {
        sent.clear();
    }
    if let Err(e) = doc.receive_sync_message(state, message) {
        // Automerge stops where it applies the changes, before it touches any of these.
        state.shared_heads = shared;
        state.last_sent_heads = last_sent;
        state.sent_hashes = sent;
        return Err(e);
    }
    state.last_sent_heads = last_sent;

    let mut shared_heads = shared;
    if !changes_is_empty && !state.read_only {
        shared_heads = advance_heads(&before, &doc.get_heads(), &shared_heads);
    }

    // The sent hashes the peer's heads cover are dropped: those not among the changes the
    // heads leave out.
    let known: Vec<ChangeHash> = heads.iter().copied().filter(|h| has(doc, h)).collect();
    if !sent.is_empty() && !known.is_empty() {
        let outside: HashSet<ChangeHash> = doc
            .get_changes_meta(&known)
            .into_iter()
            .map(|m| m.hash)
            .collect();
        sent.retain(|h| outside.contains(h));
    }
    state.sent_hashes = sent;

    if changes_is_empty && heads == before {
        state.last_sent_heads.clone_from(&heads);
    }
    if known.len() == heads.len() {
        shared_heads.clone_from(&heads);
        if heads.is_empty() {
            state.last_sent_heads = Vec::new();
            state.sent_hashes = Default::default();
        }
    } else {
        shared_heads.extend(known);
        shared_heads.sort();
        shared_heads.dedup();
    }
    state.shared_heads = shared_heads;
    state.their_heads = Some(heads);
    Ok(())
}

/// Whether the document has applied this change (automerge's `has_change`, which is not
/// public; the metadata of one change is a lookup in its change graph).
fn has(doc: &Automerge, hash: &ChangeHash) -> bool {
    doc.get_change_meta_by_hash(hash).is_some()
}

/// automerge's `advance_heads`: the shared heads after our heads went from `old` to `new`
/// by applying a peer's changes.
fn advance_heads(old: &[ChangeHash], new: &[ChangeHash], shared: &[ChangeHash]) -> Vec<ChangeHash> {
    let old: HashSet<&ChangeHash> = old.iter().collect();
    let new_set: HashSet<&ChangeHash> = new.iter().collect();
    let mut advanced: Vec<ChangeHash> = new
        .iter()
        .filter(|h| !old.contains(h))
        .chain(shared.iter().filter(|h| new_set.contains(h)))
        .copied()
        .collect();
    advanced.sort();
    advanced.dedup();
    advanced
}
