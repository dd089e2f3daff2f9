//! The real `nudge-server` binary on loopback: accounts, the handshake, a document pushed
//! by one client and fetched by another across a `kill -9`, and hostile clients.

use std::time::Duration;

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use futures_util::SinkExt;
use nudge_protocol::Message;
use nudge_store::DocumentId;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::util::{Server, add_account, admin, stdout};

pub(crate) use nudge_testkit::peer::{Ws, open as connect, recv};

/// Says `join` as `me`; the server's peer id (it must answer within 5 s).
pub(crate) async fn join(ws: &mut Ws, me: &str) -> String {
    tokio::time::timeout(Duration::from_secs(5), nudge_testkit::peer::join(ws, me))
        .await
        .expect("the server answered join within 5 s")
        .expect("the server answered join with peer")
}

/// Sends the changes `forge` makes on a copy of `base` to `target` as a sync message, and
/// returns the error the server answered with (empty if none came in five messages).
pub(crate) async fn forged_refusal(
    ws: &mut Ws,
    me: &str,
    server: &str,
    target: &DocumentId,
    base: &Automerge,
    forge: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> String {
    let mut forged = base.fork();
    let mut tx = forged.transaction();
    forge(&mut tx);
    tx.commit();
    let mut state = SyncState::new();
    let mut message = forged.generate_sync_message(&mut state).unwrap();
    message.changes = forged
        .get_changes(&base.get_heads())
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect::<Vec<Vec<u8>>>()
        .into();
    let sync_message = Message::Sync {
        document_id: target.to_string(),
        sender_id: me.into(),
        target_id: server.to_owned(),
        data: message.encode(),
    };
    ws.send(WsMessage::Binary(sync_message.encode().into()))
        .await
        .unwrap();
    for _ in 0..5 {
        match recv(ws, Duration::from_secs(2)).await {
            Some(WsMessage::Binary(b)) => {
                if let Ok(Message::Error { message }) = Message::decode(&b) {
                    return message;
                }
            }
            Some(WsMessage::Close(_)) | None => break,
            Some(_) => {}
        }
    }
    String::new()
}

/// Syncs `doc` with the server until the server's heads cover ours and nothing is left to
/// say. `Err` carries `doc-unavailable` or an error message.
pub(crate) async fn sync(
    ws: &mut Ws,
    me: &str,
    server: &str,
    id: &DocumentId,
    doc: &mut Automerge,
    first: &str,
) -> Result<(), String> {
    let mut state = SyncState::new();
    let mut kind = first.to_owned();
    for _ in 0..50 {
        if let Some(m) = doc.generate_sync_message(&mut state) {
            let data = m.encode();
            let (document_id, sender_id, target_id) =
                (id.to_string(), me.to_owned(), server.to_owned());
            let message = if kind == "request" {
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
            };
            kind = "sync".into();
            ws.send(WsMessage::Binary(message.encode().into()))
                .await
                .map_err(|e| e.to_string())?;
        }
        match recv(ws, Duration::from_millis(700)).await {
            Some(WsMessage::Binary(b)) => match Message::decode(&b).unwrap() {
                Message::Sync { data, .. } => {
                    let m = SyncMessage::decode(&data).unwrap();
                    let theirs = m.heads.clone();
                    doc.receive_sync_message(&mut state, m).unwrap();
                    let ours = doc.get_heads();
                    if !ours.is_empty() && ours.iter().all(|h| theirs.contains(h)) {
                        return Ok(());
                    }
                }
                Message::DocUnavailable { .. } => return Err("unavailable".into()),
                Message::Error { message } => return Err(message),
                other => panic!("unexpected {other:?}"),
            },
            Some(WsMessage::Close(frame)) => return Err(format!("closed: {frame:?}")),
            Some(_) => {}
            None => {}
        }
    }
    Err("no agreement after 50 rounds".into())
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_pushed_document_survives_kill_9_and_reaches_another_device() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "alice");
    let mut server = Server::start(data.path());
    let id = DocumentId::random();
    runtime().block_on(async {
        let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
        let server_id = join(&mut ws, "laptop").await;
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "hello", "world").unwrap();
        tx.commit();
        // Returns once the server's own heads include our change: its acknowledgement.
        sync(&mut ws, "laptop", &server_id, &id, &mut doc, "sync")
            .await
            .unwrap();
    });
    // Acknowledged, so it must survive the harshest stop.
    server.kill9();
    let server = Server::start(data.path());
    runtime().block_on(async {
        let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
        let server_id = join(&mut ws, "phone").await;
        let mut doc = Automerge::new();
        let mut state = SyncState::new();
        let request = Message::Request {
            document_id: id.to_string(),
            sender_id: "phone".into(),
            target_id: server_id.clone(),
            data: doc.generate_sync_message(&mut state).unwrap().encode(),
        };
        ws.send(WsMessage::Binary(request.encode().into()))
            .await
            .unwrap();
        for _ in 0..20 {
            if doc.get(ROOT, "hello").unwrap().is_some() {
                break;
            }
            if let Some(WsMessage::Binary(b)) = recv(&mut ws, Duration::from_secs(2)).await
                && let Message::Sync { data, .. } = Message::decode(&b).unwrap()
            {
                doc.receive_sync_message(&mut state, SyncMessage::decode(&data).unwrap())
                    .unwrap();
                if let Some(m) = doc.generate_sync_message(&mut state) {
                    let reply = Message::Sync {
                        document_id: id.to_string(),
                        sender_id: "phone".into(),
                        target_id: server_id.clone(),
                        data: m.encode(),
                    };
                    ws.send(WsMessage::Binary(reply.encode().into()))
                        .await
                        .unwrap();
                }
            }
        }
        let value = doc.get(ROOT, "hello").unwrap().map(|(v, _)| v.to_string());
        assert_eq!(value.as_deref(), Some("\"world\""));
    });
}

