//! `DocSession` under test: its durability rule (no heads before their changes are
//! stored), relays, read-only peers, big batches and pending dependencies.

use super::*;
use automerge::ROOT;
use automerge::transaction::Transactable;

/// A client replica talking to the session as peer `key`.
struct Client {
    doc: Automerge,
    state: SyncState,
}

impl Client {
    fn new() -> Self {
        Self {
            doc: Automerge::new(),
            state: SyncState::new(),
        }
    }

    fn write(&mut self, key: &str, value: i64) {
        let mut tx = self.doc.transaction();
        tx.put(ROOT, key, value).unwrap();
        tx.commit();
    }

    fn outgoing(&mut self) -> Option<SyncMessage> {
        self.doc.generate_sync_message(&mut self.state)
    }

    fn incoming(&mut self, bytes: &[u8]) {
        let m = SyncMessage::decode(bytes).unwrap();
        self.doc.receive_sync_message(&mut self.state, m).unwrap();
    }
}

/// Adds a peer and hands it the greeting.
fn greet(session: &mut DocSession, key: PeerKey, access: Access, client: &mut Client) {
    for a in session.add_peer(key, access) {
        if let Action::Send(_, bytes) = a {
            client.incoming(&bytes);
        }
    }
}

/// The heads of every message among `actions` for `key`.
fn heads_sent(actions: &[Action], key: PeerKey) -> Vec<Vec<ChangeHash>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(k, bytes) if *k == key => Some(SyncMessage::decode(bytes).unwrap().heads),
            _ => None,
        })
        .collect()
}

/// Runs the exchange until quiet, persisting on request; returns how many persists.
fn run(
    session: &mut DocSession,
    clients: &mut BTreeMap<PeerKey, Client>,
    mut actions: Vec<Action>,
) -> usize {
    let mut persists = 0;
    for _ in 0..100 {
        for (key, c) in clients.iter_mut() {
            if let Some(m) = c.outgoing() {
                actions.extend(session.receive(*key, m));
            }
        }
        if actions.is_empty() {
            return persists;
        }
        for action in std::mem::take(&mut actions) {
            match action {
                Action::Persist(_) | Action::PersistSnapshot { .. } => {
                    persists += 1;
                    actions.extend(session.persisted());
                }
                Action::Send(key, bytes) => clients.get_mut(&key).unwrap().incoming(&bytes),
                Action::Reject(key, why) => panic!("peer {key} rejected: {why}"),
            }
        }
    }
    panic!("no quiescence");
}

#[test]
fn peers_converge_through_the_session() {
    let mut session = DocSession::new(Automerge::new());
    let mut clients: BTreeMap<PeerKey, Client> = (1..=3).map(|k| (k, Client::new())).collect();
    clients.get_mut(&1).unwrap().write("a", 1);
    clients.get_mut(&2).unwrap().write("b", 2);
    let mut actions = Vec::new();
    for k in 1..=3 {
        actions.extend(session.add_peer(k, Access::ReadWrite));
    }
    let persists = run(&mut session, &mut clients, actions);
    assert!(persists >= 2);
    let heads = session.doc().get_heads();
    for c in clients.values() {
        assert_eq!(c.doc.get_heads(), heads);
        assert!(c.doc.get(ROOT, "a").unwrap().is_some() && c.doc.get(ROOT, "b").unwrap().is_some());
    }
}

#[test]
fn changes_stored_elsewhere_reach_every_peer_and_twice_is_nothing() {
    let mut session = DocSession::new(Automerge::new());
    let mut clients: BTreeMap<PeerKey, Client> = (1..=2).map(|k| (k, Client::new())).collect();
    let mut actions = Vec::new();
    for k in 1..=2 {
        actions.extend(session.add_peer(k, Access::ReadWrite));
    }
    run(&mut session, &mut clients, actions);
    // Another server's device wrote, and that server stored it: as changes, then as the
    // whole document its compaction left.
    let mut elsewhere = Client::new();
    elsewhere.write("from", 2);
    let changes: Vec<u8> = elsewhere
        .doc
        .get_changes(&[])
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    let actions = session.absorb(&changes).unwrap();
    assert_eq!(heads_sent(&actions, 1), vec![elsewhere.doc.get_heads()]);
    assert_eq!(heads_sent(&actions, 2), vec![elsewhere.doc.get_heads()]);
    assert_eq!(
        run(&mut session, &mut clients, actions),
        0,
        "nothing to persist"
    );
    for c in clients.values() {
        assert_eq!(
            c.doc.get(ROOT, "from").unwrap().unwrap().0.as_i64(),
            Some(2)
        );
    }
    assert!(session.absorb(&elsewhere.doc.save()).unwrap().is_empty());
}

