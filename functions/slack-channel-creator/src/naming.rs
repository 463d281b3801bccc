//! War-room channel names: `inc-<yyyymmdd>-<short id>-<slug of title>`.
//!
//! Slack channel names are lowercase `[a-z0-9_-]` and at most 80 characters. The incident's short
//! id is always kept whole (it is what finds the room again) and the title slug is cut to fit, so
//! the same incident always maps to the same name and a retry reuses the room instead of creating
//! a `-1` copy.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Slack's limit on channel names.
pub const MAX_NAME_LEN: usize = 80;
/// Every war room's name starts with this.
pub const PREFIX: &str = "inc-";
/// Longer ids (or ids with nothing usable in them) are replaced by a hash of this many hex digits.
const HASHED_ID_LEN: usize = 12;
const MAX_ID_LEN: usize = 24;

/// What a war room is named after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomKey {
    /// `yyyymmdd`, in UTC.
    pub date: String,
    /// Lowercase `[a-z0-9]`, at most 24 characters.
    pub short_id: String,
    pub title: String,
}

impl RoomKey {
    /// The key of an incident that started at `since` with the given id and title.
    pub fn new(since: DateTime<Utc>, id: &str, title: &str) -> Self {
        Self { date: since.format("%Y%m%d").to_string(), short_id: short_id(id), title: title.to_owned() }
    }

    /// The key of an escalation: the short id is the start of the incident key's trailing hash.
    pub fn for_escalation(since: DateTime<Utc>, incident_key: &str, alarm_name: &str) -> Self {
        let hash = incident_key.rsplit("__").next().unwrap_or_default();
        let id = if hash.len() >= 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            hash.get(..8).unwrap_or(hash).to_ascii_lowercase()
        } else {
            hashed(incident_key, 8)
        };
        Self { date: since.format("%Y%m%d").to_string(), short_id: id, title: alarm_name.to_owned() }
    }

    /// The channel name: the id whole, the title's slug cut to fit in 80 characters.
    pub fn channel_name(&self) -> String {
        let head = format!("{PREFIX}{}-{}", self.date, self.short_id);
        let room = MAX_NAME_LEN.saturating_sub(head.len() + 1);
        match slug(&self.title, room) {
            slug if slug.is_empty() => head,
            slug => format!("{head}-{slug}"),
        }
    }

    /// True when `name` is this incident's room, whatever date and title it was named with.
    pub fn names_this_incident(&self, name: &str) -> bool {
        is_room_of(name, &self.short_id)
    }
}

/// True when `name` is the room of the incident with this short id: `inc-<8 digits>-<id>[-...]`.
pub fn is_room_of(name: &str, short_id: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else { return false };
    let Some((date, rest)) = rest.split_once('-') else { return false };
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || short_id.is_empty() {
        return false;
    }
    match rest.strip_prefix(short_id) {
        Some(tail) => tail.is_empty() || tail.starts_with('-'),
        None => false,
    }
}

/// The id as it appears in a name: lowercase `[a-z0-9]`; a long id, or one with no letter or digit,
/// becomes a hash of itself so the name stays short and stable.
pub fn short_id(id: &str) -> String {
    let clean: String = id.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    if clean.is_empty() || clean.len() > MAX_ID_LEN { hashed(id, HASHED_ID_LEN) } else { clean }
}

fn hashed(text: &str, len: usize) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>().chars().take(len).collect()
}

