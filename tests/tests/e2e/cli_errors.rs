//! Every error path: one line that says what to do, exit 1 (2 for usage), data untouched.

use crate::util::Home;

fn one_line(stderr: &str) -> &str {
    let trimmed = stderr.trim_end();
    assert_eq!(
        trimmed.lines().count(),
        1,
        "error is not one line: {stderr}"
    );
    assert!(trimmed.starts_with("nudge: "), "{stderr}");
    trimmed
}

#[test]
fn bad_ids_are_refused_clearly() {
    let home = Home::new();
    let id = home.new_id(&["add", "Email Sam"]);
    let before = home.ok(&["export", "--json"]);
    let e = home.fails(1, &["done", "ffffffff"]);
    assert!(
        one_line(&e).contains("no shift has an id starting with"),
        "{e}"
    );
    let e = home.fails(1, &["done", "abc"]);
    assert!(one_line(&e).contains("at least 4 characters"), "{e}");
    let e = home.fails(1, &["show", "sam!"]);
    assert!(one_line(&e).contains("not a shift id"), "{e}");
    let e = home.fails(1, &["edit", &id]);
    assert!(one_line(&e).contains("nothing to change"), "{e}");
    assert_eq!(home.ok(&["export", "--json"]), before, "nothing changed");
}

#[test]
fn an_ambiguous_prefix_lists_the_shifts_it_matches() {
    let home = Home::new();
    let shift = |id: &str, text: &str| {
        serde_json::json!({
            "id": id, "text": text, "status": "planned", "created_at": "2026-12-01T10:00:00Z",
            "minutes": 5, "kind": "other", "ideas": [], "people": [],
        })
    };
    let export = serde_json::json!({
        "schema_version": 1,
        "shifts": [
            shift("abcd1111000000000000000000000000", "Email Sam"),
            shift("abcd2222000000000000000000000000", "Call Priya"),
            shift("ef012345000000000000000000000000", "Book the class"),
        ],
        "ideas": [], "people": [],
    });
    let file = home.path().join("export.json");
    std::fs::write(&file, export.to_string()).unwrap();
    home.ok(&["import", file.to_str().unwrap()]);
    let e = home.fails(1, &["done", "abcd"]);
    let line = one_line(&e);
    assert!(line.contains("matches 2 shifts"), "{e}");
    assert!(
        line.contains("abcd1 (Email Sam)") && line.contains("abcd2"),
        "{e}"
    );
    home.ok(&["done", "ABCD2"]);
    home.ok(&["done", "ef01"]);
    let e = home.fails(1, &["done", "a999"]);
    assert!(one_line(&e).contains("nudge list --all"), "{e}");
    let listed = home.ok(&["list", "--all"]);
    assert!(
        listed.contains("abcd1") && listed.contains("ef01"),
        "{listed}"
    );
}

#[test]
fn bad_values_are_refused_clearly() {
    let home = Home::new();
    let id = home.new_id(&["add", "Email Sam", "+ux"]);
    let before = home.ok(&["export", "--json"]);
    for (args, expect) in [
        (vec!["add", "x", "--minutes", "0"], "at least 1"),
        (vec!["log", "x", "--at", "someday"], "cannot read the time"),
        (
            vec!["done", id.as_str(), "--at", "25:99"],
            "cannot read the time",
        ),
        (vec!["add", "+ux"], "say what the shift is"),
        (vec!["add", "Email", "+UXs"], "+ux is: nudge add Email +ux"),
        (
            vec!["add", "Email Sam", "+Ux-s"],
            "nudge add \"Email Sam\" +ux",
        ),
        (vec!["list", "+nothing-like-it"], "no idea is called"),
        (vec!["list", "--since", "blue"], "cannot read the date"),
        (vec!["idea", "drop", "gardening"], "no idea is called"),
        (vec!["idea", "add", "ux"], "exists already"),
        (vec!["person", "show", "nobody"], "nobody is called"),
        (vec!["config", "set", "weekly_goal", "-"], "whole number"),
        (vec!["week", "--last", "0"], "--last"),
    ] {
        let e = home.fails(1, &args);
        assert!(one_line(&e).contains(expect), "{args:?}: {e}");
    }
    assert_eq!(home.ok(&["export", "--json"]), before, "nothing changed");
    // --new creates a name close to an existing one on purpose.
    home.ok(&["add", "Email", "+UXs", "--new"]);
    // A name merely near a short one is no typo: +ui is its own idea, @bea her own person.
    home.ok(&["add", "Sketch a screen", "+ui"]);
    home.ok(&["add", "Coffee", "@ben"]);
    home.ok(&["add", "Call", "@bea"]);
    let people = home.json(&["person", "list", "--json"]);
    assert_eq!(people.as_array().unwrap().len(), 2, "{people}");
}

#[test]
fn usage_errors_exit_2() {
    let home = Home::new();
    home.fails(2, &["add"]);
    home.fails(2, &["list", "--done", "--planned"]);
    home.fails(2, &["export"]);
    home.fails(2, &["frobnicate"]);
    // A value outside a fixed set (which completion offers) says which values there are.
    for args in [
        &["add", "x", "--kind", "lunch"][..],
        &["config", "set", "colour", "red"],
        &["buddy", "invite", "Jo", "--scope", "everything"],
    ] {
        let err = home.fails(2, args);
        assert!(err.contains("possible values"), "{args:?}: {err}");
    }
}

