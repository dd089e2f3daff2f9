//! Share views under test: projections by scope, refreshes, what a view shows.

use super::*;

#[test]
fn only_a_document_made_as_a_view_counts_as_one() {
    use automerge::transaction::Transactable;
    let now = crate::Now::new(
        "2026-11-25T09:30:00Z".parse().unwrap(),
        jiff::tz::TimeZone::UTC,
    );
    let view = create_view(ActorId::random(), &now, Scope::Titles);
    assert!(born_as_view(&view));
    // A journal whose root is later marked as a view is still a journal.
    let mut journal = Automerge::new();
    let mut tx = journal.transaction();
    tx.put(ROOT, "kind", "nudge-journal").unwrap();
    tx.commit();
    let mut tx = journal.transaction();
    tx.put(ROOT, "kind", VIEW_KIND).unwrap();
    tx.commit();
    assert!(read_view(&journal).is_ok());
    assert!(!born_as_view(&journal));
    // Nor does a view merged with a second start that is not one.
    let mut merged = view.clone();
    merged.merge(&mut journal.clone()).unwrap();
    assert!(!born_as_view(&merged));
    assert!(!born_as_view(&Automerge::new()));
}

use crate::{NewShift, TagRef};

fn now() -> Now {
    Now::new(
        "2026-11-25T09:30:00Z".parse().unwrap(),
        jiff::tz::TimeZone::UTC,
    )
}

fn journal() -> Journal {
    let now = now();
    let mut j = Journal::create(ActorId::random(), &now, "laptop", "contacts");
    let sam = j
        .add_shift(
            &now,
            NewShift {
                text: "Email Sam Secretname about roles".into(),
                ideas: vec![TagRef::New("ux research".into())],
                people: vec![TagRef::New("Sam Secretname".into())],
                note: Some("private note".into()),
                ..Default::default()
            },
        )
        .unwrap();
    j.set_status(&now, &sam.id, ShiftStatus::Done, None, Some("a warm reply"))
        .unwrap();
    j.add_shift(
        &now,
        NewShift {
            text: "Book a pottery class".into(),
            ..Default::default()
        },
    )
    .unwrap();
    j
}