/// Lowercase `[a-z0-9_-]` of at most `max` characters: letters with accents or from other scripts
/// are transliterated, anything else becomes one `-`; empty when nothing is left.
pub fn slug(text: &str, max: usize) -> String {
    let ascii = deunicode::deunicode_with_tofu(text, "-").to_ascii_lowercase();
    let mut out = String::with_capacity(max);
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let cut: String = out.chars().take(max).collect();
    cut.trim_matches(|c| c == '-' || c == '_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn since() -> DateTime<Utc> {
        "2026-11-20T04:02:11Z".parse().expect("timestamp")
    }

    fn is_channel_name(name: &str) -> bool {
        name.len() <= MAX_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }

    #[test]
    fn the_same_incident_always_gets_the_same_name() {
        let a = RoomKey::new(since(), "PGR0VU2", "A little bump in the road").channel_name();
        let b = RoomKey::new(since(), "PGR0VU2", "A little bump in the road").channel_name();
        assert_eq!(a, b);
        assert_eq!(a, "inc-20261120-pgr0vu2-a-little-bump-in-the-road");
    }

    #[test]
    fn a_long_title_is_cut_and_the_id_kept_whole() {
        let key = RoomKey::new(since(), "Q1ABCDEFGHIJKL", &"checkout latency above threshold ".repeat(10));
        let name = key.channel_name();
        assert!(is_channel_name(&name), "{name}");
        assert_eq!(name.len(), MAX_NAME_LEN, "{name}");
        assert!(name.starts_with("inc-20261120-q1abcdefghijkl-checkout-latency"), "{name}");
        assert!(key.names_this_incident(&name));
    }

    #[test]
    fn unicode_titles_are_transliterated() {
        let name = RoomKey::new(since(), "P1", "Ünïcödé alarm — prod Straße").channel_name();
        assert_eq!(name, "inc-20261120-p1-unicode-alarm-prod-strasse");
    }

    #[test]
    fn punctuation_only_titles_leave_the_date_and_id() {
        for title in ["!!!", "---", "   ", "", "«»"] {
            assert_eq!(RoomKey::new(since(), "PGR0VU2", title).channel_name(), "inc-20261120-pgr0vu2", "{title:?}");
        }
    }

    #[test]
    fn emoji_and_hostile_titles_give_valid_names() {
        let titles = [
            "🔥🔥🔥 db on fire 🔥",
            "$(reboot); rm -rf / #",
            "a b<c>{d}[e]?f*g\"h#i%j\\k^l|m~n`o$p&q,r;s:t/u",
            "\n\t",
            "数据库 主节点 宕机",
            "UPPER_case_Title",
        ];
        for title in titles {
            let name = RoomKey::new(since(), "PGR0VU2", title).channel_name();
            assert!(is_channel_name(&name), "{title:?} gave {name}");
            assert!(!name.ends_with('-'), "{title:?} gave {name}");
            assert!(name.starts_with("inc-20261120-pgr0vu2"), "{title:?} gave {name}");
        }
        assert_eq!(RoomKey::new(since(), "P1", "UPPER_case_Title").channel_name(), "inc-20261120-p1-upper_case_title");
    }

    #[test]
    fn odd_ids_are_hashed_to_a_stable_short_form() {
        let long = short_id(&"x".repeat(200));
        assert_eq!(long.len(), HASHED_ID_LEN);
        assert_eq!(long, short_id(&"x".repeat(200)));
        assert_eq!(short_id("🔥").len(), HASHED_ID_LEN);
        assert_eq!(short_id("P-GR0/VU2"), "pgr0vu2");
    }

    #[test]
    fn an_escalation_is_named_after_its_incident_key_hash_and_alarm() {
        let key = RoomKey::for_escalation(since(), "web-nginx__web-nginx-down__0d5c8a41e6b2f7a93c10", "web-nginx-down");
        assert_eq!(key.channel_name(), "inc-20261120-0d5c8a41-web-nginx-down");
        let odd = RoomKey::for_escalation(since(), "not-a-key", "x");
        assert_eq!(odd.short_id.len(), 8);
    }

    #[test]
    fn a_room_is_recognised_by_its_id_whatever_its_date_and_title() {
        let key = RoomKey::new(since(), "PGR0VU2", "renamed later");
        assert!(key.names_this_incident("inc-20261119-pgr0vu2-a-little-bump"));
        assert!(key.names_this_incident("inc-20261119-pgr0vu2"));
        assert!(!key.names_this_incident("inc-20261119-pgr0vu21-other"));
        assert!(!key.names_this_incident("inc-2026111-pgr0vu2"));
        assert!(!key.names_this_incident("general"));
    }
}
