//! Document ids: 16 random bytes, written as automerge-repo writes them (bs58check).

use std::fmt;
use std::str::FromStr;

/// The id of one stored document.
///
/// It is the same 16-byte id automerge-repo uses, and prints the same way (base58 with a
/// 4-byte checksum), so another automerge-repo peer can name our documents.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocumentId([u8; 16]);

impl DocumentId {
    /// A new random id.
    pub fn random() -> Self {
        Self(*uuid::Uuid::new_v4().as_bytes())
    }

    /// The id made of these bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes, as used in storage keys.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

/// The text was not a document id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a document id (expected base58check of 16 bytes)")]
pub struct BadDocumentId(pub String);

impl FromStr for DocumentId {
    type Err = BadDocumentId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = bs58::decode(s)
            .with_check(None)
            .into_vec()
            .map_err(|_| BadDocumentId(s.to_owned()))?;
        let bytes: [u8; 16] = bytes.try_into().map_err(|_| BadDocumentId(s.to_owned()))?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = DocumentId::random();
        let text = id.to_string();
        assert_eq!(text.parse::<DocumentId>(), Ok(id));
    }

    #[test]
    fn rejects_bad_checksum_and_length() {
        let mut text = DocumentId::random().to_string();
        let last = text.pop().unwrap();
        text.push(if last == '2' { '3' } else { '2' });
        assert!(text.parse::<DocumentId>().is_err());
        let short = bs58::encode([1u8; 8]).with_check().into_string();
        assert!(short.parse::<DocumentId>().is_err());
        assert!("not base58 0OIl".parse::<DocumentId>().is_err());
    }
}
