//! The buddy page's main part, drawn from a share view for looking rather than reading: who,
//! when last updated, a bar towards the week's goal, the week's days (days to come and
//! paused days drawn apart from empty ones), the last 8 weeks as an inline SVG chart, then
//! ideas and recent shifts. "Today" and the weeks follow the owner's time zone, which the
//! owner's device writes into the view. Text keeps a contrast of at least 4.5:1 on white.
//! `view_page.rs` serves it; everything here is pure, for tests.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use nudge_journal::cheers::Cheer;
use nudge_journal::share::ShareView;

/// How many of the latest cheers the page shows.
pub const RECENT_CHEERS: usize = 5;
/// How many weeks the chart shows.
pub const CHART_WEEKS: usize = 8;

/// The page's styles. Colours against white: text #1f1f1f (16:1), muted #595959 (7:1),
/// tags #1d6a56 (6.3:1); bars #2a7a50 (5.3:1, above the 3:1 graphics need).
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem;color:#1f1f1f;background:#fff;line-height:1.4}\
h1{font-size:1.3rem;margin-bottom:0}h2{font-size:1.05rem;margin-top:1.5rem}.big{font-size:2rem;font-weight:700;margin:.5rem 0}\
.progress{height:.8rem;background:#e6e6e6;border-radius:.4rem;overflow:hidden}.progress>div{height:100%;background:#2a7a50}\
.days{display:grid;grid-template-columns:repeat(7,1fr);gap:.3rem;align-items:end;height:7.5rem;margin:1rem 0}\
.day{text-align:center;font-size:.8rem}.bar{background:#2a7a50;border-radius:3px;margin:0 auto;width:70%}\
.future .slot{border:1px dashed #8c8c8c;border-radius:3px;height:1.2rem;width:70%;margin:0 auto}\
.paused .slot{height:1.2rem;width:70%;margin:0 auto;border-radius:3px;background:repeating-linear-gradient(45deg,#d9e7f5,#d9e7f5 4px,#fff 4px,#fff 8px);border:1px solid #3d6ea5}\
.today{font-weight:700}.muted{color:#595959}ul{padding-left:1.2rem}\
.tag{color:#1d6a56;font-weight:600}.gone{background:#fee;padding:.5rem;border-radius:4px}\
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
#weeks{width:100%;max-width:24rem;height:auto}";

pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "just now", "5 minutes ago", "3 hours ago", "2 days ago".
pub fn ago(then_ms: i64, now: Timestamp) -> String {
    let minutes = (now.as_millisecond() - then_ms).max(0) / 60_000;
    match minutes {
        0 => "just now".into(),
        m if m < 60 => format!("{} ago", plural(m as u32, "minute", "minutes")),
        m if m < 48 * 60 => format!("{} ago", plural((m / 60) as u32, "hour", "hours")),
        m => format!("{} ago", plural((m / 1440) as u32, "day", "days")),
    }
}

/// Who the page is about: the owner's display name if set, else the buddy's share name.
pub fn heading(view: &ShareView, share_name: &str) -> String {
    match (&view.display_name, share_name) {
        (Some(name), _) => format!("{name}'s micro shifts"),
        (None, "") => "Shared progress".into(),
        (None, buddy) => format!("Progress shared with {buddy}"),
    }
}

/// The page's main part for a view, at `now` (today in the owner's zone, else `fallback`).
pub fn fragment(
    view: &ShareView,
    cheers: &[Cheer],
    share_name: &str,
    now: Timestamp,
    fallback: &TimeZone,
) -> String {
    let today = view.today(now, fallback);
    let catalog = view.catalog();
    let summary = view.summary();
    let review = view.review(today, fallback);
    let week = &review.week;
    let streak = nudge_journal::streak(&summary, &view.paused, today);
    let heading = heading(view, share_name);
    let mut out = String::new();
    let _ = write!(out, "<h1 id=who>{}</h1>", esc(&heading));
    if let Some(at) = view.updated_at_ms {
        let _ = write!(
            out,
            "<p class=muted>Updated <span id=updated data-at={at}>{}</span></p>",
            ago(at, now)
        );
    }
    // What a screen reader hears on a live update (the script copies it to the live region).
    let _ = write!(
        out,
        "<p id=say hidden>{}: {} of {} micro shifts this week, streak {}.</p>",
        esc(&heading),
        week.done,
        week.goal,
        plural(streak, "day", "days")
    );
    let _ = write!(
        out,
        "<p class=big><span id=done>{}</span>/<span id=goal>{}</span> micro shifts this week</p>",
        week.done, week.goal
    );
    let percent = (u64::from(week.done) * 100 / u64::from(week.goal.max(1))).min(100);
    let _ = write!(
        out,
        "<div class=progress role=progressbar aria-label=\"Towards the week's goal\" aria-valuemin=0 aria-valuemax={} aria-valuenow={}><div style=\"width:{percent}%\"></div></div>",
        week.goal, week.done
    );
    days(&mut out, week, today);
    let _ = write!(
        out,
        "<p>Streak: <b id=streak>{streak}</b> day{}. Doors closed: <b id=doors>{}</b>.</p>",
        if streak == 1 { "" } else { "s" },
        view.doors_closed
    );
    week_in_review(&mut out, &review);
    let weeks = nudge_journal::weeks(&summary, &catalog, today, CHART_WEEKS);
    out.push_str("<h2>The last 8 weeks</h2>");
    out.push_str(&chart(&weeks, week.goal));
    if !cheers.is_empty() {
        out.push_str("<h2>Cheers sent</h2><ul id=cheers>");
        for c in cheers.iter().rev().take(RECENT_CHEERS) {
            let _ = write!(
                out,
                "<li>{} <span class=muted>— {}, {}</span></li>",
                esc(&c.text),
                esc(&c.from),
                ago(c.at_ms, now)
            );
        }
        out.push_str("</ul>");
    }
    ideas_and_shifts(&mut out, view);
    out
}

/// The review of the week, within the share's scope (`ShareView::review`).
fn week_in_review(out: &mut String, review: &nudge_journal::share::ViewReview) {
    out.push_str("<h2>The week in review</h2><section id=review>");
    let _ = write!(
        out,
        "<p>{} micro shifts: {}.</p><p>{}.</p>",
        review.week.done,
        esc(&nudge_journal::versus(review.week.done, review.before.done)),
        esc(&review.pace.sentence())
    );
    if !review.doors_closed.is_empty() {
        out.push_str("<p>Doors closed (each one a relief):</p><ul>");
        for door in &review.doors_closed {
            let _ = write!(
                out,
                "<li><span class=tag>+{}</span>{}</li>",
                esc(&door.title),
                door.note
                    .as_ref()
                    .map(|n| format!(" — {}", esc(n)))
                    .unwrap_or_default()
            );
        }
        out.push_str("</ul>");
    }
    if !review.little_yeses.is_empty() {
        out.push_str("<p>Little yeses:</p><ul>");
        for yes in &review.little_yeses {
            let _ = write!(
                out,
                "<li>{} <span class=muted>{}</span></li>",
                esc(&yes.text),
                esc(&yes.date)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}

/// The week's days: a bar for each day so far, a dashed slot for days to come, a hatched
/// slot for paused days.
fn days(out: &mut String, week: &nudge_journal::Week, today: Date) {
    let top = week.days.iter().map(|d| d.done).max().unwrap_or(0).max(1);
    out.push_str("<div class=days>");
    for d in &week.days {
        let mut class = String::from("day");
        if d.paused {
            class.push_str(" paused");
        } else if d.date > today {
            class.push_str(" future");
        }
        if d.date == today {
            class.push_str(" today");
        }
        let name = d.date.strftime("%a");
        let body = if d.paused && d.done == 0 {
            format!("<div class=slot></div>{name}<br>paused")
        } else if d.date > today {
            format!("<div class=slot></div>{name}<br>&nbsp;")
        } else {
            format!(
                "<div class=bar style=\"height:{:.2}rem\"></div>{name}<br>{}",
                f64::from(d.done * 100 / top) * 0.05,
                d.done
            )
        };
        let _ = write!(
            out,
            "<div class=\"{class}\" data-date={} data-done={}>{body}</div>",
            d.date, d.done
        );
    }
    out.push_str("</div>");
}

/// The last weeks as an inline SVG bar chart, oldest on the left, with the goal dashed.
pub fn chart(weeks: &[nudge_journal::Week], goal: u32) -> String {
    let (width, height, base, bar) = (320u32, 130u32, 110u32, 26u32);
    let slot = width / CHART_WEEKS as u32;
    let top = weeks
        .iter()
        .map(|w| w.done)
        .max()
        .unwrap_or(0)
        .max(goal)
        .max(1);
    let scale = |n: u32| u64::from(n) * 90 / u64::from(top);
    let described: Vec<String> = weeks
        .iter()
        .rev()
        .map(|w| format!("week of {}: {}", w.start.strftime("%b %-d"), w.done))
        .collect();
    let mut out = format!(
        "<svg id=weeks viewBox=\"0 0 {width} {height}\" role=img aria-label=\"Micro shifts a week, the last {} weeks: {}\" xmlns=\"http://www.w3.org/2000/svg\">",
        weeks.len(),
        esc(&described.join("; "))
    );
    for (i, w) in weeks.iter().rev().enumerate() {
        let x = i as u32 * slot + (slot - bar) / 2;
        let h = scale(w.done);
        let fill = if i + 1 == weeks.len() {
            "#3f9a6b"
        } else {
            "#2a7a50"
        };
        let _ = write!(
            out,
            "<rect class=wk x={x} y={} width={bar} height={h} rx=2 fill=\"{fill}\"><title>{}</title></rect>",
            u64::from(base) - h,
            esc(&described[i])
        );
        let _ = write!(
            out,
            "<text x={} y={} font-size=10 text-anchor=middle fill=\"#1f1f1f\">{}</text>",
            x + bar / 2,
            u64::from(base) - h - 3,
            w.done
        );
        let _ = write!(
            out,
            "<text x={} y={} font-size=9 text-anchor=middle fill=\"#595959\">{}</text>",
            x + bar / 2,
            base + 14,
            w.start.strftime("%b %-d")
        );
    }
    let goal_y = u64::from(base) - scale(goal);
    let _ = write!(
        out,
        "<line x1=0 x2={width} y1={goal_y} y2={goal_y} stroke=\"#595959\" stroke-dasharray=\"4 3\"></line><text x={width} y={} font-size=9 text-anchor=end fill=\"#595959\">goal {goal}</text></svg>",
        goal_y.saturating_sub(3)
    );
    out
}

fn ideas_and_shifts(out: &mut String, view: &ShareView) {
    let statuses: Vec<String> = view
        .ideas_by_status
        .iter()
        .map(|(s, n)| format!("{n} {}", esc(&s.replace('_', " "))))
        .collect();
    if !statuses.is_empty() {
        let _ = write!(out, "<p>Ideas: {}</p>", statuses.join(", "));
    }
    if !view.ideas.is_empty() {
        out.push_str("<h2>Ideas</h2><ul>");
        for idea in &view.ideas {
            let _ = write!(
                out,
                "<li><span class=tag>+{}</span> <span class=muted>{}</span>{}</li>",
                esc(&idea.title),
                esc(&idea.status.replace('_', " ")),
                idea.closing_note
                    .as_ref()
                    .map(|n| format!(" — {}", esc(n)))
                    .unwrap_or_default()
            );
        }
        out.push_str("</ul>");
    }
    if !view.shifts.is_empty() {
        out.push_str("<h2>Recent micro shifts</h2><ul id=shifts>");
        for s in view.shifts.iter().take(20) {
            let _ = write!(
                out,
                "<li>{} {}{}{}</li>",
                if s.status == "done" { "✔" } else { "○" },
                esc(&s.text),
                s.done_date
                    .as_ref()
                    .map(|d| format!(" <span class=muted>{}</span>", esc(d)))
                    .unwrap_or_default(),
                s.little_yes
                    .as_ref()
                    .map(|y| format!("<br><span class=muted>little yes: {}</span>", esc(y)))
                    .unwrap_or_default()
            );
        }
        out.push_str("</ul>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ShareView {
        ShareView {
            weekly_goal: 5,
            days: [("2026-12-07".to_owned(), 2), ("2026-11-30".to_owned(), 6)].into(),
            paused: ["2026-12-09".parse().unwrap()].into(),
            time_zone: Some("Pacific/Kiritimati".into()),
            display_name: Some("Ana <3".into()),
            updated_at_ms: Some(0),
            ..ShareView::default()
        }
    }

    #[test]
    fn the_page_follows_the_owners_zone_and_marks_days() {
        // 2026-12-06 12:00 UTC is already Monday 2026-12-07 on Kiritimati (UTC+14).
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let html = fragment(&view(), &[], "Jo", now, &TimeZone::UTC);
        assert!(html.contains("Ana &lt;3&#39;s micro shifts"), "{html}");
        assert!(
            html.contains("class=\"day today\" data-date=2026-12-07 data-done=2"),
            "{html}"
        );
        assert!(
            html.contains("class=\"day paused\" data-date=2026-12-09"),
            "{html}"
        );
        assert!(
            html.contains("class=\"day future\" data-date=2026-12-10"),
            "{html}"
        );
        assert!(html.contains("aria-valuenow=2"), "{html}");
        assert_eq!(html.matches("<rect class=wk").count(), CHART_WEEKS);
        // In the server's zone it would still be Sunday, in the week before.
        let html = fragment(
            &ShareView {
                time_zone: None,
                ..view()
            },
            &[],
            "Jo",
            now,
            &TimeZone::UTC,
        );
        assert!(
            html.contains("class=\"day today\" data-date=2026-12-06"),
            "{html}"
        );
    }

    #[test]
    fn ago_reads_naturally() {
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let ms = now.as_millisecond();
        assert_eq!(ago(ms - 30_000, now), "just now");
        assert_eq!(ago(ms - 60_000, now), "1 minute ago");
        assert_eq!(ago(ms - 5 * 3_600_000, now), "5 hours ago");
        assert_eq!(ago(ms - 3 * 86_400_000, now), "3 days ago");
    }
}
