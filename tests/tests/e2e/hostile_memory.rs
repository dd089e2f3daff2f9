//! Crafted Automerge sync messages streaming into the real server, one connection after
//! another: each attacker is closed with a reason, an honest client on the same document
//! keeps syncing, and the server's memory stays bounded (changes whose dependencies never
//! arrive used to stay in the document's memory for as long as the server ran).

use std::time::Duration;

use automerge::sync::{Message as SyncMessage, MessageVersion};
use automerge::transaction::Transactable;
use automerge::{Automerge, Change, ROOT};
use futures_util::SinkExt;
use nudge_protocol::Message;
use nudge_store::DocumentId;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::server::{Ws, connect, join, recv, runtime, sync};
use crate::util::{Server, add_account, noise, scale};

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    nudge_testkit::rss_kib(pid).unwrap()
}

/// A memory figure of `/proc/PID/status`, in KiB (`VmRSS:` now, `VmHWM:` the peak).
fn status_kib(pid: u32, field: &str) -> u64 {
    nudge_testkit::status_kib(pid, field).unwrap()
}

fn carrying(changes: &[Change]) -> Vec<u8> {
    SyncMessage {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: changes
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect::<Vec<_>>()
            .into(),
        flags: None,
        version: MessageVersion::V1,
    }
    .encode()
}

/// Sends `data` from `me` as a sync message for `id`.
async fn send_sync(
    ws: &mut Ws,
    me: &str,
    server: &str,
    id: &DocumentId,
    data: Vec<u8>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let message = Message::Sync {
        document_id: id.to_string(),
        sender_id: me.into(),
        target_id: server.into(),
        data,
    };
    ws.send(WsMessage::Binary(message.encode().into())).await
}

/// The payload of the next message, which must be a sync message.
async fn sync_answer(ws: &mut Ws) -> Vec<u8> {
    match recv(ws, Duration::from_secs(10)).await {
        Some(WsMessage::Binary(b)) => match Message::decode(&b).unwrap() {
            Message::Sync { data, .. } => data,
            other => panic!("expected a sync message, got {other:?}"),
        },
        other => panic!("no answer ({other:?})"),
    }
}

/// Sends each payload as a sync message for `id` and returns the close reason.
async fn attack(ws: &mut Ws, server: &str, id: &DocumentId, payloads: Vec<Vec<u8>>) -> String {
    for data in payloads {
        if send_sync(ws, "attacker", server, id, data).await.is_err() {
            break;
        }
    }
    for _ in 0..50 {
        match recv(ws, Duration::from_secs(5)).await {
            Some(WsMessage::Close(Some(frame))) => return frame.reason.to_string(),
            Some(WsMessage::Close(None)) => return String::new(),
            Some(_) => {}
            None => return "no close frame within 5 s".into(),
        }
    }
    "still open after 50 replies".into()
}

#[test]
fn crafted_sync_messages_are_closed_and_server_memory_stays_bounded() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let pid = server.child.id();
    let rounds = scale(40, 400) as u64;
    const MIB: usize = 1 << 20;
    let (baseline, peak, end, streamed) = runtime().block_on(async {
        let id = DocumentId::random();
        let mut good = connect(&server.addr, Some(&token)).await.unwrap();
        let good_server = join(&mut good, "good").await;
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "round", 0).unwrap();
        tx.commit();
        sync(&mut good, "good", &good_server, &id, &mut doc, "sync")
            .await
            .unwrap();
        let baseline = rss_kib(pid);
        let mut peak = baseline;
        let mut streamed = 0usize;
        for round in 0..rounds {
            let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
            let s = join(&mut ws, "attacker").await;
            let (what, payloads, expect): (&str, Vec<Vec<u8>>, &str) = match round % 4 {
                // Changes of 1 MiB each whose first change never comes, one a message: the
                // eighth crosses the 8 MiB a peer may send while its changes wait.
                0 | 2 => {
                    let mut hostile = Automerge::new();
                    let mut tx = hostile.transaction();
                    tx.put(ROOT, "first", round as i64).unwrap();
                    tx.commit();
                    for i in 0..8 {
                        let mut tx = hostile.transaction();
                        tx.put(ROOT, "blob", noise(round * 10 + i, MIB)).unwrap();
                        tx.commit();
                    }
                    let changes = hostile.get_changes(&[]);
                    let payloads: Vec<_> = changes[1..].chunks(1).map(carrying).collect();
                    streamed += payloads.iter().map(Vec::len).sum::<usize>();
                    ("dependencies that never arrive", payloads, "never arrived")
                }
                // A bloom filter with zero bits per entry, then one with 2^32 probes.
                1 => (
                    "zero bits per entry",
                    vec![vec![0x42, 0, 0, 1, 0, 3, 1, 0, 7, 0]],
                    "bloom filter",
                ),
                _ => {
                    let mut valid = Automerge::new();
                    let mut tx = valid.transaction();
                    tx.put(ROOT, "k", "v").unwrap();
                    tx.commit();
                    let mut raw = valid.get_changes(&[])[0].raw_bytes().to_vec();
                    // The checksum follows the 4-byte magic number.
                    raw[5] ^= 0xff;
                    let bad_checksum = SyncMessage {
                        heads: Vec::new(),
                        need: Vec::new(),
                        have: Vec::new(),
                        changes: vec![raw].into(),
                        flags: None,
                        version: MessageVersion::V1,
                    }
                    .encode();
                    if round % 8 == 3 {
                        (
                            "absurd probe count",
                            vec![vec![0x42, 0, 0, 1, 0, 6, 1, 10, 0xff, 0xff, 0xff, 0x0f, 0]],
                            "bloom filter",
                        )
                    } else {
                        (
                            "a change with a bad checksum",
                            vec![bad_checksum],
                            "does not check out",
                        )
                    }
                }
            };
            let reason = attack(&mut ws, &s, &id, payloads).await;
            assert!(
                reason.contains(expect),
                "round {round}, {what}: closed with {reason:?}"
            );
            // The honest client is unaffected.
            let mut tx = doc.transaction();
            tx.put(ROOT, "round", round as i64 + 1).unwrap();
            tx.commit();
            sync(&mut good, "good", &good_server, &id, &mut doc, "sync")
                .await
                .unwrap_or_else(|e| panic!("after {what}: {e}"));
            peak = peak.max(rss_kib(pid));
        }
        (baseline, peak, rss_kib(pid), streamed)
    });
    eprintln!(
        "{rounds} attacks, {} MiB of changes that never become applicable streamed in; \
         server RSS {} MiB before, peak {} MiB, {} MiB after",
        streamed / MIB,
        baseline / 1024,
        peak / 1024,
        end / 1024
    );
    // Without the bound, every orphan stays: RSS grows by at least what was streamed.
    let grew = (peak - baseline) as usize * 1024;
    assert!(
        grew < 48 * MIB && grew < streamed / 2,
        "server memory grew by {} MiB while {} MiB of orphan changes streamed in",
        grew / MIB,
        streamed / MIB
    );
}

