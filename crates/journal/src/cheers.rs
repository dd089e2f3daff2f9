//! Cheers: short notes a buddy sends back. Each share has a document of its own for them
//! (never the journal: a buddy writes nothing the owner's journal holds). The server
//! writes each cheer, after checking it (`check`) and the share's rate, with a fresh actor,
//! so that cheers written at once on several nodes never collide; the owner's devices sync
//! the document and read it (`read`).
//!
//! ```text
//! { kind: "nudge-cheers", share: <share id>, cheers: { <id>: { text, from, at } } }
//! ```
//!
//! The root map `cheers` is made in the document's first change; were two made at once,
//! readers take the union of every conflicting one.

use automerge::hydrate::Value as HValue;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, Change, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::Serialize;

use crate::Error;
use crate::values::{string, time_ms};

/// What marks a document as a share's cheers.
pub const CHEERS_KIND: &str = "nudge-cheers";
/// The longest cheer, in characters.
pub const MAX_CHEER_CHARS: usize = 500;

/// One cheer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cheer {
    /// Its id.
    pub id: String,
    /// What the buddy said.
    pub text: String,
    /// The buddy, as the owner named the share.
    pub from: String,
    /// When the server took it (ms).
    pub at_ms: i64,
}

/// A cheer's text as stored: trimmed, line ends as `\n`, no other control characters; or
/// why it cannot be one.
pub fn check(text: &str) -> Result<String, Error> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::Invalid(
            "the cheer is empty: say something, e.g. \"Great week!\"".into(),
        ));
    }
    if text.chars().count() > MAX_CHEER_CHARS {
        return Err(Error::Invalid(format!(
            "a cheer is at most {MAX_CHEER_CHARS} characters"
        )));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::Invalid(
            "a cheer is text: it may not hold control characters".into(),
        ));
    }
    Ok(text.to_owned())
}

/// A new cheers document for the share `share_id`, written by `actor` at `now_ms`.
pub fn create(actor: ActorId, share_id: &str, now_ms: i64) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor);
    let mut tx = doc.transaction();
    let made: Result<(), automerge::AutomergeError> = (|| {
        tx.put(ROOT, "kind", CHEERS_KIND)?;
        tx.put(ROOT, "share", share_id)?;
        tx.put_object(ROOT, "cheers", ObjType::Map)?;
        Ok(())
    })();
    made.expect("writing to a new document cannot fail");
    tx.commit_with(
        CommitOptions::default()
            .with_message("Cheers for a share")
            .with_time(now_ms / 1000),
    );
    doc
}

/// Adds a cheer (checked with [`check`]) to `doc` as one change by a fresh actor; returns
/// the change (to store) and the cheer.
pub fn add(
    doc: &mut Automerge,
    from: &str,
    text: &str,
    now_ms: i64,
) -> Result<(Change, Cheer), Error> {
    let text = check(text)?;
    let map = match doc.get(ROOT, "cheers")? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => return Err(Error::NotAJournal("this is not a cheers document".into())),
    };
    let cheer = Cheer {
        id: crate::ids::new_id(),
        text,
        from: from.to_owned(),
        at_ms: now_ms,
    };
    doc.set_actor(ActorId::random());
    let mut tx = doc.transaction();
    let obj = tx.put_object(&map, cheer.id.as_str(), ObjType::Map)?;
    tx.put(&obj, "text", cheer.text.as_str())?;
    tx.put(&obj, "from", cheer.from.as_str())?;
    tx.put(&obj, "at", ScalarValue::Timestamp(now_ms))?;
    let (hash, _) = tx.commit_with(
        CommitOptions::default()
            .with_message("Cheer")
            .with_time(now_ms / 1000),
    );
    let change = hash
        .and_then(|h| doc.get_change_by_hash(&h))
        .ok_or_else(|| Error::Invalid("the cheer made no change".into()))?;
    Ok((change, cheer))
}

/// Whether `doc` is a cheers document.
pub fn is_cheers(doc: &Automerge) -> bool {
    matches!(doc.get(ROOT, "kind"), Ok(Some((Value::Scalar(s), _))) if s.as_str() == Some(CHEERS_KIND))
}

/// Every cheer, oldest first.
pub fn read(doc: &Automerge) -> Vec<Cheer> {
    let mut out = Vec::new();
    let maps = doc.get_all(ROOT, "cheers").unwrap_or_default();
    for (value, obj) in maps {
        if !matches!(value, Value::Object(ObjType::Map)) {
            continue;
        }
        let Ok(HValue::Map(map)) = ReadDoc::hydrate(doc, &obj, None) else {
            continue;
        };
        for (id, v) in map.iter() {
            let HValue::Map(m) = &v.value else { continue };
            let (Some(text), Some(at_ms)) = (string(m, "text"), time_ms(m, "at")) else {
                continue;
            };
            out.push(Cheer {
                id: id.clone(),
                text,
                from: string(m, "from").unwrap_or_default(),
                at_ms,
            });
        }
    }
    out.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.id.cmp(&b.id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheers_are_checked_and_each_one_is_its_own_actor() {
        assert!(check("  ").is_err());
        assert!(check(&"a".repeat(501)).is_err());
        assert!(check("hi\u{7}").is_err());
        assert_eq!(check(" Great\r\nweek! ").unwrap(), "Great\nweek!");
        let mut a = create(ActorId::random(), "s1", 1_000);
        let mut b = a.fork();
        let (one, _) = add(&mut a, "Jo", "Great week!", 2_000).unwrap();
        let (two, _) = add(&mut b, "Jo", "Keep going", 3_000).unwrap();
        assert_ne!(one.actor_id(), two.actor_id());
        a.apply_changes([two]).unwrap();
        let read = read(&a);
        assert_eq!(
            read.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
            ["Great week!", "Keep going"]
        );
        assert!(is_cheers(&a));
    }
}
