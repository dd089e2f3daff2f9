//! The method's loop through the real binary: `nudge next` (the one shift for the minutes
//! at hand, and the command that marks it done) and `nudge suggest --take`.

use std::process::Command;

use crate::util::{Home, nudge_bin};

/// Runs `command` (one line, as `nudge next` printed it) through `sh` in `home`, with the
/// `nudge` under test first on PATH; expects success.
fn run_printed(home: &Home, command: &str) {
    let template = home.std_cmd();
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(command);
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => sh.env(key, value),
            None => sh.env_remove(key),
        };
    }
    let dir = nudge_bin().parent().unwrap().to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dir];
    paths.extend(std::env::split_paths(&path));
    sh.env("PATH", std::env::join_paths(paths).unwrap());
    let out = sh.output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn next_offers_the_longest_waiting_shift_that_fits_and_its_command_marks_it_done() {
    let mut home = Home::new();
    // Nothing planned yet: a suggestion, and a command that logs it as made.
    let first = home.json(&["next", "--json"]);
    assert_eq!(first["source"], "suggestion", "{first}");
    let command = first["command"].as_str().unwrap();
    assert!(command.starts_with("nudge log "), "{command}");
    run_printed(&home, command);
    let made = home.json(&["list", "--done", "--json"]);
    assert_eq!(made[0]["text"], first["text"], "{made}");

    // Planned two weeks ago, one big and one small; and one today.
    home.now = "2026-11-11T09:30:00Z".into();
    home.ok(&["add", "Write the cover letter", "--minutes", "45"]);
    home.ok(&["add", "Email Sam about UX roles", "+ux", "@sam"]);
    home.now = "2026-11-25T09:30:00Z".into();
    home.ok(&["add", "Call Priya"]);
    let next = home.json(&["next", "--json"]);
    assert_eq!(next["source"], "planned", "{next}");
    assert_eq!(next["text"], "Email Sam about UX roles");
    assert_eq!(next["waiting_days"], 14);
    assert_eq!(next["stalled"], true);
    let text = home.ok(&["next"]);
    assert!(
        text.contains("Email Sam about UX roles") && text.contains("+ux"),
        "{text}"
    );
    assert!(text.contains("Done? nudge done "), "{text}");
    run_printed(&home, next["command"].as_str().unwrap());
    let done = home.json(&["list", "--done", "--json"]);
    assert!(
        done.as_array()
            .unwrap()
            .iter()
            .any(|s| s["text"] == "Email Sam about UX roles"),
        "{done}"
    );
    // The 45-minute one fits only a longer gap.
    assert_eq!(home.json(&["next", "--json"])["text"], "Call Priya");
    assert_eq!(
        home.json(&["next", "--minutes", "60", "--json"])["text"],
        "Write the cover letter"
    );
    let err = home.fails(2, &["next", "--minutes", "0"]);
    assert!(err.contains("--minutes"), "{err}");
}

#[test]
fn a_numbered_suggestion_is_planned_with_its_people_and_ideas() {
    let home = Home::new();
    home.ok(&["log", "Coffee with Ann", "@Ann"]);
    home.ok(&["idea", "add", "pottery"]);
    let listed = home.ok(&["suggest"]);
    assert!(listed.starts_with("1. "), "{listed}");
    let suggestions = home.json(&["suggest", "--json"]);
    // Ann was reached today: no follow-up with her.
    assert!(
        suggestions
            .as_array()
            .unwrap()
            .iter()
            .all(|s| !s["text"].as_str().unwrap().contains("@Ann")),
        "{suggestions}"
    );
    let (n, pottery) = suggestions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["text"].as_str().unwrap().contains("+pottery"))
        .map(|s| {
            (
                s["n"].as_u64().unwrap(),
                s["text"].as_str().unwrap().to_owned(),
            )
        })
        .expect("a suggestion about +pottery");
    let id = home.new_id(&["suggest", "--take", &n.to_string()]);
    let shown = home.json(&["show", &id, "--json"]);
    assert_eq!(shown["text"], pottery.as_str());
    assert_eq!(shown["ideas"][0]["title"], "pottery", "{shown}");
    assert_eq!(shown["status"], "planned");
    let err = home.fails(1, &["suggest", "--take", "9"]);
    assert!(err.contains("no suggestion 9"), "{err}");
}

