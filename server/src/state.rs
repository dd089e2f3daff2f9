//! Everything the server keeps, over one [`Store`]: the documents and the record tables
//! (accounts, tokens, devices, link codes, shares, usage), and the operations that change
//! several of them at once. Synchronous and free of sockets: the running server calls it
//! off the runtime ([`crate::server::Server::records`]), which then closes sockets and
//! forgets documents; the admin commands call it directly when no server holds the store.
//! Either way the same rule runs, written once. The caller flushes.

use std::sync::Arc;

use nudge_store::{DocumentId, Store};

use crate::clock::Clock;

use crate::accounts::{AccountError, Accounts, Removed};
use crate::devices::Devices;
use crate::shares::Shares;

/// The server's state in one store. Cheap to clone: every clone is the same store.
#[derive(Clone)]
pub struct State {
    store: Store,
    accounts: Accounts,
    devices: Devices,
    shares: Shares,
}

impl State {
    /// The state kept in `store`, its times read from `clock` (an older store's usage
    /// figures are counted once here).
    pub fn open(store: &Store, clock: Arc<dyn Clock>) -> Result<Self, AccountError> {
        let records = store.records();
        let accounts = Accounts::open(&records, &**store)?;
        Ok(Self {
            devices: Devices::open(&records, accounts.clone(), clock.clone())?,
            shares: Shares::open(&records, accounts.clone(), clock)?,
            accounts,
            store: store.clone(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Accounts, tokens and who owns which document.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Device links and device names.
    pub(crate) fn devices(&self) -> &Devices {
        &self.devices
    }

    /// Share links.
    pub(crate) fn shares(&self) -> &Shares {
        &self.shares
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), AccountError> {
        Ok(self.store.flush()?)
    }

    /// Tells the other nodes on a shared database that `tokens` were revoked and
    /// `documents` removed (once stored): they close the tokens' sockets and forget the
    /// documents. A node that misses it finds the revoked tokens when it hears again
    /// (`Server::heard`); nothing to do on a store one process has to itself.
    pub fn withdrawn(&self, tokens: Vec<String>, documents: Vec<DocumentId>) {
        if tokens.is_empty() && documents.is_empty() {
            return;
        }
        let signal = nudge_store::Signal::Withdrawn { tokens, documents };
        if let Err(e) = self.store.announce(&signal) {
            tracing::warn!("cannot tell the other nodes what was revoked: {e}");
        }
    }

    /// Removes the account called `name`: its tokens (with their device and share
    /// records), its documents and its figures. `None`: no such account.
    pub fn remove_account(&self, name: &str) -> Result<Option<Removed>, AccountError> {
        let Some(removed) = self.accounts.remove(name)? else {
            return Ok(None);
        };
        for token in &removed.tokens {
            self.devices.forget(token)?;
            self.shares.forget(token)?;
        }
        for doc in &removed.documents {
            self.store.remove(doc)?;
        }
        Ok(Some(removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shares::ShareRecord;
    use nudge_store::{DocumentId, Location, NewChange, OpenOptions};

    #[test]
    fn removing_an_account_takes_its_tokens_records_and_documents() {
        let store = Store::open(&Location::Memory, &OpenOptions::default()).unwrap();
        let state = State::open(&store, crate::clock::system()).unwrap();
        let (account, token) = state.accounts().add("ana").unwrap();
        let (_, other) = state.accounts().add("bo").unwrap();
        let view = DocumentId::random();
        store
            .append(
                &view,
                &[NewChange {
                    hash: [1; 32],
                    bytes: vec![1, 2, 3],
                }],
            )
            .unwrap();
        state.accounts().claim(&view, &account).unwrap();
        let share = state
            .shares()
            .create(&ShareRecord {
                account: account.clone(),
                view_doc: view.to_string(),
                scope: "counts".into(),
                name: "Bo".into(),
                created_ms: 0,
                expires_ms: None,
                minted_by: Some(token.id().to_owned()),
            })
            .unwrap();

        let removed = state.remove_account("ana").unwrap().unwrap();
        assert_eq!(removed.documents, [view]);
        assert!(removed.tokens.contains(&share.id().to_owned()));
        assert!(state.shares().get(share.id()).unwrap().is_none());
        assert!(store.load(&view).unwrap().is_none());
        assert!(
            state
                .accounts()
                .authenticate(&token.to_string())
                .unwrap()
                .is_none()
        );
        // Nobody else's.
        assert!(
            state
                .accounts()
                .authenticate(&other.to_string())
                .unwrap()
                .is_some()
        );
        assert!(state.remove_account("ana").unwrap().is_none());
    }
}

/// Several servers on one PostgreSQL database: what must hold across them.
#[cfg(test)]
mod on_postgres {
    use super::*;
    use crate::devices::LinkError;
    use nudge_store::{Location, OpenOptions};

    /// A node: its own store handle (its own pool) on the shared database.
    fn node(url: &str) -> State {
        let store = Store::open(&Location::Postgres(url.to_owned()), &OpenOptions::default())
            .expect("the database opens");
        State::open(&store, crate::clock::system()).unwrap()
    }

    #[test]
    fn a_link_code_is_redeemed_once_whichever_nodes_race_for_it() {
        let Some(cluster) = nudge_testkit::postgres::cluster().unwrap() else {
            return;
        };
        let url = cluster.database().unwrap();
        let first = node(&url);
        let (account, token) = first.accounts().add("ana").unwrap();
        let (code, _) = first
            .devices()
            .create_link(&account, token.id(), 60_000)
            .unwrap();
        // Four nodes, each a device of its own, all at once.
        let outcomes: Vec<_> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..4)
                .map(|n| {
                    let (url, code) = (url.clone(), code.clone());
                    scope.spawn(move || {
                        node(&url)
                            .devices()
                            .redeem(&code, &format!("device-{n}"), "phone")
                            .unwrap()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let won: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .filter_map(|o| o.as_ref().err())
                .all(|e| matches!(e, LinkError::Used)),
            "{outcomes:?}"
        );
        // The winner's token works on every node; no loser's does.
        let winner = &won[0].token;
        let other = node(&url);
        assert!(
            other
                .accounts()
                .authenticate(&winner.to_string())
                .unwrap()
                .is_some()
        );
        let devices = other
            .accounts()
            .tokens()
            .unwrap()
            .into_iter()
            .filter(|t| t.kind == nudge_protocol::TokenKind::Device)
            .count();
        assert_eq!(devices, 1);
    }
}
