//! Every journal command and query, through the crate's public API.

use nudge_journal::automerge::transaction::Transactable;
use nudge_journal::automerge::{ActorId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use nudge_journal::when::parse_when;
use nudge_journal::*;

fn now_at(utc: &str, tz: &str) -> Now {
    Now::new(utc.parse().unwrap(), jiff::tz::TimeZone::get(tz).unwrap())
}

fn now() -> Now {
    // Wednesday 25 November 2026, 10:30 in Berlin.
    now_at("2026-11-25T09:30:00Z", "Europe/Berlin")
}

fn journal() -> Journal {
    Journal::create(ActorId::random(), &now(), "laptop", "contacts-doc-id")
}

fn add(j: &mut Journal, text: &str, ideas: &[&str], people: &[&str]) -> Created {
    let catalog = j.catalog().unwrap();
    let tag = |name: &&str, existing: Resolved| match existing {
        Resolved::Existing(id) => TagRef::Existing(id.to_owned()),
        _ => TagRef::New(name.to_string()),
    };
    let shift = NewShift {
        text: text.into(),
        ideas: ideas
            .iter()
            .map(|n| tag(n, catalog.resolve_idea(n)))
            .collect(),
        people: people
            .iter()
            .map(|n| tag(n, catalog.resolve_person(n)))
            .collect(),
        ..NewShift::default()
    };
    j.add_shift(&now(), shift).unwrap()
}

#[test]
fn a_new_journal_has_defaults_and_knows_its_device() {
    let j = journal();
    let c = j.catalog().unwrap();
    assert_eq!(c.schema_version, SCHEMA_MAJOR);
    assert_eq!(c.settings, Settings::default());
    assert_eq!(c.settings.weekly_goal, 20);
    assert_eq!(c.contacts_doc.as_deref(), Some("contacts-doc-id"));
    assert_eq!(c.devices.values().collect::<Vec<_>>(), vec!["laptop"]);
    assert!(j.shifts().unwrap().is_empty());
}

#[test]
fn add_creates_tags_once_and_reuses_them() {
    let mut j = journal();
    let first = add(&mut j, "Draft email to Sam", &["ux"], &["sam"]);
    assert_eq!(first.ideas.len(), 1);
    assert_eq!(first.people.len(), 1);
    let second = add(&mut j, "Read a UX case study", &["UX"], &[]);
    assert!(second.ideas.is_empty(), "+UX is the existing +ux");
    let shifts = j.shifts().unwrap();
    assert_eq!(shifts.len(), 2);
    let s = j.shift(&first.id).unwrap().unwrap();
    assert_eq!(s.status, ShiftStatus::Planned);
    assert_eq!(s.minutes, 5);
    assert_eq!(s.kind, Kind::Other);
    assert_eq!(s.ideas.iter().next(), Some(&first.ideas[0].0));
    assert_eq!(j.catalog().unwrap().canonical_ideas().count(), 1);
    // The same new tag twice in one command makes one record.
    let dup = j
        .add_shift(
            &now(),
            NewShift {
                text: "x".into(),
                ideas: vec![TagRef::New("garden".into()), TagRef::New("Garden".into())],
                ..NewShift::default()
            },
        )
        .unwrap();
    assert_eq!(dup.ideas.len(), 1);
}

#[test]
fn empty_or_huge_text_is_refused_and_changes_nothing() {
    let mut j = journal();
    let heads = j.doc().get_heads();
    let empty = NewShift {
        text: "   ".into(),
        ..NewShift::default()
    };
    assert!(matches!(j.add_shift(&now(), empty), Err(Error::Invalid(_))));
    let huge = NewShift {
        text: "x".repeat(501),
        ..NewShift::default()
    };
    assert!(j.add_shift(&now(), huge).is_err());
    assert_eq!(j.doc().get_heads(), heads);
}

#[test]
fn done_records_the_local_date_and_zone() {
    let mut j = journal();
    let id = add(&mut j, "Call Priya", &[], &[]).id;
    // 23:30 on Sunday in New York is already Monday in UTC: it counts for Sunday.
    let ny = now_at("2026-11-23T04:30:00Z", "America/New_York");
    j.set_status(&ny, &id, ShiftStatus::Done, None, Some("she said yes"))
        .unwrap();
    let s = j.shift(&id).unwrap().unwrap();
    let done = s.done.unwrap();
    assert_eq!(done.date, "2026-11-22");
    assert_eq!(done.tz, "America/New_York");
    assert_eq!(s.little_yes.as_deref(), Some("she said yes"));
    // Planned again: the done fields go.
    j.set_status(&now(), &id, ShiftStatus::Planned, None, None)
        .unwrap();
    assert_eq!(j.shift(&id).unwrap().unwrap().done, None);
    assert!(matches!(
        j.set_status(&now(), "nope", ShiftStatus::Done, None, None),
        Err(Error::NoSuchShift)
    ));
}

#[test]
fn log_with_a_time_counts_for_that_day() {
    let mut j = journal();
    let at = parse_when("yesterday 17:00", &now()).unwrap();
    let created = j
        .add_shift(
            &now(),
            NewShift {
                text: "Called Priya".into(),
                done: Some(at),
                kind: Some(Kind::Call),
                ..NewShift::default()
            },
        )
        .unwrap();
    let s = j.shift(&created.id).unwrap().unwrap();
    assert_eq!(s.status, ShiftStatus::Done);
    assert_eq!(s.done.unwrap().date, "2026-11-24");
    let summary = Summary::build(&j.shifts().unwrap());
    let c = j.catalog().unwrap();
    let w = week(&summary, &c, now().today());
    assert_eq!(w.done, 1);
    assert_eq!(w.days[1].done, 1, "Tuesday");
    assert_eq!(streak(&summary, &Default::default(), now().today()), 1);
}

#[test]
fn edit_changes_fields_and_tags() {
    let mut j = journal();
    let c = add(&mut j, "Email Sam", &["ux"], &["sam"]);
    let ux = c.ideas[0].0.clone();
    let edit = ShiftEdit {
        text: Some("Email Sam about the meetup".into()),
        kind: Some(Kind::Email),
        minutes: Some(10),
        note: Some("ask about Thursday".into()),
        add_ideas: vec![TagRef::New("events".into())],
        remove_ideas: vec![ux],
        ..ShiftEdit::default()
    };
    let created = j.edit_shift(&now(), &c.id, edit).unwrap();
    assert_eq!(created.ideas.len(), 1);
    let s = j.shift(&c.id).unwrap().unwrap();
    assert_eq!(s.text, "Email Sam about the meetup");
    assert_eq!((s.kind, s.minutes), (Kind::Email, 10));
    assert_eq!(s.note.as_deref(), Some("ask about Thursday"));
    assert_eq!(s.ideas.len(), 1);
    assert_eq!(s.people.len(), 1);
    // An empty note removes it.
    let clear = ShiftEdit {
        note: Some(String::new()),
        ..ShiftEdit::default()
    };
    j.edit_shift(&now(), &c.id, clear).unwrap();
    assert_eq!(j.shift(&c.id).unwrap().unwrap().note, None);
}

#[test]
fn remove_and_undo_bring_it_back() {
    let mut j = journal();
    let id = add(&mut j, "Book a pottery class", &["craft"], &[]).id;
    j.set_status(&now(), &id, ShiftStatus::Done, None, None)
        .unwrap();
    j.remove_shift(&now(), &id).unwrap();
    assert!(j.shift(&id).unwrap().is_none());
    let undone = j.undo(&now()).unwrap();
    assert!(undone.message.starts_with("Remove shift"));
    let back = j.shift(&id).unwrap().unwrap();
    assert_eq!(back.text, "Book a pottery class");
    assert_eq!(back.status, ShiftStatus::Done);
    assert_eq!(back.ideas.len(), 1);
    // Undo again: the done is undone, then the add.
    assert!(j.undo(&now()).unwrap().message.starts_with("Mark done"));
    assert_eq!(j.shift(&id).unwrap().unwrap().status, ShiftStatus::Planned);
    assert!(j.undo(&now()).unwrap().message.starts_with("Add shift"));
    assert!(j.shift(&id).unwrap().is_none());
    assert_eq!(
        j.catalog().unwrap().ideas.len(),
        0,
        "the idea made by the add goes too"
    );
    assert!(matches!(j.undo(&now()), Err(Error::NothingToUndo)));
}

#[test]
fn undo_keeps_other_devices_later_edits() {
    let mut a = journal();
    let id = add(&mut a, "Write to Ann", &[], &[]).id;
    let mut b = Journal::from_doc(a.doc().fork().with_actor(ActorId::random())).unwrap();
    a.set_status(&now(), &id, ShiftStatus::Done, None, None)
        .unwrap();
    let edit = ShiftEdit {
        text: Some("Write to Ann Lee".into()),
        ..ShiftEdit::default()
    };
    b.edit_shift(&now(), &id, edit).unwrap();
    a.doc_mut().merge(b.doc_mut()).unwrap();
    a.undo(&now()).unwrap();
    let s = a.shift(&id).unwrap().unwrap();
    assert_eq!(s.status, ShiftStatus::Planned);
    assert_eq!(s.text, "Write to Ann Lee");
}

#[test]
fn ideas_park_pursue_and_close_as_doors() {
    let mut j = journal();
    let id = j
        .add_idea(&now(), "Teaching", Some("I like explaining"))
        .unwrap();
    let c = j.catalog().unwrap();
    assert_eq!(c.ideas[&id].why.as_deref(), Some("I like explaining"));
    j.set_idea_status(
        &now(),
        std::slice::from_ref(&id),
        "Teaching",
        IdeaStatus::Parked,
        None,
    )
    .unwrap();
    assert!(j.catalog().unwrap().ideas[&id].closed_at_ms.is_some());
    j.set_idea_status(
        &now(),
        std::slice::from_ref(&id),
        "Teaching",
        IdeaStatus::Pursuing,
        None,
    )
    .unwrap();
    assert!(j.catalog().unwrap().ideas[&id].closed_at_ms.is_none());
    j.set_idea_status(
        &now(),
        std::slice::from_ref(&id),
        "Teaching",
        IdeaStatus::DeadEnd,
        Some("grading all weekend"),
    )
    .unwrap();
    let c = j.catalog().unwrap();
    assert_eq!(c.ideas[&id].status, IdeaStatus::DeadEnd);
    assert_eq!(
        c.ideas[&id].closing_note.as_deref(),
        Some("grading all weekend")
    );
    assert_eq!(c.doors_closed(), 1);
}

#[test]
fn people_are_added_and_edited() {
    let mut j = journal();
    let edit = PersonEdit {
        how_known: Some("old colleague".into()),
        ..PersonEdit::default()
    };
    let id = j.add_person(&now(), "Sam Lee", &edit).unwrap();
    let rename = PersonEdit {
        name: Some("Samantha Lee".into()),
        status: Some(PersonStatus::Talking),
        how_known: Some(String::new()),
        ..PersonEdit::default()
    };
    j.edit_person(&now(), std::slice::from_ref(&id), "Sam Lee", &rename)
        .unwrap();
    let p = &j.catalog().unwrap().people[&id];
    assert_eq!(p.name, "Samantha Lee");
    assert_eq!(p.status, PersonStatus::Talking);
    assert_eq!(p.how_known, None);
}

#[test]
fn settings_are_validated() {
    let mut j = journal();
    j.set_setting(&now(), "weekly_goal", "12").unwrap();
    j.set_setting(&now(), "week_start", "Sunday").unwrap();
    let s = j.catalog().unwrap().settings;
    assert_eq!((s.weekly_goal, s.week_start), (12, WeekStart::Sunday));
    for (k, v) in [
        ("weekly_goal", "0"),
        ("weekly_goal", "many"),
        ("week_start", "someday"),
        ("colour", "red"),
    ] {
        assert!(
            matches!(j.set_setting(&now(), k, v), Err(Error::Invalid(_))),
            "{k}={v}"
        );
    }
}

#[test]
fn a_newer_schema_is_read_but_never_written() {
    let mut j = journal();
    add(&mut j, "Email Sam", &[], &[]);
    let mut tx = j.doc_mut().transaction();
    tx.put(ROOT, "schema_version", 2u64).unwrap();
    tx.commit();
    assert_eq!(j.shifts().unwrap().len(), 1);
    let heads = j.doc().get_heads();
    let err = j.set_setting(&now(), "weekly_goal", "5").unwrap_err();
    assert!(matches!(err, Error::NewerSchema { found: 2, .. }), "{err}");
    assert!(err.to_string().contains("upgrade nudge"));
    assert!(j.undo(&now()).is_err());
    assert_eq!(j.doc().get_heads(), heads);
}

#[test]
fn a_journal_from_before_minor_versions_is_read_and_brought_up_by_its_next_write() {
    let mut j = journal();
    assert_eq!(j.catalog().unwrap().schema_minor, SCHEMA_MINOR);
    // A 1.0 journal: made before the minor version was written.
    add(&mut j, "Email Sam", &[], &[]);
    let mut tx = j.doc_mut().transaction();
    tx.delete(ROOT, "schema_minor").unwrap();
    tx.commit();
    assert_eq!(j.schema_minor(), 0);
    assert_eq!(j.shifts().unwrap().len(), 1);
    // A write that changes nothing leaves it as it is; a real one marks it 1.1.
    let heads = j.doc().get_heads();
    assert!(j.set_setting(&now(), "weekly_goal", "nope").is_err());
    assert_eq!(j.doc().get_heads(), heads);
    j.set_setting(&now(), "weekly_goal", "5").unwrap();
    let c = j.catalog().unwrap();
    assert_eq!(
        (c.schema_version, c.schema_minor),
        (SCHEMA_MAJOR, SCHEMA_MINOR)
    );
    assert_eq!(c.settings.weekly_goal, 5);
}

#[test]
fn fields_this_version_does_not_know_survive_edits() {
    let mut j = journal();
    let id = add(&mut j, "Email Sam", &[], &[]).id;
    let shift_obj = {
        let (_, shifts) = j.doc().get(ROOT, "shifts").unwrap().unwrap();
        j.doc().get(&shifts, id.as_str()).unwrap().unwrap().1
    };
    let mut tx = j.doc_mut().transaction();
    tx.put(&shift_obj, "energy", "high").unwrap();
    tx.put(ROOT, "future_feature", 42i64).unwrap();
    tx.commit();
    j.set_status(&now(), &id, ShiftStatus::Done, None, None)
        .unwrap();
    let edit = ShiftEdit {
        text: Some("Email Sam Lee".into()),
        ..ShiftEdit::default()
    };
    j.edit_shift(&now(), &id, edit).unwrap();
    let energy = j.doc().get(&shift_obj, "energy").unwrap().unwrap().0;
    assert_eq!(
        energy,
        Value::Scalar(std::borrow::Cow::Owned(ScalarValue::from("high")))
    );
    assert!(j.doc().get(ROOT, "future_feature").unwrap().is_some());
}

#[test]
fn text_objects_written_by_javascript_read_as_strings() {
    let mut j = journal();
    let id = add(&mut j, "placeholder", &[], &[]).id;
    let (_, shifts) = j.doc().get(ROOT, "shifts").unwrap().unwrap();
    let (_, obj) = j.doc().get(&shifts, id.as_str()).unwrap().unwrap();
    let mut tx = j.doc_mut().transaction();
    let text = tx.put_object(&obj, "text", ObjType::Text).unwrap();
    tx.splice_text(&text, 0, 0, "Written as Text").unwrap();
    tx.put(&obj, "minutes", ScalarValue::F64(15.0)).unwrap();
    tx.commit();
    let s = j.shift(&id).unwrap().unwrap();
    assert_eq!(s.text, "Written as Text");
    assert_eq!(s.minutes, 15);
}

#[test]
fn concurrent_done_and_skip_end_done_everywhere() {
    let mut a = journal();
    let id = add(&mut a, "Call the school", &[], &[]).id;
    let mut b = Journal::from_doc(a.doc().fork().with_actor(ActorId::random())).unwrap();
    a.set_status(&now(), &id, ShiftStatus::Done, None, None)
        .unwrap();
    b.set_status(&now(), &id, ShiftStatus::Skipped, None, None)
        .unwrap();
    a.doc_mut().merge(b.doc_mut()).unwrap();
    b.doc_mut().merge(a.doc_mut()).unwrap();
    for j in [&a, &b] {
        let s = j.shift(&id).unwrap().unwrap();
        assert_eq!(s.status, ShiftStatus::Done);
        assert!(s.done.is_some());
    }
}

#[test]
fn the_same_idea_created_on_two_devices_is_one_idea() {
    let mut a = journal();
    let mut b = Journal::from_doc(a.doc().fork().with_actor(ActorId::random())).unwrap();
    let sa = add(&mut a, "Email Sam", &["ux"], &[]).id;
    let sb = add(&mut b, "Read a case study", &["UX"], &[]).id;
    a.doc_mut().merge(b.doc_mut()).unwrap();
    let c = a.catalog().unwrap();
    assert_eq!(c.ideas.len(), 2, "both records are kept");
    assert_eq!(c.canonical_ideas().count(), 1, "and read as one");
    let shifts = a.shifts().unwrap();
    let export = export(&c, &shifts, &Default::default());
    assert_eq!(export["ideas"].as_array().unwrap().len(), 1);
    let idea = export["ideas"][0]["id"].clone();
    for s in export["shifts"].as_array().unwrap() {
        assert_eq!(
            s["ideas"][0], idea,
            "{} and {} both point at the one idea",
            sa, sb
        );
    }
    // Dropping it closes both records.
    let canonical = c.canonical_ideas().next().unwrap().id.clone();
    a.set_idea_status(
        &now(),
        &c.idea_group(&canonical),
        "ux",
        IdeaStatus::DeadEnd,
        None,
    )
    .unwrap();
    assert!(
        a.catalog()
            .unwrap()
            .ideas
            .values()
            .all(|i| i.status == IdeaStatus::DeadEnd)
    );
}

#[test]
fn a_device_is_named_in_its_first_change() {
    let a = journal();
    let mut b = Journal::from_doc(a.doc().fork().with_actor(ActorId::random())).unwrap();
    b.set_device_name("phone");
    let before = b.doc().get_changes(&[]).len();
    add(&mut b, "Email Sam", &[], &[]);
    assert_eq!(
        b.doc().get_changes(&[]).len(),
        before + 1,
        "naming rides on the command's change"
    );
    let mut names: Vec<String> = b.catalog().unwrap().devices.into_values().collect();
    names.sort();
    assert_eq!(names, ["laptop", "phone"]);
    assert!(
        !b.register_device(&now(), "phone").unwrap(),
        "already named"
    );
    assert!(b.register_device(&now(), "work phone").unwrap());
}

#[test]
fn history_names_devices_and_actions() {
    let mut j = journal();
    add(&mut j, "Email Sam", &[], &[]);
    let c = j.catalog().unwrap();
    let h = history(&j, &c);
    let messages: Vec<&str> = h.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages[0], "Create journal");
    assert_eq!(messages.len(), 2, "one change per command: {messages:?}");
    assert!(messages[1].starts_with("Add shift"));
    assert!(messages[1].ends_with("Email Sam"));
    assert!(h.iter().all(|e| e.device == "laptop"));
}

#[test]
fn suggestions_use_the_journal() {
    let mut j = journal();
    add(&mut j, "x", &["pottery"], &["Ann"]);
    let c = j.catalog().unwrap();
    let s = suggest(
        &c,
        &Summary::build(&j.shifts().unwrap()),
        "2026-11-25".parse().unwrap(),
    );
    assert_eq!(s.len(), 5);
    assert!(
        s.iter()
            .any(|l| l.text.contains("@Ann") && l.people.len() == 1)
    );
    assert!(
        s.iter()
            .any(|l| l.text.contains("+pottery") && l.ideas.len() == 1)
    );
}

#[test]
fn load_rejects_damaged_bytes_and_non_journals() {
    assert!(matches!(
        Journal::load(b"not automerge", ActorId::random()),
        Err(Error::Corrupt(_))
    ));
    let other = nudge_journal::automerge::Automerge::new().save();
    assert!(matches!(
        Journal::load(&other, ActorId::random()),
        Err(Error::NotAJournal(_))
    ));
}
