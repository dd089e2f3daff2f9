//! The user's config file: defaults for every device home of this user, in TOML, in the
//! platform's config directory (`nudge config path`; `NUDGE_CONFIG` overrides it).
//!
//! ```toml
//! color = "auto"            # auto, always, never
//! week_start = "sunday"     # for journals created on this machine
//! weekly_goal = 15          # for journals created on this machine
//! remote = "https://nudge.example.org"   # `nudge remote add` without a URL
//! device_name = "laptop"    # instead of the host name
//! ```
//!
//! Precedence, highest first: a command-line flag, this device's own setting
//! (`nudge config set color|device.name`), this file, nudge's default. `week_start` and
//! `weekly_goal` travel with the journal once it exists (`nudge config set` changes them
//! there, for every device); the file gives their values when a journal is created here.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use nudge_journal::{Settings, WeekStart};
use serde::Deserialize;

/// What the config file can say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `auto`, `always` or `never`.
    pub color: Option<Color>,
    /// The first day of a week, for new journals.
    pub week_start: Option<WeekStart>,
    /// Micro shifts a week, for new journals.
    pub weekly_goal: Option<u32>,
    /// The sync server `nudge remote add` uses when given no URL.
    pub remote: Option<String>,
    /// This machine's device name, instead of its host name.
    pub device_name: Option<String>,
}

/// `color` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Color {
    /// The name, as in the file and in `nudge config get color`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Always => "always",
            Self::Never => "never",
        }
    }
}

impl Config {
    /// The settings a journal created here starts with.
    /// What the replica falls back on where the device has no setting of its own.
    pub fn defaults(&self) -> nudge_replica::Defaults {
        nudge_replica::Defaults {
            color: self.color.map(|c| c.as_str().to_owned()),
            device_name: self.device_name.clone(),
            journal: self.new_journal_settings(),
        }
    }

    pub fn new_journal_settings(&self) -> Settings {
        let defaults = Settings::default();
        Settings {
            weekly_goal: self.weekly_goal.unwrap_or(defaults.weekly_goal),
            week_start: self.week_start.unwrap_or(defaults.week_start),
            display_name: None,
        }
    }
}

/// Where the config file is (whether or not it exists).
pub fn path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("NUDGE_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    directories::ProjectDirs::from("", "", "nudge")
        .map(|dirs| dirs.config_dir().join("config.toml"))
        .ok_or_else(|| {
            anyhow!("cannot find a config directory for this user; set NUDGE_CONFIG to a file")
        })
}

/// Reads the config file; no file is an empty config.
pub fn load() -> Result<Config> {
    let path = path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => {
            return Err(anyhow!(
                "cannot read the config file {}: {e}",
                path.display()
            ));
        }
    };
    parse(&text).map_err(|e| {
        anyhow!(
            "the config file {} {e}; fix it (`nudge config path` shows where it is)",
            path.display()
        )
    })
}

/// Parses config text; the error says where, on one line.
fn parse(text: &str) -> std::result::Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().trim().replace('\n', " ");
        match line {
            Some(line) => format!("has an error on line {line}: {message}"),
            None => format!("has an error: {message}"),
        }
    })?;
    if let Some(goal) = config.weekly_goal
        && !(1..=1000).contains(&goal)
    {
        return Err("says weekly_goal is not between 1 and 1000".into());
    }
    if let Some(name) = &config.device_name
        && (name.trim().is_empty() || name.chars().count() > 64)
    {
        return Err("has a device_name that is empty or over 64 characters".into());
    }
    if let Some(remote) = &config.remote {
        crate::remote::endpoints(remote)
            .map_err(|e| format!("has a remote that is not a server address: {e}"))?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_and_mistakes_name_their_line() {
        let config = parse(
            "color = \"never\"\nweek_start = \"sunday\"\nweekly_goal = 12\nremote = \"http://127.0.0.1:3030\"\ndevice_name = \"laptop\"\n",
        )
        .unwrap();
        assert_eq!(config.color, Some(Color::Never));
        assert_eq!(config.week_start, Some(WeekStart::Sunday));
        assert_eq!(config.new_journal_settings().weekly_goal, 12);
        assert_eq!(parse("").unwrap(), Config::default());
        let err = parse("color = \"never\"\ncolour = \"always\"\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("colour"), "{err}");
        let err = parse("week_start = \"someday\"").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        assert!(
            parse("weekly_goal = 0")
                .unwrap_err()
                .contains("weekly_goal")
        );
        assert!(
            parse("remote = \"ftp://x\"")
                .unwrap_err()
                .contains("remote")
        );
        assert!(parse("color = ").is_err());
    }
}
