//! Property test: replicas of one journal apply random commands, exchange changes in random
//! orders, and end identical, with nothing created lost, done staying done, and one idea per
//! title.

use std::collections::{BTreeMap, BTreeSet};

use nudge_journal::automerge::{ActorId, Automerge};
use nudge_journal::*;
use proptest::prelude::*;

const IDEAS: &[&str] = &["ux", "teaching", "pottery"];
const PEOPLE: &[&str] = &["sam", "priya"];

#[derive(Clone, Debug)]
enum Op {
    Add {
        replica: usize,
        idea: Option<usize>,
        person: Option<usize>,
    },
    Done {
        replica: usize,
        pick: usize,
    },
    Skip {
        replica: usize,
        pick: usize,
    },
    Edit {
        replica: usize,
        pick: usize,
        idea: usize,
    },
    Remove {
        replica: usize,
        pick: usize,
    },
    DropIdea {
        replica: usize,
        idea: usize,
    },
    Sync {
        from: usize,
        to: usize,
    },
}

fn op(replicas: usize) -> impl Strategy<Value = Op> {
    let r = 0..replicas;
    prop_oneof![
        4 => (r.clone(), proptest::option::of(0..IDEAS.len()), proptest::option::of(0..PEOPLE.len()))
            .prop_map(|(replica, idea, person)| Op::Add { replica, idea, person }),
        3 => (r.clone(), any::<usize>()).prop_map(|(replica, pick)| Op::Done { replica, pick }),
        1 => (r.clone(), any::<usize>()).prop_map(|(replica, pick)| Op::Skip { replica, pick }),
        2 => (r.clone(), any::<usize>(), 0..IDEAS.len()).prop_map(|(replica, pick, idea)| Op::Edit { replica, pick, idea }),
        1 => (r.clone(), any::<usize>()).prop_map(|(replica, pick)| Op::Remove { replica, pick }),
        1 => (r.clone(), 0..IDEAS.len()).prop_map(|(replica, idea)| Op::DropIdea { replica, idea }),
        3 => (r.clone(), r).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

fn now() -> Now {
    Now::new(
        "2026-11-25T09:30:00Z".parse().unwrap(),
        jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
    )
}

fn tag(resolved: Resolved<'_>, name: &str) -> TagRef {
    match resolved {
        Resolved::Existing(id) => TagRef::Existing(id.to_owned()),
        _ => TagRef::New(name.to_owned()),
    }
}

fn export_text(j: &Journal) -> String {
    let c = j.catalog().unwrap();
    serde_json::to_string(&export(&c, &j.shifts().unwrap(), &Default::default())).unwrap()
}

fn sync(from: &Journal, to: &mut Journal) {
    let mut from_doc: Automerge = from.doc().fork();
    to.doc_mut().merge(&mut from_doc).unwrap();
}

fn run(replicas: usize, ops: Vec<Op>) {
    let origin = Journal::create(ActorId::random(), &now(), "origin", "contacts");
    let mut js: Vec<Journal> = (0..replicas)
        .map(|_| Journal::from_doc(origin.doc().fork().with_actor(ActorId::random())).unwrap())
        .collect();
    let mut created = BTreeSet::new();
    let mut removed = BTreeSet::new();
    let mut done = BTreeSet::new();
    let mut skipped = BTreeSet::new();
    for op in ops {
        match op {
            Op::Add {
                replica,
                idea,
                person,
            } => {
                let c = js[replica].catalog().unwrap();
                let shift = NewShift {
                    text: format!("shift {}", created.len()),
                    ideas: idea
                        .map(|i| tag(c.resolve_idea(IDEAS[i]), IDEAS[i]))
                        .into_iter()
                        .collect(),
                    people: person
                        .map(|p| tag(c.resolve_person(PEOPLE[p]), PEOPLE[p]))
                        .into_iter()
                        .collect(),
                    ..NewShift::default()
                };
                created.insert(js[replica].add_shift(&now(), shift).unwrap().id);
            }
            Op::Done { replica, pick }
            | Op::Skip { replica, pick }
            | Op::Edit { replica, pick, .. }
            | Op::Remove { replica, pick } => {
                let planned: Vec<Shift> = js[replica]
                    .shifts()
                    .unwrap()
                    .into_iter()
                    .filter(|s| s.status == ShiftStatus::Planned)
                    .collect();
                if planned.is_empty() {
                    continue;
                }
                let id = planned[pick % planned.len()].id.clone();
                let j = &mut js[replica];
                match op {
                    Op::Done { .. } => {
                        j.set_status(&now(), &id, ShiftStatus::Done, None, None)
                            .unwrap();
                        done.insert(id);
                    }
                    Op::Skip { .. } => {
                        j.set_status(&now(), &id, ShiftStatus::Skipped, None, None)
                            .unwrap();
                        skipped.insert(id);
                    }
                    Op::Edit { idea, .. } => {
                        let c = j.catalog().unwrap();
                        let edit = ShiftEdit {
                            text: Some(format!("edited {id}")),
                            add_ideas: vec![tag(c.resolve_idea(IDEAS[idea]), IDEAS[idea])],
                            ..ShiftEdit::default()
                        };
                        j.edit_shift(&now(), &id, edit).unwrap();
                    }
                    _ => {
                        j.remove_shift(&now(), &id).unwrap();
                        removed.insert(id);
                    }
                }
            }
            Op::DropIdea { replica, idea } => {
                let c = js[replica].catalog().unwrap();
                if let Resolved::Existing(id) = c.resolve_idea(IDEAS[idea]) {
                    let group = c.idea_group(id);
                    js[replica]
                        .set_idea_status(&now(), &group, IDEAS[idea], IdeaStatus::DeadEnd, None)
                        .unwrap();
                }
            }
            Op::Sync { from, to } if from != to => {
                let source = js[from].doc().fork();
                js[to].doc_mut().merge(&mut source.clone()).unwrap();
            }
            Op::Sync { .. } => {}
        }
    }
    // Everyone exchanges with everyone, in order, twice.
    for _ in 0..2 {
        for a in 0..replicas {
            for b in 0..replicas {
                if a != b {
                    let source = Journal::from_doc(js[a].doc().fork()).unwrap();
                    sync(&source, &mut js[b]);
                }
            }
        }
    }
    let first = export_text(&js[0]);
    for j in &js[1..] {
        assert_eq!(export_text(j), first, "replicas differ");
        assert_eq!(j.doc().get_heads(), js[0].doc().get_heads());
    }
    let shifts: BTreeMap<String, Shift> = js[0]
        .shifts()
        .unwrap()
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    for id in &created {
        if !removed.contains(id) {
            assert!(shifts.contains_key(id), "shift {id} was lost");
        }
    }
    for id in &done {
        if let Some(s) = shifts.get(id) {
            assert_eq!(
                s.status,
                ShiftStatus::Done,
                "done shift {id} is {} (skipped elsewhere: {})",
                s.status,
                skipped.contains(id)
            );
        }
    }
    let c = js[0].catalog().unwrap();
    let titles: Vec<String> = c.canonical_ideas().map(|i| normalize(&i.title)).collect();
    let unique: BTreeSet<&String> = titles.iter().collect();
    assert_eq!(titles.len(), unique.len(), "one idea per title: {titles:?}");
    for s in shifts.values() {
        for raw in &s.ideas {
            assert!(c.idea(raw).is_some(), "a shift points at a missing idea");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn two_replicas_converge(ops in proptest::collection::vec(op(2), 1..40)) {
        run(2, ops);
    }

    #[test]
    fn three_replicas_converge(ops in proptest::collection::vec(op(3), 1..60)) {
        run(3, ops);
    }
}
