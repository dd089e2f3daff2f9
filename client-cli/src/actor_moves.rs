//! A sync that finds this device's actor used by a copy of it (a home restored from a
//! backup) moves the device to a fresh actor and runs again, instead of failing the same
//! way at every `nudge sync` (`session/restored.rs` does the move).

use anyhow::Result;
use nudge_journal::automerge::ActorId;
use nudge_store::DocumentId;

use nudge_replica::{ActorMove, Replica};

/// Moves in one sync at most: one per document this device writes to is plenty.
const MAX_MOVES: usize = 8;

/// The server holds other changes of this device's actor (raised by the sync link).
#[derive(Debug, thiserror::Error)]
#[error(
    "the server holds other changes of this device's actor in document {document} (was this device restored from a copy?)"
)]
pub(crate) struct ActorReused {
    pub(crate) document: DocumentId,
    pub(crate) actor: ActorId,
    pub(crate) seq: u64,
}

/// Runs `attempt` (a whole sync over a new connection) until it succeeds, moving this
/// device to a fresh actor each time it fails with [`ActorReused`]. Returns its result
/// and the moves made.
pub(crate) async fn retrying<T>(
    session: &Replica,
    mut attempt: impl AsyncFnMut() -> Result<T>,
) -> Result<(T, Vec<ActorMove>)> {
    let mut moves = Vec::new();
    loop {
        match attempt().await {
            Ok(value) => return Ok((value, moves)),
            Err(e) if moves.len() < MAX_MOVES => {
                let Some(reused) = e.downcast_ref::<ActorReused>() else {
                    return Err(e);
                };
                tracing::warn!(document = %reused.document, seq = reused.seq, "this device's actor was used by a copy of it; moving to a fresh actor");
                moves.push(session.move_to_fresh_actor(
                    &reused.document,
                    &reused.actor,
                    reused.seq,
                )?);
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a sync says of its moves.
pub(crate) fn report_line(moves: &[ActorMove]) -> Option<String> {
    let changes: usize = moves.iter().map(|m| m.changes).sum();
    (!moves.is_empty()).then(|| {
        format!(
            "This device was restored from a copy of its home, which the original went on using: its {changes} {} since the copy now sync as a new device identity; nothing was lost (`nudge doctor` shows it).",
            crate::output::plural(changes, "change", "changes")
        )
    })
}
