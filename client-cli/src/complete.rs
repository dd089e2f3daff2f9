//! Dynamic shell completion: `+idea`, `@person`, shift ids, people, ideas, buddies and
//! devices completed from this device's journal, through clap_complete's `CompleteEnv`
//! (the shell asks `COMPLETE=bash nudge -- <words>`; docs/cli.md shows the set-up).
//!
//! A completer runs inside the shell's completion: it reads the home the command line
//! names (`--home`, else `NUDGE_HOME`, else the data folder), changes nothing in it, and gives
//! nothing rather than an error when there is no journal or the store is busy.

use std::ffi::OsString;
use std::path::PathBuf;

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use nudge_journal::{ShiftStatus, ids};

use nudge_replica::{Replica, View};

/// The home the command line being completed names.
fn home() -> Option<PathBuf> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let named = args.iter().enumerate().find_map(|(i, arg)| {
        let text = arg.to_str()?;
        match text.strip_prefix("--home") {
            Some("") => args.get(i + 1).map(PathBuf::from),
            Some(rest) => rest.strip_prefix('=').map(PathBuf::from),
            None => None,
        }
    });
    named
        .or_else(|| std::env::var_os("NUDGE_HOME").map(PathBuf::from))
        .filter(|h| !h.as_os_str().is_empty())
        .or_else(|| crate::home(None).ok())
}

/// Runs `f` on this device's session and journal view; nothing on any failure.
fn with_view(
    f: impl FnOnce(&Replica, &View) -> Vec<CompletionCandidate>,
) -> Vec<CompletionCandidate> {
    let Some(home) = home().filter(|h| h.join("store").exists()) else {
        return Vec::new();
    };
    let Ok(now) = crate::now() else {
        return Vec::new();
    };
    let Ok(session) = Replica::open(&home, now) else {
        return Vec::new();
    };
    match session.view() {
        Ok(Some(view)) => f(&session, &view),
        _ => Vec::new(),
    }
}

fn candidate(value: String, help: &str) -> CompletionCandidate {
    let help: String = help.chars().take(60).collect();
    CompletionCandidate::new(value).help(Some(help.into()))
}

/// Shift ids (short, as `list` shows them), with their text; only planned ones if asked.
fn shifts(planned_only: bool) -> Vec<CompletionCandidate> {
    with_view(|session, _| {
        let Ok(all) = session.all_shifts() else {
            return Vec::new();
        };
        let by_id: std::collections::BTreeMap<String, ()> =
            all.iter().map(|s| (s.id.clone(), ())).collect();
        let short = ids::short_ids(&by_id);
        all.iter()
            .filter(|s| !planned_only || s.status == ShiftStatus::Planned)
            .map(|s| candidate(short[&s.id].clone(), &s.text))
            .collect()
    })
}

fn idea_titles(view: &View) -> Vec<String> {
    let mut titles: Vec<String> = view
        .catalog
        .ideas
        .values()
        .map(|i| i.title.clone())
        .collect();
    titles.sort();
    titles.dedup();
    titles
}

fn person_names(view: &View) -> Vec<String> {
    let mut names: Vec<String> = view
        .catalog
        .people
        .values()
        .map(|p| p.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `+idea` and `@person` words for a shift's text (a name with spaces is quoted by the
/// shell, as it must be typed).
fn tags() -> Vec<CompletionCandidate> {
    with_view(|_, view| {
        let ideas = idea_titles(view)
            .into_iter()
            .map(|t| candidate(format!("+{t}"), "idea"));
        let people = person_names(view)
            .into_iter()
            .map(|n| candidate(format!("@{n}"), "person"));
        ideas.chain(people).collect()
    })
}

fn ideas() -> Vec<CompletionCandidate> {
    with_view(|_, view| {
        idea_titles(view)
            .into_iter()
            .map(|t| candidate(t, "idea"))
            .collect()
    })
}

fn people() -> Vec<CompletionCandidate> {
    with_view(|_, view| {
        person_names(view)
            .into_iter()
            .map(|n| candidate(n, "person"))
            .collect()
    })
}

/// Buddies this journal shares with (active shares).
fn buddies() -> Vec<CompletionCandidate> {
    with_view(|session, _| {
        let Ok(Some(journal)) = session.load_journal() else {
            return Vec::new();
        };
        let now_ms = crate::sync::views::wall_ms();
        journal
            .shares()
            .into_values()
            .filter(|s| s.active(now_ms))
            .map(|s| candidate(s.name.clone(), s.scope.as_str()))
            .collect()
    })
}

/// Names this device follows others as.
fn followed() -> Vec<CompletionCandidate> {
    let Some(home) = home() else {
        return Vec::new();
    };
    crate::sync::follows::follows(&home)
        .map(|all| {
            all.into_keys()
                .map(|name| candidate(name, "followed"))
                .collect()
        })
        .unwrap_or_default()
}

/// The account's devices, as the journal knows them.
fn devices() -> Vec<CompletionCandidate> {
    with_view(|_, view| {
        let mut names: Vec<String> = view.catalog.devices.values().cloned().collect();
        names.sort();
        names.dedup();
        names.into_iter().map(|n| candidate(n, "device")).collect()
    })
}

/// Completers for `#[arg(add = ...)]`.
pub fn shift_ids() -> ArgValueCandidates {
    ArgValueCandidates::new(|| shifts(false))
}

/// Completers for `#[arg(add = ...)]`: planned shifts only (`done`, `skip`, `drop`).
pub fn planned_ids() -> ArgValueCandidates {
    ArgValueCandidates::new(|| shifts(true))
}

/// `+idea` and `@person`.
pub fn tag_words() -> ArgValueCandidates {
    ArgValueCandidates::new(tags)
}

/// Idea titles.
pub fn idea_names() -> ArgValueCandidates {
    ArgValueCandidates::new(ideas)
}

/// Person names.
pub fn people_names() -> ArgValueCandidates {
    ArgValueCandidates::new(people)
}

/// Buddies shared with.
pub fn buddy_names() -> ArgValueCandidates {
    ArgValueCandidates::new(buddies)
}

/// Names followed as.
pub fn followed_names() -> ArgValueCandidates {
    ArgValueCandidates::new(followed)
}

/// Device names.
pub fn device_names() -> ArgValueCandidates {
    ArgValueCandidates::new(devices)
}
