//! The fuzzer's corpus (`fuzz/corpus/inbound`: seeds, interesting inputs and any crasher
//! it ever found), replayed through the server's inbound path as an ordinary test.
//!
//! `cargo test -p nudge-protocol --test corpus -- --ignored write_seeds` rewrites the
//! seeds (valid messages of every kind) that a fuzzing run starts from.

use std::path::PathBuf;

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use nudge_protocol::Message;
use nudge_store::DocumentId;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/inbound")
}

#[test]
fn every_corpus_input_passes_the_inbound_path_without_a_panic() {
    let mut files = 0;
    let mut replies = 0;
    for entry in std::fs::read_dir(corpus()).expect("the checked-in corpus") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        replies += nudge_protocol::fuzzing::inbound(&bytes);
        files += 1;
    }
    assert!(files >= 10, "the corpus is missing ({files} files)");
    // The valid seeds are answered: the path is exercised, not short-circuited.
    assert!(replies > 0);
}

#[test]
#[ignore = "writes the fuzzing seeds into fuzz/corpus/inbound"]
fn write_seeds() {
    let dir = corpus();
    std::fs::create_dir_all(&dir).unwrap();
    let doc_id = DocumentId::from_bytes([7; 16]).to_string();
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "hello", "world").unwrap();
    let mut state = automerge::sync::State::new();
    let first = doc
        .sync()
        .generate_sync_message(&mut state)
        .unwrap()
        .encode();
    let mut other = AutoCommit::new();
    other.put(ROOT, "k", 1).unwrap();
    let mut state2 = automerge::sync::State::new();
    let mut theirs = automerge::sync::State::new();
    let m = other.sync().generate_sync_message(&mut state2).unwrap();
    doc.sync().receive_sync_message(&mut theirs, m).unwrap();
    let with_changes = doc
        .sync()
        .generate_sync_message(&mut theirs)
        .unwrap()
        .encode();
    let messages = vec![
        Message::Join {
            sender_id: "c".into(),
            supported_protocol_versions: vec!["1".into()],
            metadata: None,
        },
        Message::Request {
            document_id: doc_id.clone(),
            sender_id: "c".into(),
            target_id: "s".into(),
            data: first.clone(),
        },
        Message::Sync {
            document_id: doc_id.clone(),
            sender_id: "c".into(),
            target_id: "s".into(),
            data: first,
        },
        Message::Sync {
            document_id: doc_id.clone(),
            sender_id: "c".into(),
            target_id: "s".into(),
            data: with_changes,
        },
        Message::Sync {
            document_id: doc_id.clone(),
            sender_id: "c".into(),
            target_id: "s".into(),
            // A bloom filter with zero bits per entry.
            data: vec![0x42, 0, 0, 1, 0, 3, 1, 0, 7, 0],
        },
        Message::Ephemeral {
            sender_id: "c".into(),
            target_id: "s".into(),
            count: 1,
            session_id: "x".into(),
            document_id: doc_id.clone(),
            data: vec![0xa0],
        },
        Message::DocUnavailable {
            sender_id: "c".into(),
            target_id: "s".into(),
            document_id: doc_id.clone(),
        },
        Message::Leave {
            sender_id: "c".into(),
        },
        Message::Error {
            message: "bye".into(),
        },
    ];
    for (i, m) in messages.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), m.encode()).unwrap();
    }
    std::fs::write(dir.join("seed-empty"), b"").unwrap();
    std::fs::write(dir.join("seed-garbage"), b"\xff\x00garbage").unwrap();
}
