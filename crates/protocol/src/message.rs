//! The messages of automerge-repo's websocket protocol, version "1", as CBOR maps.
//!
//! Encoding writes definite-length maps with the field names of the specification;
//! decoding accepts definite or indefinite maps, fields in any order, and skips fields it
//! does not know (forward compatibility). It never panics and allocates no more than the
//! input's size: strings and byte strings are read from the input slice.

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

/// The only protocol version there is.
pub const PROTOCOL_VERSION: &str = "1";

/// What a peer says about itself in `join` and `peer`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerMetadata {
    /// The id of the peer's persistent storage, if it has one.
    pub storage_id: Option<String>,
    /// Whether the peer will not come back with this storage.
    pub is_ephemeral: bool,
}

/// One protocol message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// The initiating peer introduces itself.
    Join {
        /// Its peer id.
        sender_id: String,
        /// Versions it speaks.
        supported_protocol_versions: Vec<String>,
        /// Optional metadata.
        metadata: Option<PeerMetadata>,
    },
    /// The receiving peer answers a join.
    Peer {
        /// Its peer id.
        sender_id: String,
        /// The version chosen.
        selected_protocol_version: String,
        /// The joining peer's id.
        target_id: String,
        /// Optional metadata.
        metadata: Option<PeerMetadata>,
    },
    /// The sender is about to disconnect.
    Leave {
        /// Its peer id.
        sender_id: String,
    },
    /// Begin syncing a document; answer `doc-unavailable` if you do not have it.
    Request {
        /// The document (bs58check).
        document_id: String,
        /// Sender's peer id.
        sender_id: String,
        /// Recipient's peer id.
        target_id: String,
        /// An Automerge sync message.
        data: Vec<u8>,
    },
    /// An Automerge sync message about a document.
    Sync {
        /// The document (bs58check).
        document_id: String,
        /// Sender's peer id.
        sender_id: String,
        /// Recipient's peer id.
        target_id: String,
        /// An Automerge sync message.
        data: Vec<u8>,
    },
    /// The sender does not have the document (and neither do its peers).
    DocUnavailable {
        /// Sender's peer id.
        sender_id: String,
        /// Recipient's peer id.
        target_id: String,
        /// The document (bs58check).
        document_id: String,
    },
    /// An ephemeral message about a document, relayed to its other peers.
    Ephemeral {
        /// Sender's peer id.
        sender_id: String,
        /// Recipient's peer id.
        target_id: String,
        /// Sequence number within the session.
        count: u64,
        /// The session of the stream of messages.
        session_id: String,
        /// The document (bs58check).
        document_id: String,
        /// Arbitrary CBOR, as bytes.
        data: Vec<u8>,
    },
    /// A protocol error; the connection closes.
    Error {
        /// What went wrong.
        message: String,
    },
    /// A message type of the protocol that nudge does not act on (`remote-subscription-change`,
    /// `remote-heads-changed`): accepted and ignored.
    Ignored {
        /// Its `type`.
        kind: String,
    },
}

/// Why bytes are not a protocol message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not CBOR, or not the CBOR we expect.
    #[error("not a protocol message: {0}")]
    Cbor(String),
    /// The top level is not a map.
    #[error("a protocol message is a CBOR map")]
    NotAMap,
    /// No `type` field.
    #[error("the message has no type")]
    NoType,
    /// A `type` that is not in the protocol.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A required field is missing.
    #[error("{kind} message without {field}")]
    Missing {
        /// The message type.
        kind: String,
        /// The missing field.
        field: &'static str,
    },
    /// Bytes after the message.
    #[error("trailing bytes after the message")]
    Trailing,
}

impl From<minicbor::decode::Error> for DecodeError {
    fn from(e: minicbor::decode::Error) -> Self {
        Self::Cbor(e.to_string())
    }
}

type Enc<'a> = Encoder<&'a mut Vec<u8>>;

fn metadata(
    e: &mut Enc<'_>,
    m: &PeerMetadata,
) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
    e.map(if m.storage_id.is_some() { 2 } else { 1 })?;
    if let Some(id) = &m.storage_id {
        e.str("storageId")?.str(id)?;
    }
    e.str("isEphemeral")?.bool(m.is_ephemeral)?;
    Ok(())
}

impl Message {
    /// The message's `type`.
    pub fn kind(&self) -> &str {
        match self {
            Self::Join { .. } => "join",
            Self::Peer { .. } => "peer",
            Self::Leave { .. } => "leave",
            Self::Request { .. } => "request",
            Self::Sync { .. } => "sync",
            Self::DocUnavailable { .. } => "doc-unavailable",
            Self::Ephemeral { .. } => "ephemeral",
            Self::Error { .. } => "error",
            Self::Ignored { kind } => kind,
        }
    }