#[test]
fn a_stalled_shift_is_flagged_and_shrinks_into_a_linked_first_step() {
    let mut home = Home::new();
    home.now = "2026-11-11T09:30:00Z".into();
    let big = home.new_id(&[
        "add",
        "Email ten people about UX roles",
        "+ux",
        "--minutes",
        "5",
    ]);
    home.now = "2026-11-25T09:30:00Z".into();
    // Flagged in list and next, with the command that shrinks it.
    let out = home.run(&["list"]);
    let (listed, told) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(listed.contains("waiting 14 days: too big?"), "{listed}");
    assert!(told.contains("nudge shrink "), "{told}");
    let out = home.run(&["next"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nudge shrink "));

    let step = home.new_id(&["shrink", &big[..6], "Choose who to email first", "@sam"]);
    let shown = home.json(&["show", &step, "--json"]);
    assert_eq!(shown["shrunk_from"], big.as_str());
    assert_eq!(
        shown["ideas"][0]["title"], "ux",
        "the big shift's idea is kept: {shown}"
    );
    assert_eq!(shown["people"][0]["name"], "sam");
    let big_shown = home.json(&["show", &big, "--json"]);
    assert_eq!(big_shown["status"], "planned", "the big one stays");
    assert_eq!(big_shown["shrunk_into"], serde_json::json!([step]));
    assert!(home.ok(&["show", &big]).contains("shrunk into"));
    // Next is the step, not the big one that waits for it.
    assert_eq!(home.json(&["next", "--json"])["id"], step.as_str());
    home.ok(&["done", &step]);
    assert_eq!(home.json(&["next", "--json"])["id"], big.as_str());

    // Only a planned shift shrinks.
    let err = home.fails(1, &["shrink", &step, "Smaller still"]);
    assert!(err.contains("only a planned shift"), "{err}");
    // The link travels in an export, and an import keeps it.
    let export = home.ok(&["export", "--json"]);
    assert!(export.contains("\"shrunk_from\""), "{export}");
    let file = home.path().join("export.json");
    std::fs::write(&file, &export).unwrap();
    let other = Home::new();
    other.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(
        other.json(&["show", &big, "--json"])["shrunk_into"],
        serde_json::json!([step])
    );
}

#[test]
fn people_move_with_the_shifts_that_name_them_unless_set_by_hand() {
    let mut home = Home::new();
    home.ok(&[
        "person",
        "add",
        "Priya",
        "--how",
        "met at the teaching fair",
    ]);
    home.ok(&["person", "add", "Sam"]);
    let status =
        |home: &Home, name: &str| home.json(&["person", "show", name, "--json"])["status"].clone();
    assert_eq!(status(&home, "Priya"), "to_contact");
    home.now = "2026-11-20T09:30:00Z".into();
    home.ok(&["log", "Called Priya about teaching", "@Priya"]);
    home.now = "2026-11-25T09:30:00Z".into();
    let id = home.new_id(&["log", "Coffee with Priya", "@Priya"]);
    home.ok(&[
        "done",
        &id[..6],
        "--little-yes",
        "she offered a classroom visit",
    ]);
    home.now = "2026-11-25T10:00:00Z".into();
    home.ok(&["add", "Send Priya the lesson plan", "@Priya"]);
    // Contacted: she moved on by herself.
    assert_eq!(status(&home, "Priya"), "reached_out");
    let shown = home.json(&["person", "show", "Priya", "--json"]);
    let texts: Vec<&str> = shown["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Send Priya the lesson plan",
            "Coffee with Priya",
            "Called Priya about teaching"
        ],
        "newest first: {shown}"
    );
    let text = home.ok(&["person", "show", "Priya"]);
    assert!(
        text.contains("little yes: she offered a classroom visit"),
        "{text}"
    );
    let listed = home.ok(&["person", "list"]);
    assert!(listed.contains("met at the teaching fair"), "{listed}");
    // A status set by hand wins over the shifts.
    home.ok(&["person", "edit", "Sam", "--status", "to_contact"]);
    home.ok(&["log", "Messaged Sam", "@Sam"]);
    assert_eq!(status(&home, "Sam"), "to_contact");
    home.ok(&["person", "edit", "Priya", "--status", "met"]);
    assert_eq!(status(&home, "Priya"), "met");
}

#[test]
fn done_shifts_list_newest_first_and_the_long_past_is_one_flag_away() {
    let mut home = Home::new();
    for day in 1..=25 {
        home.now = format!("2026-11-{day:02}T09:30:00Z");
        home.ok(&["log", &format!("Made on day {day}")]);
    }
    let out = home.run(&["list", "--done"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 20, "{listed}");
    assert!(lines[0].contains("Made on day 25"), "{listed}");
    assert!(lines[19].contains("Made on day 6"), "{listed}");
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(told.contains("5 older done shifts not shown"), "{told}");
    let count = |args: &[&str]| home.json(args).as_array().unwrap().len();
    assert_eq!(count(&["list", "--done", "--limit", "3", "--json"]), 3);
    assert_eq!(count(&["list", "--done", "--limit", "0", "--json"]), 25);
    assert_eq!(count(&["list", "--done", "--all", "--json"]), 25);
    assert_eq!(
        home.json(&["list", "--done", "--limit", "1", "--json"])[0]["text"],
        "Made on day 25"
    );
    home.fails(2, &["list", "--limit", "3"]);
}

#[test]
fn the_weekly_review_reads_the_week_against_the_one_before() {
    let mut home = Home::new();
    let at = |home: &mut Home, when: &str| home.now = format!("{when}T09:30:00Z");
    at(&mut home, "2026-10-01");
    home.ok(&["person", "add", "Bo"]);
    home.ok(&["idea", "add", "pottery"]);
    at(&mut home, "2026-11-10");
    home.ok(&["add", "Email ten studios"]);
    // The week before: two made.
    at(&mut home, "2026-11-17");
    home.ok(&["log", "Read about UX", "+ux"]);
    home.ok(&["log", "Sketched a flow", "+ux"]);
    // This week (Monday 23 to Sunday 29): three, a little yes, a door closed.
    at(&mut home, "2026-11-23");
    let id = home.new_id(&["log", "Coffee with Sam", "@Sam", "+ux"]);
    home.ok(&["done", &id[..6], "--little-yes", "Sam offered an intro"]);
    at(&mut home, "2026-11-24");
    home.ok(&["log", "Called Sam back", "@Sam"]);
    home.ok(&[
        "idea",
        "drop",
        "pottery",
        "--note",
        "the clay dust is not for me",
    ]);
    at(&mut home, "2026-11-25");
    home.ok(&["log", "Wrote a UX case study", "+ux"]);

    let r = home.json(&["review", "--json"]);
    assert_eq!(r["week"]["start"], "2026-11-23", "{r}");
    assert_eq!(r["week"]["done"], 3);
    assert_eq!(r["before"]["done"], 2);
    assert_eq!(r["little_yeses"][0]["text"], "Sam offered an intro");
    assert_eq!(r["doors_closed"][0]["title"], "pottery");
    assert_eq!(r["reached"][0]["name"], "Sam");
    assert_eq!(r["reached"][0]["shifts"], 2);
    let stale: Vec<&str> = r["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(stale, ["Bo"], "{r}");
    assert_eq!(r["stalled"][0]["text"], "Email ten studios");
    assert_eq!(r["total"], 5);
    assert_eq!(r["weeks_to_go"], 1116, "1,395 to go at 5 in 4 weeks: {r}");
    let text = home.ok(&["review"]);
    for part in [
        "3/20 micro shifts: 1 more than the week before (2)",
        "Sam offered an intro",
        "the clay dust is not for me",
        "People reached: @Sam (2)",
        "@Bo (last contact never)",
        "nudge shrink ",
        "Running total: 5 of the method's ~1400",
    ] {
        assert!(text.contains(part), "no {part:?} in\n{text}");
    }
    let last = home.json(&["review", "--week", "last", "--json"]);
    assert_eq!(last["week"]["start"], "2026-11-16");
    assert_eq!(last["week"]["done"], 2);
    assert!(last["little_yeses"].as_array().unwrap().is_empty());
    let err = home.fails(1, &["review", "--week", "someday"]);
    assert!(err.contains("--week"), "{err}");
}

/// `nudge next --start` with a minute of `ms_per_minute`, the answer on stdin.
fn started(home: &Home, ms_per_minute: u64, answer: &str) -> std::process::Output {
    use std::io::Write;
    let mut cmd = home.std_cmd();
    cmd.args(["next", "--start"])
        .env("NUDGE_TIMER_MS_PER_MINUTE", ms_per_minute.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn next_start_times_the_shift_and_marks_it_done_on_yes() {
    let home = Home::new();
    home.ok(&["add", "Email Sam about UX roles", "+ux"]);
    // "n": nothing marked, and the command to mark it later.
    let out = started(&home, 20, "n\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Not marked. When it is done: nudge done"),
        "{stdout}"
    );
    assert_eq!(
        home.json(&["list", "--done", "--json"]),
        serde_json::json!([])
    );
    // "y": marked done.
    let out = started(&home, 20, "y\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Done: Email Sam about UX roles"),
        "{stdout}"
    );
    assert!(stdout.contains("1/20 micro shifts this week"), "{stdout}");
    let made = home.json(&["list", "--done", "--json"]);
    assert_eq!(made[0]["text"], "Email Sam about UX roles", "{made}");
    // Nothing planned: the suggestion is logged as made, with its tags.
    let out = started(&home, 20, "yes\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Done: "), "{stdout}");
    assert_eq!(
        home.json(&["list", "--done", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn next_start_lets_the_store_go_and_ctrl_c_stops_it() {
    use std::io::{BufRead, BufReader};
    let home = Home::new();
    home.ok(&["add", "Call Priya"]);
    // A five-minute timer of a minute a minute: stopped long before it ends.
    let mut child = home
        .std_cmd()
        .args(["next", "--start"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("Timer: 5 minutes") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the timer never started"
        );
    }
    // Meanwhile the device works: the store is not held.
    home.ok(&["add", "Book a class"]);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest}");
    assert!(
        rest.contains("Stopped after 0 minutes. When it is done: nudge done"),
        "{rest}"
    );
    assert_eq!(
        home.json(&["list", "--done", "--json"]),
        serde_json::json!([])
    );
}
