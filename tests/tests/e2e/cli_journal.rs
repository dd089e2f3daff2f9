//! The daily commands through the binary, and their `--json` shapes.

use serde_json::Value;

use crate::util::Home;

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn the_first_command_creates_the_journal_and_add_prints_the_id_last() {
    let home = Home::new();
    let out = home.ok(&[
        "add",
        "Draft email to Sam about UX roles",
        "+ux",
        "@sam",
        "--kind",
        "email",
    ]);
    let id = out.lines().last().unwrap();
    assert_eq!(id.len(), 32);
    assert!(out.starts_with("Planned "), "{out}");
    let err = home.run(&["add", "Read a UX article", "+ux"]);
    assert!(
        !String::from_utf8_lossy(&err.stderr).contains("new idea"),
        "+ux exists now"
    );
    let list = home.json(&["list", "--json"]);
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 2);
    let first = items.iter().find(|s| s["id"] == id).unwrap();
    assert_eq!(
        keys(first),
        [
            "created_at",
            "done_at",
            "done_date",
            "done_tz",
            "id",
            "ideas",
            "kind",
            "little_yes",
            "minutes",
            "note",
            "people",
            "short_id",
            "shrunk_from",
            "status",
            "text"
        ]
    );
    assert_eq!(first["id"], id);
    assert!(id.starts_with(first["short_id"].as_str().unwrap()));
    assert_eq!(first["status"], "planned");
    assert_eq!(first["kind"], "email");
    assert_eq!(first["minutes"], 5);
    assert_eq!(first["created_at"], "2026-11-25T09:30:00Z");
    assert_eq!(first["done_at"], Value::Null);
    assert_eq!(first["ideas"][0]["title"], "ux");
    assert_eq!(first["people"][0]["name"], "sam");
}

