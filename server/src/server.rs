//! The running server as one handle: its state, its loaded documents, its open sockets and
//! its settings, behind methods that are the operations. Routes and connections parse,
//! call one of these and answer; a rule about who may do what, or about what else must
//! happen when something is revoked, lives here (or in `nudge_protocol::admission`,
//! which this asks), never in a route.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nudge_protocol::admission::{self, Admission, Asking, Ownership};
use nudge_protocol::{PeerKey, Token};
use nudge_store::{DocStore, DocumentId, Signal, Store};
use tokio::sync::Notify;

use crate::Config;
use crate::accounts::{AccountError, Accounts, Principal, Removed};
use crate::capacity::{Capacity, Caps};
use crate::devices::{Devices, LinkError, Redeemed};
use crate::documents::Documents;
use crate::metrics::Metrics;
use crate::shares::Shares;
use crate::state::State;
use crate::throttle::Throttle;

/// The running server.
pub(crate) struct Server {
    state: State,
    documents: Arc<Documents>,
    id: String,
    config: Config,
    metrics: Arc<Metrics>,
    /// Open websockets: their token id, and how to close them.
    live: Mutex<HashMap<PeerKey, Live>>,
    /// What connections are told when the server stops.
    stop_reason: Mutex<&'static str>,
    /// Failed credential attempts per source address.
    throttle: Throttle,
    /// Who holds how many connections.
    capacity: Arc<Capacity>,
}

/// An open websocket, as revocation sees it.
struct Live {
    token_id: String,
    close: Arc<Notify>,
}

impl Server {
    /// A server over `store`, its documents kept in `documents` (the same database, or a
    /// wrapper of it that tests slow down or break).
    pub(crate) fn new(
        store: &Store,
        documents: Arc<dyn DocStore>,
        config: Config,
    ) -> Result<Self, AccountError> {
        let state = State::open(store, config.clock.clone())?;
        let id = format!("nudge-server-{}", std::process::id());
        let metrics = Arc::new(Metrics::default());
        let caps = Caps::for_server(
            config.connections_allowed(),
            config.max_connections_per_address,
        );
        let mut documents = Documents::new(
            documents,
            state.accounts().clone(),
            metrics.clone(),
            config.storage_timeout,
            config.unload_after,
        );
        if store.shared().is_some() {
            documents = documents.sharing();
        }
        Ok(Self {
            documents: Arc::new(documents),
            state,
            id,
            config,
            metrics,
            live: Mutex::default(),
            stop_reason: Mutex::new("server shutting down"),
            throttle: Throttle::default(),
            capacity: Capacity::new(caps),
        })
    }

    /// Milliseconds since the epoch, by the server's clock (`Config::clock`).
    pub(crate) fn now_ms(&self) -> i64 {
        self.config.clock.now_ms()
    }

