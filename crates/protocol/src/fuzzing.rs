//! The server's inbound path as one function, for the fuzzer (`fuzz/`) and for replaying
//! its corpus as ordinary tests: bytes -> guard -> protocol decode -> Automerge receive ->
//! durable-ack step -> replies. Whatever the bytes, this must return without panicking.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};

use crate::document::{Access, Action, DocSession};
use crate::guard::{Limits, inspect};

/// Runs `bytes` through the inbound path of a server holding a small document; returns
/// how many messages it would send back.
pub fn inbound(bytes: &[u8]) -> usize {
    let Ok(inbound) = inspect(bytes, &Limits::default()) else {
        return 0;
    };
    let Some(message) = inbound.sync else {
        return 0;
    };
    let mut doc = AutoCommit::new();
    let _ = doc.put(ROOT, "shifts", "a few");
    let mut session = DocSession::new(doc.document().clone());
    let mut sent = 0;
    let mut actions = session.add_peer(1, Access::ReadWrite);
    actions.extend(session.receive(1, message));
    // Follow the durability rule as the server does: persist, then let replies out.
    for _ in 0..4 {
        let mut next = Vec::new();
        for action in actions {
            match action {
                Action::Persist(_) | Action::PersistSnapshot { .. } => {
                    next.extend(session.persisted())
                }
                Action::Send(..) => sent += 1,
                Action::Reject(..) => {}
            }
        }
        if next.is_empty() {
            break;
        }
        actions = next;
    }
    sent
}
