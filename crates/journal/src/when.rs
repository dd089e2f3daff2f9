//! Time: the clock and zone commands run at, and the date words people type.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

/// The moment a command runs at and the zone of the device running it.
#[derive(Clone, Debug)]
pub struct Now {
    /// The instant.
    pub ts: Timestamp,
    /// The device's time zone.
    pub tz: TimeZone,
}

impl Now {
    /// A fixed moment in a zone (tests, `NUDGE_NOW`).
    pub fn new(ts: Timestamp, tz: TimeZone) -> Self {
        Self { ts, tz }
    }

    /// Milliseconds since the epoch.
    pub fn ms(&self) -> i64 {
        self.ts.as_millisecond()
    }

    /// The moment in the device's zone.
    pub fn zoned(&self) -> Zoned {
        self.ts.to_zoned(self.tz.clone())
    }

    /// Today's local date.
    pub fn today(&self) -> Date {
        self.zoned().date()
    }

    /// The zone's IANA name, or its fixed offset when it has none.
    pub fn tz_name(&self) -> String {
        zone_name(&self.tz, self.ts)
    }

    /// The local date of an instant given in milliseconds.
    pub fn local_date(&self, ms: i64) -> Date {
        to_timestamp(ms).to_zoned(self.tz.clone()).date()
    }
}

/// The IANA name of a zone, or its offset at `ts` (e.g. `+05:30`) when it has none.
pub fn zone_name(tz: &TimeZone, ts: Timestamp) -> String {
    match tz.iana_name() {
        Some(name) => name.to_owned(),
        None => tz.to_offset(ts).to_string(),
    }
}

/// The time zone [`zone_name`] wrote: an IANA name, or a fixed offset such as `+02` or
/// `-05:30`; `None` for anything else.
pub fn zone_named(name: &str) -> Option<TimeZone> {
    if name.starts_with(['+', '-']) {
        return format!("1970-01-01T00:00:00[{name}]")
            .parse::<Zoned>()
            .ok()
            .map(|z| z.time_zone().clone());
    }
    TimeZone::get(name).ok()
}

/// An instant from milliseconds since the epoch, clamped into jiff's range.
pub fn to_timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// RFC 3339 in UTC with second precision, as `--json` shows instants.
pub fn rfc3339(ms: i64) -> String {
    to_timestamp(ms)
        .round(jiff::Unit::Second)
        .unwrap_or(to_timestamp(ms))
        .to_string()
}

const WHEN_HELP: &str = "use now, today, yesterday, a weekday ('friday', 'last friday'), '3d ago', '2h ago', a time ('17:30', '5pm'), 2026-11-20 or '2026-11-20 17:00' (a time may follow a day: 'yesterday 5pm')";

/// How far past the device's clock a time may be and still count as now (clocks differ).
pub const CLOCK_SLACK_MINUTES: i64 = 5;

fn weekday_of(word: &str) -> Option<Weekday> {
    let days = [
        ("monday", Weekday::Monday),
        ("tuesday", Weekday::Tuesday),
        ("wednesday", Weekday::Wednesday),
        ("thursday", Weekday::Thursday),
        ("friday", Weekday::Friday),
        ("saturday", Weekday::Saturday),
        ("sunday", Weekday::Sunday),
    ];
    days.iter()
        .find(|(name, _)| word.len() >= 3 && name.starts_with(word))
        .map(|(_, day)| *day)
}

/// The most recent `day` on or before `today`.
pub fn last_weekday(today: Date, day: Weekday) -> Date {
    let back = (today.weekday().to_monday_zero_offset() - day.to_monday_zero_offset() + 7) % 7;
    today.checked_sub(i64::from(back).days()).unwrap_or(today)
}

