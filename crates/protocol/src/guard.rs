//! The inbound guard: every message from a peer passes here before anything else sees it.
//!
//! In order: the size cap, CBOR decoding into a known message type, the length of peer and
//! document ids and the document id's checksum, and for `request` and `sync` the sync
//! message's shape ([`crate::sync_shape`]) and Automerge's own decoder (behind
//! `catch_unwind`, a last line of defence). A rejection is a value with a reason that can
//! go in a close frame; nothing here panics on input.

use std::panic::{AssertUnwindSafe, catch_unwind};

use nudge_store::DocumentId;

use crate::message::{DecodeError, Message};
use crate::sync_shape::{self, ShapeError};

/// Limits on inbound messages.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Longest peer id, session id or document id accepted, in bytes.
    pub max_id_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 16 * 1024 * 1024,
            max_id_bytes: 256,
        }
    }
}

/// A message that passed the guard.
#[derive(Debug)]
pub struct Inbound {
    /// The protocol message.
    pub message: Message,
    /// For `request` and `sync`: the decoded Automerge sync message.
    pub sync: Option<automerge::sync::Message>,
    /// For messages about a document: its id.
    pub document: Option<DocumentId>,
}

/// Why a message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Over the size cap.
    #[error("message of {size} bytes is over the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a protocol message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An id longer than the limit.
    #[error("{0} is too long")]
    IdTooLong(&'static str),
    /// A document id that is not a document id.
    #[error("{0:?} is not a document id")]
    BadDocumentId(String),
    /// A sync message with a bad shape or bloom filter.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// Automerge refused the sync message.
    #[error("invalid sync message: {0}")]
    Sync(String),
}

fn check_len(value: &str, what: &'static str, limits: &Limits) -> Result<(), Rejection> {
    if value.len() > limits.max_id_bytes {
        return Err(Rejection::IdTooLong(what));
    }
    Ok(())
}

fn document(id: &str, limits: &Limits) -> Result<DocumentId, Rejection> {
    check_len(id, "documentId", limits)?;
    id.parse()
        .map_err(|_| Rejection::BadDocumentId(id.to_owned()))
}

/// Checks one inbound websocket payload.
pub fn inspect(bytes: &[u8], limits: &Limits) -> Result<Inbound, Rejection> {
    if bytes.len() > limits.max_message_bytes {
        return Err(Rejection::TooLarge {
            size: bytes.len(),
            max: limits.max_message_bytes,
        });
    }
    let message = Message::decode(bytes)?;
    let mut document_id = None;
    let mut data = None;
    match &message {
        Message::Join { sender_id, .. } | Message::Leave { sender_id } => {
            check_len(sender_id, "senderId", limits)?;
        }
        Message::Peer {
            sender_id,
            target_id,
            ..
        } => {
            check_len(sender_id, "senderId", limits)?;
            check_len(target_id, "targetId", limits)?;
        }
        Message::Request {
            document_id: d,
            sender_id,
            target_id,
            data: bytes,
        }
        | Message::Sync {
            document_id: d,
            sender_id,
            target_id,
            data: bytes,
        } => {
            check_len(sender_id, "senderId", limits)?;
            check_len(target_id, "targetId", limits)?;
            document_id = Some(document(d, limits)?);
            data = Some(bytes.as_slice());
        }
        Message::DocUnavailable {
            sender_id,
            target_id,
            document_id: d,
        } => {
            check_len(sender_id, "senderId", limits)?;
            check_len(target_id, "targetId", limits)?;
            document_id = Some(document(d, limits)?);
        }
        Message::Ephemeral {
            sender_id,
            target_id,
            session_id,
            document_id: d,
            ..
        } => {
            check_len(sender_id, "senderId", limits)?;
            check_len(target_id, "targetId", limits)?;
            check_len(session_id, "sessionId", limits)?;
            document_id = Some(document(d, limits)?);
        }
        Message::Error { .. } | Message::Ignored { .. } => {}
    }
    let sync = match data {
        None => None,
        Some(data) => {
            sync_shape::check(data)?;
            let decoded = catch_unwind(AssertUnwindSafe(|| automerge::sync::Message::decode(data)))
                .map_err(|_| Rejection::Sync("automerge could not read it".into()))?
                .map_err(|e| Rejection::Sync(e.to_string()))?;
            Some(decoded)
        }
    };
    Ok(Inbound {
        message,
        sync,
        document: document_id,
    })
}
