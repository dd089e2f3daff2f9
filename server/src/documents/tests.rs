//! The actors and the registry under test: slow, failing and panicking storage, peers
//! that stop reading, compaction under writes.

use super::*;
use automerge::Automerge;

use super::batch::{PENDING_BYTES, STARVED_AFTER};
use automerge::sync::{State as SyncState, SyncDoc};
use automerge::transaction::Transactable;
use nudge_store::{Location, MemoryStore, OpenOptions, Store};
use nudge_testkit::faulty::Faulty;

pub(super) struct Conn {
    pub(super) rx: mpsc::Receiver<Event>,
    pub(super) doc: Automerge,
    state: SyncState,
    kick: Arc<Notify>,
}

pub(super) async fn open(actor: &mpsc::Sender<DocCommand>, conn: PeerKey) -> Conn {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let kick = Arc::new(Notify::new());
    actor
        .send(DocCommand::Open {
            conn,
            access: Access::ReadWrite,
            tx,
            kick: kick.clone(),
        })
        .await
        .unwrap();
    Conn {
        rx,
        doc: Automerge::new(),
        state: SyncState::new(),
        kick,
    }
}

/// Syncs until the connection's document has the server's heads and they cover `want`.
pub(super) async fn sync_until(
    actor: &mpsc::Sender<DocCommand>,
    conn: PeerKey,
    c: &mut Conn,
    want: &[automerge::ChangeHash],
) {
    for _ in 0..50 {
        if let Some(m) = c.doc.generate_sync_message(&mut c.state) {
            actor
                .send(DocCommand::Sync { conn, message: m })
                .await
                .unwrap();
        }
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), c.rx.recv()).await;
        match next {
            Ok(Some(Event::Sync { data, .. })) => {
                let m = automerge::sync::Message::decode(&data).unwrap();
                let covered = want.iter().all(|h| m.heads.contains(h));
                c.doc.receive_sync_message(&mut c.state, m).unwrap();
                if covered && want.iter().all(|h| c.doc.get_heads().contains(h)) {
                    return;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("no agreement");
}

/// Answers what the server sends `c` until it is quiet for `quiet`; the heads of the
/// last message heard, if any.
pub(super) async fn settle(
    actor: &mpsc::Sender<DocCommand>,
    conn: PeerKey,
    c: &mut Conn,
    quiet: std::time::Duration,
) -> Option<Vec<automerge::ChangeHash>> {
    let mut last = None;
    loop {
        match tokio::time::timeout(quiet, c.rx.recv()).await {
            Ok(Some(Event::Sync { data, .. })) => {
                let m = automerge::sync::Message::decode(&data).unwrap();
                last = Some(m.heads.clone());
                c.doc.receive_sync_message(&mut c.state, m).unwrap();
                if let Some(reply) = c.doc.generate_sync_message(&mut c.state) {
                    actor
                        .send(DocCommand::Sync {
                            conn,
                            message: reply,
                        })
                        .await
                        .unwrap();
                }
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => return last,
        }
    }
}

/// Sends what `c` has for the server.
async fn send(actor: &mpsc::Sender<DocCommand>, conn: PeerKey, c: &mut Conn) {
    let message = c.doc.generate_sync_message(&mut c.state).unwrap();
    actor
        .send(DocCommand::Sync { conn, message })
        .await
        .unwrap();
}

/// Writes one change on `c` and sends it.
pub(super) async fn write_and_send(
    actor: &mpsc::Sender<DocCommand>,
    conn: PeerKey,
    c: &mut Conn,
    n: i64,
) {
    let mut tx = c.doc.transaction();
    tx.put(automerge::ROOT, format!("k{n}"), n).unwrap();
    tx.commit();
    send(actor, conn, c).await;
}

/// A registry over `store`, its accounts in memory.
fn registry(store: Arc<dyn DocStore>, metrics: Arc<Metrics>) -> Arc<Documents> {
    let records = Arc::new(MemoryStore::new());
    let accounts = Accounts::open(&(records.clone() as _), records.as_ref()).unwrap();
    Arc::new(Documents::new(
        store,
        accounts,
        metrics,
        std::time::Duration::from_secs(30),
        std::time::Duration::from_secs(300),
    ))
}

/// Waits (up to 5 s) until `b`, answering the server, holds `heads`.
async fn until_holds(
    actor: &mpsc::Sender<DocCommand>,
    conn: PeerKey,
    b: &mut Conn,
    heads: &[automerge::ChangeHash],
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.doc.get_heads() != heads {
        assert!(
            std::time::Instant::now() < deadline,
            "the change never reached the other device"
        );
        settle(actor, conn, b, std::time::Duration::from_millis(20)).await;
    }
}

/// Waits (up to 5 s), answering the server, until the last message `c` heard carries
/// `heads`.
async fn until_heard(
    actor: &mpsc::Sender<DocCommand>,
    conn: PeerKey,
    c: &mut Conn,
    heads: &[automerge::ChangeHash],
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut last = None;
    while last.as_deref() != Some(heads) {
        assert!(
            std::time::Instant::now() < deadline,
            "heard {last:?}, never {heads:?}"
        );
        if let Some(heard) = settle(actor, conn, c, std::time::Duration::from_millis(20)).await {
            last = Some(heard);
        }
    }
}

/// Waits (up to 5 s) until `done` holds; `what` says what never happened otherwise.
async fn until(mut done: impl FnMut() -> bool, what: &str) {
    nudge_testkit::wait::until_async(std::time::Duration::from_secs(5), what, || {
        std::future::ready(done())
    })
    .await;
}

async fn until_flushes(store: &Faulty, n: usize) {
    until(|| store.flushes() >= n, &format!("flush {n} never started")).await;
}

/// A document over a store whose flushes each wait for a `()` on the returned sender,
/// with two devices syncing it.
async fn gated_pair() -> (
    Arc<Faulty>,
    DocumentId,
    std::sync::mpsc::Sender<()>,
    mpsc::Sender<DocCommand>,
    Conn,
    Conn,
) {
    let (store, release) = Faulty::over(Arc::new(MemoryStore::new())).gated_flushes();
    let store = Arc::new(store);
    let id = DocumentId::random();
    let (actor, a, b) = pair_on(store.clone(), id).await;
    (store, id, release, actor, a, b)
}

/// A pair of devices on a store that flushes at once.
async fn pair() -> (mpsc::Sender<DocCommand>, Conn, Conn) {
    pair_on(Arc::new(MemoryStore::default()), DocumentId::random()).await
}

/// Two devices on document `id` over `store`, each through its first exchange.
async fn pair_on(
    store: Arc<dyn DocStore>,
    id: DocumentId,
) -> (mpsc::Sender<DocCommand>, Conn, Conn) {
    let documents = registry(store, Arc::default());
    let actor = documents.get(id).await.unwrap();
    let quiet = std::time::Duration::from_millis(100);
    let mut a = open(&actor, 1).await;
    let mut b = open(&actor, 2).await;
    settle(&actor, 1, &mut a, quiet).await;
    settle(&actor, 2, &mut b, quiet).await;
    (actor, a, b)
}

/// Whether the connection is told to close (as too slow) within `within`.
async fn kicked(kick: &Notify, within: std::time::Duration) -> bool {
    tokio::time::timeout(within, kick.notified()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_stops_reading_is_disconnected() {
    let (actor, mut a, b) = pair().await;
    for n in 0..CHANNEL as i64 + 8 {
        write_and_send(&actor, 1, &mut a, n).await;
        let want = a.doc.get_heads();
        until_heard(&actor, 1, &mut a, &want).await;
    }
    assert!(kicked(&b.kick, std::time::Duration::from_secs(5)).await);
}

/// A connection that has just ended is not a slow reader: a relay to it drops it
/// without a kick (it used to be logged as "peer cannot keep up").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_to_a_connection_that_ended_drops_it_quietly() {
    let (actor, mut a, b) = pair().await;
    let Conn { rx, kick, .. } = b;
    drop(rx);
    write_and_send(&actor, 1, &mut a, 1).await;
    let want = a.doc.get_heads();
    until_heard(&actor, 1, &mut a, &want).await;
    assert!(!kicked(&kick, std::time::Duration::from_millis(200)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_flush_holds_up_acknowledgements_not_the_relay() {
    let (store, id, release, actor, mut a, mut b) = gated_pair().await;
    // The first change's flush hangs; the other device gets the change meanwhile.
    write_and_send(&actor, 1, &mut a, 1).await;
    until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
    // A second change while the first is being stored: relayed too, not acknowledged.
    write_and_send(&actor, 1, &mut a, 2).await;
    until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
    assert_eq!(store.flushes(), 1);
    assert!(a.rx.try_recv().is_err(), "acknowledged before any flush");
    // The first flush lands; the second change is still not durable: no heads yet.
    release.send(()).unwrap();
    // The landing's messages go out before the next flight starts: once the second flush
    // has begun, any acknowledgement of the first would already be waiting here.
    until_flushes(&store, 2).await;
    assert!(
        a.rx.try_recv().is_err(),
        "acknowledged while its latest change was being stored"
    );
    // The second lands: now the writer hears heads holding both, all of them stored.
    release.send(()).unwrap();
    let want = a.doc.get_heads();
    until_heard(&actor, 1, &mut a, &want).await;
    for change in a.doc.get_changes(&[]) {
        assert!(store.contains(&id, &change.hash().0).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_writing_through_every_flush_is_still_acknowledged() {
    let (store, _, release, actor, mut a, mut b) = gated_pair().await;
    write_and_send(&actor, 1, &mut a, 0).await;
    until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
    // Each time, a new change arrives before the flush under way lands.
    for i in 1..=STARVED_AFTER as i64 {
        write_and_send(&actor, 1, &mut a, i).await;
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        assert!(a.rx.try_recv().is_err(), "acknowledged at flush {i}");
        release.send(()).unwrap();
        until_flushes(&store, i as usize + 1).await;
    }
    // It has waited through STARVED_AFTER flushes: the flush now under way takes no
    // new change, and when it lands the writer hears heads holding all it sent before.
    let stored = a.doc.get_heads();
    write_and_send(&actor, 1, &mut a, 99).await;
    settle(&actor, 2, &mut b, std::time::Duration::from_millis(200)).await;
    assert_ne!(b.doc.get_heads(), a.doc.get_heads());
    release.send(()).unwrap();
    until_heard(&actor, 1, &mut a, &stored).await;
    // Then the change it held back is handled as usual.
    until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
    drop(release);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_during_a_flush_reloads_what_that_flush_stored() {
    let (_store, _, release, actor, mut a, mut b) = gated_pair().await;
    write_and_send(&actor, 1, &mut a, 1).await;
    until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
    // The other device's message panics while the change is being stored.
    actor.send(DocCommand::Panic { conn: 2 }).await.unwrap();
    release.send(()).unwrap();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), b.rx.recv()).await {
            Ok(Some(Event::Dropped(_))) => break,
            Ok(Some(_)) => {}
            other => panic!("the culprit heard {other:?}"),
        }
    }
    // The document came back from storage with the change: the writer, greeted
    // afresh, hears heads that hold it.
    a.state = SyncState::new();
    let want = a.doc.get_heads();
    until_heard(&actor, 1, &mut a, &want).await;
    drop(release);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_gathers_a_bounded_amount_while_a_flush_hangs() {
    let (_store, _, release, actor, mut a, mut b) = gated_pair().await;
    write_and_send(&actor, 1, &mut a, 0).await;
    until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
    // Changes of 20 KB that do not compress, while the first flush hangs.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut big = async |a: &mut Conn, n: usize| {
        let noise: Vec<u8> = (0..20_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let mut tx = a.doc.transaction();
        tx.put(automerge::ROOT, format!("big{n}"), noise).unwrap();
        tx.commit();
        send(&actor, 1, a).await;
    };
    let full = PENDING_BYTES.div_ceil(20_000);
    for n in 0..full {
        big(&mut a, n).await;
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
    }
    // That is as much as it gathers: the next waits for the flush.
    big(&mut a, full).await;
    settle(&actor, 2, &mut b, std::time::Duration::from_millis(200)).await;
    assert_ne!(
        b.doc.get_heads(),
        a.doc.get_heads(),
        "taken beyond the bound"
    );
    release.send(()).unwrap();
    until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
    drop(release);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_while_writes_keep_coming_snapshots_only_what_is_stored() {
    let (store, id, release, actor, mut a, mut b) = gated_pair().await;
    let round = 200;
    let send_round = |n: usize| n * round;
    // Messages of 200 changes (logged one by one), each arriving while the one before
    // is being stored.
    let write_round = async |a: &mut Conn, r: usize| {
        for n in send_round(r)..send_round(r + 1) {
            let mut tx = a.doc.transaction();
            tx.put(automerge::ROOT, format!("k{n}"), n as i64).unwrap();
            tx.commit();
        }
        send(&actor, 1, a).await;
    };
    write_round(&mut a, 0).await;
    until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
    for r in 1..6 {
        write_round(&mut a, r).await;
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        release.send(()).unwrap();
        until_flushes(&store, r + 1).await;
    }
    // 1,000 changes are stored and compaction is due, with round 5 being stored: the
    // document takes no new change until it lands, then compacts the 1,200 it holds.
    let compacted = a.doc.get_heads();
    write_round(&mut a, 6).await;
    settle(&actor, 2, &mut b, std::time::Duration::from_millis(200)).await;
    assert_ne!(b.doc.get_heads(), a.doc.get_heads(), "taken while draining");
    release.send(()).unwrap();
    until_heard(&actor, 1, &mut a, &compacted).await;
    until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
    release.send(()).unwrap();
    let want = a.doc.get_heads();
    until_heard(&actor, 1, &mut a, &want).await;
    // The snapshot holds the 1,200 changes stored when it was taken; the round after
    // it is in the log, once.
    let stored = store.load(&id).unwrap().unwrap();
    assert!(stored.snapshot.is_some());
    assert_eq!(store.changes_since_snapshot(&id).unwrap(), round);
    assert_eq!(stored.position, send_round(7) as u64);
    let reloaded = Automerge::load(&stored.concat()).unwrap();
    assert_eq!(reloaded.get_heads(), a.doc.get_heads());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_loads_slowly_holds_up_only_those_asking_for_it() {
    let slow = DocumentId::random();
    let (store, release) = Faulty::over(Arc::new(MemoryStore::new())).gated_load(slow);
    let store = Arc::new(store);
    let documents = registry(store.clone(), Arc::new(Metrics::default()));
    // Two connections ask for the slow document; its load hangs.
    let first = tokio::spawn({
        let documents = documents.clone();
        async move { documents.get(slow).await }
    });
    let second = tokio::spawn({
        let documents = documents.clone();
        async move { documents.get(slow).await }
    });
    until(|| store.gated_loads() > 0, "the slow load never started").await;
    // Meanwhile another document opens and syncs as usual.
    let other = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        documents.get(DocumentId::random()),
    )
    .await
    .expect("another document waited for the slow load")
    .unwrap();
    let mut c = open(&other, 1).await;
    let mut tx = c.doc.transaction();
    tx.put(automerge::ROOT, "k", 1).unwrap();
    tx.commit();
    let heads = c.doc.get_heads();
    sync_until(&other, 1, &mut c, &heads).await;
    assert!(!first.is_finished() && !second.is_finished());
    // Let the load finish: both get the same actor, from one load.
    release.send(()).unwrap();
    let (a, b) = (
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    );
    assert!(a.same_channel(&b));
    assert_eq!(store.gated_loads(), 1);
}

#[tokio::test]
async fn a_panic_in_one_document_closes_only_its_culprit_and_reloads_from_storage() {
    let documents = registry(Arc::new(MemoryStore::new()), Arc::new(Metrics::default()));
    let id = DocumentId::random();
    let other_id = DocumentId::random();
    let actor = documents.get(id).await.unwrap();
    let other = documents.get(other_id).await.unwrap();
    let mut good = open(&actor, 1).await;
    let mut tx = good.doc.transaction();
    tx.put(automerge::ROOT, "k", 1).unwrap();
    tx.commit();
    let first = good.doc.get_heads();
    sync_until(&actor, 1, &mut good, &first).await;

    let mut culprit = open(&actor, 2).await;
    let mut bystander = open(&other, 3).await;
    actor.send(DocCommand::Panic { conn: 2 }).await.unwrap();
    // The culprit is told and dropped (its connection then closes).
    loop {
        match culprit.rx.recv().await {
            Some(Event::Dropped(message)) => {
                assert!(message.contains("could not handle"), "{message}");
                break;
            }
            Some(_) => {}
            None => panic!("the culprit heard nothing"),
        }
    }
    // The document, reloaded from storage, still serves the other connection.
    let mut tx = good.doc.transaction();
    tx.put(automerge::ROOT, "k", 2).unwrap();
    tx.commit();
    let second = good.doc.get_heads();
    good.state = SyncState::new();
    sync_until(&actor, 1, &mut good, &second).await;
    assert!(!actor.is_closed());
    // And other documents never noticed.
    let mut tx = bystander.doc.transaction();
    tx.put(automerge::ROOT, "x", 1).unwrap();
    tx.commit();
    let heads = bystander.doc.get_heads();
    sync_until(&other, 3, &mut bystander, &heads).await;
}

#[tokio::test]
async fn a_big_batch_is_stored_as_one_snapshot_and_reloads_whole() {
    let store_dir = tempfile::tempdir().unwrap();
    let location = Location::Folder(store_dir.path().to_path_buf());
    let store = Store::open(&location, &OpenOptions::default())
        .unwrap()
        .docs();
    let metrics = Arc::new(Metrics::default());
    let documents = registry(store.clone(), metrics.clone());
    let id = DocumentId::random();
    let actor = documents.get(id).await.unwrap();
    let mut c = open(&actor, 1).await;
    // A few small changes first (stored one by one), then a big batch in one message.
    let put = |c: &mut Conn, n: usize| {
        let mut tx = c.doc.transaction();
        tx.put(automerge::ROOT, format!("k{n}"), n as i64).unwrap();
        tx.commit();
    };
    for n in 0..3 {
        put(&mut c, n);
    }
    let heads = c.doc.get_heads();
    sync_until(&actor, 1, &mut c, &heads).await;
    assert_eq!(store.changes_since_snapshot(&id).unwrap(), 3);
    let big = nudge_protocol::SNAPSHOT_BATCH + 200;
    for n in 3..3 + big {
        put(&mut c, n);
    }
    let heads = c.doc.get_heads();
    sync_until(&actor, 1, &mut c, &heads).await;
    // Acknowledged means stored: as a snapshot holding all of it, no log left over.
    let stored = store.load(&id).unwrap().unwrap();
    assert!(stored.snapshot.is_some());
    assert!(
        stored.changes.is_empty(),
        "{} log entries",
        stored.changes.len()
    );
    assert_eq!(stored.position, (3 + big) as u64);
    let reloaded = Automerge::load(&stored.concat()).unwrap();
    assert_eq!(reloaded.get_heads(), c.doc.get_heads());
    assert_eq!(reloaded.get_changes(&[]).len(), 3 + big);
    for hash in c.doc.get_changes(&[]).iter().map(|c| c.hash()) {
        assert!(store.contains(&id, &hash.0).unwrap());
    }
    // Small changes after it go to the log again.
    put(&mut c, 99_999);
    let heads = c.doc.get_heads();
    sync_until(&actor, 1, &mut c, &heads).await;
    // Not appended change by change and compacted after: nothing needed compacting. (The
    // actor compacts after a landing before it takes the next message, so by now any
    // compaction of the big batch would have run.)
    assert_eq!(metrics.compactions.get(), 0);
    assert_eq!(store.changes_since_snapshot(&id).unwrap(), 1);
    assert_eq!(store.position(&id).unwrap(), (4 + big) as u64);
}