/// Exchanges messages between one client and the session until the session asks for
/// a persist or rejects; returns those actions.
fn until_persist_or_reject(
    session: &mut DocSession,
    client: &mut Client,
    key: PeerKey,
) -> Vec<Action> {
    for _ in 0..20 {
        let Some(m) = client.outgoing() else { continue };
        let actions = session.receive(key, m);
        if actions
            .iter()
            .any(|a| matches!(a, Action::Persist(_) | Action::Reject(..)))
        {
            return actions;
        }
        for a in actions {
            if let Action::Send(k, bytes) = a {
                assert_eq!(k, key);
                client.incoming(&bytes);
            }
        }
    }
    panic!("the client never delivered its change");
}

#[test]
fn the_sender_hears_nothing_before_its_changes_are_persisted_the_others_at_once() {
    let mut session = DocSession::new(Automerge::new());
    let mut client = Client::new();
    client.write("x", 1);
    greet(&mut session, 7, Access::ReadWrite, &mut client);
    // Another peer that has told us what it holds (nothing yet).
    let mut other = Client::new();
    greet(&mut session, 8, Access::ReadWrite, &mut other);
    let said = other.outgoing().expect("a first message");
    let _ = session.receive(8, said);
    let actions = until_persist_or_reject(&mut session, &mut client, 7);
    let heads = client.doc.get_heads();
    let to = |actions: &[Action], key: PeerKey| {
        actions
            .iter()
            .any(|a| matches!(a, Action::Send(k, _) if *k == key))
    };
    assert!(
        matches!(actions.first(), Some(Action::Persist(c)) if c.len() == 1),
        "{actions:?}"
    );
    // The other peer gets the change now (`relay`), with heads that include it.
    assert_eq!(actions.len(), 1, "{actions:?}");
    let actions = session.relay();
    let relayed = heads_sent(&actions, 8).contains(&heads);
    assert!(relayed, "{actions:?}");
    assert!(
        !to(&actions, 7),
        "the sender was acknowledged before the store"
    );
    // A new peer, which has not said what it holds (it may be the sender, connected
    // again, holding the change as its own), is greeted once the change is stored; the
    // sender, speaking again, still hears nothing.
    assert!(!to(&session.add_peer(9, Access::ReadWrite), 9));
    if let Some(m) = client.outgoing() {
        assert!(!to(&session.receive(7, m), 7));
    }
    assert!(session.is_waiting());
    let after = session.persisted();
    let acked = heads_sent(&after, 7).contains(&heads);
    assert!(acked, "the sender hears our heads once stored: {after:?}");
    assert!(
        to(&after, 9),
        "the new peer is greeted once stored: {after:?}"
    );
    assert!(!session.is_waiting());
}

/// A writer whose change a crashed server relayed to another device before storing it,
/// that device (which wrote `more` changes since), and the restarted server's session.
fn relayed_before_a_crash(more: i64) -> (Client, Client, DocSession) {
    let mut writer = Client::new();
    writer.write("w", 1);
    let mut reached = Client::new();
    reached.doc.merge(&mut writer.doc.clone()).unwrap();
    for i in 0..more {
        reached.write(&format!("r{i}"), i);
    }
    (writer, reached, DocSession::new(Automerge::new()))
}

/// `before`, what the writer got so far, does not acknowledge its change; once
/// everything is persisted, what it gets does.
fn acknowledged_only_once_stored(
    session: &mut DocSession,
    before: &[Action],
    acknowledges: impl Fn(&[Action]) -> bool,
) {
    assert!(
        !acknowledges(before),
        "acknowledged before stored: {before:?}"
    );
    let after = session.persisted();
    assert!(
        acknowledges(&after),
        "stored, the writer hears the heads: {after:?}"
    );
}

