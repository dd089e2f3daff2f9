//! Faults with the real server binary: `kill -9` while several devices upload.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT, ReadDoc};
use futures_util::{SinkExt, StreamExt};
use nudge_protocol::Message;
use nudge_store::DocumentId;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::server::{Ws, connect, join, runtime, sync};
use crate::util::{Server, add_account, free_port, scale};

/// Uploads `n` changes to `id`, one at a time, recording in `acked` every change of this
/// device that the heads the server reports cover (its acknowledgement: the server tells a
/// device heads covering that device's changes only once they are stored; other devices'
/// changes it may pass on before); stops at the first error (the server went away).
/// Returns how many changes it made (the last one may not have reached the server; the
/// next upload carries it), and why it stopped early if it did.
/// A device: its document and the hashes of the changes it made itself, in order.
#[derive(Clone, Default)]
struct Device {
    doc: Arc<Mutex<Automerge>>,
    own: Arc<Mutex<Vec<ChangeHash>>>,
}

async fn upload(
    addr: String,
    token: String,
    me: String,
    id: DocumentId,
    device: Device,
    n: usize,
    acked: Arc<Mutex<HashSet<ChangeHash>>>,
) -> (usize, Option<String>) {
    let Device { doc, own } = device;
    if n == 0 {
        return (0, None);
    }
    let mut ws = match connect(&addr, Some(&token)).await {
        Ok(ws) => ws,
        Err(e) => return (0, Some(format!("{me}: connect: {e}"))),
    };
    let server = join(&mut ws, &me).await;
    let mut state = SyncState::new();
    for i in 0..n {
        {
            let mut doc = doc.lock().unwrap();
            let mut tx = doc.transaction();
            tx.put(ROOT, me.as_str(), i as i64).unwrap();
            let (hash, _) = tx.commit();
            own.lock().unwrap().extend(hash);
        }
        if let Err(why) =
            exchange(&mut ws, &me, &server, &id, (&doc, &own), &mut state, &acked).await
        {
            return (i + 1, Some(format!("{me}: change {i} of {n}: {why}")));
        }
    }
    (n, None)
}

