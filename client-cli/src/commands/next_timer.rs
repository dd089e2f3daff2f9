//! `nudge next --start`: an N-minute timer for the shift `next` picked, drawn as a progress
//! bar on a terminal (indicatif; nothing is drawn elsewhere), that Ctrl-C stops. At the end
//! it asks whether the shift was done, and on "y" marks it done (a planned shift) or logs
//! it as made (a suggestion), at the time the answer came. The store is let go for the
//! timer's length, so other commands work meanwhile.
//!
//! `NUDGE_TIMER_MS_PER_MINUTE` shortens a minute, for tests (the clock is injected like
//! `NUDGE_NOW`).

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use jiff::ToSpan;
use nudge_journal::{NewShift, ShiftStatus, Suggestion, TagRef};
use nudge_replica::{Replica, Touched};

use crate::output::{Out, notice};

/// What the timer runs for.
pub(crate) enum Timed {
    /// A planned shift (its full id).
    Planned(String),
    /// A suggestion, logged as made on "y".
    Suggested(Suggestion),
}

/// How often the bar moves.
const TICK: Duration = Duration::from_millis(200);

fn minute() -> Duration {
    let ms = std::env::var("NUDGE_TIMER_MS_PER_MINUTE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .unwrap_or(60_000);
    Duration::from_millis(ms)
}

/// How the timer ended.
enum Ended {
    /// The time ran out.
    Elapsed,
    /// Ctrl-C.
    Stopped(Duration),
}

fn run_timer(minutes: u32) -> Result<Ended> {
    let total = minute() * minutes;
    let bar = indicatif::ProgressBar::new(total.as_millis() as u64);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {msg}").context("the timer's style")?,
    );
    let ended = crate::sync::views::runtime()?.block_on(async {
        // Listening for Ctrl-C before saying it stops the timer: from then on it does.
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("cannot listen for Ctrl-C")?;
        notice(format!("Timer: {minutes} minutes. Ctrl-C stops it."));
        let started = Instant::now();
        // The bar moves, and the end is noticed, on each tick.
        let mut tick = tokio::time::interval(TICK.min(total).max(Duration::from_millis(1)));
        loop {
            tokio::select! {
                _ = interrupt.recv() => return Ok(Ended::Stopped(started.elapsed())),
                _ = tick.tick() => {
                    let gone = started.elapsed();
                    if gone >= total {
                        return anyhow::Ok(Ended::Elapsed);
                    }
                    let left = (total - gone).as_secs();
                    bar.set_position(gone.as_millis() as u64);
                    bar.set_message(format!("{}:{:02} left", left / 60, left % 60));
                }
            }
        }
    });
    bar.finish_and_clear();
    ended
}

/// Runs the timer for `timed`, then asks and records.
pub(crate) fn start(
    session: &Replica,
    out: &mut Out,
    timed: Timed,
    minutes: u32,
    done_command: &str,
) -> Result<()> {
    // Nothing of the store is needed while the clock runs.
    session.park()?;
    let started = Instant::now();
    if let Ended::Stopped(after) = run_timer(minutes)? {
        let m = after.as_secs() / 60;
        notice(format!(
            "Stopped after {m} minute{}. When it is done: {done_command}",
            if m == 1 { "" } else { "s" }
        ));
        return Ok(());
    }
    eprint!("Time's up. Was it done? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        out.line(format!("Not marked. When it is done: {done_command}"));
        return Ok(());
    }
    // Made now: the start plus the time that went by.
    let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let at = session
        .now
        .zoned()
        .checked_add(elapsed.milliseconds())
        .unwrap_or_else(|_| session.now.zoned());
    let text = match timed {
        Timed::Planned(id) => session.write(|journal, _| {
            journal.set_status(&session.now, &id, ShiftStatus::Done, Some(at), None)?;
            let text = journal.shift(&id)?.map(|s| s.text).unwrap_or_default();
            Ok((text, Touched::Shifts(vec![id.clone()])))
        })?,
        Timed::Suggested(suggestion) => session.write(|journal, _| {
            let created = journal.add_shift(
                &session.now,
                NewShift {
                    text: suggestion.text.clone(),
                    ideas: suggestion
                        .ideas
                        .iter()
                        .cloned()
                        .map(TagRef::Existing)
                        .collect(),
                    people: suggestion
                        .people
                        .iter()
                        .cloned()
                        .map(TagRef::Existing)
                        .collect(),
                    done: Some(at),
                    ..NewShift::default()
                },
            )?;
            Ok((suggestion.text.clone(), Touched::Shifts(vec![created.id])))
        })?,
    };
    out.line(format!("Done: {text}"));
    out.line(crate::shifts::progress(session)?);
    Ok(())
}