/// A server relayed the writer's change and crashed before storing it; restarted, it
/// gets the change from the peer the relay reached. Until it is stored, the writer
/// hears no heads covering it: it would take them for its acknowledgement.
#[test]
fn a_change_delivered_by_another_peer_is_acknowledged_to_its_writer_only_once_stored() {
    let (mut writer, mut reached, mut session) = relayed_before_a_crash(0);
    let written = writer.doc.get_heads();
    greet(&mut session, 1, Access::ReadWrite, &mut reached);
    let actions = until_persist_or_reject(&mut session, &mut reached, 1);
    assert!(matches!(actions.first(), Some(Action::Persist(c)) if c.len() == 1));
    let covers = |actions: &[Action]| heads_sent(actions, 2).contains(&written);
    // The writer connects and says what it holds, the change among it.
    let mut heard = session.add_peer(2, Access::ReadWrite);
    heard.extend(session.relay());
    for _ in 0..5 {
        let Some(m) = writer.outgoing() else { break };
        heard.extend(session.receive(2, m));
    }
    acknowledged_only_once_stored(&mut session, &heard, covers);
}

/// The same, when what the writer lacks makes the relay carry the whole document
/// (Automerge then records every hash as sent, the writer's own change too).
#[test]
fn a_whole_document_relay_does_not_acknowledge_its_receivers_change_before_stored() {
    let (mut writer, mut reached, mut session) = relayed_before_a_crash(10);
    // The writer connects first and says what it holds, before it sends anything (its
    // first message, before it heard ours).
    let _ = session.add_peer(2, Access::ReadWrite);
    let said = writer.outgoing().expect("a first message");
    assert!(said.changes.is_empty());
    let _ = session.receive(2, said);
    // The other device delivers the writer's change with ten of its own.
    greet(&mut session, 1, Access::ReadWrite, &mut reached);
    let actions = until_persist_or_reject(&mut session, &mut reached, 1);
    assert!(matches!(actions.first(), Some(Action::Persist(c)) if c.len() == 11));
    let to_writer = |actions: &[Action]| heads_sent(actions, 2).iter().any(|h| !h.is_empty());
    let relayed = session.relay();
    acknowledged_only_once_stored(&mut session, &relayed, to_writer);
}

#[test]
fn a_read_only_peer_cannot_change_the_document() {
    let mut base = Automerge::new();
    let mut tx = base.transaction();
    tx.put(ROOT, "owner", 1).unwrap();
    tx.commit();
    let mut session = DocSession::new(base.fork());
    let mut reader = Client {
        doc: base.fork(),
        state: SyncState::new(),
    };
    greet(&mut session, 5, Access::ReadOnly, &mut reader);
    reader.write("intruder", 1);
    let heads = session.doc().get_heads();
    let actions = until_persist_or_reject(&mut session, &mut reader, 5);
    assert!(
        matches!(actions.as_slice(), [Action::Reject(5, why)] if why.contains("read-only")),
        "{actions:?}"
    );
    assert_eq!(session.doc().get_heads(), heads, "nothing applied");
}

/// A sync message that carries `changes` and nothing else.
fn carrying(changes: &[Change]) -> SyncMessage {
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
        version: automerge::sync::MessageVersion::V1,
    }
}

#[test]
fn changes_whose_dependencies_never_arrive_are_dropped_and_their_sender_closed() {
    let mut session = DocSession::new(Automerge::new());
    let _ = session.add_peer(1, Access::ReadWrite);
    let _ = session.add_peer(2, Access::ReadWrite);
    // The hostile peer sends changes whose first change (their dependency) never comes.
    let mut hostile = Client::new();
    hostile.write("root", 0);
    for i in 0..MAX_DANGLING_MESSAGES + 1 {
        hostile.write("x", i64::from(i));
    }
    let changes = hostile.doc.get_changes(&[]);
    let mut last = Vec::new();
    for i in 0..=MAX_DANGLING_MESSAGES as usize {
        last = session.receive(1, carrying(&changes[i + 1..i + 2]));
        if i < MAX_DANGLING_MESSAGES as usize {
            assert!(
                !last.iter().any(|a| matches!(a, Action::Reject(..))),
                "message {i}: {last:?}"
            );
            assert!(session.missing_dependencies() > 0);
        }
    }
    assert!(
        matches!(last.as_slice(), [Action::Reject(1, why)] if why.contains("never arrived")),
        "{last:?}"
    );
    assert_eq!(
        session.missing_dependencies(),
        0,
        "the waiting changes are gone"
    );
    assert!(session.doc().get_heads().is_empty(), "nothing applied");
    // The other peer goes on as before.
    let mut honest = BTreeMap::from([(2, Client::new())]);
    honest.get_mut(&2).unwrap().write("y", 1);
    assert_eq!(run(&mut session, &mut honest, Vec::new()), 1);
}

