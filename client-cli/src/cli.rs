//! The command line, as clap definitions. This grammar is a contract: scripts rely on it.

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Track the five-minute micro shifts that add up to a career change.
#[derive(Parser, Debug)]
#[command(
    name = "nudge",
    version,
    about,
    max_term_width = 100,
    propagate_version = true
)]
pub struct Cli {
    /// Where nudge keeps its data (default: the platform data directory).
    #[arg(
        long,
        global = true,
        env = "NUDGE_HOME",
        value_name = "DIR",
        help_heading = "Global options"
    )]
    pub home: Option<PathBuf>,

    /// When to use colour (NO_COLOR is respected with auto).
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN", help_heading = "Global options")]
    pub color: ColorWhen,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// A value parser that offers `values` to shell completion and `--help`, and hands the
/// value on as typed (the commands parse it as before).
fn one_of(values: impl IntoIterator<Item = &'static str>) -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(values)
}

/// `import --from` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportFrom {
    /// `nudge export --json` of this or another journal.
    Nudge,
    /// Taskwarrior's `task export`: pending tasks become planned shifts, completed ones
    /// done shifts, projects ideas.
    Taskwarrior,
}

/// `--color` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Colour on a terminal, unless NO_COLOR is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Plan a micro shift: nudge add "Email Sam about UX roles" +ux @sam
    #[command(
        after_help = "Examples:\n  nudge add \"Draft email to Sam about UX roles\" +ux @sam --kind email\n  nudge add \"Find one pottery class near me\" +pottery --minutes 10"
    )]
    Add(AddArgs),
    /// Record a shift already made: nudge log "Called Priya" +teaching --at "yesterday 17:00"
    #[command(
        after_help = "Examples:\n  nudge log \"Called Priya about teaching\" +teaching @priya --at \"yesterday 5pm\"\n  nudge log \"Booked a taster class\" +pottery --at \"last friday\""
    )]
    Log(LogArgs),
    /// Mark a shift done.
    #[command(
        after_help = "Examples:\n  nudge done 3f2a\n  nudge done 3f2a --little-yes \"Sam offered an intro\" --at 9:15am"
    )]
    Done {
        /// The shift's id (or a unique prefix of at least 4 characters).
        #[arg(add = crate::complete::planned_ids())]
        id: String,
        /// What it sparked.
        #[arg(long, value_name = "TEXT")]
        little_yes: Option<String>,
        /// When it was made (default: now).
        #[arg(long, value_name = "WHEN")]
        at: Option<String>,
    },
    /// Let a shift go this time.
    Skip {
        /// The shift's id or prefix.
        #[arg(add = crate::complete::planned_ids())]
        id: String,
    },
    /// Drop a shift you no longer want.
    Drop {
        /// The shift's id or prefix.
        #[arg(add = crate::complete::planned_ids())]
        id: String,
    },
    /// Change a shift's text, kind, minutes, note or tags.
    Edit(EditArgs),
    /// Remove a shift.
    Rm {
        /// The shift's id or prefix.
        #[arg(add = crate::complete::shift_ids())]
        id: String,
    },
    /// Revert this device's last change (with a new change; repeat to go further back).
    Undo,
    /// List shifts (planned ones by default).
    List(ListArgs),
    /// Show one shift.
    Show {
        /// The shift's id or prefix.
        #[arg(add = crate::complete::shift_ids())]
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// This week's shifts against the goal, per day and per idea, and the streak.
    Week {
        /// Show this many weeks, most recent first.
        #[arg(long, default_value_t = 1, value_name = "N")]
        last: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ideas: the hunches you are exploring.
    #[command(subcommand)]
    Idea(IdeaCommand),
    /// People: possible connections.
    #[command(subcommand)]
    Person(PersonCommand),
    /// A few concrete micro shifts to try next.
    Suggest {
        /// Print JSON: an array of {"n", "text"}.
        #[arg(long)]
        json: bool,
    },
    /// Every change to the journal: when, on which device, what.
    History {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Only the most recent N changes.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// The whole journal as canonical JSON.
    Export {
        /// Print JSON (the only format, required for forward compatibility).
        #[arg(long, required = true)]
        json: bool,
    },
    /// Bring records in from a file: a `nudge export --json` (merged: importing the same
    /// file twice adds nothing) or Taskwarrior's `task export`.
    Import {
        /// The file (`-` reads standard input: task export | nudge import --from taskwarrior -).
        file: std::path::PathBuf,
        /// What the file is.
        #[arg(long, value_enum, default_value_t = ImportFrom::Nudge)]
        from: ImportFrom,
        /// Say what would be added, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Read or change settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check this device's data (store, journal, cache, remote) and say how to fix problems.
    Doctor {
        /// Print JSON: {"ok", "checks": [{"part", "ok", "detail", "fix"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Print shell completions: nudge completions bash > ~/.local/share/bash-completion/completions/nudge
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (nudge.1 and one per command, e.g. nudge-sync.1) into a folder.
    Man {
        /// The folder, e.g. ~/.local/share/man/man1 (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// What this device syncs with: remote, device, last sync, changes not synced yet, and
    /// whether a watcher runs.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The sync server this device uses.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// An accountability buddy: invite one (a read-only view), list, revoke, show.
    #[command(subcommand)]
    Buddy(BuddyCommand),
    /// Follow someone's progress with the link they sent (a read-only copy on this device).
    Follow {
        /// The link, e.g. http://host:3030/view/nudge_share_...
        link: String,
        /// What to call them here (default: buddy, buddy-2, ...).
        #[arg(long = "as", value_name = "NAME")]
        name: Option<String>,
        /// Seconds the whole exchange with the server may take before giving up.
        #[arg(
            long,
            env = "NUDGE_SYNC_TIMEOUT",
            default_value_t = 30,
            value_name = "SECS"
        )]
        timeout: u64,
    },
    /// The people this device follows.
    Following {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop following someone (their view is removed from this device).
    Unfollow {
        /// The name you follow them as.
        #[arg(add = crate::complete::followed_names())]
        name: String,
    },
    /// This account's devices: link a new one, list them, revoke one.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Join an account with a link from `nudge device link` on a linked device.
    Join {
        /// The link, e.g. http://host:3030/join#<code> (quote it: the shell may eat `#`).
        link: String,
        /// This device's name in `nudge device list` (default: device.name or the host name).
        #[arg(long)]
        name: Option<String>,
        /// Seconds the whole exchange with the server may take before giving up.
        #[arg(
            long,
            env = "NUDGE_SYNC_TIMEOUT",
            default_value_t = 30,
            value_name = "SECS"
        )]
        timeout: u64,
    },
    /// Exchange changes with the server until both sides hold the same journal.
    #[command(
        after_help = "Examples:\n  nudge sync\n  nudge sync --timeout 120    a first fetch of a big journal over a slow link\n  nudge sync --watch          stay connected; Ctrl-C stops"
    )]
    Sync {
        /// Stay connected: send local changes as they are made, store remote ones as they
        /// come, reconnect when the server goes away; Ctrl-C stops.
        #[arg(long)]
        watch: bool,
        /// Seconds the whole exchange with the server may take before giving up.
        #[arg(
            long,
            env = "NUDGE_SYNC_TIMEOUT",
            default_value_t = 30,
            value_name = "SECS"
        )]
        timeout: u64,
    },
}

