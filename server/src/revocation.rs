//! Revoking a token revokes what it minted: the device tokens redeemed from link codes it
//! asked for, the shares it made, the unused codes it asked for, and so on down. A stolen
//! device that minted itself a spare device or a share loses them with its own token.
//! This is the one place that does it, for the HTTP routes and the admin commands alike.

use std::collections::{BTreeSet, HashMap};

use nudge_protocol::TokenKind;

use crate::accounts::AccountError;
use crate::state::State;

impl State {
    /// Revokes `root` and every token minted from it; returns the revoked ids, `root` first
    /// (none when `root` was not a token). The caller flushes and closes their sockets.
    pub fn revoke(&self, root: &str) -> Result<Vec<String>, AccountError> {
        let (accounts, devices, shares) = (self.accounts(), self.devices(), self.shares());
        let tokens = accounts.tokens()?;
        let Some(account) = tokens
            .iter()
            .find(|t| t.id == root)
            .map(|t| t.account.clone())
        else {
            return Ok(Vec::new());
        };
        // Who minted whom, within the account.
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for token in tokens.iter().filter(|t| t.account == account) {
            let parent = match token.kind {
                TokenKind::Share => shares.get(&token.id)?.and_then(|r| r.minted_by),
                _ => devices.info(&token.id)?.and_then(|i| i.minted_by),
            };
            if let Some(parent) = parent {
                children.entry(parent).or_default().push(token.id.clone());
            }
        }
        let mut revoked = Vec::new();
        let mut seen = BTreeSet::new();
        let mut next = vec![root.to_owned()];
        while let Some(id) = next.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            accounts.revoke(&id)?;
            devices.forget(&id)?;
            shares.forget(&id)?;
            next.extend(children.remove(&id).unwrap_or_default());
            revoked.push(id);
        }
        Ok(revoked)
    }

    /// A new account token for the account called `name`, the old one revoked (its socket
    /// ids returned for closing). What the old token minted stays, now counted as minted by
    /// the new one, so that a device linked from it keeps working. `None`: no such account.
    /// The caller flushes.
    pub fn reissue_account_token(
        &self,
        name: &str,
    ) -> Result<Option<(nudge_protocol::Token, Vec<String>)>, AccountError> {
        let (accounts, devices, shares) = (self.accounts(), self.devices(), self.shares());
        let Some(account) = accounts.find(name)? else {
            return Ok(None);
        };
        let tokens = accounts.tokens()?;
        let old: Vec<String> = tokens
            .iter()
            .filter(|t| t.account == account && t.kind == TokenKind::Account)
            .map(|t| t.id.clone())
            .collect();
        let new = accounts.add_token(&account, TokenKind::Account)?;
        for token in tokens.iter().filter(|t| t.account == account) {
            match token.kind {
                TokenKind::Share => {
                    if let Some(mut record) = shares.get(&token.id)?
                        && record.minted_by.as_ref().is_some_and(|m| old.contains(m))
                    {
                        record.minted_by = Some(new.id().to_owned());
                        shares.put(&token.id, &record)?;
                    }
                }
                _ => devices.reparent(&token.id, &old, new.id())?,
            }
        }
        for id in &old {
            accounts.revoke(id)?;
            devices.forget(id)?;
        }
        Ok(Some((new, old)))
    }
}
