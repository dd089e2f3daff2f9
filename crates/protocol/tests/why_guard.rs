//! Why the guard exists: the crafted sync message it refuses does break automerge 0.12.

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};

#[test]
fn automerge_alone_panics_on_a_zero_bit_bloom_filter() {
    // version, no heads, no need, one have (no last_sync, a 5-byte bloom: 1 entry,
    // 0 bits per entry, 7 probes), no changes.
    let crafted = [0x42, 0, 0, 1, 0, 3, 1, 0, 7, 0];
    let outcome = std::panic::catch_unwind(|| {
        let message = automerge::sync::Message::decode(&crafted).ok()?;
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "x", 1).unwrap();
        doc.commit();
        let mut state = automerge::sync::State::new();
        doc.sync().receive_sync_message(&mut state, message).ok()?;
        doc.sync()
            .generate_sync_message(&mut state)
            .map(|m| m.encode().len())
    });
    assert!(
        outcome.is_err(),
        "automerge now copes ({outcome:?}); the guard's bloom check could be relaxed"
    );
    assert!(nudge_protocol::sync_shape::check(&crafted).is_err());
}