    /// The CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out);
        // Writing to a Vec cannot fail.
        self.write(&mut e).expect("encoding to memory");
        out
    }

    fn write(
        &self,
        e: &mut Enc<'_>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        match self {
            Self::Join {
                sender_id,
                supported_protocol_versions,
                metadata: m,
            } => {
                e.map(3 + u64::from(m.is_some()))?;
                e.str("type")?.str("join")?;
                e.str("senderId")?.str(sender_id)?;
                e.str("supportedProtocolVersions")?
                    .array(supported_protocol_versions.len() as u64)?;
                for v in supported_protocol_versions {
                    e.str(v)?;
                }
                if let Some(m) = m {
                    e.str("metadata")?;
                    metadata(e, m)?;
                }
            }
            Self::Peer {
                sender_id,
                selected_protocol_version,
                target_id,
                metadata: m,
            } => {
                e.map(4 + u64::from(m.is_some()))?;
                e.str("type")?.str("peer")?;
                e.str("senderId")?.str(sender_id)?;
                e.str("selectedProtocolVersion")?
                    .str(selected_protocol_version)?;
                e.str("targetId")?.str(target_id)?;
                if let Some(m) = m {
                    e.str("metadata")?;
                    metadata(e, m)?;
                }
            }
            Self::Leave { sender_id } => {
                e.map(2)?
                    .str("type")?
                    .str("leave")?
                    .str("senderId")?
                    .str(sender_id)?;
            }
            Self::Request {
                document_id,
                sender_id,
                target_id,
                data,
            }
            | Self::Sync {
                document_id,
                sender_id,
                target_id,
                data,
            } => {
                e.map(5)?;
                e.str("type")?.str(self.kind())?;
                e.str("documentId")?.str(document_id)?;
                e.str("senderId")?.str(sender_id)?;
                e.str("targetId")?.str(target_id)?;
                e.str("data")?.bytes(data)?;
            }
            Self::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            } => {
                e.map(4)?;
                e.str("type")?.str("doc-unavailable")?;
                e.str("senderId")?.str(sender_id)?;
                e.str("targetId")?.str(target_id)?;
                e.str("documentId")?.str(document_id)?;
            }
            Self::Ephemeral {
                sender_id,
                target_id,
                count,
                session_id,
                document_id,
                data,
            } => {
                e.map(7)?;
                e.str("type")?.str("ephemeral")?;
                e.str("senderId")?.str(sender_id)?;
                e.str("targetId")?.str(target_id)?;
                e.str("count")?.u64(*count)?;
                e.str("sessionId")?.str(session_id)?;
                e.str("documentId")?.str(document_id)?;
                e.str("data")?.bytes(data)?;
            }
            Self::Error { message } => {
                e.map(2)?
                    .str("type")?
                    .str("error")?
                    .str("message")?
                    .str(message)?;
            }
            Self::Ignored { kind } => {
                e.map(1)?.str("type")?.str(kind)?;
            }
        }
        Ok(())
    }

    /// Decodes one message from exactly these bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut f = Fields::default();
        let len = match d.datatype()? {
            Type::Map | Type::MapIndef => d.map()?,
            _ => return Err(DecodeError::NotAMap),
        };
        let mut read = 0u64;
        loop {
            match len {
                Some(n) if read == n => break,
                None if d.datatype()? == Type::Break => {
                    d.skip()?;
                    break;
                }
                _ => {}
            }
            read += 1;
            if d.datatype()? != Type::String {
                d.skip()?;
                d.skip()?;
                continue;
            }
            let key = d.str()?;
            match key {
                "type" => f.kind = Some(d.str()?.to_owned()),
                "senderId" => f.sender_id = Some(d.str()?.to_owned()),
                "targetId" => f.target_id = Some(d.str()?.to_owned()),
                "documentId" => f.document_id = Some(d.str()?.to_owned()),
                "selectedProtocolVersion" => f.selected = Some(d.str()?.to_owned()),
                "supportedProtocolVersions" => f.supported = Some(versions(&mut d)?),
                "metadata" => f.metadata = Some(read_metadata(&mut d)?),
                "data" => f.data = Some(d.bytes()?.to_vec()),
                "count" => f.count = Some(d.u64()?),
                "sessionId" => f.session_id = Some(d.str()?.to_owned()),
                "message" => f.message = Some(d.str()?.to_owned()),
                _ => d.skip()?,
            }
        }
        if d.position() != bytes.len() {
            return Err(DecodeError::Trailing);
        }
        f.into_message()
    }
}

