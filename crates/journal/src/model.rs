//! The journal's entities as plain values, derived from the document.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in display order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the document and shown to people.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "{s:?} is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// How much an accountability buddy's share view shows (`share.rs`).
    Scope {
        /// Numbers only: shifts per day, goal, ideas by status, doors closed.
        Counts = "counts",
        /// And the texts of the latest shifts and the titles of ideas.
        Titles = "titles",
        /// And notes, little yeses, why an idea, what a closed door taught.
        Full = "full",
    }
);

string_enum!(
    /// Where a shift stands.
    ShiftStatus {
        /// Planned, not made yet.
        Planned = "planned",
        /// Made.
        Done = "done",
        /// Let go this time.
        Skipped = "skipped",
        /// No longer wanted.
        Dropped = "dropped",
    }
);

string_enum!(
    /// What kind of action a shift is.
    Kind {
        /// An email.
        Email = "email",
        /// A phone or video call.
        Call = "call",
        /// A chat or text message.
        Message = "message",
        /// Going to an event.
        Event = "event",
        /// Coffee with someone.
        Coffee = "coffee",
        /// A class or course session.
        Class = "class",
        /// An application.
        Apply = "apply",
        /// Reading up on something.
        Research = "research",
        /// Anything else.
        Other = "other",
    }
);

string_enum!(
    /// Where a hunch stands.
    IdeaStatus {
        /// Being looked into.
        Exploring = "exploring",
        /// Set aside for now.
        Parked = "parked",
        /// Being pursued in earnest.
        Pursuing = "pursuing",
        /// A door closed: something learned, a relief.
        DeadEnd = "dead_end",
    }
);

string_enum!(
    /// Where a connection stands.
    PersonStatus {
        /// Not contacted yet.
        ToContact = "to_contact",
        /// Contacted, no answer yet.
        ReachedOut = "reached_out",
        /// In conversation.
        Talking = "talking",
        /// Met in person or on a call.
        Met = "met",
        /// Gone quiet.
        Dormant = "dormant",
    }
);

string_enum!(
    /// A day of the week, for the week start setting.
    WeekStart {
        /// Monday.
        Monday = "monday",
        /// Tuesday.
        Tuesday = "tuesday",
        /// Wednesday.
        Wednesday = "wednesday",
        /// Thursday.
        Thursday = "thursday",
        /// Friday.
        Friday = "friday",
        /// Saturday.
        Saturday = "saturday",
        /// Sunday.
        Sunday = "sunday",
    }
);

impl WeekStart {
    /// The same day as a `jiff` weekday.
    pub fn weekday(self) -> jiff::civil::Weekday {
        use jiff::civil::Weekday as W;
        match self {
            Self::Monday => W::Monday,
            Self::Tuesday => W::Tuesday,
            Self::Wednesday => W::Wednesday,
            Self::Thursday => W::Thursday,
            Self::Friday => W::Friday,
            Self::Saturday => W::Saturday,
            Self::Sunday => W::Sunday,
        }
    }
}

/// When a shift was made: the instant, and the local date and zone it counts for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneAt {
    /// Milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    /// The local date (`YYYY-MM-DD`) on the recording device.
    pub date: String,
    /// The recording device's IANA time zone.
    pub tz: String,
}

/// A micro shift: one small action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    /// Random id (32 lowercase hex digits).
    pub id: String,
    /// What to do or what was done.
    pub text: String,
    /// Where it stands.
    pub status: ShiftStatus,
    /// When it was created, in milliseconds since the epoch.
    pub created_at_ms: i64,
    /// When it was made, if it was.
    pub done: Option<DoneAt>,
    /// About how long it takes.
    pub minutes: u32,
    /// What kind of action.
    pub kind: Kind,
    /// Ideas it serves (raw ids, as stored).
    pub ideas: BTreeSet<String>,
    /// People it involves (raw ids, as stored).
    pub people: BTreeSet<String>,
    /// A note.
    pub note: Option<String>,
    /// What it sparked.
    pub little_yes: Option<String>,
    /// The shift it is a smaller first step of (`nudge shrink`), by id.
    pub shrunk_from: Option<String>,
}

impl Shift {
    /// When it happened, for ordering: when it was made, else when it was added (ms).
    pub fn when_ms(&self) -> i64 {
        self.done.as_ref().map_or(self.created_at_ms, |d| d.at_ms)
    }
}

/// A hunch being tracked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idea {
    /// Random id.
    pub id: String,
    /// Its title, also its `+name`.
    pub title: String,
    /// Why it is worth a look.
    pub why: Option<String>,
    /// Where it stands.
    pub status: IdeaStatus,
    /// When it was added.
    pub created_at_ms: i64,
    /// When it was parked or closed as a dead end.
    pub closed_at_ms: Option<i64>,
    /// What was learned when it closed.
    pub closing_note: Option<String>,
}

/// A person: a possible connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Random id.
    pub id: String,
    /// Their name, also their `@name`.
    pub name: String,
    /// How they are known.
    pub how_known: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Where things stand, as last set (see [`Person::effective_status`]).
    pub status: PersonStatus,
    /// When they were added.
    pub created_at_ms: i64,
    /// Whether someone set the status by hand (`person add/edit --status`): it then stays
    /// as set, instead of moving with the shifts that name them.
    pub status_manual: bool,
}

impl Person {
    /// Where things stand: as set by hand, else moved on by the shifts that name them (to
    /// contact becomes reached out once a done shift involved them, `last_contact`).
    pub fn effective_status(&self, last_contact: Option<&str>) -> PersonStatus {
        match self.status {
            PersonStatus::ToContact if !self.status_manual && last_contact.is_some() => {
                PersonStatus::ReachedOut
            }
            status => status,
        }
    }
}

/// Contact details, kept in the separate contacts document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Email address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// A web address.
    pub url: Option<String>,
}

impl Contact {
    /// Whether no detail is set.
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.phone.is_none() && self.url.is_none()
    }
}

/// Settings that travel with the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Micro shifts a week to aim for.
    pub weekly_goal: u32,
    /// The first day of a week.
    pub week_start: WeekStart,
    /// How the owner is named to a buddy (their share page), if set.
    #[serde(default)]
    pub display_name: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            weekly_goal: 20,
            week_start: WeekStart::Monday,
            display_name: None,
        }
    }
}