#[test]
fn bad_tokens_get_401_and_other_accounts_cannot_see_a_document() {
    let data = tempfile::tempdir().unwrap();
    let alice = add_account(data.path(), "alice");
    let bob = add_account(data.path(), "bob");
    let server = Server::start(data.path());
    runtime().block_on(async {
        for token in [None, Some("nudge_acct_000000000000_0000000000000000000000000000000000000000000000000000000000000000"), Some("garbage")] {
            match connect(&server.addr, token).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
                other => panic!("{token:?} was not refused: {:?}", other.map(|_| ())),
            }
        }
        let id = DocumentId::random();
        let mut ws = connect(&server.addr, Some(&alice)).await.unwrap();
        let server_id = join(&mut ws, "a").await;
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "secret", 1).unwrap();
        tx.commit();
        sync(&mut ws, "a", &server_id, &id, &mut doc, "sync").await.unwrap();
        // Bob asks for it by id: as far as he can tell, it does not exist.
        let mut ws = connect(&server.addr, Some(&bob)).await.unwrap();
        let server_id = join(&mut ws, "b").await;
        let mut empty = Automerge::new();
        assert_eq!(sync(&mut ws, "b", &server_id, &id, &mut empty, "request").await, Err("unavailable".into()));
        assert!(empty.get(ROOT, "secret").unwrap().is_none());
        // A request never creates a document either.
        let mut nothing = Automerge::new();
        let unknown = DocumentId::random();
        assert_eq!(sync(&mut ws, "b", &server_id, &unknown, &mut nothing, "request").await, Err("unavailable".into()));
    });
}

/// One more change to `doc`, synced over a long-lived connection.
async fn good_round(good: &mut Ws, server: &str, id: &DocumentId, doc: &mut Automerge, round: i64) {
    let mut tx = doc.transaction();
    tx.put(ROOT, "round", round).unwrap();
    tx.commit();
    sync(good, "good", server, id, doc, "sync").await.unwrap();
}

