//! The commands, one file each (jj's layout): a command's clap arguments live beside its
//! `run`. The grammar as a whole is [`Command`] (with the global options around it); it is
//! a contract that scripts rely on. Commands that need no store (completions, man pages,
//! `config path`), open it themselves (doctor) or hold it only in bursts (`sync --watch`)
//! are started by `crate::run` before the store opens; the rest through [`dispatch`].

pub(crate) mod add;
pub(crate) mod buddy;
pub(crate) mod cheer;
pub(crate) mod cheers;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod device;
pub(crate) mod doctor;
pub(crate) mod done;
pub(crate) mod drop;
pub(crate) mod edit;
pub(crate) mod export;
pub(crate) mod follow;
pub(crate) mod following;
pub(crate) mod history;
pub(crate) mod idea;
pub(crate) mod import;
pub(crate) mod join;
pub(crate) mod list;
pub(crate) mod log;
pub(crate) mod man;
pub(crate) mod next;
pub(crate) mod next_timer;
pub(crate) mod pause;
pub(crate) mod person;
pub(crate) mod person_shifts;
pub(crate) mod remote;
pub(crate) mod review;
pub(crate) mod rm;
pub(crate) mod show;
pub(crate) mod shrink;
pub(crate) mod skip;
pub(crate) mod status;
pub(crate) mod suggest;
pub(crate) mod sync;
pub(crate) mod undo;
pub(crate) mod unfollow;
pub(crate) mod week;
use anyhow::Result;
use clap::Subcommand;
use nudge_replica::Replica;

use crate::output::Out;

/// A value parser that offers `values` to shell completion and `--help`, and hands the
/// value on as typed (the commands parse it as before).
pub(crate) fn one_of(
    values: impl IntoIterator<Item = &'static str>,
) -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(values)
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Plan a micro shift: nudge add "Email Sam about UX roles" +ux @sam
    #[command(
        after_help = "Examples:\n  nudge add \"Draft email to Sam about UX roles\" +ux @sam --kind email\n  nudge add \"Find one pottery class near me\" +pottery --minutes 10"
    )]
    Add(add::AddArgs),
    /// Record a shift already made: nudge log "Called Priya" +teaching --at "yesterday 17:00"
    #[command(
        after_help = "Examples:\n  nudge log \"Called Priya about teaching\" +teaching @priya --at \"yesterday 5pm\"\n  nudge log \"Booked a taster class\" +pottery --at \"last friday\""
    )]
    Log(log::LogArgs),
    /// Mark a shift done.
    #[command(
        after_help = "Examples:\n  nudge done 3f2a\n  nudge done 3f2a --little-yes \"Sam offered an intro\" --at 9:15am"
    )]
    Done(done::DoneArgs),
    /// Let a shift go this time.
    Skip(skip::SkipArgs),
    /// Drop a shift you no longer want.
    Drop(drop::DropArgs),
    /// Change a shift's text, kind, minutes, note or tags.
    Edit(edit::EditArgs),
    /// Remove a shift.
    Rm(rm::RmArgs),
    /// Revert this device's last change (with a new change; repeat to go further back).
    Undo,
    /// List shifts (planned ones by default).
    List(list::ListArgs),
    /// Show one shift.
    Show(show::ShowArgs),
    /// Too big to start? Plan a smaller first step of a planned shift (the big one stays).
    Shrink(shrink::ShrinkArgs),
    /// This week's shifts against the goal, per day and per idea, and the streak.
    Week(week::WeekArgs),
    /// The weekly review: shifts vs the goal and the week before, little yeses, doors
    /// closed, people, stalled shifts, the running total.
    Review(review::ReviewArgs),
    /// Plan days off ahead (from tomorrow; at most 7 in any 30): they keep the streak.
    Pause(pause::PauseArgs),
    /// Ideas: the hunches you are exploring.
    #[command(subcommand)]
    Idea(idea::IdeaCommand),
    /// People: possible connections.
    #[command(subcommand)]
    Person(person::PersonCommand),
    /// The one shift that fits the next few minutes, and the command that marks it done.
    Next(next::NextArgs),
    /// A few concrete micro shifts to try next, numbered; --take N plans one.
    Suggest(suggest::SuggestArgs),
    /// Every change to the journal: when, on which device, what.
    History(history::HistoryArgs),
    /// The whole journal as canonical JSON.
    Export(export::ExportArgs),
    /// Bring records in from a file: a `nudge export --json` (merged: importing the same
    /// file twice adds nothing) or Taskwarrior's `task export`.
    Import(import::ImportArgs),
    /// Read or change settings.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Check this device's data (store, journal, cache, remote) and say how to fix problems.
    Doctor(doctor::DoctorArgs),
    /// Print shell completions: nudge completions bash > ~/.local/share/bash-completion/completions/nudge
    Completions(completions::CompletionsArgs),
    /// Write man pages (nudge.1 and one per command, e.g. nudge-sync.1) into a folder.
    Man(man::ManArgs),
    /// What this device syncs with: remote, device, last sync, changes not synced yet, and
    /// whether a watcher runs.
    Status(status::StatusArgs),
    /// The sync server this device uses.
    #[command(subcommand)]
    Remote(remote::RemoteCommand),
    /// An accountability buddy: invite one (a read-only view), list, revoke, show.
    #[command(subcommand)]
    Buddy(buddy::BuddyCommand),
    /// Follow someone's progress with the link they sent (a read-only copy on this device).
    Follow(follow::FollowArgs),
    /// Send a short cheer to someone you follow: nudge cheer ana "Great week!"
    Cheer(cheer::CheerArgs),
    /// The cheers your buddies sent you, newest first.
    Cheers(cheers::CheersArgs),
    /// The people this device follows.
    Following(following::FollowingArgs),
    /// Stop following someone (their view is removed from this device).
    Unfollow(unfollow::UnfollowArgs),
    /// This account's devices: link a new one, list them, revoke one.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// Join an account with a link from `nudge device link` on a linked device.
    Join(join::JoinArgs),
    /// Exchange changes with the server until both sides hold the same journal.
    #[command(
        after_help = "Examples:\n  nudge sync\n  nudge sync --timeout 120    a first fetch of a big journal over a slow link\n  nudge sync --watch          stay connected; Ctrl-C stops"
    )]
    Sync(sync::SyncArgs),
}

