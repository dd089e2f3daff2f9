//! Bearer tokens: 256 random bits with a visible id, e.g.
//! `nudge_acct_3f2a9c1e0b7d_<64 hex digits>`. Only a SHA-256 of the whole token is ever
//! stored, and checks compare hashes in constant time. Logs and listings show the id only.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An account: reads and writes its own documents.
    Account,
    /// One device of an account (revocable on its own).
    Device,
    /// A buddy's share: reads one share view, writes nothing.
    Share,
}

impl TokenKind {
    /// The kind as written in a token: `acct`, `dev` or `share`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Account => "acct",
            Self::Device => "dev",
            Self::Share => "share",
        }
    }
}

/// A token, as handed to its holder once.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    kind: TokenKind,
    id: String,
    secret: String,
}

/// The text is not a nudge token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a nudge token (expected nudge_<acct|dev|share>_<id>_<secret>)")]
pub struct BadToken;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored form of a token: SHA-256 of its text.
pub type TokenHash = [u8; 32];

impl Token {
    /// A new random token. Fails only if the operating system has no randomness.
    pub fn generate(kind: TokenKind) -> Result<Self, getrandom::Error> {
        let mut id = [0u8; 6];
        let mut secret = [0u8; 32];
        getrandom::fill(&mut id)?;
        getrandom::fill(&mut secret)?;
        Ok(Self {
            kind,
            id: hex(&id),
            secret: hex(&secret),
        })
    }

    /// What it grants.
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// Its public id (safe to log and list).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hash to store.
    pub fn hash(&self) -> TokenHash {
        Sha256::digest(self.to_string().as_bytes()).into()
    }

    /// Whether this token is the one `stored` was made from (constant time).
    pub fn matches(&self, stored: &TokenHash) -> bool {
        self.hash().ct_eq(stored).into()
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nudge_{}_{}_{}", self.kind.tag(), self.id, self.secret)
    }
}

impl fmt::Debug for Token {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}_{}_…)", self.kind.tag(), self.id)
    }
}

impl FromStr for Token {
    type Err = BadToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().split('_');
        if parts.next() != Some("nudge") {
            return Err(BadToken);
        }
        let kind = match parts.next() {
            Some("acct") => TokenKind::Account,
            Some("dev") => TokenKind::Device,
            Some("share") => TokenKind::Share,
            _ => return Err(BadToken),
        };
        let (Some(id), Some(secret), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(BadToken);
        };
        let is_hex = |t: &str, len: usize| {
            t.len() == len
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !is_hex(id, 12) || !is_hex(secret, 64) {
            return Err(BadToken);
        }
        Ok(Self {
            kind,
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_match_only_their_hash() {
        let token = Token::generate(TokenKind::Account).unwrap();
        let text = token.to_string();
        assert!(text.starts_with(&format!("nudge_acct_{}_", token.id())));
        assert_eq!(text.len(), "nudge_acct_".len() + 12 + 1 + 64);
        let parsed: Token = text.parse().unwrap();
        assert_eq!(parsed, token);
        let stored = token.hash();
        assert!(parsed.matches(&stored));
        let other = Token::generate(TokenKind::Account).unwrap();
        assert!(!other.matches(&stored));
        assert_ne!(other.id(), token.id());
        assert!(
            !format!("{token:?}").contains(&text[20..]),
            "Debug never shows the secret"
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = Token::generate(TokenKind::Share).unwrap().to_string();
        let mut upper = good.clone();
        upper.make_ascii_uppercase();
        for bad in [
            "",
            "nudge",
            "nudge_acct_abc_def",
            "nudge_root_000000000000_0000000000000000000000000000000000000000000000000000000000000000",
            &good[..good.len() - 1],
            &format!("{good}_extra"),
            &upper,
            &good.replace("nudge_", "nodge_"),
        ] {
            assert_eq!(bad.parse::<Token>(), Err(BadToken), "{bad}");
        }
    }
}
