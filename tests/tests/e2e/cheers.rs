//! A buddy who cheers back, through the real binaries: `nudge cheer` reaches the owner's
//! `week`, `review` and `nudge cheers` after a sync; the server takes only well-formed
//! cheers, 10 an hour per share; the owner's journal is never written; revoking the share
//! stops its cheers.

use serde_json::Value;

use crate::util::{Home, Server, add_account, share_token_of};

/// A raw cheer: the HTTP status and body.
fn post(addr: &str, token: &str, body: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(format!("http://{addr}/v1/shares/{token}/cheers"))
        .header("Content-Type", "application/json")
        .send(body.to_owned())
        .unwrap();
    (
        response.status().as_u16(),
        response.body_mut().read_to_string().unwrap(),
    )
}

fn changes(home: &Home) -> usize {
    home.json(&["history", "--json"]).as_array().unwrap().len()
}

#[test]
fn a_buddys_cheers_reach_the_owner_and_never_the_journal() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let mut laptop = Home::new();
    // The server stamps cheers with its own (real) clock; the review counts them by the
    // owner's week, so the owner's clock is the real one too.
    laptop.now = jiff::Timestamp::now().to_string();
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    laptop.ok(&["log", "Called Priya", "+teaching"]);
    laptop.ok(&["sync"]);
    let invited = laptop.ok(&["buddy", "invite", "Jo", "--scope", "counts"]);
    let link = invited.lines().last().unwrap().to_owned();
    let share = share_token_of(&invited);
    laptop.ok(&["sync"]);
    let journal_changes = changes(&laptop);
    let jo = Home::new();
    jo.ok(&["follow", &link, "--as", "ana"]);

    let out = jo.ok(&["cheer", "ana", "Great week!"]);
    assert!(out.contains("Cheered ana"), "{out}");
    // Refused before anything is sent, and by the server on its own.
    let err = jo.fails(1, &["cheer", "ana", "   "]);
    assert!(err.contains("the cheer is empty"), "{err}");
    let err = jo.fails(1, &["cheer", "ana", &"a".repeat(501)]);
    assert!(err.contains("at most 500 characters"), "{err}");
    let (status, body) = post(&server.addr.to_string(), &share, r#"{"text":"hi\u0007"}"#);
    assert_eq!(
        (status, body.trim()),
        (400, "a cheer is text: it may not hold control characters")
    );
    let (status, _) = post(&server.addr.to_string(), &share, "garbage");
    assert_eq!(status, 400);
    let (status, _) = post(
        &server.addr.to_string(),
        &share,
        &format!(r#"{{"text":"{}"}}"#, "b".repeat(501)),
    );
    assert_eq!(status, 400);
    // Ten an hour per share: nine more go, the eleventh does not.
    for i in 2..=10 {
        let (status, body) = post(
            &server.addr.to_string(),
            &share,
            &format!(r#"{{"text":"Cheer {i}"}}"#),
        );
        assert_eq!(status, 201, "{body}");
    }
    let err = jo.fails(5, &["cheer", "ana", "One more!"]);
    assert!(err.contains("at most 10 cheers an hour"), "{err}");

    // The owner hears them after a sync; the journal holds no change of the buddy's.
    laptop.ok(&["sync"]);
    assert_eq!(
        changes(&laptop),
        journal_changes,
        "a cheer never writes the journal"
    );
    let week = laptop.ok(&["week"]);
    assert!(
        week.contains("10 new cheers · Jo said: \"Cheer 10\""),
        "{week}"
    );
    let all = laptop.json(&["cheers", "--json"]);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 10);
    assert_eq!(all[9]["text"], "Great week!");
    assert_eq!(all[9]["from"], "Jo");
    assert!(all.iter().all(|c| c["new"] == true));
    // Seen now: `week` stops announcing them; the review of the week keeps them.
    let again = laptop.json(&["cheers", "--json"]);
    assert!(again.as_array().unwrap().iter().all(|c| c["new"] == false));
    assert!(!laptop.ok(&["week"]).contains("new cheer"));
    let review: Value = laptop.json(&["review", "--json"]);
    assert_eq!(review["cheers"].as_array().unwrap().len(), 10, "{review}");

    // Revoked: its cheers stop; those received stay.
    laptop.ok(&["buddy", "revoke", "Jo"]);
    let err = jo.fails(1, &["cheer", "ana", "Still there?"]);
    assert!(err.contains("stopped sharing"), "{err}");
    let (status, _) = post(&server.addr.to_string(), &share, r#"{"text":"sneaky"}"#);
    assert_eq!(status, 404);
    laptop.ok(&["sync"]);
    assert_eq!(
        laptop.json(&["cheers", "--json"]).as_array().unwrap().len(),
        10
    );
}

#[test]
fn nobody_writes_a_cheers_document_over_the_wire_not_even_its_owner() {
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};

    use crate::server::{connect, forged_refusal, join, runtime, sync};

    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = Home::new();
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    laptop.ok(&["log", "Called Priya"]);
    laptop.ok(&["sync"]);
    let invited = laptop.ok(&["buddy", "invite", "Jo"]);
    let share = share_token_of(&invited);
    let (status, _) = post(&server.addr.to_string(), &share, r#"{"text":"Go!"}"#);
    assert_eq!(status, 201);
    let id = share.parse::<nudge_protocol::Token>().unwrap();
    let cheers = nudge_protocol::cheers_doc(id.id());
    runtime().block_on(async {
        // The owner's own account token reads it...
        let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
        let server_id = join(&mut ws, "owner").await;
        let mut doc = Automerge::new();
        sync(&mut ws, "owner", &server_id, &cheers, &mut doc, "request")
            .await
            .unwrap();
        assert_eq!(nudge_journal::cheers::read(&doc).len(), 1);
        // ...and may not write it: a forged change is refused out loud.
        let told = forged_refusal(&mut ws, "owner", &server_id, &cheers, &doc, |tx| {
            tx.put(ROOT, "kind", "hacked").unwrap();
        })
        .await;
        assert!(told.contains("read-only"), "{told:?}");
    });
    // Still a cheers document with its one cheer.
    laptop.ok(&["sync"]);
    let all = laptop.json(&["cheers", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
}
