//! What a new user tripped over on day one, through the real `nudge` binary: times still
//! to come, a backup that would not come back, and messages about the wrong thing.

use crate::util::Home;

#[test]
fn a_time_that_has_not_happened_yet_is_refused_and_nothing_is_written() {
    // The home's clock: Wednesday 25 November 2026, 10:30 in Berlin.
    let home = Home::new();
    let id = home.new_id(&["add", "Email Sam"]);
    let before = home.ok(&["export", "--json"]);
    for at in ["2030-01-01", "tomorrow", "5pm", "17:30", "2026-11-25 11:00"] {
        let err = home.fails(1, &["log", "Called Priya", "--at", at]);
        assert!(err.contains("has not happened yet"), "{at}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let err = home.fails(1, &["done", &id, "--at", at]);
        assert!(err.contains("has not happened yet"), "{at}: {err}");
    }
    assert_eq!(home.ok(&["export", "--json"]), before);
    // What people type for the past works: today before noon means now.
    home.ok(&["log", "Called Priya", "--at", "last friday 5pm"]);
    home.ok(&["log", "Booked a class", "--at", "today"]);
    home.ok(&["done", &id, "--at", "9:15am"]);
    let done: Vec<String> = home.json(&["export", "--json"])["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s["done_date"], s["done_at"]))
        .collect();
    assert!(
        done.iter()
            .any(|d| d.contains("2026-11-20") && d.contains("T16:00:00")),
        "{done:?}"
    );
    assert!(done.iter().any(|d| d.contains("T09:30:00Z")), "{done:?}");
    assert!(done.iter().any(|d| d.contains("T08:15:00Z")), "{done:?}");
}

#[test]
fn every_name_the_cli_accepts_comes_back_from_its_own_export() {
    let home = Home::new();
    let long_title = "t".repeat(200);
    let long_name = "N".repeat(200);
    home.new_id(&["idea", "add", &long_title]);
    home.new_id(&["person", "add", &long_name]);
    home.new_id(&["add", &"s".repeat(500), &format!("+{}", "u".repeat(200))]);
    // One character more is refused where it is typed, as import would refuse it.
    let err = home.fails(1, &["idea", "add", &"t".repeat(201)]);
    assert!(err.contains("over 200 characters"), "{err}");
    let err = home.fails(1, &["person", "add", &"M".repeat(201)]);
    assert!(err.contains("over 200 characters"), "{err}");
    let err = home.fails(1, &["add", "Email", &format!("@{}", "p".repeat(201))]);
    assert!(err.contains("over 200 characters"), "{err}");
    let export = home.ok(&["export", "--json"]);
    let file = home.path().join("backup.json");
    std::fs::write(&file, &export).unwrap();
    let fresh = Home::new();
    fresh.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(fresh.ok(&["export", "--json"]), export);
}

#[test]
fn import_refuses_a_done_shift_whose_zone_or_date_does_not_check_out() {
    let home = Home::new();
    let before = home.ok(&["export", "--json"]);
    let shift = |date: &str, tz: &str| {
        format!(
            r#"{{"schema_version":1,"shifts":[{{"id":"1d3c0a4e2f0b4d5e9a5a0c6f1f2a7b11","text":"x","status":"done","created_at":"2026-11-20T10:15:00Z","done_at":"2026-11-20T23:30:00Z","done_date":"{date}","done_tz":"{tz}"}}]}}"#
        )
    };
    for (name, text, needle) in [
        (
            "zone.json",
            shift("2026-11-21", "Mars/Olympus"),
            "shifts[0].done_tz",
        ),
        (
            "date.json",
            shift("2026-11-20", "Europe/Berlin"),
            "shifts[0].done_date",
        ),
    ] {
        let path = home.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = home.fails(1, &["import", path.to_str().unwrap()]);
        assert!(err.contains(needle), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // The same shift, consistent (23:30 UTC is the 21st in Berlin), imports.
    let good = home.path().join("good.json");
    std::fs::write(&good, shift("2026-11-21", "Europe/Berlin")).unwrap();
    home.ok(&["import", good.to_str().unwrap()]);
    assert_ne!(home.ok(&["export", "--json"]), before);
}

#[test]
fn messages_are_about_the_thing_given_and_count_right() {
    let home = Home::new();
    let err = home.fails(1, &["idea", "add", "   "]);
    assert!(err.contains("idea's title is empty"), "{err}");
    let err = home.fails(1, &["person", "add", ""]);
    assert!(err.contains("person's name is empty"), "{err}");
    // A name close to one made by @sam: the refusal gives the command that was meant.
    home.new_id(&["add", "Email Sam", "@sam"]);
    let err = home.fails(
        1,
        &[
            "person",
            "add",
            "Sam Lee",
            "--how",
            "old colleague",
            "--email",
            "sam@example.org",
        ],
    );
    assert!(
        err.contains(
            "`nudge person edit sam --name \"Sam Lee\" --how \"old colleague\" --email sam@example.org`"
        ),
        "{err}"
    );
    // log and done confirm alike.
    let logged = home.ok(&["log", "Called Priya"]);
    let id = home.listed_ids().remove(0);
    let done = home.ok(&["done", &id]);
    for out in [&logged, &done] {
        assert!(
            out.contains("micro shifts this week · streak 1 day\n"),
            "{out}"
        );
    }
    let file = home.path().join("one.json");
    std::fs::write(
        &file,
        r#"{"schema_version":1,"shifts":[{"id":"1d3c0a4e2f0b4d5e9a5a0c6f1f2a7b11","text":"x","status":"planned","created_at":"2026-11-20T10:15:00Z"}]}"#,
    )
    .unwrap();
    let said = home.ok(&["import", file.to_str().unwrap()]);
    assert!(
        said.contains("Imported 1 shift, 0 ideas, 0 people"),
        "{said}"
    );
}

#[test]
fn suggest_config_get_and_doctor_speak_json() {
    let home = Home::new();
    home.new_id(&["add", "Email Sam", "+ux", "@sam"]);
    let suggestions = home.json(&["suggest", "--json"]);
    let first = &suggestions.as_array().unwrap()[0];
    assert_eq!(first["n"], 1, "{suggestions}");
    assert!(first["text"].as_str().is_some_and(|t| !t.is_empty()));
    let all = home.json(&["config", "get", "--json"]);
    assert_eq!(all["weekly_goal"], 20, "{all}");
    assert_eq!(all["week_start"], "monday", "{all}");
    let one = home.json(&["config", "get", "week_start", "--json"]);
    assert_eq!(one, serde_json::json!({ "week_start": "monday" }));
    assert_eq!(home.ok(&["config", "get", "week_start"]), "monday\n");
    let doctor = home.json(&["doctor", "--json"]);
    assert_eq!(doctor["ok"], true, "{doctor}");
    assert!(
        doctor["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["part"] == "journal" && c["ok"] == true),
        "{doctor}"
    );
}