/// A buddy's sync message of a million empty `have` entries (2 bytes each on the wire,
/// tens once decoded) is refused by counting them, before Automerge decodes anything.
#[test]
fn a_buddy_flooding_have_entries_is_closed_before_decoding() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let pid = server.child.id();
    let laptop = crate::util::Home::new();
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    laptop.new_id(&["add", "Email Sam"]);
    let invited = laptop.ok(&["buddy", "invite", "Jo"]);
    let share_token = crate::util::share_token_of(&invited);
    let haves = scale(1_000_000, 4_000_000);
    let mut payload = vec![0x42, 0, 0];
    let mut n = haves as u64;
    while n >= 0x80 {
        payload.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    payload.push(n as u8);
    payload.extend(std::iter::repeat_n(0u8, haves * 2));
    payload.push(0);
    let (baseline, reason, after) = runtime().block_on(async {
        let baseline = status_kib(pid, "VmHWM:");
        let mut ws = connect(&server.addr, Some(&share_token)).await.unwrap();
        let s = join(&mut ws, "jo").await;
        let started = std::time::Instant::now();
        let reason = attack(&mut ws, &s, &DocumentId::random(), vec![payload]).await;
        eprintln!("{haves} empty haves refused in {:?}", started.elapsed());
        (baseline, reason, status_kib(pid, "VmHWM:"))
    });
    assert!(reason.contains("have"), "closed with {reason:?}");
    assert!(reason.contains("over the limit"), "closed with {reason:?}");
    eprintln!(
        "server peak RSS {} MiB before, {} MiB after",
        baseline / 1024,
        after / 1024
    );
    // Decoded, a million haves take about 75 MB.
    assert!(
        after < baseline + 32 * 1024,
        "server memory peaked at {} MiB from {} MiB",
        after / 1024,
        baseline / 1024
    );
    // And the owner still syncs.
    laptop.ok(&["sync"]);
}

/// An account holder sending `sync` for ids nobody stored: each is answered as an empty
/// document would answer, and nothing is opened, so the server's memory stays where it
/// was (each used to open a live document, held while the socket lived).
#[test]
fn sync_messages_for_unknown_documents_open_nothing() {
    use automerge::sync::{State, SyncDoc};
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let pid = server.child.id();
    let ids = scale(20_000, 100_000);
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    tx.put(ROOT, "k", "v").unwrap();
    tx.commit();
    let first = doc
        .generate_sync_message(&mut State::new())
        .unwrap()
        .encode();
    let bob = add_account(data.path(), "bob");
    let (before, after, answers) = runtime().block_on(async {
        // Bob's document, stored.
        let theirs = DocumentId::random();
        let mut bobs = connect(&server.addr, Some(&bob)).await.unwrap();
        let b = join(&mut bobs, "bob").await;
        let mut bob_doc = Automerge::new();
        let mut tx = bob_doc.transaction();
        tx.put(ROOT, "secret", "plans").unwrap();
        tx.commit();
        sync(&mut bobs, "bob", &b, &theirs, &mut bob_doc, "sync")
            .await
            .unwrap();
        let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
        let s = join(&mut ws, "prober").await;
        // Another account's document is answered exactly like an unknown one.
        let mut answers_for = Vec::new();
        for id in [theirs, DocumentId::random()] {
            send_sync(&mut ws, "prober", &s, &id, first.clone())
                .await
                .unwrap();
            answers_for.push(sync_answer(&mut ws).await);
        }
        assert_eq!(answers_for[0], answers_for[1]);
        let before = rss_kib(pid);
        let mut answers = 0;
        for batch in 0..ids / 100 {
            for _ in 0..100 {
                send_sync(&mut ws, "prober", &s, &DocumentId::random(), first.clone())
                    .await
                    .unwrap();
            }
            for _ in 0..100 {
                let reply = SyncMessage::decode(&sync_answer(&mut ws).await).unwrap();
                assert!(reply.heads.is_empty(), "batch {batch}: {reply:?}");
                answers += 1;
            }
        }
        (before, rss_kib(pid), answers)
    });
    eprintln!(
        "{answers} unknown ids answered; server RSS {} MiB before, {} MiB after",
        before / 1024,
        after / 1024
    );
    assert_eq!(answers, ids);
    assert!(
        after < before + 16 * 1024,
        "server memory grew from {} to {} MiB",
        before / 1024,
        after / 1024
    );
}
