//! Random ids and the short prefixes people type.

use std::collections::BTreeMap;

/// The shortest prefix shown or accepted for an id.
pub const MIN_PREFIX: usize = 4;

/// A new random id: 128 random bits as 32 lowercase hex digits.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The first `n` characters of an id (ids from other apps may be short or not ASCII).
pub fn prefix(id: &str, n: usize) -> &str {
    match id.char_indices().nth(n) {
        Some((at, _)) => &id[..at],
        None => id,
    }
}

/// Whether `text` looks like the start of an id (hex only, at least [`MIN_PREFIX`] long).
pub fn looks_like_prefix(text: &str) -> bool {
    text.len() >= MIN_PREFIX && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// Characters two ids share at their start.
pub fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// Short ids for every key of a sorted map, computed in one pass.
pub fn short_ids<V>(map: &BTreeMap<String, V>) -> BTreeMap<String, String> {
    let keys: Vec<&String> = map.keys().collect();
    let mut out = BTreeMap::new();
    for (i, id) in keys.iter().enumerate() {
        let before = i.checked_sub(1).map_or(0, |j| common_prefix(id, keys[j]));
        let after = keys.get(i + 1).map_or(0, |next| common_prefix(id, next));
        let len = (before.max(after) + 1).max(MIN_PREFIX);
        out.insert((*id).clone(), prefix(id, len).to_owned());
    }
    out
}

/// What a prefix matched.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Exactly one id.
    One(&'a str),
    /// No id.
    None,
    /// Several ids (all of them, sorted).
    Many(Vec<&'a str>),
}

/// Finds the ids starting with `prefix` (case-insensitive) among `ids`.
pub fn lookup<'a, I: IntoIterator<Item = &'a String>>(prefix: &str, ids: I) -> Lookup<'a> {
    let prefix = prefix.trim().to_ascii_lowercase();
    if prefix.is_empty() {
        return Lookup::None;
    }
    let mut found: Vec<&str> = ids
        .into_iter()
        .filter(|id| id.starts_with(&prefix))
        .map(String::as_str)
        .collect();
    found.sort_unstable();
    match found.len() {
        0 => Lookup::None,
        1 => Lookup::One(found[0]),
        _ => Lookup::Many(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex() {
        let a = new_id();
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, new_id());
    }

    #[test]
    fn short_ids_are_unique_and_at_least_four() {
        let mut map = BTreeMap::new();
        for id in ["abcdef01", "abcdef99", "abd00000", "ffff0000"] {
            map.insert(id.to_owned(), ());
        }
        let short = short_ids(&map);
        assert_eq!(short["abcdef01"], "abcdef0");
        assert_eq!(short["abcdef99"], "abcdef9");
        assert_eq!(short["abd00000"], "abd0");
        assert_eq!(short["ffff0000"], "ffff");
    }

    #[test]
    fn prefixes_never_split_a_character() {
        assert_eq!(prefix("ab", 8), "ab");
        assert_eq!(prefix("éèêëàâäô", 4), "éèêë");
        let mut map = BTreeMap::new();
        map.insert("ééé1".to_owned(), ());
        map.insert("ééé2".to_owned(), ());
        assert_eq!(short_ids(&map)["ééé1"], "ééé1");
        assert_eq!(common_prefix("ééa", "ééb"), 2);
    }

    #[test]
    fn lookup_finds_one_none_or_many() {
        let ids = vec!["abcd1".to_owned(), "abcd2".to_owned(), "ef01".to_owned()];
        assert_eq!(lookup("EF0", &ids), Lookup::One("ef01"));
        assert_eq!(lookup("abcd", &ids), Lookup::Many(vec!["abcd1", "abcd2"]));
        assert_eq!(lookup("9999", &ids), Lookup::None);
        assert_eq!(lookup("", &ids), Lookup::None);
        assert!(looks_like_prefix("abcd"));
        assert!(!looks_like_prefix("abc"));
        assert!(!looks_like_prefix("sam!"));
    }
}
