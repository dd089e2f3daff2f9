//! Where a share's cheers live: a document whose id both sides derive from the share's id
//! (the public part of its token), so that the owner's devices know it without asking and
//! the server makes it when it makes the share (`server/src/cheers.rs`).

use nudge_store::DocumentId;
use sha2::{Digest, Sha256};

/// The id of the cheers document of the share `share_id`.
pub fn cheers_doc(share_id: &str) -> DocumentId {
    let digest = Sha256::digest(format!("nudge-cheers\0{share_id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    DocumentId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_share_has_its_own_and_it_stays() {
        let a = super::cheers_doc("d1be9cc670c6");
        assert_eq!(a, super::cheers_doc("d1be9cc670c6"));
        assert_ne!(a, super::cheers_doc("d1be9cc670c7"));
    }
}