#[test]
fn undo_with_nothing_to_undo_says_so() {
    let home = Home::new();
    let e = home.fails(1, &["undo"]);
    assert!(one_line(&e).contains("nothing to undo"), "{e}");
    home.ok(&["add", "Email Sam"]);
    home.ok(&["undo"]);
    let e = home.fails(1, &["undo"]);
    assert!(one_line(&e).contains("nothing to undo"), "{e}");
}

#[test]
fn a_corrupt_store_is_named_and_left_alone() {
    let home = Home::new();
    home.ok(&["add", "Email Sam"]);
    let conf = home.path().join("store").join("conf");
    std::fs::write(&conf, b"this is not a sled config file").unwrap();
    let before = home.snapshot_files();
    let e = home.fails(1, &["list"]);
    let line = one_line(&e);
    assert!(
        line.contains(&home.path().join("store").display().to_string()),
        "{line}"
    );
    assert!(home.snapshot_files() == before, "nothing was overwritten");
}

#[test]
fn a_store_that_lost_changes_is_refused_not_silently_restarted() {
    let home = Home::new();
    home.ok(&["add", "Email Sam"]);
    let marker = home.path().join("journal.position");
    let marker_before = std::fs::read(&marker).unwrap();
    // Damage the middle of sled's log. sled recovers by cutting the log at the first bad
    // record (and zeroes what follows, see docs/storage.md), so the journal is lost from the
    // store; nudge must notice and refuse, never start a new empty journal over it.
    let db = home.path().join("store").join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let len = bytes.len();
    for b in bytes.iter_mut().skip(len / 3).take(len / 3) {
        *b ^= 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    for args in [
        &["list"][..],
        &["add", "Another"],
        &["export", "--json"],
        &["list"],
    ] {
        let e = home.fails(1, args);
        let line = one_line(&e);
        assert!(
            line.contains("restore the folder from a backup"),
            "{args:?}: {line}"
        );
        assert!(
            line.contains(&home.path().join("store").display().to_string()),
            "{line}"
        );
    }
    assert_eq!(
        std::fs::read(&marker).unwrap(),
        marker_before,
        "the marker is kept"
    );
}

#[test]
fn a_journal_from_a_newer_nudge_is_read_but_not_written() {
    use nudge_journal::automerge::ROOT;
    use nudge_journal::automerge::transaction::Transactable;
    use nudge_replica::{Replica, Touched};

    let home = Home::new();
    home.ok(&["add", "Email Sam"]);
    {
        // A newer nudge bumped the schema's major version.
        let now = nudge_journal::Now::new(jiff::Timestamp::UNIX_EPOCH, jiff::tz::TimeZone::UTC);
        let session = Replica::open(home.path(), now).unwrap();
        session
            .write(|journal, _| {
                let mut tx = journal.doc_mut().transaction();
                tx.put(ROOT, "schema_version", 2u64)?;
                tx.commit();
                Ok(((), Touched::All))
            })
            .unwrap();
    }
    let before = home.ok(&["export", "--json"]);
    assert_eq!(home.listed_ids().len(), 1, "reading still works");
    for args in [
        &["add", "Another"][..],
        &["config", "set", "weekly_goal", "5"],
        &["undo"],
    ] {
        let e = home.fails(1, args);
        assert!(one_line(&e).contains("upgrade nudge"), "{args:?}: {e}");
    }
    assert_eq!(home.ok(&["export", "--json"]), before, "nothing changed");
}

#[test]
fn the_colour_setting_is_a_device_default() {
    let home = Home::new();
    home.ok(&["add", "Email Sam"]);
    home.ok(&["config", "set", "color", "always"]);
    let out = home.cmd().args(["list"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains('\u{1b}'),
        "the setting colours a pipe"
    );
    let out = home
        .cmd()
        .args(["list", "--color", "never"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains('\u{1b}'),
        "the flag wins"
    );
    home.fails(1, &["config", "set", "color", "purple"]);
}

#[test]
fn doctor_checks_everything_and_says_what_to_do() {
    let home = Home::new();
    let healthy = home.ok(&["doctor"]);
    assert!(healthy.contains("All good."), "{healthy}");
    home.ok(&["add", "Email Sam"]);
    let healthy = home.ok(&["doctor"]);
    assert!(
        healthy.contains("journal") && healthy.contains("1 shift") && healthy.contains("All good."),
        "{healthy}"
    );
    // A damaged store: named, with the way back, and left as it was.
    let conf = home.path().join("store").join("conf");
    std::fs::write(&conf, b"this is not a sled config file").unwrap();
    let before = home.snapshot_files();
    let out = home.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("PROBLEM  store"), "{stdout}");
    assert!(
        stdout.contains(&home.path().join("store").display().to_string()),
        "{stdout}"
    );
    assert!(stdout.contains("nudge sync"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert!(home.snapshot_files() == before, "the doctor changed files");
}
