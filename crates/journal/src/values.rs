//! Reading values written by any Automerge client: strings may be plain strings or Text
//! objects (JavaScript's default), numbers may be integers or floats, times may be
//! timestamps, numbers or RFC 3339 strings.

use automerge::ScalarValue;
use automerge::hydrate::{Map, Value};

/// A string field, whether a plain string or a Text object.
pub fn string(map: &Map, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::Scalar(ScalarValue::Str(s)) => Some(s.to_string()),
        Value::Text(t) => Some(t.to_string()),
        _ => None,
    }
}

/// A non-empty string field.
pub fn non_empty(map: &Map, key: &str) -> Option<String> {
    string(map, key).filter(|s| !s.is_empty())
}

/// An integer field.
pub fn int(map: &Map, key: &str) -> Option<i64> {
    match map.get(key)? {
        Value::Scalar(ScalarValue::Int(i)) => Some(*i),
        Value::Scalar(ScalarValue::Uint(u)) => i64::try_from(*u).ok(),
        Value::Scalar(ScalarValue::F64(f)) if f.is_finite() => Some(*f as i64),
        Value::Scalar(ScalarValue::Counter(c)) => Some(i64::from(c)),
        _ => None,
    }
}

/// A time field, in milliseconds since the epoch.
pub fn time_ms(map: &Map, key: &str) -> Option<i64> {
    match map.get(key)? {
        Value::Scalar(ScalarValue::Timestamp(ms)) => Some(*ms),
        Value::Scalar(ScalarValue::Str(s)) => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond()),
        _ => int(map, key),
    }
}

/// A nested map.
pub fn map<'a>(map: &'a Map, key: &str) -> Option<&'a Map> {
    match map.get(key)? {
        Value::Map(m) => Some(m),
        _ => None,
    }
}

/// The members of a set stored as a map keyed by member (values that are `false` or `null`
/// do not count).
pub fn set(map_: &Map, key: &str) -> std::collections::BTreeSet<String> {
    let Some(members) = map(map_, key) else {
        return Default::default();
    };
    members
        .iter()
        .filter(|(_, v)| {
            !matches!(
                v.value,
                Value::Scalar(ScalarValue::Boolean(false)) | Value::Scalar(ScalarValue::Null)
            )
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// A field parsed with `FromStr`, or `default` when absent or unknown.
pub fn parsed<T: std::str::FromStr>(map: &Map, key: &str, default: T) -> T {
    string(map, key)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
