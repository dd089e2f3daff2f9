//! The registry of loaded documents: one actor per document, started on first use behind
//! a load gate per document (those asking for one document wait for its load; nobody else
//! does), reloaded from storage after a panic, unloaded when nobody has had it open for a
//! while, forgotten when the document is deleted.

use std::collections::HashMap;
use std::sync::Arc;

use automerge::Automerge;
use nudge_protocol::{Action, DocSession, PeerKey};
use nudge_store::DocumentId;
use tokio::sync::{Mutex, mpsc};

use super::{CHANNEL, DocCommand, Documents, Event, Peer};

impl Documents {
    /// The channel to a document's actor, loading the document if needed.
    #[cfg(test)]
    pub async fn get(
        self: &Arc<Self>,
        doc: DocumentId,
    ) -> anyhow::Result<mpsc::Sender<DocCommand>> {
        self.load_and_send(doc, None).await
    }

    /// Opens a document for a connection: loads it if needed and hands its actor the
    /// `Open` command under the registry's lock, so that an idle document cannot unload
    /// between the two (its actor checks for waiting commands under the same lock).
    pub async fn open(
        self: &Arc<Self>,
        doc: DocumentId,
        open: DocCommand,
    ) -> anyhow::Result<mpsc::Sender<DocCommand>> {
        self.load_and_send(doc, Some(open)).await
    }

    pub(super) async fn load_and_send(
        self: &Arc<Self>,
        doc: DocumentId,
        mut command: Option<DocCommand>,
    ) -> anyhow::Result<mpsc::Sender<DocCommand>> {
        let send = |tx: mpsc::Sender<DocCommand>, command: Option<DocCommand>| async move {
            if let Some(command) = command {
                tx.send(command)
                    .await
                    .map_err(|_| anyhow::anyhow!("document {doc} closed"))?;
            }
            Ok::<_, anyhow::Error>(tx)
        };
        loop {
            {
                let loaded = self.loaded.lock().await;
                if let Some(tx) = loaded.get(&doc).filter(|tx| !tx.is_closed()) {
                    return send(tx.clone(), command.take()).await;
                }
            }
            // Not loaded: one caller loads it, others asking for it wait here; everyone
            // else goes on using the registry.
            let gate = self.gate(doc);
            let guard = gate.lock().await;
            if self
                .loaded
                .lock()
                .await
                .get(&doc)
                .is_some_and(|tx| !tx.is_closed())
            {
                continue;
            }
            let automerge = self.load(doc).await;
            // In the registry before the gate opens, so that the next caller finds it.
            let mut loaded = self.loaded.lock().await;
            drop(guard);
            drop(gate);
            self.drop_gate(doc);
            let (automerge, position) = automerge?;
            let (tx, rx) = mpsc::channel(CHANNEL);
            if loaded.insert(doc, tx.clone()).is_none() {
                self.metrics.documents_loaded.inc();
            }
            let me = self.clone();
            let own = tx.downgrade();
            tokio::spawn(async move {
                me.actor(doc, (DocSession::new(automerge), position), rx, own)
                    .await
            });
            return send(tx, command.take()).await;
        }
    }

    /// The loading gate of `doc`, server by everyone asking for it at the moment.
    pub(super) fn gate(&self, doc: DocumentId) -> Arc<Mutex<()>> {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(gate) = loading.get(&doc).and_then(std::sync::Weak::upgrade) {
            return gate;
        }
        let gate = Arc::new(Mutex::new(()));
        loading.insert(doc, Arc::downgrade(&gate));
        gate
    }

    /// Forgets `doc`'s gate once nobody holds it.
    pub(super) fn drop_gate(&self, doc: DocumentId) {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if loading
            .get(&doc)
            .is_some_and(|gate| gate.strong_count() == 0)
        {
            loading.remove(&doc);
        }
    }

    /// `doc` from storage (empty if it has never been stored), read and loaded off the
    /// runtime, with the log position it holds everything through.
    pub(super) async fn load(&self, doc: DocumentId) -> anyhow::Result<(Automerge, u64)> {
        let store = self.store.clone();
        let stored = self
            .storage("loading a document", move || store.load(&doc))
            .await?;
        match stored {
            Some(stored) => {
                let position = stored.position;
                let automerge =
                    tokio::task::spawn_blocking(move || Automerge::load(&stored.concat()))
                        .await?
                        .map_err(|e| {
                            anyhow::anyhow!("document {doc} in storage cannot be read: {e}")
                        })?;
                Ok((automerge, position))
            }
            None => Ok((Automerge::new(), 0)),
        }
    }

    /// After a panic while handling `culprit`'s message: that connection is told and
    /// dropped, the document's in-memory state is discarded and reloaded from storage, and
    /// the other connections start a fresh sync with it; with the position it was read
    /// at. `None` if storage fails too.
    pub(super) async fn recover(
        &self,
        doc: DocumentId,
        peers: &mut HashMap<PeerKey, Peer>,
        culprit: PeerKey,
        why: String,
    ) -> Option<(DocSession, u64, Vec<Action>)> {
        tracing::error!(%doc, conn = culprit, "handling a message panicked ({why}); reloading the document and closing that connection");
        if let Some(peer) = peers.remove(&culprit) {
            let _ = peer.tx.try_send(Event::Dropped(
                "the server could not handle your message for this document".into(),
            ));
        }
        let (automerge, position) = match self.load(doc).await {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(%doc, "cannot reload the document: {e:#}");
                return None;
            }
        };
        let mut session = DocSession::new(automerge);
        let mut actions = Vec::new();
        for (conn, peer) in peers.iter() {
            actions.extend(session.add_peer(*conn, peer.access));
        }
        Some((session, position, actions))
    }

    /// Drops a document from memory (after it was deleted): its actor ends once the
    /// connections that have it open are gone, and the next access starts afresh.
    pub async fn forget(&self, doc: &DocumentId) {
        if self.loaded.lock().await.remove(doc).is_some() {
            self.metrics.documents_loaded.dec();
        }
    }

    /// Takes an idle document out of the registry, unless a command is waiting (the
    /// registry's lock makes this atomic with [`Self::open`]). Everything in it is stored.
    pub(super) async fn unload(
        &self,
        doc: DocumentId,
        rx: &mpsc::Receiver<DocCommand>,
        own: &mpsc::WeakSender<DocCommand>,
    ) -> bool {
        let mut loaded = self.loaded.lock().await;
        if !rx.is_empty() {
            return false;
        }
        let ours = match (loaded.get(&doc), own.upgrade()) {
            (Some(entry), Some(own)) => entry.same_channel(&own),
            _ => false,
        };
        if ours {
            loaded.remove(&doc);
            self.metrics.documents_loaded.dec();
            tracing::debug!(%doc, "idle document unloaded");
        }
        true
    }
}
