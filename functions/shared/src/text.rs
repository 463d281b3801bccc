//! Text bounded by the limits of the services it is sent to, cut visibly, and escaped for Slack.
//!
//! Services count differently: SNS and Incident Manager in bytes, Slack's message texts in
//! characters, Slack's topics and purposes in UTF-16 code units. [`Measure`] names the count and
//! [`truncate_to`] is the one cut for all of them.

/// What ends a text that was cut, so a reader knows something is missing.
pub const TRUNCATED: &str = "…(truncated)";

/// SNS: a message and its attributes together may hold at most 256 KiB.
pub const SNS_MESSAGE_BYTES: usize = 262_144;
/// What a message leaves for its attributes (a few short strings) within [`SNS_MESSAGE_BYTES`].
pub const SNS_ATTRIBUTES_RESERVE: usize = 4_096;
/// SNS: a subject is at most 100 characters, ASCII without control characters.
pub const SNS_SUBJECT_CHARS: usize = 100;

/// How a service counts the length of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// UTF-8 bytes (SNS, Incident Manager, Step Functions).
    Bytes,
    /// Unicode scalar values (Slack message texts and blocks).
    Chars,
    /// UTF-16 code units (Slack topics and purposes).
    Utf16,
}

impl Measure {
    fn of_char(self, c: char) -> usize {
        match self {
            Self::Bytes => c.len_utf8(),
            Self::Chars => 1,
            Self::Utf16 => c.len_utf16(),
        }
    }

    /// The length of `text` as this service counts it.
    pub fn len(self, text: &str) -> usize {
        match self {
            Self::Bytes => text.len(),
            Self::Chars => text.chars().count(),
            Self::Utf16 => text.encode_utf16().count(),
        }
    }
}

/// `text` within `max` as `measure` counts: whole when it fits; else cut on a character boundary
/// and ending in [`TRUNCATED`] (only the cut text when even the marker does not fit).
pub fn truncate_to(text: &str, max: usize, measure: Measure) -> String {
    if measure.len(text) <= max {
        return text.to_owned();
    }
    let (room, marker) = match max.checked_sub(measure.len(TRUNCATED)) {
        Some(room) => (room, TRUNCATED),
        None => (max, ""),
    };
    let mut used = 0;
    let kept: String = text
        .chars()
        .take_while(|c| {
            used += measure.of_char(*c);
            used <= room
        })
        .collect();
    format!("{kept}{marker}")
}

/// `text` in at most `max_bytes` bytes of UTF-8 (see [`truncate_to`]).
pub fn truncate(text: &str, max_bytes: usize) -> String {
    truncate_to(text, max_bytes, Measure::Bytes)
}

/// `text` in at most `max_chars` characters (see [`truncate_to`]).
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    truncate_to(text, max_chars, Measure::Chars)
}

/// `text` with Slack's three control characters escaped (`&`, `<`, `>`), so that whatever an
/// alarm, a rule or a webhook says is shown as written and can never mention (`<!channel>`,
/// `<@U…>`, `<#C…>`) or link (`<https://…|…>`).
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// `text` escaped for Slack ([`slack_escape`]) and then cut to `max_chars` characters, never in
/// the middle of an escape.
pub fn slack_text(text: &str, max_chars: usize) -> String {
    let escaped = slack_escape(text);
    let cut = truncate_chars(&escaped, max_chars);
    if cut == escaped {
        return cut;
    }
    // A cut that ends inside `&amp;`, `&lt;` or `&gt;` drops that partial entity.
    let body = cut.strip_suffix(TRUNCATED).unwrap_or(&cut);
    let body = match body.rfind('&') {
        Some(at) if !body[at..].contains(';') => &body[..at],
        _ => body,
    };
    format!("{body}{TRUNCATED}")
}

