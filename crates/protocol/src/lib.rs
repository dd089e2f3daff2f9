//! nudge-protocol: what nudge speaks on the wire, without I/O.
//!
//! The protocol is automerge-repo's websocket protocol, version "1" (`docs/protocol.md`),
//! so that any automerge-repo peer can sync with nudge.
//!
//! - [`Message`] (`message.rs`): the CBOR messages (`join`, `peer`, `leave`, `request`,
//!   `sync`, `doc-unavailable`, `ephemeral`, `error`), encoded and decoded.
//! - [`inspect`] (`guard.rs`): the guard every inbound message passes before anything acts
//!   on it: size cap, message shape, ids, and the sync payload.
//! - [`admission`]: who may open which document, and the answer that opens nothing.
//! - [`Handshake`] (`handshake.rs`): `join` / `peer`, before any sync message.
//! - [`DocSession`] (`document.rs`): one document and the peers syncing it, sans-IO, with
//!   the durability rule: nothing advertising new heads leaves before they are persisted.
//! - [`ClientSync`] (`client.rs`): the client side of a sync, sans-IO: when every document
//!   holds the heads the server reported, the sync is done.
//! - [`Token`] (`token.rs`): bearer tokens with a visible id, stored only as SHA-256.
//! - [`receive_sync_message`] (`receive.rs`): automerge's receive without its walk over
//!   the whole history on every message.
//! - [`cheers_doc`] (`cheers.rs`): where a share's cheers live.
//! - `sync_shape.rs`: the structural check of Automerge sync messages that keeps crafted
//!   bloom filters away from automerge's decoder.

pub mod admission;
mod cheers;
mod client;
mod document;
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod handshake;
mod message;
mod receive;
pub mod rejection;
pub mod sync_shape;
mod token;

pub use cheers::cheers_doc;
pub use client::{ClientError, ClientSync, Moved};
pub use document::{Access, Action, Batch, DocSession, PeerKey, SNAPSHOT_BATCH};
pub use guard::{Inbound, Limits, Rejection, inspect};
pub use handshake::{Handshake, Role, Step};
pub use message::{DecodeError, Message, PROTOCOL_VERSION, PeerMetadata};
pub use receive::receive_sync_message;
pub use token::{BadToken, Token, TokenHash, TokenKind};