#[test]
fn new_tags_are_announced_on_stderr_without_prompting() {
    let home = Home::new();
    let out = home
        .cmd()
        .args(["add", "Call Priya", "+teaching", "@priya"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("new idea +teaching"), "{stderr}");
    assert!(stderr.contains("new person @priya"), "{stderr}");
}

#[test]
fn done_log_and_week_count_by_local_day() {
    let home = Home::new();
    let id = home.new_id(&["add", "Email Sam", "+ux"]);
    let out = home.ok(&["done", &id[..6], "--little-yes", "Sam wants to talk"]);
    assert!(out.contains("1/20 micro shifts this week"), "{out}");
    home.ok(&[
        "log",
        "Called Priya",
        "+teaching",
        "@priya",
        "--at",
        "yesterday 17:00",
    ]);
    home.ok(&[
        "log",
        "Went to a meetup",
        "--at",
        "monday",
        "--kind",
        "event",
    ]);
    let shown = home.json(&["show", &id, "--json"]);
    assert_eq!(shown["status"], "done");
    assert_eq!(shown["done_date"], "2026-11-25");
    assert_eq!(shown["done_tz"], "Europe/Berlin");
    assert_eq!(shown["little_yes"], "Sam wants to talk");
    let week = home.json(&["week", "--json"]);
    let w = &week["weeks"][0];
    assert_eq!(w["start"], "2026-11-23");
    assert_eq!(w["end"], "2026-11-29");
    assert_eq!(w["done"], 3);
    assert_eq!(w["goal"], 20);
    let days: Vec<u64> = w["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["done"].as_u64().unwrap())
        .collect();
    assert_eq!(days, [1, 1, 1, 0, 0, 0, 0]);
    assert_eq!(week["streak"], 3);
    assert_eq!(w["untagged"], 1);
    let ideas: Vec<&str> = w["ideas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(ideas, ["teaching", "ux"]);
    let text = home.ok(&["week"]);
    assert!(text.starts_with("3/20 micro shifts this week"), "{text}");
    assert!(text.contains("streak: 3 days"), "{text}");
    // Listing: planned by default, done with --done, since a day.
    assert_eq!(home.json(&["list", "--json"]).as_array().unwrap().len(), 0);
    assert_eq!(
        home.json(&["list", "--done", "--json"])
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        home.json(&["list", "--all", "--since", "yesterday", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        home.json(&["list", "--done", "+teaching", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        home.json(&["list", "--all", "@priya", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn week_follows_the_zone_and_the_week_start_setting() {
    let mut home = Home::new();
    home.tz = "America/New_York".into();
    // Sunday 22 November 23:30 in New York = Monday 04:30 UTC: it counts for Sunday.
    home.now = "2026-11-23T04:30:00Z".into();
    home.ok(&["log", "Late-night application", "--kind", "apply"]);
    let week = home.json(&["week", "--json"]);
    assert_eq!(week["weeks"][0]["start"], "2026-11-16");
    assert_eq!(week["weeks"][0]["days"][6]["date"], "2026-11-22");
    assert_eq!(week["weeks"][0]["days"][6]["done"], 1);
    home.ok(&["config", "set", "week_start", "sunday"]);
    home.ok(&["config", "set", "weekly_goal", "5"]);
    let week = home.json(&["week", "--json", "--last", "2"]);
    assert_eq!(week["weeks"][0]["start"], "2026-11-22");
    assert_eq!(week["weeks"][0]["done"], 1);
    assert_eq!(week["weeks"][0]["goal"], 5);
    assert_eq!(week["weeks"][1]["start"], "2026-11-15");
    assert_eq!(home.ok(&["config", "get", "week_start"]).trim(), "sunday");
}

#[test]
fn skip_drop_edit_rm_and_undo() {
    let home = Home::new();
    let a = home.new_id(&["add", "Book a pottery class", "+craft"]);
    let b = home.new_id(&["add", "Skim a job post"]);
    home.ok(&["skip", &a]);
    home.ok(&["drop", &b]);
    let all = home.json(&["list", "--all", "--json"]);
    let status = |id: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status(&a), "skipped");
    assert_eq!(status(&b), "dropped");
    home.ok(&[
        "edit",
        &a,
        "--text",
        "Book the Thursday pottery class",
        "@ann",
        "--untag",
        "+craft",
        "--minutes",
        "10",
        "--note",
        "ask about kilns",
    ]);
    let shown = home.json(&["show", &a, "--json"]);
    assert_eq!(shown["text"], "Book the Thursday pottery class");
    assert_eq!(shown["minutes"], 10);
    assert_eq!(shown["note"], "ask about kilns");
    assert_eq!(shown["ideas"].as_array().unwrap().len(), 0);
    assert_eq!(shown["people"][0]["name"], "ann");
    home.ok(&["rm", &b]);
    assert_eq!(
        home.json(&["list", "--all", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let out = home.ok(&["undo"]);
    assert!(out.contains("Remove shift"), "{out}");
    let back = home.json(&["show", &b, "--json"]);
    assert_eq!(back["status"], "dropped");
    let out = home.ok(&["undo"]);
    assert!(out.contains("Edit shift"), "{out}");
    assert_eq!(
        home.json(&["show", &a, "--json"])["text"],
        "Book a pottery class"
    );
}

#[test]
fn ideas_are_multi_tracked_and_dead_ends_are_a_relief() {
    let home = Home::new();
    let ux = home.new_id(&["idea", "add", "UX research", "--why", "I like interviews"]);
    home.ok(&["idea", "add", "Teaching"]);
    home.ok(&["log", "Called a teacher", "+teaching"]);
    home.ok(&["idea", "pursue", &ux[..6]]);
    home.ok(&["idea", "park", "ux research"]);
    let out = home.ok(&[
        "idea",
        "drop",
        "+Teaching",
        "--note",
        "marking every weekend is not for me",
    ]);
    assert!(out.contains("door closed"), "{out}");
    assert!(out.contains("1 door closed so far"), "{out}");
    let list = home.json(&["idea", "list", "--json"]);
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "dead ends are hidden without --all"
    );
    let all = home.json(&["idea", "list", "--all", "--json"]);
    let teaching = all
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "Teaching")
        .unwrap();
    assert_eq!(
        keys(teaching),
        [
            "closed_at",
            "closing_note",
            "created_at",
            "done_shifts",
            "id",
            "short_id",
            "status",
            "title",
            "why"
        ]
    );
    assert_eq!(teaching["status"], "dead_end");
    assert_eq!(teaching["done_shifts"], 1);
    assert_eq!(
        teaching["closing_note"],
        "marking every weekend is not for me"
    );
    let shown = home.json(&["idea", "show", "UX research", "--json"]);
    assert_eq!(shown["status"], "parked");
    assert_eq!(shown["why"], "I like interviews");
    assert_eq!(home.json(&["week", "--json"])["doors_closed"], 1);
}

#[test]
fn people_with_contacts_last_contact_and_forget() {
    let home = Home::new();
    let sam = home.new_id(&[
        "person",
        "add",
        "Sam Lee",
        "--how",
        "old colleague",
        "--email",
        "sam@example.org",
        "--phone",
        "+44 20 7946 0000",
    ]);
    home.ok(&[
        "log",
        "Coffee with Sam",
        "@Sam Lee",
        "--kind",
        "coffee",
        "--at",
        "monday",
    ]);
    home.ok(&[
        "person",
        "edit",
        "sam lee",
        "--status",
        "met",
        "--url",
        "https://sam.example.org",
    ]);
    let list = home.json(&["person", "list", "--json"]);
    let p = &list[0];
    assert_eq!(
        keys(p),
        [
            "contact",
            "created_at",
            "how_known",
            "id",
            "last_contact",
            "name",
            "notes",
            "short_id",
            "status",
            "status_set_by_hand"
        ]
    );
    assert_eq!(p["id"], sam);
    assert_eq!(p["last_contact"], "2026-11-23");
    assert_eq!(p["status"], "met");
    assert_eq!(p["contact"]["email"], "sam@example.org");
    assert_eq!(p["contact"]["url"], "https://sam.example.org");
    home.ok(&["person", "forget", "Sam Lee"]);
    let shown = home.json(&["person", "show", "Sam Lee", "--json"]);
    assert_eq!(shown["contact"]["email"], Value::Null);
    assert_eq!(shown["contact"]["phone"], Value::Null);
    assert_eq!(shown["last_contact"], "2026-11-23", "the shifts stay");
    let export = home.ok(&["export", "--json"]);
    assert!(!export.contains("sam@example.org"));
    // The old contacts document is gone from the store; only sled's own free space may
    // still hold old bytes until it reuses them (see docs/storage.md).
    let journal_doc = home.json(&["export", "--json"]);
    assert_eq!(journal_doc["people"][0]["name"], "Sam Lee");
}

#[test]
fn history_export_config_and_suggest() {
    let home = Home::new();
    home.ok(&["config", "set", "device.name", "laptop"]);
    home.ok(&["add", "Email Sam", "+ux", "@sam"]);
    home.ok(&["config", "set", "weekly_goal", "12"]);
    let history = home.json(&["history", "--json"]);
    let messages: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages[0], "Create journal");
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Add shift") && m.ends_with("Email Sam")),
        "{messages:?}"
    );
    assert_eq!(*messages.last().unwrap(), "Set weekly_goal to 12");
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["device"] == "laptop")
    );
    assert_eq!(history[0]["time"], "2026-11-25T09:30:00Z");
    let text = home.ok(&["history"]);
    assert!(text.contains("[laptop]"), "{text}");
    let export = home.ok(&["export", "--json"]);
    let again = home.ok(&["export", "--json"]);
    assert_eq!(export, again);
    let v: Value = serde_json::from_str(&export).unwrap();
    assert_eq!(
        keys(&v),
        ["ideas", "people", "schema_version", "settings", "shifts"]
    );
    assert_eq!(v["settings"]["weekly_goal"], 12);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(home.ok(&["config", "get", "weekly_goal"]).trim(), "12");
    assert!(home.ok(&["config", "get"]).contains("device.name = laptop"));
    let suggestions = home.ok(&["suggest"]);
    assert!(suggestions.contains("@sam"), "{suggestions}");
    assert!(suggestions.contains("+ux"), "{suggestions}");
}

#[test]
fn colour_follows_no_color_and_the_flag() {
    let home = Home::new();
    home.ok(&["add", "Email Sam"]);
    let plain = home
        .cmd()
        .args(["list", "--color", "always"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&plain.stdout).contains('\u{1b}'),
        "--color always colours"
    );
    let never = home
        .cmd()
        .args(["list", "--color", "never"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&never.stdout).contains('\u{1b}'));
    let piped = home.cmd().args(["list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&piped.stdout).contains('\u{1b}'),
        "no colour into a pipe"
    );
}

#[test]
fn reads_on_an_empty_home_work_and_change_nothing() {
    let home = Home::new();
    assert_eq!(home.json(&["list", "--json"]), Value::Array(vec![]));
    assert_eq!(home.json(&["week", "--json"])["weeks"][0]["done"], 0);
    assert_eq!(home.json(&["idea", "list", "--json"]), Value::Array(vec![]));
    assert_eq!(
        home.json(&["person", "list", "--json"]),
        Value::Array(vec![])
    );
    assert_eq!(home.json(&["history", "--json"]), Value::Array(vec![]));
    assert_eq!(
        home.json(&["export", "--json"])["shifts"],
        Value::Array(vec![])
    );
}
