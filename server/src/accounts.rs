//! Accounts, their tokens and the documents they own, in the store's records.
//!
//! Tables: `accounts` (account id -> name), `tokens` (token id -> kind ‖ account id ‖
//! SHA-256 of the token), `owners` (document id -> account id). Tokens themselves are never
//! stored; a presented token is hashed and compared in constant time.

use nudge_protocol::{Token, TokenKind};
use nudge_store::{DocStore, DocumentId};

use crate::table::{RETIRED, RecordStore, Table};
use crate::usage::Usage;

/// Who a connection authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The account (8 random bytes, hex).
    pub account: String,
    /// The token's kind.
    pub kind: TokenKind,
    /// The token's public id.
    pub token_id: String,
    /// For a share token: the one document it may read.
    pub share: Option<DocumentId>,
    /// For a share token: when it stops working (ms since the epoch), if ever; its open
    /// connections close then.
    pub expires_ms: Option<i64>,
}

/// What can go wrong with accounts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] nudge_store::Error),
    /// No randomness.
    #[error("the operating system gave no randomness: {0}")]
    Random(String),
    /// A blocking storage task did not finish.
    #[error("a storage task failed: {0}")]
    Task(String),
    /// An account with that name exists.
    #[error("an account called {0:?} exists already")]
    Exists(String),
    /// The name is not acceptable.
    #[error("account names are 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName,
}

fn kind_byte(kind: TokenKind) -> u8 {
    match kind {
        TokenKind::Account => b'a',
        TokenKind::Device => b'd',
        TokenKind::Share => b's',
    }
}

fn kind_of(byte: u8) -> Option<TokenKind> {
    match byte {
        b'a' => Some(TokenKind::Account),
        b'd' => Some(TokenKind::Device),
        b's' => Some(TokenKind::Share),
        _ => None,
    }
}

/// The accounts of a server.
#[derive(Clone)]
pub struct Accounts {
    accounts: Table,
    tokens: Table,
    owners: Table,
    journals: Table,
    /// The bytes each account's documents take (`usage.rs`).
    usage: Usage,
}

impl Accounts {
    /// The accounts kept in `store`.
    pub fn open(records: &RecordStore, documents: &dyn DocStore) -> Result<Self, AccountError> {
        let owners = Table::new(records, "owners");
        Ok(Self {
            accounts: Table::new(records, "accounts"),
            tokens: Table::new(records, "tokens"),
            usage: Usage::open(records, documents, &owners)?,
            owners,
            journals: Table::new(records, "journals"),
        })
    }