/// Words of a shift: text words, `+idea` and `@person` tags, in any order.
#[derive(Args, Debug)]
pub struct ShiftWords {
    /// The shift's text, then +idea and @person tags.
    #[arg(required = true, num_args = 1.., value_name = "TEXT|+IDEA|@PERSON", allow_hyphen_values = false, add = crate::complete::tag_words())]
    pub words: Vec<String>,
    /// Kind: email, call, message, event, coffee, class, apply, research, other.
    #[arg(long, ignore_case = true, value_parser = one_of(nudge_journal::Kind::ALL.iter().map(|k| k.as_str())))]
    pub kind: Option<String>,
    /// About how many minutes (default 5).
    #[arg(long)]
    pub minutes: Option<u32>,
    /// A note.
    #[arg(long)]
    pub note: Option<String>,
    /// Create +ideas and @people even when a similar name exists.
    #[arg(long)]
    pub new: bool,
}

/// `nudge add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The shift.
    #[command(flatten)]
    pub shift: ShiftWords,
}

/// `nudge log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// The shift.
    #[command(flatten)]
    pub shift: ShiftWords,
    /// When it was made (default: now): today, yesterday 17:00, monday, 3d ago, 2026-11-20.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
    /// What it sparked.
    #[arg(long, value_name = "TEXT")]
    pub little_yes: Option<String>,
}

/// `nudge edit`.
#[derive(Args, Debug)]
pub struct EditArgs {
    /// The shift's id or prefix.
    #[arg(add = crate::complete::shift_ids())]
    pub id: String,
    /// Tags to add: +idea, @person.
    #[arg(value_name = "+IDEA|@PERSON", add = crate::complete::tag_words())]
    pub tags: Vec<String>,
    /// New text.
    #[arg(long)]
    pub text: Option<String>,
    /// Tags to remove: --untag +idea --untag @person.
    #[arg(long, value_name = "+IDEA|@PERSON", allow_hyphen_values = true)]
    pub untag: Vec<String>,
    /// New kind.
    #[arg(long, ignore_case = true, value_parser = one_of(nudge_journal::Kind::ALL.iter().map(|k| k.as_str())))]
    pub kind: Option<String>,
    /// New minutes.
    #[arg(long)]
    pub minutes: Option<u32>,
    /// New note ("" removes it).
    #[arg(long)]
    pub note: Option<String>,
    /// New little yes ("" removes it).
    #[arg(long)]
    pub little_yes: Option<String>,
    /// Create +ideas and @people even when a similar name exists.
    #[arg(long)]
    pub new: bool,
}