#[test]
fn garbage_closes_only_that_connection() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "alice");
    let server = Server::start_with(data.path(), &["--max-message-bytes", "4096"]);
    runtime().block_on(async {
        // A well-behaved client syncing a document before, between and after the attacks.
        let shared_doc = DocumentId::random();
        let mut good = connect(&server.addr, Some(&token)).await.unwrap();
        let good_server = join(&mut good, "good").await;
        let mut doc = Automerge::new();
        let mut round = 0;
        round += 1;
        good_round(&mut good, &good_server, &shared_doc, &mut doc, round).await;

        let mut valid = Automerge::new();
        let mut tx = valid.transaction();
        tx.put(ROOT, "k", "v").unwrap();
        tx.commit();
        let mut state = SyncState::new();
        let valid_sync = valid.generate_sync_message(&mut state).unwrap().encode();
        let truncated = {
            let whole = Message::Sync {
                document_id: DocumentId::random().to_string(),
                sender_id: "bad".into(),
                target_id: good_server.clone(),
                data: valid_sync,
            }
            .encode();
            whole[..whole.len() / 2].to_vec()
        };
        let mut unknown_type = vec![0xa2, 0x64];
        unknown_type.extend_from_slice(b"type");
        unknown_type.push(0x64);
        unknown_type.extend_from_slice(b"nope");
        unknown_type.push(0x68);
        unknown_type.extend_from_slice(b"senderId");
        unknown_type.push(0x61);
        unknown_type.extend_from_slice(b"x");
        let crafted_bloom = Message::Sync {
            document_id: DocumentId::random().to_string(),
            sender_id: "bad".into(),
            target_id: good_server.clone(),
            // A bloom filter with zero bits per entry: automerge 0.12 panics on it.
            data: vec![0x42, 0, 0, 1, 0, 3, 1, 0, 7, 0],
        }
        .encode();
        let attacks: Vec<(&str, Vec<u8>)> = vec![
            ("garbage bytes", b"\xff\x00garbage".to_vec()),
            ("truncated CBOR", truncated),
            ("an unknown message type", unknown_type),
            ("an oversized message", vec![0xa0; 10_000]),
            ("a crafted bloom filter", crafted_bloom),
        ];
        for (what, bytes) in attacks {
            let mut bad = connect(&server.addr, Some(&token)).await.unwrap();
            join(&mut bad, "bad").await;
            bad.send(WsMessage::Binary(bytes.into())).await.unwrap();
            let mut reason = None;
            for _ in 0..4 {
                match recv(&mut bad, Duration::from_secs(2)).await {
                    Some(WsMessage::Close(Some(frame))) => {
                        reason = Some(frame.reason.to_string());
                        break;
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            let reason = reason.unwrap_or_else(|| panic!("{what}: no close frame"));
            assert!(!reason.is_empty(), "{what}: closed without a reason");
            // The good client still syncs the same document, and a new one.
            round += 1;
            good_round(&mut good, &good_server, &shared_doc, &mut doc, round).await;
            let mut other = Automerge::new();
            let mut tx = other.transaction();
            tx.put(ROOT, "fine", true).unwrap();
            tx.commit();
            let mut second = connect(&server.addr, Some(&token)).await.unwrap();
            let second_server = join(&mut second, "second").await;
            sync(
                &mut second,
                "second",
                &second_server,
                &DocumentId::random(),
                &mut other,
                "sync",
            )
            .await
            .unwrap_or_else(|e| panic!("after {what}: {e}"));
        }
    });
}

#[test]
fn accounts_and_tokens_are_managed_while_the_server_runs() {
    let data = tempfile::tempdir().unwrap();
    let alice = add_account(data.path(), "alice");
    let server = Server::start(data.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("admin.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Through the running server.
    let bob = stdout(&admin(data.path(), &["account", "add", "bob"]))
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let listed = stdout(&admin(data.path(), &["account", "list"]));
    assert!(
        listed.contains("alice") && listed.contains("bob"),
        "{listed}"
    );
    let tokens = stdout(&admin(data.path(), &["token", "list"]));
    let bob_id = bob.split('_').nth(2).unwrap();
    assert!(
        tokens.contains(bob_id) && tokens.contains("bob"),
        "{tokens}"
    );
    for secret in [&alice, &bob] {
        assert!(!tokens.contains(secret.rsplit('_').next().unwrap()));
    }
    let dup = admin(data.path(), &["account", "add", "bob"]);
    assert_eq!(dup.status.code(), Some(1));
    runtime().block_on(async {
        let mut ws = connect(&server.addr, Some(&bob)).await.unwrap();
        join(&mut ws, "bobs-phone").await;
        let revoked = std::time::Instant::now();
        let said = stdout(&admin(data.path(), &["token", "revoke", bob_id]));
        assert!(said.contains("1 open connection closed"), "{said}");
        let mut reason = None;
        for _ in 0..5 {
            match recv(&mut ws, Duration::from_secs(1)).await {
                Some(WsMessage::Close(frame)) => {
                    reason = frame.map(|f| f.reason.to_string());
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        assert_eq!(reason.as_deref(), Some("token revoked"));
        assert!(revoked.elapsed() < Duration::from_secs(2));
        match connect(&server.addr, Some(&bob)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
            other => panic!("a revoked token still connects: {:?}", other.map(|_| ())),
        }
        // Removing an account needs --yes, then takes its documents and sockets along.
        let id = DocumentId::random();
        let mut ws = connect(&server.addr, Some(&alice)).await.unwrap();
        let server_id = join(&mut ws, "laptop").await;
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "k", 1).unwrap();
        tx.commit();
        sync(&mut ws, "laptop", &server_id, &id, &mut doc, "sync")
            .await
            .unwrap();
        let unconfirmed = admin(data.path(), &["account", "remove", "alice"]);
        assert_eq!(unconfirmed.status.code(), Some(1));
        let said = stdout(&admin(
            data.path(),
            &["account", "remove", "alice", "--yes"],
        ));
        assert!(
            said.contains("1 documents deleted") && said.contains("1 open connection closed"),
            "{said}"
        );
        match connect(&server.addr, Some(&alice)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
            other => panic!("a removed account still connects: {:?}", other.map(|_| ())),
        }
    });
    drop(server);
    // And straight on the folder once the server is gone.
    let listed = stdout(&admin(data.path(), &["account", "list"]));
    assert!(
        !listed.contains("alice") && listed.contains("bob"),
        "{listed}"
    );
}

#[test]
fn a_long_history_is_compacted_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "alice");
    let mut server = Server::start(data.path());
    let id = DocumentId::random();
    let changes = 1_100;
    runtime().block_on(async {
        let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
        let server_id = join(&mut ws, "laptop").await;
        let mut doc = Automerge::new();
        // In rounds of 100, so that they are logged one by one (a message with 1,000
        // changes or more is stored as a snapshot at once, with nothing to compact).
        for round in 0..changes / 100 {
            for i in round * 100..(round + 1) * 100 {
                let mut tx = doc.transaction();
                tx.put(ROOT, format!("k{i}").as_str(), i as i64).unwrap();
                tx.commit();
            }
            sync(&mut ws, "laptop", &server_id, &id, &mut doc, "sync")
                .await
                .unwrap();
        }
    });
    // Compaction follows the acknowledgement (it never delays one): wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = ureq::get(format!("http://{}/metrics", server.addr))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        if metrics.contains("nudge_compactions_total 1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no compaction: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();
    {
        use nudge_store::{Location, OpenOptions, Store};
        let location = Location::Folder(data.path().to_path_buf());
        let store = Store::open(&location, &OpenOptions::default()).unwrap();
        let stored = store.load(&id).unwrap().expect("the document is stored");
        assert!(stored.snapshot.is_some(), "the long log was compacted");
        // The last round came after the compaction.
        assert_eq!(store.changes_since_snapshot(&id).unwrap(), changes - 1_000);
    }
    let server = Server::start(data.path());
    runtime().block_on(async {
        let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
        let server_id = join(&mut ws, "phone").await;
        let mut doc = Automerge::new();
        // The phone has nothing: it asks, and syncs until it holds what the server has.
        let _ = sync(&mut ws, "phone", &server_id, &id, &mut doc, "request").await;
        assert_eq!(doc.length(ROOT), changes, "every change came back");
    });
}

#[test]
fn a_peer_id_cannot_be_squatted_by_another_credential() {
    let data = tempfile::tempdir().unwrap();
    let alice = add_account(data.path(), "alice");
    let bob = add_account(data.path(), "bob");
    let server = Server::start(data.path());
    runtime().block_on(async {
        // Bob's device has a peer id Alice learned; she claims it first and stays on.
        let mut squatter = connect(&server.addr, Some(&alice)).await.unwrap();
        join(&mut squatter, "bobs-phone").await;
        let mut phone = connect(&server.addr, Some(&bob)).await.unwrap();
        let server_id = join(&mut phone, "bobs-phone").await;
        // Bob syncs as ever; Alice sees none of it.
        let id = DocumentId::random();
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "mine", "bob").unwrap();
        tx.commit();
        sync(&mut phone, "bobs-phone", &server_id, &id, &mut doc, "sync")
            .await
            .unwrap();
        let mut empty = Automerge::new();
        let answer = sync(
            &mut squatter,
            "bobs-phone",
            &server_id,
            &id,
            &mut empty,
            "request",
        )
        .await;
        assert_eq!(answer, Err("unavailable".into()));
        // The same credential may come back with its peer id (a reconnect), too.
        drop(phone);
        let mut again = connect(&server.addr, Some(&bob)).await.unwrap();
        join(&mut again, "bobs-phone").await;
    });
}

#[test]
fn ephemeral_messages_reach_the_other_peers_of_a_document() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "alice");
    let server = Server::start(data.path());
    runtime().block_on(async {
        let id = DocumentId::random();
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "x", 1).unwrap();
        tx.commit();
        let mut a = connect(&server.addr, Some(&token)).await.unwrap();
        let server_id = join(&mut a, "a").await;
        sync(&mut a, "a", &server_id, &id, &mut doc.fork(), "sync")
            .await
            .unwrap();
        let mut b = connect(&server.addr, Some(&token)).await.unwrap();
        join(&mut b, "b").await;
        let mut b_doc = Automerge::new();
        let _ = sync(&mut b, "b", &server_id, &id, &mut b_doc, "request").await;
        let cursor = Message::Ephemeral {
            sender_id: "a".into(),
            target_id: server_id.clone(),
            count: 1,
            session_id: "presence".into(),
            document_id: id.to_string(),
            data: vec![0xa1, 0x61, 0x78, 0x01],
        };
        a.send(WsMessage::Binary(cursor.encode().into()))
            .await
            .unwrap();
        let mut relayed = None;
        for _ in 0..10 {
            match recv(&mut b, Duration::from_secs(2)).await {
                Some(WsMessage::Binary(bytes)) => {
                    if let Message::Ephemeral {
                        sender_id,
                        target_id,
                        data,
                        ..
                    } = Message::decode(&bytes).unwrap()
                    {
                        relayed = Some((sender_id, target_id, data));
                        break;
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
        assert_eq!(
            relayed,
            Some((
                "a".to_string(),
                "b".to_string(),
                vec![0xa1, 0x61, 0x78, 0x01]
            ))
        );
    });
}
