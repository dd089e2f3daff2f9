//! The replica under test: prefixes, the cache rebuilt and patched, a journal missing a
//! dependency.

use super::*;

fn session(dir: &Path) -> Replica {
    let now = Now::new(jiff::Timestamp::UNIX_EPOCH, jiff::tz::TimeZone::UTC);
    Replica::open(dir, now).unwrap()
}

#[test]
fn prefixes_find_shifts_and_short_ids_stay_unique() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path());
    {
        let mut loaded = s.loaded.borrow_mut();
        let mut a = Bucket::new();
        for id in ["abcd1111", "abcd2222"] {
            a.insert(id.into(), crate::cache::sample_shift(id));
        }
        let mut e = Bucket::new();
        e.insert("ef012345".into(), crate::cache::sample_shift("ef012345"));
        loaded.buckets[10] = Some(Arc::new(a));
        loaded.buckets[14] = Some(Arc::new(e));
        let ids: Vec<String> = ["abcd1111", "abcd2222", "ef012345"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        loaded.ids = Some(Arc::new(IdIndex::from_ids(&ids)));
    }
    s.local_set(local::JOURNAL, &DocumentId::random().to_string())
        .unwrap();
    assert_eq!(
        s.shift_ids_with_prefix("abcd").unwrap(),
        ["abcd1111", "abcd2222"]
    );
    assert_eq!(s.shift_ids_with_prefix("ef01").unwrap(), ["ef012345"]);
    assert!(s.shift_ids_with_prefix("a999").unwrap().is_empty());
    assert_eq!(s.shift_short_id("abcd1111").unwrap(), "abcd1");
    assert_eq!(s.shift_short_id("ef012345").unwrap(), "ef01");
}

#[test]
fn a_stale_cache_is_rebuilt_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path());
    s.write(|j, _| {
        let c = j.add_shift(
            &s.now,
            nudge_journal::NewShift {
                text: "one".into(),
                ..Default::default()
            },
        )?;
        Ok((c.id, Touched::Shifts(vec![])))
    })
    .unwrap();
    // The write above did not tell the cache which shift it touched; a cache keyed on the
    // store position must not be trusted once another write moves the position.
    s.cache.damage();
    *s.loaded.borrow_mut() = Loaded::default();
    let view = s.view().unwrap().unwrap();
    assert_eq!(view.summary.open.len(), 1);
    assert_eq!(s.all_shifts().unwrap().len(), 1);
}

#[test]
fn a_patched_cache_equals_a_rebuilt_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path());
    let add = |text: &str, idea: &str| {
        s.write(|j, v| {
            let tag = match v.catalog.resolve_idea(idea) {
                nudge_journal::Resolved::Existing(id) => nudge_journal::TagRef::Existing(id.into()),
                _ => nudge_journal::TagRef::New(idea.into()),
            };
            let c = j.add_shift(
                &s.now,
                nudge_journal::NewShift {
                    text: text.into(),
                    ideas: vec![tag],
                    ..Default::default()
                },
            )?;
            Ok((c.id.clone(), Touched::Shifts(vec![c.id])))
        })
        .unwrap()
    };
    let ids: Vec<String> = (0..40)
        .map(|i| {
            add(
                &format!("shift {i}"),
                if i % 2 == 0 { "ux" } else { "teaching" },
            )
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        s.write(|j, _| {
            match i % 4 {
                0 => j.set_status(&s.now, id, nudge_journal::ShiftStatus::Done, None, None)?,
                1 => j.remove_shift(&s.now, id)?,
                2 => j.set_status(&s.now, id, nudge_journal::ShiftStatus::Skipped, None, None)?,
                _ => {}
            }
            Ok(((), Touched::Shifts(vec![id.clone()])))
        })
        .unwrap();
    }
    let patched = (
        s.view().unwrap().unwrap().summary,
        s.all_shifts().unwrap(),
        s.shift_short_id(&ids[0]).unwrap(),
    );
    s.cache.damage();
    *s.loaded.borrow_mut() = Loaded::default();
    let rebuilt = (
        s.view().unwrap().unwrap().summary,
        s.all_shifts().unwrap(),
        s.shift_short_id(&ids[0]).unwrap(),
    );
    assert_eq!(patched, rebuilt);
    assert_eq!(rebuilt.1.len(), 30);
    assert_eq!(rebuilt.0.day_counts.values().sum::<u32>(), 10);
}

#[test]
fn a_journal_missing_a_dependency_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path());
    s.write(|j, _| {
        let c = j.add_shift(
            &s.now,
            nudge_journal::NewShift {
                text: "one".into(),
                ..Default::default()
            },
        )?;
        Ok(((), Touched::Shifts(vec![c.id])))
    })
    .unwrap();
    // Two more changes made elsewhere; only the second reaches the store.
    let mut other = s.load_journal().unwrap().unwrap();
    let before = other.doc().get_heads();
    for text in ["two", "three"] {
        other
            .add_shift(
                &s.now,
                nudge_journal::NewShift {
                    text: text.into(),
                    ..Default::default()
                },
            )
            .unwrap();
    }
    let changes = other.doc().get_changes(&before);
    let id = s.journal_id().unwrap().unwrap();
    let last = changes.last().unwrap();
    s.store()
        .unwrap()
        .append(
            &id,
            &[NewChange {
                hash: last.hash().0,
                bytes: last.raw_bytes().to_vec(),
            }],
        )
        .unwrap();
    let err = s.load_journal().err().unwrap().to_string();
    assert!(err.contains("missing changes"), "{err}");
}
