//! Several nodes on one shared database (PostgreSQL): each stores what its own peers
//! deliver, and hears from the store when another node stored changes to a document
//! (`nudge_store::Signal`). A loaded copy then reads what was stored after the position
//! it is known to hold everything through (`caught_up`) and tells its peers, as a relay.
//! On a store that one process has to itself, only the server's own writes outside a
//! document's actor (a buddy's cheer, `cheers.rs`) are announced this way.
//!
//! Two rules keep the shared log whole: a node compacts only through a position its copy
//! has caught up with (the store refuses to go back to an older snapshot), and a big batch
//! is stored change by change, never as a snapshot that would replace the log entries of
//! changes this node has not seen yet.

use std::sync::Arc;

use automerge::ReadDoc;
use nudge_protocol::{Action, DocSession};
use nudge_store::DocumentId;
use tokio::sync::mpsc;

use super::storage::off_the_runtime;
use super::{DocCommand, Documents};

/// Hands `command` to a document's actor without waiting on a busy one.
fn deliver(tx: mpsc::Sender<DocCommand>, command: DocCommand) {
    if let Err(mpsc::error::TrySendError::Full(command)) = tx.try_send(command) {
        tokio::spawn(async move {
            let _ = tx.send(command).await;
        });
    }
}

impl Documents {
    /// This registry is one of several nodes on a shared database.
    pub fn sharing(mut self) -> Self {
        self.shared = true;
        self
    }

    /// Another node stored changes to `doc`, which reached `position`: a loaded copy (or
    /// one loading now) catches up; the live share pages hear of it either way.
    pub async fn announced(self: &Arc<Self>, doc: DocumentId, position: u64) {
        let command = DocCommand::CatchUp { position };
        if let Some(tx) = self.loaded.lock().await.get(&doc).cloned() {
            deliver(tx, command);
            return;
        }
        let _ = self.updates.send(doc);
        // A load under way may have read the store before that write: once it is in the
        // registry, it catches up too.
        let gate = self
            .loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&doc)
            .and_then(std::sync::Weak::upgrade);
        if let Some(gate) = gate {
            let me = self.clone();
            tokio::spawn(async move {
                drop(gate.lock().await);
                let loaded = me.loaded.lock().await.get(&doc).cloned();
                if let Some(tx) = loaded {
                    deliver(tx, command);
                }
            });
        }
    }

    /// Announcements may have been missed: every loaded document re-reads its position.
    pub async fn resume(&self) {
        let loaded: Vec<_> = self.loaded.lock().await.values().cloned().collect();
        for tx in loaded {
            deliver(tx, DocCommand::CatchUp { position: u64::MAX });
        }
    }

    /// In the actor: brings `session` up to what is stored, if the store holds more than
    /// `caught_up` and at least `position` (announced by another node, or by this server
    /// writing outside the actor); returns the messages for its peers. A read
    /// that fails is only logged: the changes stay stored, and the next announcement (or
    /// compaction) tries again.
    pub(super) async fn catch_up(
        &self,
        doc: DocumentId,
        position: u64,
        session: &mut DocSession,
        caught_up: &mut u64,
    ) -> Vec<Action> {
        if position <= *caught_up {
            return Vec::new();
        }
        let (store, from) = (self.store.clone(), *caught_up);
        let read = self
            .storage(
                "catching up with another node",
                move || -> anyhow::Result<(Vec<u8>, u64)> {
                    Ok(match store.changes_after(&doc, from)? {
                        Some(changes) => (changes.concat(), from + changes.len() as u64),
                        // Compacted past our position meanwhile: the whole document.
                        None => {
                            let stored = store.load(&doc)?.unwrap_or_default();
                            (stored.concat(), stored.position)
                        }
                    })
                },
            )
            .await;
        let (bytes, position) = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(%doc, "cannot read what another node stored: {e:#}");
                return Vec::new();
            }
        };
        if bytes.is_empty() {
            *caught_up = (*caught_up).max(position);
            return Vec::new();
        }
        match off_the_runtime(|| session.absorb(&bytes)) {
            Ok(actions) => {
                *caught_up = (*caught_up).max(position);
                self.metrics.caught_up.inc();
                let _ = self.updates.send(doc);
                actions
            }
            Err(e) => {
                tracing::warn!(%doc, "what another node stored cannot be applied: {e}");
                Vec::new()
            }
        }
    }

    /// What to store for `action` on a shared database: a big batch as its changes, not
    /// as a snapshot (which would drop log entries of changes this copy lacks).
    pub(super) fn storable(&self, action: Action, session: &DocSession) -> Action {
        match action {
            Action::PersistSnapshot { new, .. } if self.shared => Action::Persist(
                new.iter()
                    .filter_map(|hash| session.doc().get_change_by_hash(hash))
                    .collect(),
            ),
            other => other,
        }
    }
}