fn refreshed(j: &Journal, scope: Scope) -> Automerge {
    let now = now();
    let catalog = j.catalog().unwrap();
    let shifts = j.shifts().unwrap();
    let summary = Summary::build(&shifts);
    let mut view = create_view(ActorId::random(), &now, scope);
    let input = ViewInput {
        catalog: &catalog,
        summary: &summary,
        shifts: &shifts,
    };
    assert!(refresh_view(&mut view, &now, &input).unwrap() > 0);
    assert_eq!(
        refresh_view(&mut view, &now, &input).unwrap(),
        0,
        "nothing differs the second time"
    );
    view
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn each_scope_shows_what_it_says_and_never_people() {
    let j = journal();
    let counts = refreshed(&j, Scope::Counts);
    let v = read_view(&counts).unwrap();
    assert_eq!(v.scope, Some(Scope::Counts));
    assert_eq!(v.days.values().sum::<u32>(), 1);
    assert_eq!(v.ideas_by_status.get("exploring"), Some(&1));
    assert!(v.shifts.is_empty() && v.ideas.is_empty());
    let bytes = counts.save();
    for secret in [
        "Email Sam",
        "pottery",
        "ux research",
        "Secretname",
        "private note",
        "warm reply",
    ] {
        assert!(!contains(&bytes, secret), "{secret} leaked at counts");
    }

    let titles = refreshed(&j, Scope::Titles);
    let v = read_view(&titles).unwrap();
    assert_eq!(v.shifts.len(), 2);
    assert_eq!(v.shifts[0].done_date.as_deref(), Some("2026-11-25"));
    assert_eq!(v.ideas[0].title, "ux research");
    assert!(
        v.shifts
            .iter()
            .all(|s| s.note.is_none() && s.little_yes.is_none())
    );
    let bytes = titles.save();
    for secret in ["private note", "warm reply"] {
        assert!(!contains(&bytes, secret), "{secret} leaked at titles");
    }
    // People: not by name, not by tag (the text is the owner's own words).
    assert!(!contains(&bytes, "\"Sam Secretname\""));

    let full = refreshed(&j, Scope::Full);
    let v = read_view(&full).unwrap();
    let sam = v
        .shifts
        .iter()
        .find(|s| s.text.starts_with("Email"))
        .unwrap();
    assert_eq!(sam.note.as_deref(), Some("private note"));
    assert_eq!(sam.little_yes.as_deref(), Some("a warm reply"));
}

#[test]
fn two_devices_refreshing_at_once_converge() {
    let now = now();
    let mut j = journal();
    let mut a = refreshed(&j, Scope::Titles);
    let mut b = a.fork().with_actor(ActorId::random());
    j.add_shift(
        &now,
        NewShift {
            text: "Call Priya".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let catalog = j.catalog().unwrap();
    let shifts = j.shifts().unwrap();
    let summary = Summary::build(&shifts);
    let input = ViewInput {
        catalog: &catalog,
        summary: &summary,
        shifts: &shifts,
    };
    refresh_view(&mut a, &now, &input).unwrap();
    refresh_view(&mut b, &now, &input).unwrap();
    a.merge(&mut b).unwrap();
    let merged = read_view(&a).unwrap();
    assert_eq!(merged.shifts.len(), 3);
    let expected = read_view(&refreshed(&j, Scope::Titles)).unwrap();
    assert_eq!(
        (merged.days, merged.shifts.len(), merged.ideas),
        (expected.days, expected.shifts.len(), expected.ideas)
    );
    // After the merge, a refresh from the same journal finds nothing to write.
    assert_eq!(refresh_view(&mut a, &now, &input).unwrap(), 0);
}

#[test]
fn the_journal_lists_shares_and_their_revocation() {
    let now = now();
    let mut j = journal();
    let share = Share {
        id: "abc123abc123".into(),
        name: "Jo".into(),
        scope: Scope::Counts,
        view_doc: "view".into(),
        created_at_ms: now.ms(),
        expires_at_ms: Some(now.ms() + 1000),
        revoked_at_ms: None,
    };
    j.add_share(&now, &share).unwrap();
    assert_eq!(j.shares().get("abc123abc123"), Some(&share));
    assert!(share.active(now.ms()));
    assert!(!share.active(now.ms() + 2000));
    j.revoke_share(&now, "abc123abc123").unwrap();
    assert!(!j.shares()["abc123abc123"].active(now.ms()));
    assert!(j.revoke_share(&now, "nope").is_err());
}

#[test]
fn a_view_reviews_the_week_within_its_scope() {
    let mut j = journal();
    let catalog = j.catalog().unwrap();
    let ux = catalog.canonical_ideas().next().unwrap().id.clone();
    j.set_idea_status(
        &now(),
        &[ux],
        "ux research",
        IdeaStatus::DeadEnd,
        Some("too much screen time"),
    )
    .unwrap();
    let today: jiff::civil::Date = "2026-11-25".parse().unwrap();
    let utc = jiff::tz::TimeZone::UTC;
    let full = read_view(&refreshed(&j, Scope::Full))
        .unwrap()
        .review(today, &utc);
    assert_eq!(full.week.done, 1);
    assert_eq!(full.pace.total, 1);
    assert_eq!(full.little_yeses.len(), 1);
    assert_eq!(full.little_yeses[0].text, "a warm reply");
    assert_eq!(full.doors_closed.len(), 1);
    assert_eq!(
        full.doors_closed[0].note.as_deref(),
        Some("too much screen time")
    );
    let titles = read_view(&refreshed(&j, Scope::Titles))
        .unwrap()
        .review(today, &utc);
    assert_eq!(
        (titles.little_yeses.len(), titles.doors_closed.len()),
        (0, 1)
    );
    assert_eq!(titles.doors_closed[0].note, None);
    let counts = read_view(&refreshed(&j, Scope::Counts))
        .unwrap()
        .review(today, &utc);
    assert_eq!(
        (counts.little_yeses.len(), counts.doors_closed.len()),
        (0, 0)
    );
    assert_eq!(counts.pace.total, 1);
    // The week after, it is the week before.
    let later = read_view(&refreshed(&j, Scope::Full))
        .unwrap()
        .review("2026-12-02".parse().unwrap(), &utc);
    assert_eq!((later.week.done, later.before.done), (0, 1));
    assert!(later.little_yeses.is_empty() && later.doors_closed.is_empty());
}
