//! `nudge idea ...`: the hunches being explored.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use nudge_journal::when::{relative, rfc3339};
use nudge_journal::{Catalog, Idea, IdeaStatus, Resolved, Summary, ids};
use nudge_replica::{Replica, Touched};
use serde_json::{Value, json};

use crate::output::{DIM, GOOD, ID, Out, notice, paint};
use crate::resolve;

/// `nudge idea ...`.
#[derive(Subcommand, Debug)]
pub enum IdeaCommand {
    /// Add an idea to explore.
    Add {
        /// Its title (also its +name).
        title: String,
        /// Why it is worth a look.
        #[arg(long)]
        why: Option<String>,
        /// Add it even when a similar title exists.
        #[arg(long)]
        new: bool,
    },
    /// List ideas (dead ends too, with --all).
    List {
        /// Include dead ends.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one idea.
    Show {
        /// Its id, prefix or title.
        idea: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set an idea aside for now.
    Park(IdeaStatusArgs),
    /// Pursue an idea in earnest.
    Pursue(IdeaStatusArgs),
    /// Close an idea as a dead end: a door closed, something learned.
    Drop(IdeaStatusArgs),
}

/// `nudge idea park|pursue|drop`.
#[derive(Args, Debug)]
pub struct IdeaStatusArgs {
    /// Its id, prefix or title.
    #[arg(add = crate::complete::idea_names())]
    pub idea: String,
    /// A note (for drop: what you learned).
    #[arg(long)]
    pub note: Option<String>,
}

fn idea_json(catalog: &Catalog, summary: &Summary, short: &str, idea: &Idea) -> Value {
    json!({
        "id": idea.id,
        "short_id": short,
        "title": idea.title,
        "why": idea.why,
        "status": idea.status,
        "created_at": rfc3339(idea.created_at_ms),
        "closed_at": idea.closed_at_ms.map(rfc3339),
        "closing_note": idea.closing_note,
        "done_shifts": summary.idea_done(&catalog.idea_group(&idea.id)),
    })
}

fn short_ids(catalog: &Catalog) -> std::collections::BTreeMap<String, String> {
    let canonical: std::collections::BTreeMap<String, ()> = catalog
        .canonical_ideas()
        .map(|i| (i.id.clone(), ()))
        .collect();
    ids::short_ids(&canonical)
}

/// Runs an idea command.
pub(crate) fn run(session: &Replica, out: &mut Out, cmd: IdeaCommand) -> Result<()> {
    match cmd {
        IdeaCommand::Add { title, why, new } => {
            // Checked first, so that an empty title is not "close to" anything.
            let title = nudge_journal::limits::Field::IdeaTitle
                .clean(title.trim().trim_start_matches('+'))?;
            let id = session.write(|journal, view| {
                match view.catalog.resolve_idea(&title) {
                    Resolved::Existing(_) => bail!("an idea called {title:?} exists already: `nudge idea show {title:?}`"),
                    Resolved::Similar(close) if !new => {
                        bail!(
                            "+{close} is close to {title:?}: use +{close}, or create {title:?} anyway with `nudge idea add {} --new`",
                            crate::output::shell_word(&title)
                        )
                    }
                    _ => {}
                }
                Ok((journal.add_idea(&session.now, &title, why.as_deref())?, Touched::Shifts(vec![])))
            })?;
            out.line(format!(
                "New idea {} +{title}: explore it with a five-minute step",
                paint(ID, ids::prefix(&id, 8))
            ));
            out.line(&id);
        }
        IdeaCommand::List { all, json } => {
            let Some(view) = session.view()? else {
                if json {
                    out.json(&Vec::<Value>::new())?;
                } else {
                    notice("No ideas yet. Add a hunch: nudge idea add \"UX research\"");
                }
                return Ok(());
            };
            let shorts = short_ids(&view.catalog);
            let mut ideas: Vec<&Idea> = view
                .catalog
                .canonical_ideas()
                .filter(|i| all || i.status != IdeaStatus::DeadEnd)
                .collect();
            ideas.sort_by(|a, b| {
                a.status
                    .cmp(&b.status)
                    .then_with(|| a.title.to_lowercase().cmp(&b.title.to_lowercase()))
            });
            if json {
                let items: Vec<Value> = ideas
                    .iter()
                    .map(|i| idea_json(&view.catalog, &view.summary, &shorts[&i.id], i))
                    .collect();
                return out.json(&items);
            }
            for idea in &ideas {
                let done = view.summary.idea_done(&view.catalog.idea_group(&idea.id));
                out.line(format!(
                    "{} +{}  {}",
                    paint(ID, format!("{:<6}", shorts[&idea.id])),
                    idea.title,
                    paint(
                        DIM,
                        format!(
                            "{} · {done} shift{} made",
                            idea.status,
                            if done == 1 { "" } else { "s" }
                        )
                    ),
                ));
            }
            let doors = view.catalog.doors_closed();
            if doors > 0 {
                out.line(format!(
                    "{doors} door{} closed: each one is something learned",
                    if doors == 1 { "" } else { "s" }
                ));
            }
        }
        IdeaCommand::Show { idea, json } => {
            let view = session.require_view()?;
            let found = resolve::idea(&view.catalog, &idea)?;
            let shorts = short_ids(&view.catalog);
            if json {
                return out.json(&idea_json(
                    &view.catalog,
                    &view.summary,
                    &shorts[&found.id],
                    found,
                ));
            }
            out.line(format!(
                "{} +{}  ({})",
                paint(ID, &shorts[&found.id]),
                found.title,
                found.status
            ));
            out.line(format!("  id      {}", found.id));
            out.line(format!(
                "  added   {}",
                relative(found.created_at_ms, &session.now)
            ));
            if let Some(why) = &found.why {
                out.line(format!("  why     {why}"));
            }
            out.line(format!(
                "  shifts  {} made",
                view.summary.idea_done(&view.catalog.idea_group(&found.id))
            ));
            if let Some(at) = found.closed_at_ms {
                out.line(format!("  closed  {}", relative(at, &session.now)));
            }
            if let Some(note) = &found.closing_note {
                out.line(format!("  learned {note}"));
            }
        }
        IdeaCommand::Park(a) => set(session, out, &a.idea, IdeaStatus::Parked, a.note)?,
        IdeaCommand::Pursue(a) => set(session, out, &a.idea, IdeaStatus::Pursuing, a.note)?,
        IdeaCommand::Drop(a) => set(session, out, &a.idea, IdeaStatus::DeadEnd, a.note)?,
    }
    Ok(())
}

fn set(
    session: &Replica,
    out: &mut Out,
    name: &str,
    status: IdeaStatus,
    note: Option<String>,
) -> Result<()> {
    let (title, doors) = session.write(|journal, view| {
        let idea = resolve::idea(&view.catalog, name)?;
        let group = view.catalog.idea_group(&idea.id);
        journal.set_idea_status(&session.now, &group, &idea.title, status, note.as_deref())?;
        let doors = journal.catalog()?.doors_closed();
        Ok(((idea.title.clone(), doors), Touched::Shifts(vec![])))
    })?;
    match status {
        IdeaStatus::DeadEnd => {
            out.line(format!(
                "{} +{title} is a door closed. That's progress: you know more than you did.",
                paint(GOOD, "Relief:")
            ));
            out.line(format!(
                "{doors} door{} closed so far",
                if doors == 1 { "" } else { "s" }
            ));
        }
        IdeaStatus::Parked => out.line(format!("Parked +{title}: it will keep")),
        IdeaStatus::Pursuing => out.line(format!("Pursuing +{title}: keep the steps small")),
        IdeaStatus::Exploring => out.line(format!("Exploring +{title}")),
    }
    Ok(())
}
