//! A device restored from a copy of its home: its changes since the copy move to a fresh
//! actor, so that they can sync (see `nudge_journal::reauthor` for why they could not).

use anyhow::{Context, Result, anyhow, bail};
use nudge_journal::automerge::{ActorId, Automerge};
use nudge_store::DocumentId;

use super::{Replica, local};

/// What a move did, for the sync's report and `nudge doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorMove {
    /// The actor this device wrote as, which a copy of it (or the original) also used.
    pub from: ActorId,
    /// The fresh actor the device writes as now.
    pub to: ActorId,
    /// How many changes were made again as `to`.
    pub changes: usize,
    /// When (RFC 3339).
    pub at: String,
}

impl ActorMove {
    fn encode(&self) -> String {
        format!("{} {} {} {}", self.from, self.to, self.changes, self.at)
    }

    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split_whitespace();
        Some(Self {
            from: parts.next()?.parse().ok()?,
            to: parts.next()?.parse().ok()?,
            changes: parts.next()?.parse().ok()?,
            at: parts.next()?.to_owned(),
        })
    }
}

impl Replica {
    /// The server holds other changes of `actor` in `document` from `seq` on: makes this
    /// device's changes of `actor` from `seq` on again as a fresh actor (the one it writes
    /// as from now on), stores the document with them in place of the old ones, and
    /// records the move. Refuses an actor this device never wrote as.
    pub fn move_to_fresh_actor(
        &self,
        document: &DocumentId,
        actor: &ActorId,
        seq: u64,
    ) -> Result<ActorMove> {
        let current = self.actor()?;
        let earlier = self.actor_moves()?;
        let to = if *actor == current {
            ActorId::random()
        } else if earlier.iter().any(|m| m.from == *actor) {
            // An earlier move left this document behind: same fresh actor.
            current
        } else {
            bail!(
                "the server holds changes numbered like this device's but by actor {actor}, which this device never wrote as; nothing was changed: run `nudge doctor` and report it"
            );
        };
        let bytes = self
            .load_doc(document)?
            .ok_or_else(|| anyhow!("document {document} is not stored here"))?;
        let doc = Automerge::load(&bytes)
            .with_context(|| format!("document {document} in {}", self.path().display()))?;
        let (moved, changes) = nudge_journal::reauthor(&doc, actor, seq, &to)
            .with_context(|| format!("moving this device's changes of {document}"))?;
        let remade: Vec<_> = moved
            .get_changes(&doc.get_heads())
            .iter()
            .map(|c| c.hash().0)
            .collect();
        // The whole document as a new snapshot: the old changes leave the log, and the log
        // position still only grows (the read cache and the marker count on that).
        self.store()?
            .append_snapshot(document, &moved.save(), &remade)?;
        let record = ActorMove {
            from: actor.clone(),
            to: to.clone(),
            changes,
            at: self.now.ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        };
        let mut log = self.local_get(local::ACTOR_MOVES)?.unwrap_or_default();
        log.push_str(&record.encode());
        log.push('\n');
        self.local()?.insert(local::ACTOR_MOVES, log.as_bytes())?;
        self.local()?.insert(local::ACTOR, to.to_bytes())?;
        self.store()?.flush()?;
        if self.journal_id()? == Some(*document) {
            self.marker
                .write(document, self.store()?.position(document)?)?;
        }
        *self.loaded.borrow_mut() = super::Loaded::default();
        self.wrote.set(true);
        Ok(record)
    }

    /// Every move to a fresh actor this device made, oldest first.
    pub fn actor_moves(&self) -> Result<Vec<ActorMove>> {
        Ok(self
            .local_get(local::ACTOR_MOVES)?
            .unwrap_or_default()
            .lines()
            .filter_map(ActorMove::decode)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back() {
        let record = ActorMove {
            from: ActorId::random(),
            to: ActorId::random(),
            changes: 3,
            at: "2026-12-06T16:00:00Z".into(),
        };
        assert_eq!(ActorMove::decode(&record.encode()), Some(record));
    }
}
