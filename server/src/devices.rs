//! Devices: one-time link codes that a device of an account asks for, and that another
//! device redeems for a token of its own (`nudge device link`, `nudge join`).
//!
//! Trees: `links` (SHA-256 of the code -> JSON record: account, expiry, who redeemed it),
//! `token_info` (token id -> JSON: device name, created, last seen).
//!
//! A code is 128 random bits, shown once, stored only hashed; it expires (15 minutes by
//! default) and works once. Once: a second redemption is refused, except by the same
//! joining device (it sends a random key it keeps), which gets a fresh token in place of
//! the first, so that `nudge join` killed half-way can simply be run again.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::accounts::{AccountError, Accounts};
use crate::clock::Clock;
use crate::table::{RecordStore, Table};
use nudge_protocol::{Token, TokenKind};

/// What is known of a token beyond its hash.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenInfo {
    /// The device's name.
    pub name: String,
    /// When it was issued (ms since the epoch).
    pub created_ms: i64,
    /// When it last connected (ms since the epoch), if ever.
    pub last_seen_ms: Option<i64>,
    /// The token whose link code made it, if a device made it: revoking that one revokes
    /// this one too.
    #[serde(default)]
    pub minted_by: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct LinkRecord {
    account: String,
    expires_ms: i64,
    /// The joining device's key and the token it got.
    redeemed: Option<(String, String)>,
    /// The token that asked for the code.
    #[serde(default)]
    minted_by: Option<String>,
}

/// Why a code cannot be redeemed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// No such code.
    #[error("that link is not known to this server (check it was copied whole)")]
    Unknown,
    /// Too late.
    #[error("that link has expired; run `nudge device link` again on a linked device")]
    Expired,
    /// Someone redeemed it.
    #[error("that link was used already; run `nudge device link` again on a linked device")]
    Used,
}

fn hash(code: &str) -> [u8; 32] {
    Sha256::digest(code.trim().as_bytes()).into()
}

/// Links and device records, beside the accounts.
#[derive(Clone)]
pub struct Devices {
    links: Table,
    info: Table,
    accounts: Accounts,
    clock: Arc<dyn Clock>,
}

impl Devices {
    /// The device records kept in `store`; times read from `clock`.
    pub fn open(
        store: &RecordStore,
        accounts: Accounts,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AccountError> {
        Ok(Self {
            links: Table::new(store, "links"),
            info: Table::new(store, "token_info"),
            accounts,
            clock,
        })
    }

    /// A new link code for `account`, asked for by the token `minted_by`, valid for
    /// `ttl_ms`; returns it and its expiry. The caller flushes.
    pub fn create_link(
        &self,
        account: &str,
        minted_by: &str,
        ttl_ms: i64,
    ) -> Result<(String, i64), AccountError> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| AccountError::Random(e.to_string()))?;
        let code: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let expires_ms = self.clock.now_ms() + ttl_ms;
        let record = LinkRecord {
            account: account.to_owned(),
            expires_ms,
            redeemed: None,
            minted_by: Some(minted_by.to_owned()),
        };
        self.links
            .insert(hash(&code), serde_json::to_vec(&record).unwrap_or_default())?;
        Ok((code, expires_ms))
    }

    /// Redeems a code for a new device token named `name`. `device_key` identifies the
    /// joining device: the same device redeeming again gets a fresh token in place of the
    /// first. The caller flushes, and closes the sockets of `Redeemed::replaced`.
    pub fn redeem(
        &self,
        code: &str,
        device_key: &str,
        name: &str,
    ) -> Result<Result<Redeemed, LinkError>, AccountError> {
        let key = hash(code);
        loop {
            let Some(current) = self.links.get(key)? else {
                return Ok(Err(LinkError::Unknown));
            };
            let Ok(mut record) = serde_json::from_slice::<LinkRecord>(&current) else {
                return Ok(Err(LinkError::Unknown));
            };
            if self.clock.now_ms() > record.expires_ms {
                return Ok(Err(LinkError::Expired));
            }
            let replaced = match &record.redeemed {
                Some((by, _)) if by != device_key => return Ok(Err(LinkError::Used)),
                Some((_, token_id)) => Some(token_id.clone()),
                None => None,
            };
            let token = self
                .accounts
                .add_token(&record.account, TokenKind::Device)?;
            record.redeemed = Some((device_key.to_owned(), token.id().to_owned()));
            let swapped = self.links.swap(
                key,
                Some(&current),
                Some(&serde_json::to_vec(&record).unwrap_or_default()),
            )?;
            if !swapped {
                // Someone else redeemed it meanwhile: undo ours and look again.
                self.accounts.revoke(token.id())?;
                continue;
            }
            if let Some(old) = &replaced {
                self.accounts.revoke(old)?;
                self.info.remove(old.as_bytes())?;
            }
            let info = TokenInfo {
                name: name.to_owned(),
                created_ms: self.clock.now_ms(),
                last_seen_ms: None,
                minted_by: record.minted_by.clone(),
            };
            self.info.insert(
                token.id().as_bytes(),
                serde_json::to_vec(&info).unwrap_or_default(),
            )?;
            return Ok(Ok(Redeemed {
                account: record.account,
                token,
                replaced,
            }));
        }
    }

    /// What is recorded of a token.
    pub fn info(&self, token_id: &str) -> Result<Option<TokenInfo>, AccountError> {
        Ok(self
            .info
            .get(token_id.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Records that a token connected now (not flushed: a lost "last seen" costs nothing).
    pub fn touch(&self, token_id: &str) -> Result<(), AccountError> {
        let mut info = self.info(token_id)?.unwrap_or_default();
        info.last_seen_ms = Some(self.clock.now_ms());
        self.info.insert(
            token_id.as_bytes(),
            serde_json::to_vec(&info).unwrap_or_default(),
        )?;
        Ok(())
    }

    /// Counts `token_id` as minted by `new` if one of `old` minted it.
    pub fn reparent(&self, token_id: &str, old: &[String], new: &str) -> Result<(), AccountError> {
        if let Some(mut info) = self.info(token_id)?
            && info.minted_by.as_ref().is_some_and(|m| old.contains(m))
        {
            info.minted_by = Some(new.to_owned());
            self.info.insert(
                token_id.as_bytes(),
                serde_json::to_vec(&info).unwrap_or_default(),
            )?;
        }
        Ok(())
    }

    /// Forgets a revoked token's record, and the unused link codes it asked for.
    pub fn forget(&self, token_id: &str) -> Result<(), AccountError> {
        self.info.remove(token_id.as_bytes())?;
        for (key, value) in self.links.all()? {
            if let Ok(record) = serde_json::from_slice::<LinkRecord>(&value)
                && record.minted_by.as_deref() == Some(token_id)
                && record.redeemed.is_none()
            {
                self.links.remove(key)?;
            }
        }
        Ok(())
    }
}

/// A redeemed link.
#[derive(Debug)]
pub struct Redeemed {
    /// The account joined.
    pub account: String,
    /// The new device token (shown to the device once).
    pub token: Token,
    /// The token this device got from an earlier redemption, now revoked.
    pub replaced: Option<String>,
}
