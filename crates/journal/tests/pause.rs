//! Pauses: planned ahead, kept in the streak and the week, carried into a share view, and
//! never lost when two devices of an older journal make the `pauses` map at once.

use nudge_journal::automerge::{ActorId, Automerge, ReadDoc};
use nudge_journal::share::{ViewInput, create_view, read_view, refresh_view};
use nudge_journal::*;

fn at(utc: &str) -> Now {
    Now::new(
        utc.parse().unwrap(),
        jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
    )
}

fn d(s: &str) -> jiff::civil::Date {
    s.parse().unwrap()
}

/// A journal as nudge made it before pauses: no `pauses` map at its root.
fn older_journal() -> Journal {
    let j = Journal::create(
        ActorId::random(),
        &at("2026-11-01T09:00:00Z"),
        "laptop",
        "c",
    );
    assert!(j.doc().get(automerge_root(), "pauses").unwrap().is_none());
    j
}

fn automerge_root() -> nudge_journal::automerge::ObjId {
    nudge_journal::automerge::ROOT
}

fn fork(j: &Journal) -> Journal {
    let doc = j.doc().fork().with_actor(ActorId::random());
    Journal::from_doc(doc).unwrap()
}

#[test]
fn pauses_made_apart_on_two_devices_both_survive() {
    let laptop = older_journal();
    let mut a = fork(&laptop);
    let mut b = fork(&laptop);
    let now = at("2026-11-25T09:30:00Z");
    a.add_pause(&now, d("2026-11-27"), d("2026-11-28"), Some("family"))
        .unwrap();
    b.add_pause(&now, d("2026-12-01"), d("2026-12-01"), None)
        .unwrap();
    a.doc_mut().merge(&mut b.doc().clone()).unwrap();
    b.doc_mut().merge(&mut a.doc().clone()).unwrap();
    for j in [&a, &b] {
        let pauses = j.pauses();
        assert_eq!(pauses.len(), 2, "{pauses:?}");
        let days = j.catalog().unwrap().paused_days();
        assert_eq!(
            days.into_iter().collect::<Vec<_>>(),
            vec![d("2026-11-27"), d("2026-11-28"), d("2026-12-01")]
        );
    }
    // A later pause goes on working, and a cancel reaches a pause in either map.
    let late = a
        .add_pause(&now, d("2026-12-03"), d("2026-12-03"), None)
        .unwrap();
    let from_b = b
        .pauses()
        .values()
        .find(|p| p.note.is_none() && p.from == d("2026-12-01"))
        .unwrap()
        .id
        .clone();
    a.cancel_pause(&now, &from_b).unwrap();
    assert_eq!(a.pauses().len(), 2);
    assert!(a.pauses().contains_key(&late.id));
}

#[test]
fn a_pause_cannot_cover_today_and_one_begun_stays() {
    let mut j = older_journal();
    let now = at("2026-11-25T09:30:00Z");
    let err = j
        .add_pause(&now, d("2026-11-25"), d("2026-11-25"), None)
        .unwrap_err();
    assert!(err.to_string().contains("tomorrow"), "{err}");
    let p = j
        .add_pause(&now, d("2026-11-26"), d("2026-11-27"), None)
        .unwrap();
    let later = at("2026-11-26T09:30:00Z");
    let err = j.cancel_pause(&later, &p.id).unwrap_err();
    assert!(err.to_string().contains("has begun"), "{err}");
    // Paused days are kept in the streak (nothing was made).
    let summary = Summary::build(&j.shifts().unwrap());
    let catalog = j.catalog().unwrap();
    assert_eq!(streak(&summary, &catalog.paused_days(), d("2026-11-27")), 2);
    let w = week(&summary, &catalog, d("2026-11-27"));
    let paused: Vec<_> = w.days.iter().filter(|x| x.paused).map(|x| x.date).collect();
    assert_eq!(paused, vec![d("2026-11-26"), d("2026-11-27")]);
}

#[test]
fn a_view_carries_paused_days_zone_and_name_but_never_the_note() {
    let mut j = older_journal();
    let now = at("2026-11-25T09:30:00Z");
    j.add_pause(
        &now,
        d("2026-11-27"),
        d("2026-11-27"),
        Some("secret surgery"),
    )
    .unwrap();
    j.set_setting(&now, "display_name", "Ana").unwrap();
    let mut view: Automerge = create_view(ActorId::random(), &now, Scope::Full);
    let catalog = j.catalog().unwrap();
    let shifts = j.shifts().unwrap();
    let summary = Summary::build(&shifts);
    refresh_view(
        &mut view,
        &now,
        &ViewInput {
            catalog: &catalog,
            summary: &summary,
            shifts: &shifts,
        },
    )
    .unwrap();
    let read = read_view(&view).unwrap();
    assert_eq!(
        read.paused.iter().copied().collect::<Vec<_>>(),
        vec![d("2026-11-27")]
    );
    assert_eq!(read.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(read.display_name.as_deref(), Some("Ana"));
    let bytes = view.save_nocompress();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("secret"),
        "a pause's note stays private"
    );
}
