//! Output: stdout is buffered per command and written at the end (so a broken pipe is not an
//! error); notices go straight to stderr. Colour goes through anstream, which drops it when
//! the stream is not a terminal, NO_COLOR is set, or `--color never` was given.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

/// Errors.
pub const ERR: Style = AnsiColor::Red.on_default().bold();
/// Ids.
pub const ID: Style = AnsiColor::Yellow.on_default();
/// Quiet details.
pub const DIM: Style = Style::new().dimmed();
/// Good news.
pub const GOOD: Style = AnsiColor::Green.on_default().bold();
/// Tags.
pub const TAG: Style = AnsiColor::Cyan.on_default();

/// Wraps text in a style.
pub fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{}{text}{}", style.render(), style.render_reset())
}

/// What a command prints on stdout.
#[derive(Default)]
pub struct Out {
    text: String,
}

impl Out {
    /// Adds a line.
    pub fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    /// Sets the output to one JSON value.
    pub fn json<T: Serialize>(&mut self, value: &T) -> anyhow::Result<()> {
        self.text.push_str(&serde_json::to_string_pretty(value)?);
        self.text.push('\n');
        Ok(())
    }

    /// Writes it all to stdout.
    pub fn print(&self) -> std::io::Result<()> {
        let mut stdout = anstream::stdout().lock();
        stdout.write_all(self.text.as_bytes())?;
        stdout.flush()
    }
}

/// A notice on stderr.
pub fn notice(text: impl AsRef<str>) {
    let _ = writeln!(anstream::stderr(), "{}", text.as_ref());
}

/// An instant (ms since the epoch) in the device's zone, as `format` (strftime) says.
pub fn local(ms: i64, tz: &jiff::tz::TimeZone, format: &str) -> String {
    nudge_journal::when::to_timestamp(ms)
        .to_zoned(tz.clone())
        .strftime(format)
        .to_string()
}

/// `n` and the noun for it: `1 change`, `2 changes`, `1 person`, `3 people`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `text` as one word for a POSIX shell, for commands a message tells the user to run:
/// bare when it is plain, else in double quotes.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "@%+,-./:=_".contains(c));
    if plain {
        return text.to_owned();
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `one` for 1, else `many`.
pub(crate) fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod shell_word_tests {
    use super::shell_word;

    #[test]
    fn plain_words_stay_bare_and_the_rest_is_quoted() {
        assert_eq!(shell_word("sam@example.org"), "sam@example.org");
        assert_eq!(shell_word("Sam Lee"), "\"Sam Lee\"");
        assert_eq!(shell_word("a \"b\" $c"), "\"a \\\"b\\\" \\$c\"");
        assert_eq!(shell_word(""), "\"\"");
    }
}