/// A time of day: `17:00`, `9:30`, `09:30:15`, `5pm`, `5:30pm`, `11am`.
fn parse_time(text: &str) -> Option<Time> {
    let (text, afternoon) = match (text.strip_suffix("pm"), text.strip_suffix("am")) {
        (Some(t), _) => (t.trim_end(), Some(true)),
        (_, Some(t)) => (t.trim_end(), Some(false)),
        _ => (text, None),
    };
    let mut parts = text.split(':');
    let mut hour: i8 = parts.next()?.parse().ok()?;
    let minute: i8 = match parts.next() {
        Some(m) => m.parse().ok()?,
        // "5pm": the hour alone is a time only with am or pm.
        None if afternoon.is_some() => 0,
        None => return None,
    };
    let second: i8 = match parts.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    if let Some(afternoon) = afternoon {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = match (afternoon, hour) {
            (false, 12) => 0,
            (true, 12) => 12,
            (true, h) => h + 12,
            (false, h) => h,
        };
    }
    Time::new(hour, minute, second, 0).ok()
}

fn parse_day(word: &str, now: &Now) -> Option<Date> {
    let today = now.today();
    match word {
        "today" => Some(today),
        "yesterday" => today.yesterday().ok(),
        "tomorrow" => today.tomorrow().ok(),
        _ => weekday_of(word)
            .map(|day| last_weekday(today, day))
            .or_else(|| word.parse::<Date>().ok()),
    }
}

fn parse_ago(text: &str, now: &Now) -> Option<Zoned> {
    let amount = text.strip_suffix("ago")?.trim();
    let split = amount.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = amount.split_at(split);
    let n: i64 = n.parse().ok()?;
    let span = match unit.trim() {
        "m" | "min" | "mins" | "minute" | "minutes" => n.minutes(),
        "h" | "hour" | "hours" => n.hours(),
        "d" | "day" | "days" => n.days(),
        "w" | "week" | "weeks" => n.weeks(),
        _ => return None,
    };
    now.zoned().checked_sub(span).ok()
}

/// Parses when something happened (`--at`): a day word or date with an optional time, a
/// relative `N{m,h,d,w} ago`, an ISO date-time, or an RFC 3339 instant. A day without a time
/// means noon that day (now, for today before noon). A time after now (beyond
/// [`CLOCK_SLACK_MINUTES`]) is refused: a shift counts once it is made.
pub fn parse_when(text: &str, now: &Now) -> Result<Zoned, String> {
    let when = read_when(text, now)?;
    if when.timestamp() > now.ts + CLOCK_SLACK_MINUTES.minutes() {
        return Err(format!(
            "{:?} is {}, which has not happened yet: a shift counts once it is made (plan it with `nudge add` instead)",
            text.trim(),
            when.strftime("%Y-%m-%d %H:%M")
        ));
    }
    Ok(when)
}

fn read_when(text: &str, now: &Now) -> Result<Zoned, String> {
    let lower = text.trim().to_ascii_lowercase();
    let bad = || format!("cannot read the time {text:?}: {WHEN_HELP}");
    if lower == "now" {
        return Ok(now.zoned());
    }
    if let Some(z) = parse_ago(&lower, now) {
        return Ok(z);
    }
    if let Ok(ts) = lower.to_uppercase().parse::<Timestamp>() {
        return Ok(ts.to_zoned(now.tz.clone()));
    }
    if lower.len() > 10
        && let Ok(dt) = lower.replace(" ", "T").parse::<DateTime>()
    {
        return dt.to_zoned(now.tz.clone()).map_err(|_| bad());
    }
    if let Some(t) = parse_time(&lower) {
        return now
            .today()
            .to_datetime(t)
            .to_zoned(now.tz.clone())
            .map_err(|_| bad());
    }
    let mut words = lower.split_whitespace().peekable();
    let day = match words.next() {
        // "last friday": the one before today, even on a Friday.
        Some("last") => {
            let day = words.next().and_then(weekday_of).ok_or_else(bad)?;
            let yesterday = now.today().yesterday().map_err(|_| bad())?;
            last_weekday(yesterday, day)
        }
        Some(word) => parse_day(word, now).ok_or_else(bad)?,
        None => return Err(bad()),
    };
    // "5 pm" is two words.
    let time = match (words.next(), words.peek().copied()) {
        (None, _) => None,
        (Some(t), Some(half @ ("am" | "pm"))) => {
            words.next();
            Some(parse_time(&format!("{t}{half}")).ok_or_else(bad)?)
        }
        (Some(t), _) => Some(parse_time(t).ok_or_else(bad)?),
    };
    if words.next().is_some() {
        return Err(bad());
    }
    let at = |time: Time| day.to_datetime(time).to_zoned(now.tz.clone());
    match time {
        Some(time) => at(time).map_err(|_| bad()),
        None => {
            let noon = at(Time::constant(12, 0, 0, 0)).map_err(|_| bad())?;
            Ok(if day == now.today() && noon.timestamp() > now.ts {
                now.zoned()
            } else {
                noon
            })
        }
    }
}