/// A peer whose changes are being stored hears nothing, so it cannot learn that we
/// lack a dependency of what it goes on sending (its bloom filter matched one we do
/// not have): it is not closed for that, and the dependency completes them later.
#[test]
fn a_peer_is_not_closed_for_dependencies_while_it_hears_nothing_from_us() {
    let mut session = DocSession::new(Automerge::new());
    let _ = session.add_peer(1, Access::ReadWrite);
    let mut peer = Client::new();
    peer.write("a", 1);
    peer.write("skipped", 2);
    for i in 0..=MAX_DANGLING_MESSAGES {
        peer.write("b", i64::from(i));
    }
    let changes = peer.doc.get_changes(&[]);
    let first = session.receive(1, carrying(&changes[..1]));
    assert!(matches!(first.as_slice(), [Action::Persist(c)] if c.len() == 1));
    for (i, change) in changes[2..].iter().enumerate() {
        let actions = session.receive(1, carrying(std::slice::from_ref(change)));
        assert!(actions.is_empty(), "message {i}: {actions:?}");
    }
    let _ = session.persisted();
    let completed = session.receive(1, carrying(&changes[1..2]));
    assert!(
        matches!(completed.as_slice(), [Action::Persist(c)] if c.len() == changes.len() - 1),
        "{completed:?}"
    );
}

#[test]
fn a_peer_sending_megabytes_of_changes_that_cannot_apply_is_closed() {
    let mut session = DocSession::new(Automerge::new());
    let _ = session.add_peer(1, Access::ReadWrite);
    let mut hostile = Client::new();
    hostile.write("root", 0);
    for i in 0..3 {
        let mut tx = hostile.doc.transaction();
        tx.put(ROOT, format!("big{i}"), "x".repeat(3 << 20))
            .unwrap();
        tx.commit();
    }
    let changes = hostile.doc.get_changes(&[]);
    assert_eq!(changes.len(), 4);
    for (i, change) in changes[1..].iter().enumerate() {
        let actions = session.receive(1, carrying(std::slice::from_ref(change)));
        let closed = actions.iter().any(|a| matches!(a, Action::Reject(..)));
        // Three messages of 3 MiB are over the bound; two are not.
        assert_eq!(closed, i == 2, "message {i}: {actions:?}");
    }
    assert_eq!(session.missing_dependencies(), 0);
}

/// Changes one peer left waiting for their dependencies count against that peer only:
/// another, sending changes we already have meanwhile, is not closed for them.
#[test]
fn only_the_peer_whose_changes_wait_is_closed_for_them() {
    let mut base = Client::new();
    base.write("base", 0);
    let mut server = Automerge::new();
    server.merge(&mut base.doc.clone()).unwrap();
    let mut session = DocSession::new(server);
    let _ = session.add_peer(1, Access::ReadWrite);
    let _ = session.add_peer(2, Access::ReadWrite);
    let mut hostile = Client::new();
    hostile.write("root", 0);
    hostile.write("x", 1);
    let orphan = hostile.doc.get_changes(&[])[1].clone();
    let known = base.doc.get_changes(&[]);
    let rejected = |actions: &[Action], key: PeerKey| {
        actions
            .iter()
            .any(|a| matches!(a, Action::Reject(k, _) if *k == key))
    };
    for i in 0..=MAX_DANGLING_MESSAGES {
        let theirs = session.receive(1, carrying(std::slice::from_ref(&orphan)));
        let ours = session.receive(2, carrying(&known));
        assert!(!rejected(&ours, 2), "message {i}: {ours:?}");
        assert_eq!(
            rejected(&theirs, 1),
            i == MAX_DANGLING_MESSAGES,
            "{theirs:?}"
        );
    }
}