/// A web link that is safe inside Slack's `<url|label>`: only `http(s)://` without white space,
/// with `<`, `>` and `|` percent-encoded so it cannot end the link early. `None` for anything else.
pub fn slack_link_url(url: &str) -> Option<String> {
    let is_web = url.starts_with("https://") || url.starts_with("http://");
    if !is_web || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(url.replace('<', "%3C").replace('>', "%3E").replace('|', "%7C"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_on_a_character_boundary_within_the_limit_and_says_so() {
        let marked = |kept: &str| format!("{kept}{TRUNCATED}");
        let cases: [(&str, usize, String); 6] = [
            ("short", 100, "short".to_owned()),
            ("exactly", 7, "exactly".to_owned()),
            (&"a".repeat(40), 20, marked(&"a".repeat(20 - TRUNCATED.len()))),
            // é is two bytes: never half of one
            (&"é".repeat(40), 21, marked(&"é".repeat((21 - TRUNCATED.len()) / 2))),
            ("abcdefghijklmnopqrstuvwxyz", 5, "abcde".to_owned()),
            ("", 0, String::new()),
        ];
        for (text, max, expected) in cases {
            let cut = truncate(text, max);
            assert_eq!(cut, expected, "{text:?} within {max}");
            assert!(cut.len() <= max, "{cut:?} is over {max} bytes");
        }
    }

    #[test]
    fn each_measure_counts_as_its_service_does() {
        let marker_chars = TRUNCATED.chars().count();
        // (text, max, measure, expected kept prefix before the marker, or None when it fits)
        let cases: [(&str, usize, Measure, Option<&str>); 6] = [
            ("é".repeat(30).leak(), 30, Measure::Chars, None),
            ("é".repeat(30).leak(), 20, Measure::Chars, Some("é".repeat(20 - marker_chars).leak())),
            // 🔥 is one character, two UTF-16 units and four bytes
            ("🔥".repeat(30).leak(), 30, Measure::Chars, None),
            ("🔥".repeat(30).leak(), 30, Measure::Utf16, Some("🔥".repeat((30 - marker_chars) / 2).leak())),
            ("🔥".repeat(30).leak(), 60, Measure::Utf16, None),
            ("🔥".repeat(30).leak(), 119, Measure::Bytes, Some("🔥".repeat((119 - TRUNCATED.len()) / 4).leak())),
        ];
        for (text, max, measure, kept) in cases {
            let cut = truncate_to(text, max, measure);
            assert!(measure.len(&cut) <= max, "{measure:?}: {cut:?} is over {max}");
            match kept {
                None => assert_eq!(cut, text, "{measure:?} within {max}"),
                Some(kept) => assert_eq!(cut, format!("{kept}{TRUNCATED}"), "{measure:?} within {max}"),
            }
        }
    }

    #[test]
    fn every_slack_control_sequence_is_shown_as_text() {
        let cases = [
            ("<!channel>", "&lt;!channel&gt;"),
            ("<!here|here> <!everyone>", "&lt;!here|here&gt; &lt;!everyone&gt;"),
            ("<@U024BE7LH>", "&lt;@U024BE7LH&gt;"),
            ("<#C024BE7LR|general>", "&lt;#C024BE7LR|general&gt;"),
            ("<!subteam^SAZ94GDB8>", "&lt;!subteam^SAZ94GDB8&gt;"),
            ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
            ("a && b > c", "a &amp;&amp; b &gt; c"),
            ("&lt; already escaped", "&amp;lt; already escaped"),
            ("plain *bold* _it_", "plain *bold* _it_"),
        ];
        for (text, expected) in cases {
            assert_eq!(slack_escape(text), expected, "{text:?}");
        }
    }

    #[test]
    fn a_cut_slack_text_never_ends_in_half_an_escape() {
        for max in 14..40 {
            let cut = slack_text(&"<".repeat(100), max);
            let body = cut.strip_suffix(TRUNCATED).expect("cut");
            assert!(body.len().is_multiple_of(4) && body.chars().all(|c| "&lt;".contains(c)), "{max}: {cut:?}");
            assert!(cut.chars().count() <= max, "{max}: {cut:?}");
        }
        assert_eq!(slack_text("<b>", 100), "&lt;b&gt;");
    }

    #[test]
    fn only_web_links_become_slack_links_and_cannot_break_out() {
        assert_eq!(
            slack_link_url("https://runbooks.example.com/a?b=1&c=2").as_deref(),
            Some("https://runbooks.example.com/a?b=1&c=2")
        );
        assert_eq!(
            slack_link_url("https://x.example/><!channel>|y").as_deref(),
            Some("https://x.example/%3E%3C!channel%3E%7Cy")
        );
        for bad in ["none configured", "javascript:alert(1)", "https://a b", "ftp://x", "https://x\n<!here>"] {
            assert_eq!(slack_link_url(bad), None, "{bad:?}");
        }
    }
}