    /// The peer id this server answers with.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub(crate) fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    pub(crate) fn capacity(&self) -> &Arc<Capacity> {
        &self.capacity
    }

    /// The loaded documents.
    pub(crate) fn documents(&self) -> &Arc<Documents> {
        &self.documents
    }

    /// The store (reads and the health check; changes go through [`Server::records`]).
    pub(crate) fn store(&self) -> &Store {
        self.state.store()
    }

    /// Accounts and tokens, for lookups that need no write (authentication, ownership).
    pub(crate) fn accounts(&self) -> &Accounts {
        self.state.accounts()
    }

    /// Device links and names, for lookups that need no write.
    pub(crate) fn devices(&self) -> &Devices {
        self.state.devices()
    }

    /// Share links, for lookups that need no write.
    pub(crate) fn shares(&self) -> &Shares {
        self.state.shares()
    }

    /// What connections are told as the server stops.
    pub(crate) fn stop_reason(&self) -> &'static str {
        *self.stop_reason.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells every connection `reason` when the server stops.
    pub(crate) fn stop_because(&self, reason: &'static str) {
        *self.stop_reason.lock().unwrap_or_else(|p| p.into_inner()) = reason;
    }

    /// Runs `work` on the state off the runtime, then flushes: what it returns is durable.
    pub(crate) async fn records<T: Send + 'static>(
        &self,
        work: impl FnOnce(&State) -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, AccountError> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let done = work(&state)?;
            state.flush()?;
            Ok(done)
        })
        .await
        .map_err(|e| AccountError::Task(e.to_string()))?
    }

    /// After tokens were revoked and documents removed in the store: closes the tokens'
    /// open websockets and forgets the documents' loaded copies, here and on the other
    /// nodes of a shared database (`State::withdrawn`). Returns how many sockets closed
    /// here.
    async fn withdraw(&self, tokens: &[String], documents: &[DocumentId]) -> usize {
        let closed = self.withdraw_here(tokens, documents).await;
        let (state, tokens, documents) = (self.state.clone(), tokens.to_vec(), documents.to_vec());
        let _ = tokio::task::spawn_blocking(move || state.withdrawn(tokens, documents)).await;
        closed
    }

    /// [`Self::withdraw`] on this node only.
    async fn withdraw_here(&self, tokens: &[String], documents: &[DocumentId]) -> usize {
        let closed = {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            let mut closed = 0;
            for connection in live.values().filter(|l| tokens.contains(&l.token_id)) {
                connection.close.notify_one();
                closed += 1;
            }
            closed
        };
        for doc in documents {
            self.documents.forget(doc).await;
        }
        closed
    }

    /// Revokes `token` and everything it minted; returns the revoked ids (none: no such
    /// token) and how many sockets closed.
    pub(crate) async fn revoke(&self, token: &str) -> Result<(Vec<String>, usize), AccountError> {
        let root = token.to_owned();
        let revoked = self.records(move |state| state.revoke(&root)).await?;
        let closed = self.withdraw(&revoked, &[]).await;
        if revoked.len() > 1 {
            tracing::info!(token = %token, minted = ?&revoked[1..], "revoked what the token minted too");
        }
        Ok((revoked, closed))
    }

    /// A new account token for the account `name`, the old one revoked and its sockets
    /// closed. `None`: no such account.
    pub(crate) async fn reissue_account_token(
        &self,
        name: &str,
    ) -> Result<Option<(Token, usize)>, AccountError> {
        let name = name.to_owned();
        let reissued = self
            .records(move |state| state.reissue_account_token(&name))
            .await?;
        Ok(match reissued {
            Some((token, old)) => Some((token, self.withdraw(&old, &[]).await)),
            None => None,
        })
    }

    /// Removes the account `name` with its tokens and documents, closing its sockets.
    /// `None`: no such account.
    pub(crate) async fn remove_account(
        &self,
        name: &str,
    ) -> Result<Option<(Removed, usize)>, AccountError> {
        let name = name.to_owned();
        let removed = self
            .records(move |state| state.remove_account(&name))
            .await?;
        Ok(match removed {
            Some(removed) => {
                let closed = self.withdraw(&removed.tokens, &removed.documents).await;
                Some((removed, closed))
            }
            None => None,
        })
    }

    /// Redeems a link code for a new device token; a device key that redeemed before has
    /// its old token revoked and its sockets closed.
    pub(crate) async fn redeem_link(
        &self,
        code: String,
        device_key: String,
        name: String,
    ) -> Result<Result<Redeemed, LinkError>, AccountError> {
        let redeemed = self
            .records(move |state| state.devices().redeem(&code, &device_key, &name))
            .await?;
        if let Ok(Redeemed {
            replaced: Some(old),
            ..
        }) = &redeemed
        {
            self.withdraw(std::slice::from_ref(old), &[]).await;
        }
        Ok(redeemed)
    }

    /// After a share moved to a new view (in the store, by the caller): closes the share's
    /// sockets, so that they come back to the new view, and forgets the old view.
    pub(crate) async fn moved_share(&self, share: &str, old: Option<DocumentId>) -> usize {
        let old: Vec<DocumentId> = old.into_iter().collect();
        self.withdraw(&[share.to_owned()], &old).await
    }

    /// What another node on the shared database announced (`nodes.rs`).
    pub(crate) async fn heard(&self, signal: Signal) {
        match signal {
            Signal::Changed { doc, position } => self.documents.announced(doc, position).await,
            Signal::Withdrawn { tokens, documents } => {
                let closed = self.withdraw_here(&tokens, &documents).await;
                tracing::debug!(closed, "withdrawn by another node");
            }
            Signal::Resumed => {
                self.documents.resume().await;
                // Revocations announced meanwhile were missed too: ask the store.
                let live: Vec<String> = {
                    let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
                    live.values().map(|l| l.token_id.clone()).collect()
                };
                let accounts = self.accounts().clone();
                let revoked = tokio::task::spawn_blocking(move || {
                    live.into_iter()
                        .filter(|id| matches!(accounts.authenticate_id(id), Ok(false)))
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_default();
                if !revoked.is_empty() {
                    let closed = self.withdraw_here(&revoked, &[]).await;
                    tracing::info!(
                        closed,
                        "closed sockets revoked while the other nodes were not heard"
                    );
                }
            }
        }
    }

    /// Registers an open websocket of `principal`; returns what wakes it to close.
    pub(crate) fn connected(&self, conn: PeerKey, principal: &Principal) -> Arc<Notify> {
        let close = Arc::new(Notify::new());
        self.live.lock().unwrap_or_else(|p| p.into_inner()).insert(
            conn,
            Live {
                token_id: principal.token_id.clone(),
                close: close.clone(),
            },
        );
        close
    }

    /// Forgets a websocket that closed.
    pub(crate) fn disconnected(&self, conn: PeerKey) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&conn);
    }

    /// Whether `principal` may open `doc` for `asking` (`nudge_protocol::admission`).
    pub(crate) fn admit(
        &self,
        principal: &Principal,
        doc: &DocumentId,
        asking: Asking,
    ) -> Result<Admission, String> {
        let failed = |e: AccountError| format!("storage failed: {e}");
        let owner = self.accounts().owner(doc).map_err(failed)?;
        let ownership = match owner {
            None => Ownership::Nobody,
            Some(owner) if owner == principal.account => Ownership::Own,
            Some(_) => Ownership::Other,
        };
        let decide = |ownership| {
            admission::admit(
                principal.kind,
                principal.share == Some(*doc),
                ownership,
                asking,
            )
        };
        let decision = decide(ownership);
        // Opening a document nobody owns (to deliver its first changes) makes it the
        // account's, here and nowhere else; an account that lost the race to another
        // is asked about as the other's.
        if ownership == Ownership::Nobody && matches!(decision, Admission::Open(_)) {
            let ours = self
                .accounts()
                .claim(doc, &principal.account)
                .map_err(failed)?;
            if !ours {
                return Ok(decide(Ownership::Other));
            }
        }
        Ok(decision)
    }

    /// Whether `principal` may deliver `incoming` bytes of changes at all (read-only
    /// tokens, the account's quota); the refusal says why and what to do.
    pub(crate) fn may_store(&self, principal: &Principal, incoming: u64) -> Result<(), String> {
        let used = || {
            self.accounts()
                .used(&principal.account)
                .map_err(|e| format!("storage failed: {e}"))
        };
        admission::may_store(principal.kind, used, incoming, self.config.quota_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_store::{Location, OpenOptions};

    const DELIVERY: Asking = Asking {
        is_request: false,
        carries_changes: true,
    };
    const SYNC: Asking = Asking {
        is_request: false,
        carries_changes: false,
    };

    #[tokio::test]
    async fn the_first_account_to_deliver_to_a_new_id_owns_it_and_no_other_gets_in() {
        let store = Store::open(&Location::Memory, &OpenOptions::default()).unwrap();
        let server = Server::new(&store, store.docs(), Config::default()).unwrap();
        let principal = |name: &str| {
            let (_, token) = server.accounts().add(name).unwrap();
            server
                .accounts()
                .authenticate(&token.to_string())
                .unwrap()
                .unwrap()
        };
        let (ana, bo) = (principal("ana"), principal("bo"));
        let doc = DocumentId::random();
        // Asking without changes claims nothing.
        assert_eq!(server.admit(&bo, &doc, SYNC), Ok(Admission::AnswerAsEmpty));
        assert_eq!(server.accounts().owner(&doc).unwrap(), None);
        assert_eq!(
            server.admit(&ana, &doc, DELIVERY),
            Ok(Admission::Open(nudge_protocol::Access::ReadWrite))
        );
        assert_eq!(
            server.accounts().owner(&doc).unwrap(),
            Some(ana.account.clone())
        );
        // Bo, a moment later, finds it as another account's.
        assert_eq!(
            server.admit(&bo, &doc, DELIVERY),
            Ok(Admission::Unavailable)
        );
        assert_eq!(server.admit(&bo, &doc, SYNC), Ok(Admission::AnswerAsEmpty));
        assert_eq!(
            server.admit(&ana, &doc, SYNC),
            Ok(Admission::Open(nudge_protocol::Access::ReadWrite))
        );
    }

    #[tokio::test]
    async fn a_share_may_store_nothing_and_a_device_only_within_its_quota() {
        let store = Store::open(&Location::Memory, &OpenOptions::default()).unwrap();
        let config = Config {
            quota_bytes: Some(100),
            ..Config::default()
        };
        let server = Server::new(&store, store.docs(), config).unwrap();
        let (_, token) = server.accounts().add("ana").unwrap();
        let mut ana = server
            .accounts()
            .authenticate(&token.to_string())
            .unwrap()
            .unwrap();
        assert_eq!(server.may_store(&ana, 100), Ok(()));
        assert!(server.may_store(&ana, 101).is_err());
        ana.kind = nudge_protocol::TokenKind::Share;
        assert!(server.may_store(&ana, 1).unwrap_err().contains("read-only"));
    }
}