impl Command {
    /// Whether the command talks to the server (it reports on syncing itself).
    pub(crate) fn talks_to_server(&self) -> bool {
        matches!(
            self,
            Command::Sync(_)
                | Command::Remote(_)
                | Command::Join(_)
                | Command::Device(_)
                | Command::Buddy(_)
                | Command::Follow(_)
                | Command::Cheer(_)
                | Command::Unfollow(_)
        )
    }
}

/// Runs a command on the opened store.
pub(crate) fn dispatch(command: Command, session: &Replica, out: &mut Out) -> Result<()> {
    match command {
        Command::Add(args) => add::run(session, out, args),
        Command::Log(args) => log::run(session, out, args),
        Command::Done(args) => done::run(session, out, args),
        Command::Skip(args) => skip::run(session, out, args),
        Command::Drop(args) => drop::run(session, out, args),
        Command::Edit(args) => edit::run(session, out, args),
        Command::Rm(args) => rm::run(session, out, args),
        Command::Undo => undo::run(session, out),
        Command::List(args) => list::run(session, out, args),
        Command::Show(args) => show::run(session, out, args),
        Command::Shrink(args) => shrink::run(session, out, args),
        Command::Week(args) => week::run(session, out, args),
        Command::Review(args) => review::run(session, out, args),
        Command::Pause(args) => pause::run(session, out, args),
        Command::Idea(command) => idea::run(session, out, command),
        Command::Person(command) => person::run(session, out, command),
        Command::Next(args) => next::run(session, out, args),
        Command::Suggest(args) => suggest::run(session, out, args),
        Command::History(args) => history::run(session, out, args),
        Command::Export(args) => export::run(session, out, args),
        Command::Import(args) => import::run(session, out, args),
        Command::Config(command) => config::run(session, out, command),
        Command::Remote(command) => remote::run(session, out, command),
        Command::Buddy(command) => buddy::run(session, out, command),
        Command::Follow(args) => follow::run(session, out, args),
        Command::Cheer(args) => cheer::run(session, out, args),
        Command::Cheers(args) => cheers::run(session, out, args),
        Command::Following(args) => following::run(session, out, args),
        Command::Unfollow(args) => unfollow::run(session, out, args),
        Command::Device(command) => device::run(session, out, command),
        Command::Join(args) => join::run(session, out, args),
        Command::Status(args) => status::run(session, out, args),
        Command::Doctor(args) => {
            crate::doctor::run(session.home(), session.now.clone(), out, args.json)
        }
        // Answered by `crate::run` before any store opens (they need the whole grammar).
        Command::Completions(_) | Command::Man(_) => Ok(()),
        Command::Sync(args) => sync::run(session, out, args),
    }
}

/// `NUDGE_SYNC_TIMEOUT` seconds (default 30), for commands that talk to the server.
pub(crate) fn env_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(
        std::env::var("NUDGE_SYNC_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30u64)
            .max(1),
    )
}
