//! The command line, as clap definitions. This grammar is a contract: scripts rely on it.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

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
    pub command: crate::commands::Command,
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