/// `nudge list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Filters: +idea, @person.
    #[arg(value_name = "+IDEA|@PERSON", add = crate::complete::tag_words())]
    pub tags: Vec<String>,
    /// Every shift, whatever its status.
    #[arg(long, conflicts_with_all = ["done", "planned"])]
    pub all: bool,
    /// Only done shifts.
    #[arg(long, conflicts_with = "planned")]
    pub done: bool,
    /// Only planned shifts (the default).
    #[arg(long)]
    pub planned: bool,
    /// Only shifts made (or, if not made, added) on or after this day.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

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

/// Fields of a person.
#[derive(Args, Debug, Default)]
pub struct PersonFields {
    /// How you know them.
    #[arg(long)]
    pub how: Option<String>,
    /// Email (kept in the erasable contacts document).
    #[arg(long)]
    pub email: Option<String>,
    /// Phone (kept in the erasable contacts document).
    #[arg(long)]
    pub phone: Option<String>,
    /// Web address (kept in the erasable contacts document).
    #[arg(long)]
    pub url: Option<String>,
    /// Notes.
    #[arg(long)]
    pub notes: Option<String>,
    /// Status: to_contact, reached_out, talking, met, dormant.
    #[arg(long, ignore_case = true, value_parser = one_of(nudge_journal::PersonStatus::ALL.iter().map(|s| s.as_str())))]
    pub status: Option<String>,
}

/// `nudge person ...`.
#[derive(Subcommand, Debug)]
pub enum PersonCommand {
    /// Add a person.
    Add {
        /// Their name (also their @name).
        name: String,
        /// Details.
        #[command(flatten)]
        fields: PersonFields,
        /// Add them even when a similar name exists.
        #[arg(long)]
        new: bool,
    },
    /// List people, with when each was last contacted.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one person.
    Show {
        /// Their id, prefix or name.
        #[arg(add = crate::complete::people_names())]
        person: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a person's details.
    Edit {
        /// Their id, prefix or name.
        #[arg(add = crate::complete::people_names())]
        person: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// Details ("" removes one).
        #[command(flatten)]
        fields: PersonFields,
    },
    /// Erase a person's contact details for good.
    Forget {
        /// Their id, prefix or name.
        #[arg(add = crate::complete::people_names())]
        person: String,
    },
}

/// `nudge config ...`.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print a setting (or all of them).
    Get {
        /// weekly_goal, week_start (travel with the journal); device.name, color (this device).
        key: Option<String>,
        /// Print JSON: an object of the settings asked for.
        #[arg(long)]
        json: bool,
    },
    /// Change a setting.
    Set {
        /// weekly_goal, week_start, device.name or color.
        #[arg(value_parser = one_of(["weekly_goal", "week_start", "device.name", "color"]))]
        key: String,
        /// The new value.
        value: String,
    },
    /// Print where the config file is (TOML: defaults for color, week_start, weekly_goal,
    /// remote, device_name), whether or not it exists yet.
    Path,
}

/// `nudge remote ...`.
#[derive(Subcommand, Debug)]
pub enum RemoteCommand {
    /// Set the server, with the token from NUDGE_TOKEN or --token-stdin.
    Add {
        /// ws://host:port or http://host:port (wss:// or https:// behind a TLS proxy);
        /// default: `remote` in the config file.
        url: Option<String>,
        /// Read the token from standard input instead of NUDGE_TOKEN.
        #[arg(long)]
        token_stdin: bool,
    },
    /// Show the server, the token's id (never the secret) and what is not synced yet.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget the server and the token (the journal stays).
    Remove,
}

/// `nudge device ...`.
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// A one-time link for a new device (printed alone on the last line).
    Link {
        /// Seconds the link stays valid (default: the server's, 15 minutes).
        #[arg(long, value_name = "SECS")]
        expires: Option<u64>,
    },
    /// The account's devices: id, name, last seen; this one marked.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device: its token stops working at once and its connections close.
    Revoke {
        /// The device's name, id or id prefix (at least 4 characters).
        #[arg(add = crate::complete::device_names())]
        device: String,
    },
}

/// `nudge buddy ...`.
#[derive(Subcommand, Debug)]
pub enum BuddyCommand {
    /// Invite a buddy: prints a read-only link alone on the last line (shown once).
    Invite {
        /// Their name.
        name: String,
        /// What they see: counts, titles or full.
        #[arg(long, default_value = "counts", ignore_case = true, value_parser = one_of(nudge_journal::Scope::ALL.iter().map(|s| s.as_str())).try_map(|s| s.parse::<nudge_journal::Scope>()))]
        scope: nudge_journal::Scope,
        /// How long the link works: 90d, 2w, 12h, 30m or never.
        #[arg(long, default_value = "90d", value_name = "WHEN")]
        expires: String,
    },
    /// Your buddies: name, scope, since, expiry, last seen.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a buddy's link: it stops working at once.
    Revoke {
        /// Their name (or the share's id).
        #[arg(add = crate::complete::buddy_names())]
        name: String,
    },
    /// Someone you follow: their week, streak, ideas and recent shifts, as their scope allows.
    Show {
        /// The name you follow them as.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}
