//! `nudge import` through the real binary: a `nudge export --json` merged into another
//! journal (twice: the second adds nothing, not even a change), and Taskwarrior's
//! `task export`; bad files refused with one line, the journal untouched.

use serde_json::Value;

use crate::util::{Home, texts};

fn history_len(home: &Home) -> usize {
    home.json(&["history", "--json"]).as_array().unwrap().len()
}

fn shift<'a>(export: &'a Value, text: &str) -> &'a Value {
    export["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["text"] == text)
        .unwrap_or_else(|| panic!("no shift {text:?} in {export}"))
}

#[test]
fn an_export_merges_into_another_journal_once() {
    let a = Home::new();
    a.new_id(&["add", "Email Sam about UX roles", "+ux", "@Sam Quill"]);
    a.new_id(&[
        "log",
        "Called Priya",
        "+teaching",
        "--little-yes",
        "she'd intro me",
    ]);
    a.ok(&["idea", "add", "pottery", "--why", "hands busy, head free"]);
    a.ok(&["person", "edit", "Sam Quill", "--email", "sam@example.org"]);
    let exported = a.ok(&["export", "--json"]);
    let file = a.path().join("export.json");
    std::fs::write(&file, &exported).unwrap();
    let file = file.to_str().unwrap();
    let from_a: Value = serde_json::from_str(&exported).unwrap();

    // Importing into the journal it came from adds nothing at all.
    let before = history_len(&a);
    let said = a.ok(&["import", file]);
    assert!(said.contains("Nothing new"), "{said}");
    assert_eq!(history_len(&a), before);

    // Another journal, which has its own +UX: merged by name, not doubled.
    let b = Home::new();
    b.new_id(&["add", "My own step", "+UX"]);
    let first = history_len(&b);
    let dry = b.ok(&["import", file, "--dry-run"]);
    assert!(
        dry.contains("Would import 2 shifts, 2 ideas, 1 person"),
        "{dry}"
    );
    assert_eq!(history_len(&b), first, "a dry run changed the journal");
    let said = b.ok(&["import", file]);
    assert!(
        said.contains("Imported 2 shifts, 2 ideas, 1 person"),
        "{said}"
    );
    let merged = b.json(&["export", "--json"]);
    assert_eq!(
        texts(&merged),
        ["Called Priya", "Email Sam about UX roles", "My own step"]
    );
    // Ids, times, statuses and fields as they were.
    for text in ["Called Priya", "Email Sam about UX roles"] {
        let (old, new) = (shift(&from_a, text), shift(&merged, text));
        for field in [
            "id",
            "status",
            "created_at",
            "done_at",
            "done_date",
            "little_yes",
        ] {
            assert_eq!(old[field], new[field], "{text}: {field}");
        }
    }
    let ideas: Vec<&str> = merged["ideas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(ideas.len(), 3, "{ideas:?}");
    let ux = merged["ideas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "UX")
        .unwrap();
    assert_eq!(
        shift(&merged, "Email Sam about UX roles")["ideas"],
        serde_json::json!([ux["id"]])
    );
    let sam = b.json(&["person", "show", "Sam Quill", "--json"]);
    assert_eq!(sam["contact"]["email"], "sam@example.org", "{sam}");

    // Twice: nothing added, no change made, the export byte for byte the same.
    let changes = history_len(&b);
    let text = b.ok(&["export", "--json"]);
    let again = b.ok(&["import", file]);
    assert!(again.contains("Nothing new"), "{again}");
    assert_eq!(history_len(&b), changes);
    assert_eq!(b.ok(&["export", "--json"]), text);
    // One change for the whole import, which undo takes back whole.
    let history = b.json(&["history", "--json"]);
    let last = history.as_array().unwrap().last().unwrap().to_string();
    assert!(last.contains("Import 2 shifts"), "{history}");
    b.ok(&["undo"]);
    assert_eq!(texts(&b.json(&["export", "--json"])), ["My own step"]);
}

const TASKS: &str = r#"[
{"id":1,"description":"Book a pottery class","entry":"20261120T101500Z","modified":"20261120T101500Z","project":"Craft","status":"pending","uuid":"1d3c0a4e-2f0b-4d5e-9a5a-0c6f1f2a7b11","tags":["fun"],"urgency":1.2},
{"id":0,"description":"Read the UX handbook","end":"20261122T183000Z","entry":"20261101T090000Z","modified":"20261122T183000Z","project":"ux","status":"completed","uuid":"2e4d1b5f-3a1c-4e6f-8b6b-1d7a2a3b8c22","annotations":[{"entry":"20261121T100000Z","description":"chapter 3 is the one"}]},
{"id":2,"description":"Ask Jo about her studio","entry":"20261124T080000Z","status":"waiting","wait":"20261201T000000Z","uuid":"4a6f3d71-5c3e-4081-8d8d-3f9c4c5d0e44"},
{"id":0,"description":"Old plan","entry":"20261101T090000Z","end":"20261102T090000Z","status":"deleted","uuid":"3f5e2c60-4b2d-4f70-9c7c-2e8b3b4c9d33"}
]"#;

#[test]
fn taskwarrior_tasks_become_shifts_and_projects_ideas() {
    let home = Home::new();
    home.new_id(&["add", "Already here", "+UX"]);
    let file = home.path().join("tasks.json");
    std::fs::write(&file, TASKS).unwrap();
    let file = file.to_str().unwrap();
    let said = home.ok(&["import", "--from", "taskwarrior", file]);
    assert!(
        said.contains("Imported 3 shifts, 1 idea, 0 people"),
        "{said}"
    );
    assert!(said.contains("left out: deleted task 3f5e2c60"), "{said}");
    let export = home.json(&["export", "--json"]);
    let class = shift(&export, "Book a pottery class");
    assert_eq!(class["id"], "1d3c0a4e2f0b4d5e9a5a0c6f1f2a7b11");
    assert_eq!(class["status"], "planned");
    assert_eq!(class["created_at"], "2026-11-20T10:15:00Z");
    let read = shift(&export, "Read the UX handbook");
    assert_eq!(read["status"], "done");
    assert_eq!(read["done_at"], "2026-11-22T18:30:00Z");
    // Counted on the local date of this device's zone (Berlin: 19:30 the same day).
    assert_eq!(read["done_date"], "2026-11-22");
    assert_eq!(read["note"], "chapter 3 is the one");
    assert_eq!(
        shift(&export, "Ask Jo about her studio")["status"],
        "planned"
    );
    // Projects are ideas; "ux" is the +UX the journal had.
    let titles: Vec<&str> = export["ideas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles.contains(&"Craft") && titles.contains(&"UX"),
        "{titles:?}"
    );
    // The week shows the done task on its day.
    let week = home.json(&["week", "--last", "2", "--json"]);
    assert!(week.to_string().contains("2026-11-22"), "{week}");

    // A later `task export` with one more task adds only that one.
    let changes = history_len(&home);
    let same = home.ok(&["import", "--from", "taskwarrior", file]);
    assert!(same.contains("Nothing new"), "{same}");
    assert_eq!(history_len(&home), changes);
    let more = TASKS.replacen(
        "[\n",
        "[\n{\"description\":\"Sketch a mug\",\"entry\":\"20261125T080000Z\",\"status\":\"pending\",\"project\":\"craft\",\"uuid\":\"5b7a4e82-6d4f-4192-9e9e-4a0d5d6e1f55\"},\n",
        1,
    );
    let newer = home.path().join("newer.json");
    std::fs::write(&newer, more).unwrap();
    let said = home.ok(&["import", "--from", "taskwarrior", newer.to_str().unwrap()]);
    assert!(
        said.contains("Imported 1 shift, 0 ideas, 0 people"),
        "{said}"
    );
    // From standard input too.
    let out = home
        .cmd()
        .args(["import", "--from", "taskwarrior", "-"])
        .write_stdin(TASKS)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing new"));
}

#[test]
fn bad_files_are_refused_with_one_line_and_change_nothing() {
    let home = Home::new();
    home.new_id(&["add", "Keep me", "+ux"]);
    let before = home.ok(&["export", "--json"]);
    let dir = home.path();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let bad_id = write(
        "bad-id.json",
        r#"{"schema_version":1,"shifts":[{"id":"1234","text":"x","status":"planned","created_at":"2026-11-20T10:15:00Z"}]}"#,
    );
    let newer = write("newer.json", r#"{"schema_version":9,"shifts":[]}"#);
    let half = write("half.json", &before[..before.len() / 2]);
    let done_without_date = write(
        "done.json",
        r#"{"schema_version":1,"shifts":[{"id":"1d3c0a4e2f0b4d5e9a5a0c6f1f2a7b11","text":"x","status":"done","created_at":"2026-11-20T10:15:00Z"}]}"#,
    );
    let tasks = write("tasks.json", TASKS);
    let bad_status = write(
        "status.json",
        r#"[{"description":"x","status":"exploded","uuid":"1d3c0a4e-2f0b-4d5e-9a5a-0c6f1f2a7b11"}]"#,
    );
    for (args, needle) in [
        (vec!["import", "/nonexistent/export.json"], "cannot read"),
        (vec!["import", &bad_id], "is not an id"),
        (vec!["import", &newer], "upgrade nudge"),
        (vec!["import", &half], "not a `nudge export --json` file"),
        (vec!["import", &done_without_date], "needs done_at"),
        (vec!["import", &tasks], "add --from taskwarrior"),
        (
            vec!["import", "--from", "taskwarrior", &bad_id],
            "leave out --from",
        ),
        (
            vec!["import", "--from", "taskwarrior", &bad_status],
            "unknown status",
        ),
    ] {
        let err = home.fails(1, &args);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(home.ok(&["export", "--json"]), before);
}
