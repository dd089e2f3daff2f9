//! A share view keeps no past: when the owner edits a title or removes a shift, the view is
//! built again as a new document behind the same link, the old one is deleted from the
//! server, and nothing a buddy can fetch with the link (the whole history included) holds
//! the old words; a following buddy moves to the new view at their next sync.

use automerge::Automerge;
use nudge_store::{Location, OpenOptions, Store};

use crate::server::{connect, join, runtime, sync};
use crate::util::{Account, Home, share_token_of};

/// Everything the share token can fetch of the view it opens now: the whole document,
/// every change of its history.
fn fetch_with_link(addr: &str, token: &str, view_doc: &str) -> Result<Automerge, String> {
    runtime().block_on(async {
        let mut ws = connect(addr, Some(token))
            .await
            .map_err(|e| e.to_string())?;
        let server = join(&mut ws, "curious-buddy").await;
        let mut doc = Automerge::new();
        let id = view_doc.parse().unwrap();
        sync(&mut ws, "curious-buddy", &server, &id, &mut doc, "request").await?;
        Ok(doc)
    })
}

fn shows(doc: &Automerge, words: &str) -> bool {
    doc.save_nocompress()
        .windows(words.len())
        .any(|w| w == words.as_bytes())
}

fn current_view(base: &str, token: &str) -> String {
    let text = ureq::get(format!("{base}/v1/shares/{token}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    info["doc"].as_str().unwrap().to_owned()
}

#[test]
fn an_edited_title_or_a_removed_shift_leaves_no_trace_a_buddy_can_read() {
    let Account {
        data,
        token,
        server,
        url: base,
    } = Account::start();
    let laptop = Home::new();
    laptop.remote_add(&base, &token);
    let kept = laptop.new_id(&["add", "Email Sam about UX roles", "+ux"]);
    let regret = laptop.new_id(&["add", "Apply to the job I regret", "+ux"]);
    laptop.ok(&["sync"]);
    let link = laptop.ok(&["buddy", "invite", "Jo", "--scope", "titles"]);
    let link = link.lines().last().unwrap().to_owned();
    let share = share_token_of(&link);
    let jo = Home::new();
    jo.ok(&["follow", &link, "--as", "ana"]);
    let first = current_view(&base, &share);
    let before = fetch_with_link(&server.addr, &share, &first).unwrap();
    assert!(shows(&before, "Apply to the job I regret"));

    // Growing the journal keeps the same view.
    laptop.ok(&["add", "Book a pottery class", "+pottery"]);
    laptop.ok(&["sync"]);
    assert_eq!(current_view(&base, &share), first);

    // An edit and a removal: the view is built again, behind the same link.
    laptop.ok(&["edit", &kept, "--text", "Email Sam about research roles"]);
    laptop.ok(&["rm", &regret]);
    laptop.ok(&["sync"]);
    let second = current_view(&base, &share);
    assert_ne!(second, first, "the share still shows the view with a past");
    let after = fetch_with_link(&server.addr, &share, &second).unwrap();
    assert!(shows(&after, "Email Sam about research roles"));
    assert!(shows(&after, "Book a pottery class"));
    for gone in ["Apply to the job I regret", "Email Sam about UX roles"] {
        assert!(
            !shows(&after, gone),
            "the new view's history holds {gone:?}"
        );
    }
    // The old view is gone: neither the link nor the account can open it (and the store
    // no longer has it, checked at the end).
    assert!(fetch_with_link(&server.addr, &share, &first).is_err());
    assert_eq!(
        fetch_with_link(&server.addr, &token, &first)
            .err()
            .as_deref(),
        Some("unavailable")
    );

    // The buddy moves to the new view at their next sync, and sees the new words only.
    jo.ok(&["sync"]);
    let shown = jo.ok(&["buddy", "show", "ana"]);
    assert!(shown.contains("research roles"), "{shown}");
    assert!(!shown.contains("regret"), "{shown}");
    // Another sync of the owner's changes nothing: the new view has no past to hide.
    laptop.ok(&["sync"]);
    assert_eq!(current_view(&base, &share), second);

    let mut server = server;
    server.kill9();
    let location = Location::Folder(data.path().to_path_buf());
    let store = Store::open(&location, &OpenOptions::default()).unwrap();
    assert!(store.load(&first.parse().unwrap()).unwrap().is_none());
    assert!(store.load(&second.parse().unwrap()).unwrap().is_some());
}
