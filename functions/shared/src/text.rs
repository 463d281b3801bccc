//! Text bounded by the limits of the services it is sent to, cut visibly.

/// What ends a text that was cut, so a reader knows something is missing.
pub const TRUNCATED: &str = "…(truncated)";

/// SNS: a message and its attributes together may hold at most 256 KiB.
pub const SNS_MESSAGE_BYTES: usize = 262_144;
/// What a message leaves for its attributes (a few short strings) within [`SNS_MESSAGE_BYTES`].
pub const SNS_ATTRIBUTES_RESERVE: usize = 4_096;

/// `text` in at most `max_bytes` bytes of UTF-8: whole when it fits; else cut on a character
/// boundary and ending in [`TRUNCATED`] (only the cut text when even that does not fit).
pub fn truncate(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    match max_bytes.checked_sub(TRUNCATED.len()) {
        Some(room) => format!("{}{TRUNCATED}", &text[..text.floor_char_boundary(room)]),
        None => text[..text.floor_char_boundary(max_bytes)].to_owned(),
    }
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
}
