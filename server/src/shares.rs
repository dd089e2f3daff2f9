//! Shares: a share token reads exactly one share view document and writes nothing.
//!
//! Tree `shares`: share token id -> JSON record (account, view document, scope, name,
//! created, expiry). The token itself is stored like every token: only its SHA-256. The
//! HTTP routes are `share_routes.rs`.

use std::sync::Arc;

use nudge_protocol::{Token, TokenKind};
use nudge_store::DocumentId;
use serde::{Deserialize, Serialize};

use crate::accounts::{AccountError, Accounts};
use crate::clock::Clock;
use crate::table::{RecordStore, Table};

/// What the server knows of a share.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShareRecord {
    /// The owning account.
    pub account: String,
    /// The one document the share token may read.
    pub view_doc: String,
    /// `counts`, `titles` or `full` (as the owner said).
    pub scope: String,
    /// The buddy's name.
    pub name: String,
    /// When it was made (ms).
    pub created_ms: i64,
    /// When it stops working (ms), if ever.
    pub expires_ms: Option<i64>,
    /// The token that made it: revoking that one revokes this share too.
    #[serde(default)]
    pub minted_by: Option<String>,
}

impl ShareRecord {
    /// Whether it still works at `now`.
    pub fn live(&self, now: i64) -> bool {
        self.expires_ms.is_none_or(|e| e > now)
    }

    /// The view document's id.
    pub fn doc(&self) -> Option<DocumentId> {
        self.view_doc.parse().ok()
    }
}

/// The shares of a server.
#[derive(Clone)]
pub struct Shares {
    tree: Table,
    accounts: Accounts,
    clock: Arc<dyn Clock>,
}

/// Why a share token does not open its view.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// It works: the record.
    Live(ShareRecord),
    /// It expired.
    Expired,
    /// Unknown or revoked.
    Unknown,
    /// Storage cannot say right now.
    Unavailable,
}

impl Shares {
    /// The shares kept in `store`; expiry judged by `clock`.
    pub fn open(
        store: &RecordStore,
        accounts: Accounts,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AccountError> {
        Ok(Self {
            tree: Table::new(store, "shares"),
            accounts,
            clock,
        })
    }

    /// The record of a share, by its token id.
    pub fn get(&self, id: &str) -> Result<Option<ShareRecord>, AccountError> {
        Ok(self
            .tree
            .get(id.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// What a presented share token opens.
    pub fn lookup(&self, presented: &str) -> Lookup {
        let principal = match self.accounts.authenticate(presented) {
            Ok(Some(principal)) => principal,
            Ok(None) => return Lookup::Unknown,
            Err(_) => return Lookup::Unavailable,
        };
        if principal.kind != TokenKind::Share {
            return Lookup::Unknown;
        }
        match self.get(&principal.token_id) {
            Ok(Some(record)) if record.live(self.clock.now_ms()) => Lookup::Live(record),
            Ok(Some(_)) => Lookup::Expired,
            Ok(None) => Lookup::Unknown,
            Err(_) => Lookup::Unavailable,
        }
    }

    /// Makes a share of `record.view_doc`; returns its token. The caller flushes.
    pub fn create(&self, record: &ShareRecord) -> Result<Token, AccountError> {
        let token = self.accounts.add_token(&record.account, TokenKind::Share)?;
        self.tree.insert(
            token.id().as_bytes(),
            serde_json::to_vec(record).unwrap_or_default(),
        )?;
        Ok(token)
    }

    /// Every share of `account`, with ids.
    pub fn list(&self, account: &str) -> Result<Vec<(String, ShareRecord)>, AccountError> {
        let mut out = Vec::new();
        for (id, v) in self.tree.all()? {
            if let Ok(record) = serde_json::from_slice::<ShareRecord>(&v)
                && record.account == account
            {
                out.push((String::from_utf8_lossy(&id).into_owned(), record));
            }
        }
        Ok(out)
    }

    /// Replaces the record of a share.
    pub fn put(&self, id: &str, record: &ShareRecord) -> Result<(), AccountError> {
        self.tree.insert(
            id.as_bytes(),
            serde_json::to_vec(record).unwrap_or_default(),
        )?;
        Ok(())
    }

    /// Forgets the record of a share whose token was revoked (nothing when `id` is not a
    /// share).
    pub fn forget(&self, id: &str) -> Result<(), AccountError> {
        self.tree.remove(id.as_bytes())?;
        Ok(())
    }
}