    /// Creates an account and returns its first token (the only time it is shown).
    /// The caller flushes the store.
    pub fn add(&self, name: &str) -> Result<(String, Token), AccountError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(AccountError::BadName);
        }
        if self.list()?.iter().any(|(_, n)| n == name) {
            return Err(AccountError::Exists(name.to_owned()));
        }
        let token =
            Token::generate(TokenKind::Account).map_err(|e| AccountError::Random(e.to_string()))?;
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| AccountError::Random(e.to_string()))?;
        let account: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        self.accounts.insert(account.as_bytes(), name.as_bytes())?;
        self.tokens
            .insert(token.id().as_bytes(), token_record(&token, &account))?;
        Ok((account, token))
    }

    /// Issues another token for an existing account. The caller flushes.
    pub fn add_token(&self, account: &str, kind: TokenKind) -> Result<Token, AccountError> {
        let token = Token::generate(kind).map_err(|e| AccountError::Random(e.to_string()))?;
        self.tokens
            .insert(token.id().as_bytes(), token_record(&token, account))?;
        Ok(token)
    }

    /// Every account as (id, name).
    pub fn list(&self) -> Result<Vec<(String, String)>, AccountError> {
        let mut out = Vec::new();
        for (k, v) in self.accounts.all()? {
            out.push((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        Ok(out)
    }

    /// Who a presented token belongs to, if it is valid.
    /// `Ok(None)`: not a token, or not one that works; `Err`: storage could not say.
    pub fn authenticate(&self, presented: &str) -> Result<Option<Principal>, AccountError> {
        let Ok(token) = presented.parse::<Token>() else {
            return Ok(None);
        };
        let Some(record) = self.tokens.get(token.id().as_bytes())? else {
            return Ok(None);
        };
        Ok(Self::principal(&token, &record))
    }

    /// The principal a stored token record grants to `token`, if it is that token's.
    fn principal(token: &Token, record: &[u8]) -> Option<Principal> {
        let (kind, rest) = record.split_first()?;
        let kind = kind_of(*kind)?;
        if kind != token.kind() || rest.len() != 16 + 32 {
            return None;
        }
        let (account, hash) = rest.split_at(16);
        let hash: [u8; 32] = hash.try_into().ok()?;
        token.matches(&hash).then(|| Principal {
            account: String::from_utf8_lossy(account).into_owned(),
            kind,
            token_id: token.id().to_owned(),
            share: None,
            expires_ms: None,
        })
    }

    /// Whether a token id is still valid (not revoked).
    pub fn authenticate_id(&self, token_id: &str) -> Result<bool, AccountError> {
        Ok(self.tokens.contains_key(token_id.as_bytes())?)
    }

    /// The account that owns a document, if any.
    pub fn owner(&self, doc: &DocumentId) -> Result<Option<String>, AccountError> {
        Ok(self
            .owners
            .get(doc.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Retires a document (a share's view, replaced by a rebuilt one): it belongs to no
    /// account from now on, so nobody can open it or store it again. The caller flushes.
    pub fn retire(&self, doc: &DocumentId) -> Result<(), AccountError> {
        if let Some(owner) = self.owners.insert(doc.as_bytes(), RETIRED)?
            && owner != RETIRED
        {
            self.usage.dropped(doc, &String::from_utf8_lossy(&owner))?;
        }
        Ok(())
    }

    /// The account owning `doc` (if one does) stored `bytes` more of it. The caller flushes.
    pub fn grew(&self, doc: &DocumentId, bytes: u64) -> Result<(), AccountError> {
        match self.owner(doc)? {
            Some(owner) if owner.as_bytes() != RETIRED => {
                Ok(self.usage.grew(doc, &owner, bytes)?)
            }
            _ => Ok(()),
        }
    }

    /// `doc` now takes `size` bytes in the store (a snapshot replaced its log). The caller
    /// flushes.
    pub fn resized(&self, doc: &DocumentId, size: u64) -> Result<(), AccountError> {
        match self.owner(doc)? {
            Some(owner) if owner.as_bytes() != RETIRED => {
                Ok(self.usage.resized(doc, &owner, size)?)
            }
            _ => Ok(()),
        }
    }

    /// The bytes the documents of `account` take in the store.
    pub fn used(&self, account: &str) -> Result<u64, AccountError> {
        Ok(self.usage.used(account)?)
    }

    /// Records that `account` owns `doc`, which nobody owned (its first delivery of
    /// changes); returns whether `account` owns it now. A document owned already stays
    /// its owner's, so of two accounts claiming one id at once only one gets it. The
    /// caller flushes (the flush that stores the changes does).
    pub fn claim(&self, doc: &DocumentId, account: &str) -> Result<bool, AccountError> {
        if self
            .owners
            .swap(doc.as_bytes(), None, Some(account.as_bytes()))?
        {
            return Ok(true);
        }
        Ok(self.owner(doc)?.as_deref() == Some(account))
    }
}

/// A token as an administrator sees it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its public id.
    pub id: String,
    /// Its kind.
    pub kind: TokenKind,
    /// The account it belongs to.
    pub account: String,
}

/// What removing an account took away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// The account's id.
    pub account: String,
    /// Its tokens, now revoked.
    pub tokens: Vec<String>,
    /// The documents it owned, now unowned: the caller deletes them.
    pub documents: Vec<DocumentId>,
}

impl Accounts {
    /// The id of the account called `name`.
    pub fn find(&self, name: &str) -> Result<Option<String>, AccountError> {
        Ok(self
            .list()?
            .into_iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| id))
    }

    /// Every token.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, AccountError> {
        let mut out = Vec::new();
        for (id, record) in self.tokens.all()? {
            let Some((kind, rest)) = record.split_first() else {
                continue;
            };
            let (Some(kind), Some(account)) = (kind_of(*kind), rest.get(..16)) else {
                continue;
            };
            out.push(TokenInfo {
                id: String::from_utf8_lossy(&id).into_owned(),
                kind,
                account: String::from_utf8_lossy(account).into_owned(),
            });
        }
        Ok(out)
    }

    /// Revokes a token: it stops authenticating at once. Returns whether it existed.
    /// The caller flushes, and closes the token's open connections.
    pub fn revoke(&self, token_id: &str) -> Result<bool, AccountError> {
        Ok(self.tokens.remove(token_id.as_bytes())?.is_some())
    }

    /// Removes an account and revokes its tokens; its documents lose their owner and are
    /// listed for the caller to delete. The caller flushes.
    pub fn remove(&self, name: &str) -> Result<Option<Removed>, AccountError> {
        let Some(account) = self.find(name)? else {
            return Ok(None);
        };
        let mut removed = Removed {
            account: account.clone(),
            ..Removed::default()
        };
        for token in self.tokens()? {
            if token.account == account {
                self.tokens.remove(token.id.as_bytes())?;
                removed.tokens.push(token.id);
            }
        }
        for (doc, owner) in self.owners.all()? {
            if owner == account.as_bytes()
                && let Ok(bytes) = <[u8; 16]>::try_from(doc.as_ref())
            {
                removed.documents.push(DocumentId::from_bytes(bytes));
            }
        }
        for doc in &removed.documents {
            self.owners.remove(doc.as_bytes())?;
            self.usage.dropped(doc, &account)?;
        }
        self.usage.forget(&account)?;
        self.journals.remove(account.as_bytes())?;
        self.accounts.remove(account.as_bytes())?;
        Ok(Some(removed))
    }
}

/// What became of a request to register an account's journal.
#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    /// This document is the account's journal (now, or already).
    Journal(DocumentId),
    /// The account does not own that document: its changes must reach the server first.
    NotOwned,
}

impl Accounts {
    /// The account's journal, if a device has registered one.
    pub fn journal(&self, account: &str) -> Result<Option<DocumentId>, AccountError> {
        Ok(self
            .journals
            .get(account.as_bytes())?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()))
    }

    /// Makes `doc` the account's journal unless it has one; the first registration wins
    /// and every later one is told which document that is. The caller flushes.
    pub fn register_journal(
        &self,
        account: &str,
        doc: &DocumentId,
    ) -> Result<Registered, AccountError> {
        if self.owner(doc)?.as_deref() != Some(account) {
            return Ok(Registered::NotOwned);
        }
        let proposed = doc.to_string();
        if self
            .journals
            .swap(account.as_bytes(), None, Some(proposed.as_bytes()))?
        {
            return Ok(Registered::Journal(*doc));
        }
        // Another registration won; a journal is never unregistered, so it is there.
        Ok(Registered::Journal(self.journal(account)?.unwrap_or(*doc)))
    }
}

fn token_record(token: &Token, account: &str) -> Vec<u8> {
    let mut record = vec![kind_byte(token.kind())];
    record.extend_from_slice(account.as_bytes());
    record.extend_from_slice(&token.hash());
    record
}
