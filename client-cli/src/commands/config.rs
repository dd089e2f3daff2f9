//! `nudge config get|set|path`: settings.

use anyhow::{Result, bail};
use clap::Subcommand;
use nudge_replica::{Replica, Touched, local};

use super::one_of;
use crate::output::Out;

/// The settings `get` and `set` know, for errors.
const KEYS: &str = "weekly_goal, week_start, display_name (travel with the journal), device.name, color (this device only)";

/// `nudge config ...`.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print a setting (or all of them).
    Get {
        /// weekly_goal, week_start, display_name (travel with the journal); device.name,
        /// color (this device).
        key: Option<String>,
        /// Print JSON: an object of the settings asked for.
        #[arg(long)]
        json: bool,
    },
    /// Change a setting.
    Set {
        /// weekly_goal, week_start, display_name (the name your buddy's page shows), device.name
        /// or color.
        #[arg(value_parser = one_of(["weekly_goal", "week_start", "display_name", "device.name", "color"]))]
        key: String,
        /// The new value (for display_name, "" clears it).
        value: String,
    },
    /// Print where the config file is (TOML: defaults for color, week_start, weekly_goal,
    /// remote, device_name), whether or not it exists yet.
    Path,
}

/// `config get|set`.
pub(crate) fn run(session: &Replica, out: &mut Out, cmd: ConfigCommand) -> Result<()> {
    let settings = session
        .view()?
        .map(|v| v.catalog.settings)
        .unwrap_or_default();
    let get = |key: &str| -> Result<String> {
        Ok(match key {
            "weekly_goal" => settings.weekly_goal.to_string(),
            "week_start" => settings.week_start.to_string(),
            "display_name" => settings.display_name.clone().unwrap_or_default(),
            local::DEVICE_NAME => session.device_name()?,
            local::COLOR => session.color()?,
            other => bail!("unknown setting {other:?}; the settings are {KEYS}"),
        })
    };
    match cmd {
        ConfigCommand::Path => out.line(crate::config::path()?.display().to_string()),
        ConfigCommand::Get { key, json } => {
            let keys = match &key {
                Some(key) => vec![key.as_str()],
                None => vec![
                    "weekly_goal",
                    "week_start",
                    "display_name",
                    local::DEVICE_NAME,
                    local::COLOR,
                ],
            };
            let mut values = serde_json::Map::new();
            for key in &keys {
                let value = get(key)?;
                // Numbers stay numbers in JSON.
                let value = match value.parse::<u64>() {
                    Ok(n) if *key == "weekly_goal" => n.into(),
                    _ => value.into(),
                };
                values.insert((*key).to_owned(), value);
            }
            if json {
                return out.json(&values);
            }
            for (key, value) in values {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                // One key alone prints its value alone, for scripts.
                out.line(if keys.len() == 1 {
                    value
                } else {
                    format!("{key} = {value}")
                });
            }
        }
        ConfigCommand::Set { key, value } => match key.as_str() {
            "weekly_goal" | "week_start" | "display_name" => {
                session.write(|journal, _| {
                    journal.set_setting(&session.now, &key, value.trim())?;
                    Ok(((), Touched::Shifts(vec![])))
                })?;
                out.line(format!("{key} = {}", get_fresh(session, &key)?));
            }
            local::DEVICE_NAME => {
                let name = value.trim();
                if name.is_empty() {
                    bail!("device.name cannot be empty");
                }
                session.local_set(local::DEVICE_NAME, name)?;
                if session.journal_id()?.is_some() {
                    session.write(|journal, _| {
                        journal.register_device(&session.now, name)?;
                        Ok(((), Touched::Shifts(vec![])))
                    })?;
                }
                out.line(format!("device.name = {name}"));
            }
            local::COLOR => {
                if !["auto", "always", "never"].contains(&value.as_str()) {
                    bail!("color is auto, always or never, not {value:?}");
                }
                session.local_set(local::COLOR, &value)?;
                out.line(format!("color = {value}"));
            }
            other => bail!("unknown setting {other:?}; the settings are {KEYS}"),
        },
    }
    Ok(())
}

fn get_fresh(session: &Replica, key: &str) -> Result<String> {
    let settings = session.require_view()?.catalog.settings;
    Ok(match key {
        "weekly_goal" => settings.weekly_goal.to_string(),
        "display_name" => settings.display_name.unwrap_or_default(),
        _ => settings.week_start.to_string(),
    })
}
