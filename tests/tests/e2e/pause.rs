//! `nudge pause` through the real binary: planned from tomorrow on, at most 7 days in any
//! 30, kept in the streak and shown in `week` and `review`; a pause that has begun stays.

use crate::util::Home;

#[test]
fn paused_days_are_planned_ahead_and_keep_the_streak() {
    // Wednesday 25 November 2026 in Berlin.
    let mut home = Home::new();
    home.ok(&["log", "Called Priya", "+teaching"]);
    let before = home.ok(&["export", "--json"]);
    let err = home.fails(1, &["pause", "--from", "today"]);
    assert!(
        err.contains("tomorrow (2026-11-26) at the earliest"),
        "{err}"
    );
    assert_eq!(
        home.ok(&["export", "--json"]),
        before,
        "a refused pause writes nothing"
    );

    let out = home.ok(&[
        "pause",
        "--from",
        "2026-11-26",
        "--to",
        "friday",
        "--note",
        "Family visit",
    ]);
    assert!(
        out.contains("Paused Thu 2026-11-26 to Fri 2026-11-27 (2 days)"),
        "{out}"
    );
    let err = home.fails(1, &["pause", "--from", "2026-12-01", "--to", "2026-12-06"]);
    assert!(err.contains("at most 7 in any 30 days"), "{err}");
    let listed = home.json(&["pause", "--json"]);
    let pauses = listed["pauses"].as_array().unwrap();
    assert_eq!(pauses.len(), 1, "{listed}");
    assert_eq!(pauses[0]["days"], 2);
    assert_eq!(pauses[0]["note"], "Family visit");
    let id = pauses[0]["id"].as_str().unwrap().to_owned();

    // Saturday: nothing made on Thursday or Friday, and the streak holds.
    home.now = "2026-11-28T09:30:00Z".into();
    let week = home.json(&["week", "--json"]);
    assert_eq!(week["streak"], 3, "{week}");
    let paused: Vec<&str> = week["weeks"][0]["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["paused"] == true)
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(paused, ["2026-11-26", "2026-11-27"]);
    let text = home.ok(&["week"]);
    assert!(text.contains("Thu 26") && text.contains("paused"), "{text}");
    assert!(text.contains("streak: 3 days"), "{text}");
    let review = home.ok(&["review"]);
    assert!(
        review.contains("paused: Thu 26, Fri 27 (kept in the streak)"),
        "{review}"
    );

    // Begun: it stays. One still ahead can be taken back.
    let err = home.fails(1, &["pause", "--cancel", &id[..8]]);
    assert!(err.contains("has begun"), "{err}");
    home.ok(&["pause", "--from", "2026-12-02"]);
    let ahead = home.json(&["pause", "--json"])["pauses"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = home.ok(&["pause", "--cancel", &ahead[..8]]);
    assert!(out.contains("Cancelled the pause Wed 2026-12-02"), "{out}");
    assert_eq!(
        home.json(&["pause", "--json"])["pauses"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn pauses_planned_apart_on_two_devices_never_count_more_than_seven_days_in_thirty() {
    let data = tempfile::tempdir().unwrap();
    let token = crate::util::add_account(data.path(), "ana");
    let server = crate::util::Server::start(data.path());
    let url = format!("http://{}", server.addr);
    let mut laptop = Home::new();
    laptop.remote_add(&url, &token);
    laptop.ok(&["log", "Called Priya"]);
    laptop.ok(&["sync"]);
    let mut phone = Home::new();
    phone.remote_add(&url, &token);
    phone.ok(&["sync"]);

    // Apart, each plans within the limit: 5 days on the laptop, then 4 on the phone.
    laptop.ok(&["pause", "--from", "2026-12-01", "--to", "2026-12-05"]);
    phone.now = "2026-11-25T10:30:00Z".into();
    phone.ok(&["pause", "--from", "2026-12-08", "--to", "2026-12-11"]);
    for home in [&laptop, &phone, &laptop] {
        home.ok(&["sync"]);
    }

    // Together they make 9 in 30: the later one does not count, on both devices alike
    // (seen on Wednesday 9 December, in the week of the phone's pause).
    let paused_in_week = |home: &Home| -> Vec<String> {
        let week = home.json(&["week", "--json"]);
        week["weeks"][0]["days"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["paused"] == true)
            .map(|d| d["date"].as_str().unwrap().to_owned())
            .collect()
    };
    laptop.now = "2026-12-09T09:30:00Z".into();
    phone.now = laptop.now.clone();
    for home in [&laptop, &phone] {
        let listed = home.json(&["pause", "--json"]);
        let counted: Vec<(&str, bool)> = listed["pauses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["from"].as_str().unwrap(), p["counted"] == true))
            .collect();
        assert_eq!(
            counted,
            [("2026-12-08", false), ("2026-12-01", true)],
            "{listed}"
        );
        let text = home.ok(&["pause"]);
        assert!(text.contains("not counted"), "{text}");
        assert!(paused_in_week(home).is_empty());
    }

    // The laptop takes its pause back (before it began): the phone's counts now.
    laptop.now = "2026-11-25T11:30:00Z".into();
    let first = laptop.json(&["pause", "--json"])["pauses"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    laptop.ok(&["pause", "--cancel", &first[..8]]);
    laptop.ok(&["sync"]);
    phone.ok(&["sync"]);
    assert_eq!(
        paused_in_week(&phone),
        ["2026-12-08", "2026-12-09", "2026-12-10", "2026-12-11"]
    );
}
