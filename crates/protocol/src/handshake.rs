//! The handshake of protocol "1": the initiating peer (client) sends `join`, the receiving
//! peer (server) answers `peer`, and only then may sync messages flow. Sans-IO: feed it the
//! messages that arrive, send what it returns.

use crate::message::{Message, PROTOCOL_VERSION, PeerMetadata};

/// Which side of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// We opened the connection and send `join`.
    Initiating,
    /// We accepted the connection and answer with `peer`.
    Receiving,
}

/// What the handshake wants done with an inbound message.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The handshake is complete; send `reply` first if there is one.
    Established {
        /// The other side's peer id.
        remote: String,
        /// The other side's metadata.
        metadata: Option<PeerMetadata>,
        /// The message to send (`peer`, on the receiving side).
        reply: Option<Message>,
    },
    /// The handshake failed: send this `error` message and close.
    Fail(Message),
}

/// A handshake in progress.
#[derive(Debug)]
pub struct Handshake {
    role: Role,
    our_id: String,
    metadata: Option<PeerMetadata>,
    done: bool,
}

fn fail(why: impl Into<String>) -> Step {
    Step::Fail(Message::Error {
        message: why.into(),
    })
}

impl Handshake {
    /// The receiving side (a server), waiting for `join`.
    pub fn receiving(our_id: impl Into<String>, metadata: Option<PeerMetadata>) -> Self {
        Self {
            role: Role::Receiving,
            our_id: our_id.into(),
            metadata,
            done: false,
        }
    }

    /// The initiating side (a client), and the `join` it must send first.
    pub fn initiating(
        our_id: impl Into<String>,
        metadata: Option<PeerMetadata>,
    ) -> (Self, Message) {
        let our_id = our_id.into();
        let join = Message::Join {
            sender_id: our_id.clone(),
            supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
            metadata: metadata.clone(),
        };
        let handshake = Self {
            role: Role::Initiating,
            our_id,
            metadata,
            done: false,
        };
        (handshake, join)
    }

    /// Whether the handshake has completed.
    pub fn is_established(&self) -> bool {
        self.done
    }

    /// Handles the first message from the other side.
    pub fn receive(&mut self, message: &Message) -> Step {
        if self.done {
            return fail("the handshake is already complete");
        }
        match (self.role, message) {
            (
                Role::Receiving,
                Message::Join {
                    sender_id,
                    supported_protocol_versions,
                    metadata,
                },
            ) => {
                if !supported_protocol_versions
                    .iter()
                    .any(|v| v == PROTOCOL_VERSION)
                {
                    return fail(format!(
                        "unsupported protocol versions {supported_protocol_versions:?}: this server speaks \"{PROTOCOL_VERSION}\""
                    ));
                }
                self.done = true;
                Step::Established {
                    remote: sender_id.clone(),
                    metadata: metadata.clone(),
                    reply: Some(Message::Peer {
                        sender_id: self.our_id.clone(),
                        selected_protocol_version: PROTOCOL_VERSION.to_owned(),
                        target_id: sender_id.clone(),
                        metadata: self.metadata.clone(),
                    }),
                }
            }
            (
                Role::Initiating,
                Message::Peer {
                    sender_id,
                    selected_protocol_version,
                    metadata,
                    ..
                },
            ) => {
                if selected_protocol_version != PROTOCOL_VERSION {
                    return fail(format!(
                        "unsupported protocol version {selected_protocol_version:?}"
                    ));
                }
                self.done = true;
                Step::Established {
                    remote: sender_id.clone(),
                    metadata: metadata.clone(),
                    reply: None,
                }
            }
            (Role::Receiving, other) => fail(format!("expected join, got {}", other.kind())),
            (Role::Initiating, Message::Error { message }) => {
                fail(format!("the server refused: {message}"))
            }
            (Role::Initiating, other) => fail(format!("expected peer, got {}", other.kind())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_complete_the_handshake() {
        let mut server = Handshake::receiving("server", None);
        let (mut client, join) = Handshake::initiating(
            "client",
            Some(PeerMetadata {
                storage_id: Some("s1".into()),
                is_ephemeral: false,
            }),
        );
        let Step::Established {
            remote,
            metadata,
            reply: Some(peer),
        } = server.receive(&join)
        else {
            panic!("server did not accept join");
        };
        assert_eq!(remote, "client");
        assert_eq!(metadata.unwrap().storage_id.as_deref(), Some("s1"));
        assert!(server.is_established());
        let step = client.receive(&Message::decode(&peer.encode()).unwrap());
        assert_eq!(
            step,
            Step::Established {
                remote: "server".into(),
                metadata: None,
                reply: None
            }
        );
        assert!(client.is_established());
    }

    #[test]
    fn wrong_order_and_versions_fail_with_an_error_message() {
        let mut server = Handshake::receiving("server", None);
        let leave = Message::Leave {
            sender_id: "x".into(),
        };
        assert!(
            matches!(server.receive(&leave), Step::Fail(Message::Error { message }) if message.contains("expected join"))
        );
        let mut server = Handshake::receiving("server", None);
        let join = Message::Join {
            sender_id: "c".into(),
            supported_protocol_versions: vec!["2".into()],
            metadata: None,
        };
        assert!(
            matches!(server.receive(&join), Step::Fail(Message::Error { message }) if message.contains("unsupported"))
        );
        let (mut client, _) = Handshake::initiating("c", None);
        let err = Message::Error {
            message: "no".into(),
        };
        assert!(
            matches!(client.receive(&err), Step::Fail(Message::Error { message }) if message.contains("refused"))
        );
        let mut server = Handshake::receiving("server", None);
        let good = Message::Join {
            sender_id: "c".into(),
            supported_protocol_versions: vec!["1".into()],
            metadata: None,
        };
        assert!(matches!(server.receive(&good), Step::Established { .. }));
        assert!(
            matches!(server.receive(&good), Step::Fail(_)),
            "a second join is refused"
        );
    }
}
