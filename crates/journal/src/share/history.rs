//! A view's history against what it shows: Automerge keeps every change, so a title
//! edited, a shift removed or one that left the view's window stays readable in the view's
//! history by anyone with the link. [`holds_forgotten_text`] says when that happened;
//! [`fresh_view`] builds the view again without a history, for the owner's device to move
//! the share to (the server's `PUT /v1/shares/<id>`).

use std::collections::BTreeSet;

use automerge::legacy::OpType;
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ROOT, ScalarValue};

use super::{ViewInput, create_view, hydrate, refresh_view};
use crate::journal::obj_at;
use crate::model::Scope;
use crate::{Error, Journal, Now};

/// The fields that hold a person's own words; counts, dates and statuses are not secrets
/// the view once showed and no longer does.
const WORDS: [&str; 6] = ["title", "text", "note", "little_yes", "why", "closing_note"];

/// Every (field, words) a view's changes ever wrote.
fn ever_written(view: &Automerge) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for change in view.get_changes(&[]) {
        for op in change.decode().operations {
            let (automerge::legacy::Key::Map(key), OpType::Put(ScalarValue::Str(words))) =
                (&op.key, &op.action)
            else {
                continue;
            };
            if WORDS.contains(&key.as_str()) {
                out.insert((key.to_string(), words.to_string()));
            }
        }
    }
    out
}

/// Every (field, words) the view shows now.
fn shown(view: &Automerge) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for list in ["shifts", "ideas"] {
        let Some(obj) = obj_at(view, &ROOT, list) else {
            continue;
        };
        for (_, entry) in hydrate(view, &obj).iter() {
            let automerge::hydrate::Value::Map(fields) = &entry.value else {
                continue;
            };
            for key in WORDS {
                if let Some(words) = crate::values::string(fields, key) {
                    out.insert((key.to_owned(), words));
                }
            }
        }
    }
    out
}

/// Whether the view's history holds words it no longer shows (an edited title, a removed
/// shift, a note taken back): then it must be built again without a history.
pub fn holds_forgotten_text(view: &Automerge) -> bool {
    !ever_written(view).is_subset(&shown(view))
}

/// The view at `scope` as the journal stands, in a new document whose history holds
/// nothing but that.
pub fn fresh_view(
    actor: ActorId,
    now: &Now,
    scope: Scope,
    input: &ViewInput<'_>,
) -> Result<Automerge, Error> {
    let mut view = create_view(actor, now, scope);
    refresh_view(&mut view, now, input)?;
    Ok(view)
}

impl Journal {
    /// Records that a share shows a new view document from now on.
    pub fn move_share_view(&mut self, now: &Now, id: &str, view_doc: &str) -> Result<(), Error> {
        self.change(
            now,
            |_| format!("Rebuild the view of share {}", crate::journal::brief(id)),
            |tx, _| {
                let obj = obj_at(tx, &ROOT, "shares")
                    .and_then(|shares| obj_at(tx, &shares, id))
                    .ok_or_else(|| Error::Invalid(format!("no share has the id {id}")))?;
                tx.put(&obj, "view_doc", view_doc)?;
                Ok(())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewShift, ShiftEdit, Summary};

    fn now() -> Now {
        Now::new(
            "2026-11-25T09:30:00Z".parse().unwrap(),
            jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
        )
    }

    /// `f` given the journal's projection input.
    fn with_input<T>(j: &Journal, f: impl FnOnce(&ViewInput<'_>) -> T) -> T {
        let (catalog, shifts) = (j.catalog().unwrap(), j.shifts().unwrap());
        let summary = Summary::build(&shifts);
        f(&ViewInput {
            catalog: &catalog,
            summary: &summary,
            shifts: &shifts,
        })
    }

    fn refresh(j: &Journal, view: &mut Automerge) {
        with_input(j, |input| refresh_view(view, &now(), input).unwrap());
    }

    fn fresh(j: &Journal) -> Automerge {
        with_input(j, |input| {
            fresh_view(ActorId::random(), &now(), Scope::Titles, input).unwrap()
        })
    }

    fn holds(view: &Automerge, words: &str) -> bool {
        view.save_nocompress()
            .windows(words.len())
            .any(|w| w == words.as_bytes())
    }

    #[test]
    fn an_edited_or_removed_text_is_found_in_the_history_and_a_fresh_view_has_none() {
        let mut j = Journal::create(ActorId::random(), &now(), "laptop", "c");
        let shift = |text: &str| NewShift {
            text: text.into(),
            ..NewShift::default()
        };
        let kept = j
            .add_shift(&now(), shift("Email Sam about UX roles"))
            .unwrap();
        let gone = j
            .add_shift(&now(), shift("Apply to the job I regret"))
            .unwrap();
        let mut view = fresh(&j);
        assert!(!holds_forgotten_text(&view));
        // Growing the view forgets nothing.
        j.add_shift(&now(), shift("Book a pottery class")).unwrap();
        refresh(&j, &mut view);
        assert!(!holds_forgotten_text(&view));
        // An edit and a removal do.
        let edit = ShiftEdit {
            text: Some("Email Sam about research roles".into()),
            ..ShiftEdit::default()
        };
        j.edit_shift(&now(), &kept.id, edit).unwrap();
        j.remove_shift(&now(), &gone.id).unwrap();
        refresh(&j, &mut view);
        assert!(holds_forgotten_text(&view));
        assert!(holds(&view, "Apply to the job I regret"));
        let rebuilt = fresh(&j);
        assert!(!holds_forgotten_text(&rebuilt));
        assert!(!holds(&rebuilt, "Apply to the job I regret"));
        assert!(!holds(&rebuilt, "Email Sam about UX roles"));
        assert!(holds(&rebuilt, "Email Sam about research roles"));
    }
}
