//! The message codec and the inbound guard: round trips, real automerge-repo shapes, and
//! hostile input that must be refused without a panic.

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use nudge_protocol::*;
use nudge_store::DocumentId;
use proptest::prelude::*;

fn sync_bytes() -> Vec<u8> {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "hello", "world").unwrap();
    let mut state = automerge::sync::State::new();
    doc.sync()
        .generate_sync_message(&mut state)
        .unwrap()
        .encode()
}

fn doc_id() -> String {
    DocumentId::random().to_string()
}

fn samples() -> Vec<Message> {
    vec![
        Message::Join {
            sender_id: "client-1".into(),
            supported_protocol_versions: vec!["1".into()],
            metadata: Some(PeerMetadata {
                storage_id: Some("storage-a".into()),
                is_ephemeral: false,
            }),
        },
        Message::Peer {
            sender_id: "server".into(),
            selected_protocol_version: "1".into(),
            target_id: "client-1".into(),
            metadata: None,
        },
        Message::Leave {
            sender_id: "client-1".into(),
        },
        Message::Request {
            document_id: doc_id(),
            sender_id: "a".into(),
            target_id: "b".into(),
            data: sync_bytes(),
        },
        Message::Sync {
            document_id: doc_id(),
            sender_id: "a".into(),
            target_id: "b".into(),
            data: sync_bytes(),
        },
        Message::DocUnavailable {
            sender_id: "b".into(),
            target_id: "a".into(),
            document_id: doc_id(),
        },
        Message::Ephemeral {
            sender_id: "a".into(),
            target_id: "b".into(),
            count: 3,
            session_id: "s".into(),
            document_id: doc_id(),
            data: vec![0xa0],
        },
        Message::Error {
            message: "bad".into(),
        },
    ]
}

#[test]
fn every_message_round_trips_and_passes_the_guard() {
    for m in samples() {
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        let inbound = inspect(&bytes, &Limits::default()).unwrap();
        assert_eq!(inbound.message, m);
        match m {
            Message::Request { .. } | Message::Sync { .. } => assert!(inbound.sync.is_some()),
            _ => assert!(inbound.sync.is_none()),
        }
    }
}

/// A join as the JavaScript client writes it: an array of versions, extra fields.
#[test]
fn the_javascript_join_shape_is_understood() {
    let mut bytes = Vec::new();
    let mut e = minicbor::Encoder::new(&mut bytes);
    e.map(5).unwrap();
    e.str("senderId").unwrap().str("js-peer").unwrap();
    e.str("type").unwrap().str("join").unwrap();
    e.str("supportedProtocolVersions")
        .unwrap()
        .array(1)
        .unwrap()
        .str("1")
        .unwrap();
    e.str("metadata").unwrap().map(2).unwrap();
    e.str("isEphemeral").unwrap().bool(true).unwrap();
    e.str("somethingNew").unwrap().u8(1).unwrap();
    e.str("futureField")
        .unwrap()
        .array(2)
        .unwrap()
        .u8(1)
        .unwrap()
        .u8(2)
        .unwrap();
    match Message::decode(&bytes).unwrap() {
        Message::Join {
            sender_id,
            supported_protocol_versions,
            metadata,
        } => {
            assert_eq!(sender_id, "js-peer");
            assert_eq!(supported_protocol_versions, ["1"]);
            assert!(metadata.unwrap().is_ephemeral);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_messages_are_refused_with_a_reason() {
    let limits = Limits::default();
    let too_big = vec![0u8; limits.max_message_bytes + 1];
    assert!(matches!(
        inspect(&too_big, &limits),
        Err(Rejection::TooLarge { .. })
    ));
    assert!(matches!(
        inspect(b"garbage", &limits),
        Err(Rejection::Decode(_))
    ));
    assert!(matches!(inspect(&[], &limits), Err(Rejection::Decode(_))));
    let truncated = samples()[3].encode();
    assert!(matches!(
        inspect(&truncated[..truncated.len() / 2], &limits),
        Err(Rejection::Decode(_))
    ));
    let unknown = Message::Ignored {
        kind: "teleport".into(),
    }
    .encode();
    assert_eq!(
        inspect(&unknown, &limits).unwrap_err(),
        Rejection::Decode(DecodeError::UnknownType("teleport".into()))
    );
    let bad_doc = Message::DocUnavailable {
        sender_id: "a".into(),
        target_id: "b".into(),
        document_id: "nope".into(),
    };
    assert!(matches!(
        inspect(&bad_doc.encode(), &limits),
        Err(Rejection::BadDocumentId(_))
    ));
    let long = Message::Leave {
        sender_id: "x".repeat(1000),
    };
    assert_eq!(
        inspect(&long.encode(), &limits).unwrap_err(),
        Rejection::IdTooLong("senderId")
    );
    let not_sync = Message::Sync {
        document_id: doc_id(),
        sender_id: "a".into(),
        target_id: "b".into(),
        data: vec![0x42, 5],
    };
    assert!(matches!(
        inspect(&not_sync.encode(), &limits),
        Err(Rejection::Shape(_))
    ));
    // A bloom filter with zero bits per entry: automerge 0.12 would divide by zero.
    let crafted = vec![0x42, 0, 0, 1, 0, 5, 1, 0, 7, 0, 0, 0];
    let m = Message::Sync {
        document_id: doc_id(),
        sender_id: "a".into(),
        target_id: "b".into(),
        data: crafted,
    };
    assert!(matches!(
        inspect(&m.encode(), &limits),
        Err(Rejection::Shape(_))
    ));
    let mut trailing = samples()[2].encode();
    trailing.push(0);
    assert!(matches!(
        inspect(&trailing, &limits),
        Err(Rejection::Decode(DecodeError::Trailing))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = inspect(&bytes, &Limits::default());
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        which in 0usize..8,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = samples()[which].encode();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(1));
        let _ = inspect(&bytes, &Limits::default());
    }

    #[test]
    fn mutated_sync_payloads_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut data = sync_bytes();
        for (at, value) in flips {
            let i = at.index(data.len());
            data[i] = value;
        }
        let m = Message::Sync { document_id: doc_id(), sender_id: "a".into(), target_id: "b".into(), data };
        let _ = inspect(&m.encode(), &Limits::default());
    }

    #[test]
    fn messages_round_trip(sender in "[a-z0-9-]{1,40}", target in "[a-z0-9-]{1,40}", count in any::<u64>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let m = Message::Ephemeral { sender_id: sender, target_id: target, count, session_id: "s".into(), document_id: doc_id(), data };
        prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
    }
}