/// Parses a day (`--since`): a day word, a date, or `N{d,w} ago`.
pub fn parse_date(text: &str, now: &Now) -> Result<Date, String> {
    let lower = text.trim().to_ascii_lowercase();
    if let Some(z) = parse_ago(&lower, now) {
        return Ok(z.date());
    }
    parse_day(&lower, now)
        .or_else(|| {
            lower
                .to_uppercase()
                .parse::<Timestamp>()
                .ok()
                .map(|ts| ts.to_zoned(now.tz.clone()).date())
        })
        .ok_or_else(|| format!("cannot read the date {text:?}: {WHEN_HELP}"))
}

/// Parses a day ahead (`nudge pause`): `today`, `tomorrow`, a weekday (the coming one,
/// after today), `in N days` / `in N weeks`, or a date.
pub fn parse_day_ahead(text: &str, now: &Now) -> Result<Date, String> {
    let lower = text.trim().to_ascii_lowercase();
    let today = now.today();
    let bad = || {
        format!(
            "cannot read the day {text:?}: use tomorrow, a weekday ('friday': the coming one), 'in 3 days', 'in 2 weeks' or 2026-12-24"
        )
    };
    match lower.as_str() {
        "today" => return Ok(today),
        "tomorrow" => return today.tomorrow().map_err(|_| bad()),
        _ => {}
    }
    if let Some(rest) = lower.strip_prefix("in ") {
        let mut words = rest.split_whitespace();
        let n: i64 = words.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
        let unit = match words.next() {
            Some("day" | "days") => 1,
            Some("week" | "weeks") => 7,
            _ => return Err(bad()),
        };
        if words.next().is_some() || !(0..=3650).contains(&n) {
            return Err(bad());
        }
        return today.checked_add((n * unit).days()).map_err(|_| bad());
    }
    if let Some(day) = weekday_of(&lower) {
        let ahead = (day.to_monday_zero_offset() - today.weekday().to_monday_zero_offset() + 7) % 7;
        let ahead = if ahead == 0 { 7 } else { ahead };
        return today
            .checked_add(i64::from(ahead).days())
            .map_err(|_| bad());
    }
    lower.parse::<Date>().map_err(|_| bad())
}