fn versions(d: &mut Decoder<'_>) -> Result<Vec<String>, DecodeError> {
    match d.datatype()? {
        // The specification's CDDL has a single version; JavaScript sends an array.
        Type::String => Ok(vec![d.str()?.to_owned()]),
        Type::Array | Type::ArrayIndef => {
            let mut out = Vec::new();
            for v in d.array_iter::<&str>()? {
                out.push(v?.to_owned());
            }
            Ok(out)
        }
        other => Err(DecodeError::Cbor(format!(
            "supportedProtocolVersions is {other}"
        ))),
    }
}

fn read_metadata(d: &mut Decoder<'_>) -> Result<PeerMetadata, DecodeError> {
    let mut m = PeerMetadata::default();
    let len = match d.datatype()? {
        Type::Map | Type::MapIndef => d.map()?,
        Type::Null | Type::Undefined => {
            d.skip()?;
            return Ok(m);
        }
        other => return Err(DecodeError::Cbor(format!("metadata is {other}"))),
    };
    let mut read = 0u64;
    loop {
        match len {
            Some(n) if read == n => break,
            None if d.datatype()? == Type::Break => {
                d.skip()?;
                break;
            }
            _ => {}
        }
        read += 1;
        let key = if d.datatype()? == Type::String {
            Some(d.str()?)
        } else {
            d.skip()?;
            None
        };
        match (key, d.datatype()?) {
            (Some("storageId"), Type::String) => m.storage_id = Some(d.str()?.to_owned()),
            (Some("isEphemeral"), Type::Bool) => m.is_ephemeral = d.bool()?,
            _ => d.skip()?,
        }
    }
    Ok(m)
}

#[derive(Default)]
struct Fields {
    kind: Option<String>,
    sender_id: Option<String>,
    target_id: Option<String>,
    document_id: Option<String>,
    selected: Option<String>,
    supported: Option<Vec<String>>,
    metadata: Option<PeerMetadata>,
    data: Option<Vec<u8>>,
    count: Option<u64>,
    session_id: Option<String>,
    message: Option<String>,
}

impl Fields {
    fn into_message(self) -> Result<Message, DecodeError> {
        let kind = self.kind.ok_or(DecodeError::NoType)?;
        let need = |v: Option<String>, field: &'static str| {
            v.ok_or_else(|| DecodeError::Missing {
                kind: kind.clone(),
                field,
            })
        };
        Ok(match kind.as_str() {
            "join" => Message::Join {
                sender_id: need(self.sender_id, "senderId")?,
                supported_protocol_versions: self.supported.ok_or_else(|| {
                    DecodeError::Missing {
                        kind: kind.clone(),
                        field: "supportedProtocolVersions",
                    }
                })?,
                metadata: self.metadata,
            },
            "peer" => Message::Peer {
                sender_id: need(self.sender_id, "senderId")?,
                selected_protocol_version: need(self.selected, "selectedProtocolVersion")?,
                target_id: need(self.target_id, "targetId")?,
                metadata: self.metadata,
            },
            "leave" => Message::Leave {
                sender_id: need(self.sender_id, "senderId")?,
            },
            "request" | "sync" => {
                let document_id = need(self.document_id, "documentId")?;
                let sender_id = need(self.sender_id, "senderId")?;
                let target_id = need(self.target_id, "targetId")?;
                let data = self.data.ok_or_else(|| DecodeError::Missing {
                    kind: kind.clone(),
                    field: "data",
                })?;
                if kind == "request" {
                    Message::Request {
                        document_id,
                        sender_id,
                        target_id,
                        data,
                    }
                } else {
                    Message::Sync {
                        document_id,
                        sender_id,
                        target_id,
                        data,
                    }
                }
            }
            "doc-unavailable" => Message::DocUnavailable {
                sender_id: need(self.sender_id, "senderId")?,
                target_id: need(self.target_id, "targetId")?,
                document_id: need(self.document_id, "documentId")?,
            },
            "ephemeral" => Message::Ephemeral {
                sender_id: need(self.sender_id, "senderId")?,
                target_id: need(self.target_id, "targetId")?,
                count: self.count.ok_or_else(|| DecodeError::Missing {
                    kind: kind.clone(),
                    field: "count",
                })?,
                session_id: need(self.session_id, "sessionId")?,
                document_id: need(self.document_id, "documentId")?,
                data: self.data.ok_or_else(|| DecodeError::Missing {
                    kind: kind.clone(),
                    field: "data",
                })?,
            },
            "error" => Message::Error {
                message: self.message.unwrap_or_default(),
            },
            "remote-subscription-change" | "remote-heads-changed" => Message::Ignored { kind },
            _ => return Err(DecodeError::UnknownType(kind)),
        })
    }
}