/// Sends what there is to send and takes in replies until the socket is quiet.
async fn exchange(
    ws: &mut Ws,
    me: &str,
    server: &str,
    id: &DocumentId,
    (doc, own): (&Arc<Mutex<Automerge>>, &Arc<Mutex<Vec<ChangeHash>>>),
    state: &mut SyncState,
    acked: &Arc<Mutex<HashSet<ChangeHash>>>,
) -> Result<(), String> {
    // The server's latest heads; what they cover is worked out once the socket is quiet
    // (working it out for every message would make this client too slow a reader).
    let mut latest: Option<Vec<ChangeHash>> = None;
    loop {
        let outgoing = doc.lock().unwrap().generate_sync_message(state);
        if let Some(m) = outgoing {
            let message = Message::Sync {
                document_id: id.to_string(),
                sender_id: me.into(),
                target_id: server.into(),
                data: m.encode(),
            };
            ws.send(WsMessage::Binary(message.encode().into()))
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        match tokio::time::timeout(Duration::from_millis(3), ws.next()).await {
            Err(_) => {
                let doc = doc.lock().unwrap();
                if let Some(heads) = latest
                    && heads
                        .iter()
                        .all(|h| doc.get_change_meta_by_hash(h).is_some())
                {
                    // This device's changes the heads cover: all but those after them.
                    let after: HashSet<ChangeHash> = doc
                        .get_changes_meta(&heads)
                        .into_iter()
                        .map(|c| c.hash)
                        .collect();
                    let mut acked = acked.lock().unwrap();
                    acked.extend(own.lock().unwrap().iter().filter(|h| !after.contains(h)));
                }
                return Ok(());
            }
            Ok(Some(Ok(WsMessage::Binary(b)))) => {
                if let Ok(Message::Sync { data, .. }) = Message::decode(&b) {
                    let m = SyncMessage::decode(&data).map_err(|e| format!("decode: {e}"))?;
                    latest = Some(m.heads.clone());
                    doc.lock()
                        .unwrap()
                        .receive_sync_message(state, m)
                        .map_err(|e| format!("receive: {e}"))?;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => return Err(format!("the socket ended: {other:?}")),
        }
    }
}

/// Syncs until both sides hold the same heads (`ClientSync`'s rule, as `nudge sync`).
pub(crate) async fn full_sync(
    addr: &str,
    token: &str,
    me: &str,
    id: DocumentId,
    doc: Automerge,
) -> Automerge {
    let mut ws = connect(addr, Some(token)).await.unwrap();
    let (mut client, join_message) = nudge_protocol::ClientSync::new(me);
    ws.send(WsMessage::Binary(join_message.encode().into()))
        .await
        .unwrap();
    let limits = nudge_protocol::Limits::default();
    let mut added = false;
    while !client.is_done() {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server answers");
        let Some(Ok(WsMessage::Binary(bytes))) = next else {
            continue;
        };
        let inbound = nudge_protocol::inspect(&bytes, &limits).unwrap();
        let mut replies = client.receive(inbound).unwrap();
        if !added && client.is_established() {
            replies.extend(client.add(id, doc.clone()));
            added = true;
        }
        for reply in replies {
            ws.send(WsMessage::Binary(reply.encode().into()))
                .await
                .unwrap();
        }
    }
    client.doc(&id).unwrap().clone()
}

#[test]
fn acknowledged_changes_survive_kill_9_while_three_devices_upload() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = Server::start_at(data.path(), &listen, &[]);
    let rounds = scale(5, 20);
    let total = scale(600, 10_000);
    // Device i's share of the total, and of it what round r adds.
    let share = |i: usize| total / 3 + usize::from(i < total % 3);
    let quota = |i: usize, r: usize| share(i) * (r + 1) / rounds - share(i) * r / rounds;
    let per_device_per_round = total / (3 * rounds);
    let id = DocumentId::random();
    let acked: Arc<Mutex<HashSet<ChangeHash>>> = Arc::default();
    let own: Vec<Arc<Mutex<Vec<ChangeHash>>>> = (0..3).map(|_| Arc::default()).collect();
    let devices: Vec<Arc<Mutex<Automerge>>> = (0..3)
        .map(|_| Arc::new(Mutex::new(Automerge::new())))
        .collect();
    runtime().block_on(async {
        // The document starts on one device and reaches the others through the server.
        {
            let mut doc = devices[0].lock().unwrap();
            let mut tx = doc.transaction();
            tx.put(ROOT, "created", true).unwrap();
            tx.commit();
        }
        let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
        let s = join(&mut ws, "first").await;
        let mut first = devices[0].lock().unwrap().clone();
        sync(&mut ws, "first", &s, &id, &mut first, "sync")
            .await
            .unwrap();
        for (i, device) in devices.iter().enumerate().skip(1) {
            let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
            let me = format!("device{i}");
            let s = join(&mut ws, &me).await;
            let mut copy = Automerge::new();
            sync(&mut ws, &me, &s, &id, &mut copy, "request")
                .await
                .unwrap();
            *device.lock().unwrap() = copy;
        }
    });
    // What each device still has to upload: the round's share plus whatever the last kill
    // cut off, so that all of `total` changes get made and sent.
    let mut owed = [0usize; 3];
    let mut made = 0usize;
    // Why uploads stopped early: expected in a round with a kill, never in the last one.
    let mut stops: Vec<String> = Vec::new();
    for round in 0..=rounds {
        let last = round == rounds;
        if !last {
            for (i, o) in owed.iter_mut().enumerate() {
                *o += quota(i, round);
            }
        }
        // Somewhere within the round's upload (about 25 ms a change, each waiting for its
        // acknowledgement), different each time; the extra last round only finishes.
        let expected = per_device_per_round as u64 * 25;
        let kill_after = Duration::from_millis(50 + expected * ((round as u64 * 37) % 100) / 100);
        runtime().block_on(async {
            let tasks: Vec<_> = devices
                .iter()
                .enumerate()
                .map(|(i, doc)| {
                    tokio::spawn(upload(
                        server.addr.clone(),
                        token.clone(),
                        format!("device{i}-r{round}"),
                        id,
                        Device {
                            doc: doc.clone(),
                            own: own[i].clone(),
                        },
                        owed[i],
                        acked.clone(),
                    ))
                })
                .collect();
            if !last {
                tokio::time::sleep(kill_after).await;
                server.kill9();
            }
            for (i, task) in tasks.into_iter().enumerate() {
                let (n, stopped) = task.await.unwrap_or_else(|e| (0, Some(e.to_string())));
                owed[i] -= n;
                made += n;
                stops.extend(stopped);
            }
        });
        if last {
            break;
        }
        stops.clear();
        server = Server::start_at(data.path(), &listen, &[]);
        // Everything the server acknowledged before it died is there after the restart.
        let fetched = runtime().block_on(async {
            let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
            let s = join(&mut ws, "checker").await;
            let mut doc = Automerge::new();
            sync(&mut ws, "checker", &s, &id, &mut doc, "request")
                .await
                .unwrap();
            doc
        });
        let acked_now = acked.lock().unwrap().clone();
        let missing: Vec<_> = acked_now
            .iter()
            .filter(|h| fetched.get_change_by_hash(h).is_none())
            .collect();
        if !missing.is_empty() {
            // Keep the server's data and say whose changes they were, for the post-mortem.
            server.kill9();
            let whose: Vec<String> = missing
                .iter()
                .map(|h| {
                    let (i, k, of) = own
                        .iter()
                        .enumerate()
                        .find_map(|(i, o)| {
                            let o = o.lock().unwrap();
                            o.iter().position(|x| x == *h).map(|k| (i, k, o.len()))
                        })
                        .unwrap_or_default();
                    format!("{h} (device{i}'s change #{k} of {of})")
                })
                .collect();
            let kept = data.keep();
            std::fs::write(kept.join("lost.txt"), whose.join("\n")).unwrap();
            panic!(
                "round {round}: {} acknowledged changes lost (of {}) from document {id}; the \
                 server's data is kept in {}: {whose:?}",
                missing.len(),
                acked_now.len(),
                kept.display()
            );
        }
    }
    // And the devices converge.
    runtime().block_on(async {
        for pass in 0..2 {
            for (i, device) in devices.iter().enumerate() {
                let doc = device.lock().unwrap().clone();
                let synced =
                    full_sync(&server.addr, &token, &format!("final{pass}{i}"), id, doc).await;
                *device.lock().unwrap() = synced;
            }
        }
    });
    let heads: Vec<_> = devices
        .iter()
        .map(|d| {
            let mut h = d.lock().unwrap().get_heads();
            h.sort();
            h
        })
        .collect();
    assert_eq!(heads[0], heads[1]);
    assert_eq!(heads[1], heads[2]);
    let in_the_end = devices[0].lock().unwrap().get_changes(&[]).len();
    // Every change made reached the server and every device (the first one created it).
    assert_eq!(
        made, total,
        "the last round's uploads stopped early: {stops:?}"
    );
    assert_eq!(
        in_the_end,
        total + 1,
        "{total} changes made, {in_the_end} in the end"
    );
    eprintln!(
        "{rounds} crashes, {made} changes uploaded, {} acknowledged heads checked, \
         {in_the_end} changes in the end",
        acked.lock().unwrap().len(),
    );
}