/// A short relative phrase for an instant: `just now`, `5m ago`, `3h ago`, `yesterday`,
/// `4d ago`, or the date.
pub fn relative(ms: i64, now: &Now) -> String {
    let secs = (now.ms() - ms) / 1000;
    if secs < 0 {
        return format!("on {}", now.local_date(ms));
    }
    let days = (now.today() - now.local_date(ms)).get_days();
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{}m ago", secs / 60),
        _ if days == 0 => format!("{}h ago", secs / 3600),
        _ if days == 1 => "yesterday".into(),
        _ if days < 14 => format!("{days}d ago"),
        _ => format!("on {}", now.local_date(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Now {
        // Wednesday 2026-11-25 10:30 in Berlin.
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let ts: Timestamp = "2026-11-25T09:30:00Z".parse().unwrap();
        Now::new(ts, tz)
    }

    fn at(text: &str) -> String {
        parse_when(text, &now())
            .unwrap()
            .strftime("%Y-%m-%d %H:%M")
            .to_string()
    }

    #[test]
    fn day_words_with_and_without_times() {
        assert_eq!(at("now"), "2026-11-25 10:30");
        // Noon, unless that is still to come.
        assert_eq!(at("today"), "2026-11-25 10:30");
        assert_eq!(at("yesterday 5pm"), "2026-11-24 17:00");
        assert_eq!(at("yesterday 5 pm"), "2026-11-24 17:00");
        assert_eq!(at("yesterday 12am"), "2026-11-24 00:00");
        assert_eq!(at("9:45am"), "2026-11-25 09:45");
        assert_eq!(at("last friday"), "2026-11-20 12:00");
        assert_eq!(at("last wed 17:30"), "2026-11-18 17:30");
        assert_eq!(at("wednesday"), "2026-11-25 10:30");
        assert_eq!(at("yesterday 17:00"), "2026-11-24 17:00");
        assert_eq!(at("Monday"), "2026-11-23 12:00");
        assert_eq!(at("wed 8:15"), "2026-11-25 08:15");
        assert_eq!(at("thursday"), "2026-11-19 12:00");
        assert_eq!(at("3d ago"), "2026-11-22 10:30");
        assert_eq!(at("2h ago"), "2026-11-25 08:30");
        assert_eq!(at("1w ago"), "2026-11-18 10:30");
        assert_eq!(at("2026-11-20"), "2026-11-20 12:00");
        assert_eq!(at("2026-11-20 17:05"), "2026-11-20 17:05");
        assert_eq!(at("2026-11-20T17:05"), "2026-11-20 17:05");
        assert_eq!(at("2026-11-20T16:05:00Z"), "2026-11-20 17:05");
        assert_eq!(at("9:00"), "2026-11-25 09:00");
    }

    #[test]
    fn nonsense_is_an_error_that_says_what_works() {
        for bad in [
            "someday",
            "3x ago",
            "2026-13-01",
            "today 25:00",
            "today at noon",
            "",
        ] {
            let err = parse_when(bad, &now()).unwrap_err();
            assert!(err.contains("yesterday"), "{bad}: {err}");
        }
        assert!(parse_date("blue", &now()).is_err());
    }

    #[test]
    fn times_still_to_come_are_refused_with_a_few_minutes_of_slack() {
        for future in [
            "tomorrow",
            "2030-01-01",
            "5pm",
            "17:30",
            "2026-11-25T09:40:00Z",
        ] {
            let err = parse_when(future, &now()).unwrap_err();
            assert!(err.contains("has not happened yet"), "{future}: {err}");
        }
        // Within the slack: accepted, as typed.
        assert_eq!(at("2026-11-25T09:34:00Z"), "2026-11-25 10:34");
        assert_eq!(at("10:30"), "2026-11-25 10:30");
    }

    #[test]
    fn fixed_offsets_and_zone_names_read_back() {
        for name in ["+05", "-05:30", "+00", "Europe/Berlin", "UTC"] {
            assert!(zone_named(name).is_some(), "{name}");
        }
        for bad in ["Mars/Olympus", "", "+99", "05:00"] {
            assert!(zone_named(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn dates_for_since() {
        assert_eq!(
            parse_date("monday", &now()).unwrap().to_string(),
            "2026-11-23"
        );
        assert_eq!(
            parse_date("2w ago", &now()).unwrap().to_string(),
            "2026-11-11"
        );
        assert_eq!(
            parse_date("2026-01-02", &now()).unwrap().to_string(),
            "2026-01-02"
        );
    }

    #[test]
    fn relative_phrases() {
        let n = now();
        assert_eq!(relative(n.ms() - 10_000, &n), "just now");
        assert_eq!(relative(n.ms() - 5 * 60_000, &n), "5m ago");
        assert_eq!(relative(n.ms() - 3 * 3_600_000, &n), "3h ago");
        assert_eq!(relative(n.ms() - 24 * 3_600_000, &n), "yesterday");
        assert_eq!(relative(n.ms() - 4 * 86_400_000, &n), "4d ago");
        assert_eq!(relative(n.ms() - 40 * 86_400_000, &n), "on 2026-10-16");
    }

    #[test]
    fn zone_names() {
        assert_eq!(now().tz_name(), "Europe/Berlin");
        let fixed = TimeZone::fixed(jiff::tz::offset(5));
        assert_eq!(zone_name(&fixed, now().ts), "+05");
        assert_eq!(rfc3339(1_764_063_000_123), "2025-11-25T09:30:00Z");
    }
}
