//! The actors on a shared database (`follow.rs`): a node that missed another's changes
//! loses none of them, and a failed store drops a document, not the server.

use std::sync::Arc;

use automerge::Automerge;
use automerge::transaction::Transactable;
use nudge_store::{DocStore, DocumentId, Location, MemoryStore, OpenOptions, Store};
use nudge_testkit::faulty::Faulty;

use super::tests::{open, settle, sync_until, write_and_send};
use super::{Documents, Event};
use crate::accounts::Accounts;
use crate::metrics::Metrics;

/// Two nodes on one PostgreSQL database, where node 1 has not heard node 2's changes
/// (nothing forwards the announcements here): storing a big batch and compacting on node
/// 1 must lose none of node 2's changes (`follow.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_anothers_changes_loses_none_storing_a_big_batch_and_compacting() {
    let Some(cluster) = nudge_testkit::postgres::cluster().unwrap() else {
        return;
    };
    let url = cluster.database().unwrap();
    let database = || {
        let store = Store::open(&Location::Postgres(url.clone()), &OpenOptions::default())
            .expect("the database opens");
        store.docs()
    };
    let node = |store: Arc<dyn DocStore>, metrics: Arc<Metrics>| {
        let records = Arc::new(MemoryStore::new());
        let accounts = Accounts::open(&(records.clone() as _), records.as_ref()).unwrap();
        Arc::new(
            Documents::new(
                store,
                accounts,
                metrics,
                std::time::Duration::from_secs(30),
                std::time::Duration::from_secs(300),
            )
            .sharing(),
        )
    };
    let (one_metrics, two_metrics) = (Arc::new(Metrics::default()), Arc::new(Metrics::default()));
    let (one, two) = (
        node(database(), one_metrics.clone()),
        node(database(), two_metrics),
    );
    let doc = DocumentId::random();
    let (actor_one, actor_two) = (one.get(doc).await.unwrap(), two.get(doc).await.unwrap());

    // Node 2 stores five changes of b's.
    let mut b = open(&actor_two, 2).await;
    for n in 0..5 {
        write_and_send(&actor_two, 2, &mut b, n).await;
    }
    let b_heads = b.doc.get_heads();
    sync_until(&actor_two, 2, &mut b, &b_heads).await;

    // Node 1, which still holds the empty document, gets 1,200 changes of a's at once.
    let mut a = open(&actor_one, 1).await;
    for n in 0..1200 {
        let mut tx = a.doc.transaction();
        tx.put(automerge::ROOT, format!("a{n}"), n).unwrap();
        tx.commit();
    }
    let a_heads = a.doc.get_heads();
    sync_until(&actor_one, 1, &mut a, &a_heads).await;
    // Everything is stored, whichever node reads it: a's 1,200 and b's 5; and again once
    // node 1 compacted.
    let everything_stored = || {
        let stored = database().load(&doc).unwrap().unwrap();
        let all = Automerge::load(&stored.concat()).unwrap();
        use automerge::ReadDoc;
        let keys: Vec<String> = all.keys(automerge::ROOT).collect();
        assert_eq!(keys.len(), 1205, "{} keys stored", keys.len());
        assert!((0..5).all(|n| keys.contains(&format!("k{n}"))));
    };
    everything_stored();
    nudge_testkit::wait::until_async(
        std::time::Duration::from_secs(20),
        "node 1 to compact",
        || std::future::ready(one_metrics.compactions.get() > 0),
    )
    .await;
    everything_stored();
    // Node 1's copy caught up with b's on the way.
    assert!(one_metrics.caught_up.get() > 0);
}

/// On a shared database a failed store drops the document's connections, unacknowledged,
/// and leaves the server running: the next connection loads the document afresh and
/// stores once the database answers again (`Documents::fail`).
#[tokio::test]
async fn on_a_shared_database_a_failed_store_drops_the_document_not_the_server() {
    let store = Arc::new(Faulty::over(Arc::new(MemoryStore::new())));
    let records = Arc::new(MemoryStore::new());
    let accounts = Accounts::open(&(records.clone() as _), records.as_ref()).unwrap();
    let documents = Arc::new(
        Documents::new(
            store.clone(),
            accounts,
            Arc::default(),
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs(300),
        )
        .sharing(),
    );
    let id = DocumentId::random();
    let actor = documents.get(id).await.unwrap();
    let mut a = open(&actor, 1).await;
    settle(&actor, 1, &mut a, std::time::Duration::from_millis(100)).await;

    store.break_writes();
    write_and_send(&actor, 1, &mut a, 1).await;
    let told = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match a.rx.recv().await {
                Some(Event::Dropped(why)) => return why,
                Some(_) => continue,
                None => panic!("dropped without a word"),
            }
        }
    })
    .await
    .expect("the connection was never told");
    assert!(told.contains("database"), "{told}");
    assert_eq!(documents.failure(), None, "the server must not stop");
    assert_eq!(store.load(&id).unwrap(), None, "nothing was stored");

    // The database answers again: a new connection loads afresh, and stores.
    store.mend_writes();
    let actor = documents.get(id).await.unwrap();
    let mut again = open(&actor, 2).await;
    again.doc = a.doc.fork();
    let heads = again.doc.get_heads();
    sync_until(&actor, 2, &mut again, &heads).await;
    assert!(store.load(&id).unwrap().is_some());
}