#[test]
fn a_dependency_sent_one_message_late_is_fine() {
    let mut session = DocSession::new(Automerge::new());
    let _ = session.add_peer(1, Access::ReadWrite);
    let mut peer = Client::new();
    peer.write("a", 1);
    peer.write("b", 2);
    let changes = peer.doc.get_changes(&[]);
    let first = session.receive(1, carrying(&changes[1..]));
    assert!(!first.iter().any(|a| matches!(a, Action::Reject(..))));
    let second = session.receive(1, carrying(&changes[..1]));
    assert!(
        matches!(second.as_slice(), [Action::Persist(c)] if c.len() == 2),
        "{second:?}"
    );
    assert_eq!(session.missing_dependencies(), 0);
}

#[test]
fn waiting_changes_go_when_their_sender_disconnects() {
    let mut session = DocSession::new(Automerge::new());
    let _ = session.add_peer(1, Access::ReadWrite);
    let mut peer = Client::new();
    peer.write("a", 1);
    peer.write("b", 2);
    let changes = peer.doc.get_changes(&[]);
    let _ = session.receive(1, carrying(&changes[1..]));
    assert!(session.missing_dependencies() > 0);
    session.remove_peer(1);
    assert_eq!(session.missing_dependencies(), 0);
}

#[test]
fn a_peer_heard_again_while_changes_are_stored_still_gets_its_acknowledgement() {
    let mut session = DocSession::new(Automerge::new());
    let mut client = Client::new();
    greet(&mut session, 1, Access::ReadWrite, &mut client);
    client.write("x", 1);
    let first = session.receive(1, client.outgoing().unwrap());
    assert!(
        matches!(first.as_slice(), [Action::Persist(_)]),
        "{first:?}"
    );
    // Before the store completes, the client speaks again: its heads, no changes.
    client.state.in_flight = false;
    let mut again = client.outgoing().unwrap();
    again.changes = Vec::<Vec<u8>>::new().into();
    assert!(
        session.receive(1, again).is_empty(),
        "nothing leaves while waiting"
    );
    let after = session.persisted();
    let heads = client.doc.get_heads();
    let acked = after.iter().any(|a| match a {
        Action::Send(1, bytes) => SyncMessage::decode(bytes).unwrap().heads == heads,
        _ => false,
    });
    assert!(acked, "the client hears our heads: {after:?}");
}

#[test]
fn a_peer_with_changes_in_a_later_batch_waits_for_that_batch() {
    let mut session = DocSession::new(Automerge::new());
    let mut writer = Client::new();
    let mut quiet = Client::new();
    for (key, c) in [(1, &mut writer), (2, &mut quiet)] {
        for a in session.add_peer(key, Access::ReadWrite) {
            if let Action::Send(_, bytes) = a {
                c.incoming(&bytes);
            }
        }
    }
    let heard = |actions: &[Action], key: PeerKey| -> Option<Vec<ChangeHash>> {
        actions.iter().find_map(|a| match a {
            Action::Send(k, bytes) if *k == key => Some(SyncMessage::decode(bytes).unwrap().heads),
            _ => None,
        })
    };
    // The writer's first change goes into batch 1, which starts to be stored.
    writer.write("a", 1);
    assert!(matches!(
        session.receive(1, writer.outgoing().unwrap()).as_slice(),
        [Action::Persist(_)]
    ));
    let first = session.seal();
    // While it is stored, the writer delivers a second change (batch 2) and the quiet
    // peer speaks without changes.
    writer.write("b", 2);
    writer.state.in_flight = false;
    assert!(matches!(
        session.receive(1, writer.outgoing().unwrap()).as_slice(),
        [Action::Persist(_)]
    ));
    let _ = session.relay();
    let _ = quiet.outgoing();
    // Batch 1 lands: the writer's newest change is not durable, so it hears nothing.
    let landed = session.persisted_through(first);
    assert_eq!(heard(&landed, 1), None, "{landed:?}");
    assert!(session.is_waiting());
    assert_eq!(session.longest_wait(), 1);
    // Batch 2 lands: now it hears heads covering both.
    let second = session.seal();
    let landed = session.persisted_through(second);
    assert_eq!(
        heard(&landed, 1),
        Some(writer.doc.get_heads()),
        "{landed:?}"
    );
    assert!(!session.is_waiting());
    assert_eq!(session.longest_wait(), 0);
}

#[test]
fn unknown_peers_are_refused() {
    let mut session = DocSession::new(Automerge::new());
    let mut client = Client::new();
    client.write("x", 1);
    let actions = session.receive(42, client.outgoing().unwrap());
    assert!(matches!(actions.as_slice(), [Action::Reject(42, _)]));
}
