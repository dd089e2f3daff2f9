//! Property test: whatever journal the commands can make (texts of any length their field
//! takes, any characters, shifts logged in any time zone, ideas dropped with a note,
//! people with contact details), `export --json` imported into an empty journal gives a
//! journal whose export is the same: a backup always restores.

use std::collections::BTreeMap;

use nudge_journal::automerge::ActorId;
use nudge_journal::limits::Field;
use nudge_journal::*;
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "UTC",
];

fn now() -> Now {
    Now::new(
        "2026-11-25T09:30:00Z".parse().unwrap(),
        jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
    )
}

/// Text a user could type into a field: any characters but controls, short or right up to
/// the field's limit (after white space is folded, which the commands do).
fn text(field: Field) -> impl Strategy<Value = String> {
    let max = field.max_chars();
    let chars = prop::char::any().prop_filter("no controls", |c| !c.is_control());
    prop_oneof![
        prop::collection::vec(chars.clone(), 1..24),
        prop::collection::vec(chars, max - 3..=max),
    ]
    .prop_map(|cs| cs.into_iter().collect::<String>())
    .prop_filter_map("fits its field", move |s| field.fit(&s).ok())
}

#[derive(Clone, Debug)]
enum Op {
    Shift {
        text: String,
        idea: Option<usize>,
        person: Option<usize>,
        /// Logged as made this many minutes ago, in this zone.
        logged: Option<(u32, usize)>,
        note: Option<String>,
        minutes: Option<u32>,
    },
    Idea(String),
    Drop {
        idea: usize,
        note: String,
    },
    Person {
        name: String,
        email: Option<String>,
    },
    Done {
        pick: usize,
        little_yes: Option<String>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let small = || prop::option::of(0usize..8);
    prop_oneof![
        4 => (
            text(Field::ShiftText),
            small(),
            small(),
            prop::option::of((0u32..60 * 24 * 30, 0..ZONES.len())),
            prop::option::of(text(Field::ShiftText)),
            prop::option::of(1u32..600),
        )
            .prop_map(|(text, idea, person, logged, note, minutes)| Op::Shift {
                text,
                idea,
                person,
                logged,
                note,
                minutes,
            }),
        2 => text(Field::IdeaTitle).prop_map(Op::Idea),
        1 => (0usize..8, text(Field::ShiftText)).prop_map(|(idea, note)| Op::Drop { idea, note }),
        2 => (text(Field::PersonName), prop::option::of("[a-z]{1,12}@[a-z]{1,8}\\.org"))
            .prop_map(|(name, email)| Op::Person { name, email }),
        2 => (any::<usize>(), prop::option::of(text(Field::ShiftText)))
            .prop_map(|(pick, little_yes)| Op::Done { pick, little_yes }),
    ]
}

/// Runs the commands; returns the journal and its contacts (person id -> details).
fn build(ops: &[Op]) -> (Journal, BTreeMap<String, Contact>) {
    let now = now();
    let mut journal = Journal::create(ActorId::random(), &now, "laptop", "contacts");
    let mut contacts = BTreeMap::new();
    let (mut ideas, mut people): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for op in ops {
        match op {
            Op::Shift {
                text,
                idea,
                person,
                logged,
                note,
                minutes,
            } => {
                let tag = |all: &[String], pick: &Option<usize>| {
                    pick.and_then(|i| all.get(i))
                        .map(|id| vec![TagRef::Existing(id.clone())])
                        .unwrap_or_default()
                };
                let done = logged.map(|(ago, zone)| {
                    now.ts
                        .checked_sub(jiff::SignedDuration::from_mins(i64::from(ago)))
                        .unwrap()
                        .to_zoned(jiff::tz::TimeZone::get(ZONES[zone]).unwrap())
                });
                journal
                    .add_shift(
                        &now,
                        NewShift {
                            text: text.clone(),
                            ideas: tag(&ideas, idea),
                            people: tag(&people, person),
                            note: note.clone(),
                            minutes: *minutes,
                            done,
                            ..NewShift::default()
                        },
                    )
                    .unwrap();
            }
            Op::Idea(title) => ideas.push(journal.add_idea(&now, title, None).unwrap()),
            Op::Drop { idea, note } => {
                if let Some(id) = ideas.get(*idea) {
                    let catalog = journal.catalog().unwrap();
                    let title = catalog.ideas[id].title.clone();
                    journal
                        .set_idea_status(
                            &now,
                            std::slice::from_ref(id),
                            &title,
                            IdeaStatus::DeadEnd,
                            Some(note),
                        )
                        .unwrap();
                }
            }
            Op::Person { name, email } => {
                let id = journal
                    .add_person(&now, name, &PersonEdit::default())
                    .unwrap();
                if let Some(email) = email {
                    contacts.insert(
                        id.clone(),
                        Contact {
                            email: Some(email.clone()),
                            ..Contact::default()
                        },
                    );
                }
                people.push(id);
            }
            Op::Done { pick, little_yes } => {
                let planned: Vec<Shift> = journal
                    .shifts()
                    .unwrap()
                    .into_iter()
                    .filter(|s| s.status == ShiftStatus::Planned)
                    .collect();
                if !planned.is_empty() {
                    let id = planned[pick % planned.len()].id.clone();
                    journal
                        .set_status(&now, &id, ShiftStatus::Done, None, little_yes.as_deref())
                        .unwrap();
                }
            }
        }
    }
    (journal, contacts)
}

fn exported(journal: &Journal, contacts: &BTreeMap<String, Contact>) -> serde_json::Value {
    export(
        &journal.catalog().unwrap(),
        &journal.shifts().unwrap(),
        contacts,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn an_export_imports_back_into_an_equal_journal(ops in prop::collection::vec(op(), 1..24)) {
        let (journal, contacts) = build(&ops);
        let before = exported(&journal, &contacts);
        let file = serde_json::to_string_pretty(&before).unwrap();
        let batch = import::from_export(&file)
            .unwrap_or_else(|e| panic!("its own export is refused: {e}"));
        let mut restored = Journal::create(ActorId::random(), &now(), "phone", "contacts");
        let report = restored.import(&now(), &batch, "backup.json").unwrap();
        let contacts: BTreeMap<String, Contact> = batch
            .contacts
            .iter()
            .map(|(id, c)| (report.people_map.get(id).unwrap_or(id).clone(), c.clone()))
            .collect();
        prop_assert_eq!(exported(&restored, &contacts), before);
    }
}
