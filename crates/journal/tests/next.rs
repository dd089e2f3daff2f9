//! `next` and `suggest`: what fits the moment, and suggestions that follow the journal.

use nudge_journal::automerge::ActorId;
use nudge_journal::*;

fn at(utc: &str) -> Now {
    Now::new(
        utc.parse().unwrap(),
        jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
    )
}

/// Wednesday 25 November 2026, 10:30 in Berlin.
const TODAY: &str = "2026-11-25T09:30:00Z";

fn journal() -> Journal {
    Journal::create(
        ActorId::random(),
        &at("2026-10-01T09:00:00Z"),
        "laptop",
        "c",
    )
}

fn tags(names: &[&str], resolve: impl Fn(&str) -> Option<String>) -> Vec<TagRef> {
    names
        .iter()
        .map(|n| match resolve(n) {
            Some(id) => TagRef::Existing(id),
            None => TagRef::New((*n).to_owned()),
        })
        .collect()
}

/// A shift added at `when` (planned), or made then (`done`), of `minutes` minutes.
fn shift(
    j: &mut Journal,
    when: &str,
    text: &str,
    minutes: u32,
    ideas: &[&str],
    people: &[&str],
    done: bool,
) -> String {
    let catalog = j.catalog().unwrap();
    let now = at(when);
    let new = NewShift {
        text: text.into(),
        minutes: Some(minutes),
        ideas: tags(ideas, |n| match catalog.resolve_idea(n) {
            Resolved::Existing(id) => Some(id.to_owned()),
            _ => None,
        }),
        people: tags(people, |n| match catalog.resolve_person(n) {
            Resolved::Existing(id) => Some(id.to_owned()),
            _ => None,
        }),
        done: done.then(|| now.zoned()),
        ..NewShift::default()
    };
    j.add_shift(&now, new).unwrap().id
}

fn next_of(j: &Journal, minutes: u32) -> Option<Next> {
    let summary = Summary::build(&j.shifts().unwrap());
    next(&j.catalog().unwrap(), &summary, &at(TODAY), minutes)
}

fn text_of(next: Option<Next>) -> String {
    match next {
        Some(Next::Planned { shift, .. }) => shift.text,
        Some(Next::Suggested(s)) => format!("suggested: {}", s.text),
        None => "nothing".into(),
    }
}

#[test]
fn next_is_the_longest_waiting_shift_that_fits_and_never_a_set_aside_idea() {
    let mut j = journal();
    shift(
        &mut j,
        "2026-11-24T09:00:00Z",
        "Call Priya",
        5,
        &[],
        &[],
        false,
    );
    shift(
        &mut j,
        "2026-11-10T09:00:00Z",
        "Write the cover letter",
        45,
        &[],
        &[],
        false,
    );
    shift(
        &mut j,
        "2026-11-20T09:00:00Z",
        "Email Sam",
        5,
        &[],
        &[],
        false,
    );
    // The 45-minute one waited longest, but does not fit five minutes.
    match next_of(&j, 5) {
        Some(Next::Planned {
            shift,
            waiting_days,
        }) => {
            assert_eq!(shift.text, "Email Sam");
            assert_eq!(waiting_days, 5);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(text_of(next_of(&j, 60)), "Write the cover letter");
    // A shift for a parked idea is not offered, however long it waited.
    shift(
        &mut j,
        "2026-11-01T09:00:00Z",
        "Visit the pottery studio",
        5,
        &["pottery"],
        &[],
        false,
    );
    assert_eq!(text_of(next_of(&j, 5)), "Visit the pottery studio");
    let catalog = j.catalog().unwrap();
    let pottery = catalog.canonical_ideas().next().unwrap().clone();
    j.set_idea_status(
        &at(TODAY),
        &catalog.idea_group(&pottery.id),
        &pottery.title,
        IdeaStatus::Parked,
        None,
    )
    .unwrap();
    assert_eq!(text_of(next_of(&j, 5)), "Email Sam");
    // Nothing fits two minutes: a suggestion instead.
    assert!(text_of(next_of(&j, 2)).starts_with("suggested: "));
}

#[test]
fn a_shift_for_a_neglected_idea_comes_before_an_equally_old_one_for_a_busy_idea() {
    let mut j = journal();
    shift(
        &mut j,
        "2026-11-24T09:00:00Z",
        "Read about UX",
        5,
        &["ux"],
        &[],
        true,
    );
    shift(
        &mut j,
        "2026-10-20T09:00:00Z",
        "Dig a bed",
        5,
        &["garden"],
        &[],
        true,
    );
    shift(
        &mut j,
        "2026-11-22T09:00:00Z",
        "Sketch a UX flow",
        5,
        &["ux"],
        &[],
        false,
    );
    shift(
        &mut j,
        "2026-11-22T10:00:00Z",
        "Price seeds",
        5,
        &["garden"],
        &[],
        false,
    );
    assert_eq!(text_of(next_of(&j, 5)), "Price seeds");
}

#[test]
fn suggestions_follow_up_only_after_a_week_and_name_stale_people_and_untouched_ideas() {
    let mut j = journal();
    shift(
        &mut j,
        "2026-11-22T09:00:00Z",
        "Coffee",
        5,
        &[],
        &["Ann"],
        true,
    );
    shift(
        &mut j,
        "2026-10-10T09:00:00Z",
        "Call",
        5,
        &["pottery"],
        &["Bo"],
        true,
    );
    let summary = Summary::build(&j.shifts().unwrap());
    let catalog = j.catalog().unwrap();
    let s = suggest(&catalog, &summary, "2026-11-25".parse().unwrap());
    let texts: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert!(texts.iter().all(|t| !t.contains("@Ann")), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("46 days since you reached @Bo")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("+pottery has waited 46 days")),
        "{texts:?}"
    );
    let bo = s.iter().find(|s| s.text.contains("@Bo")).unwrap();
    assert_eq!(bo.people.len(), 1);
    assert_eq!(s.len(), 5);
}

#[test]
fn a_shift_shrunk_into_a_planned_step_waits_for_it() {
    let mut j = journal();
    let big = shift(
        &mut j,
        "2026-11-01T09:00:00Z",
        "Email ten people",
        5,
        &[],
        &[],
        false,
    );
    shift(
        &mut j,
        "2026-11-20T09:00:00Z",
        "Call Priya",
        5,
        &[],
        &[],
        false,
    );
    assert_eq!(text_of(next_of(&j, 5)), "Email ten people");
    let step = j
        .add_shift(
            &at(TODAY),
            NewShift {
                text: "Choose who to email first".into(),
                shrunk_from: Some(big.clone()),
                ..NewShift::default()
            },
        )
        .unwrap();
    assert_eq!(j.shift(&step.id).unwrap().unwrap().shrunk_from, Some(big));
    // The step is newer than Call Priya: the older waits first, the big one not at all.
    assert_eq!(text_of(next_of(&j, 5)), "Call Priya");
}
