//! Python's `str` whitespace rules, which SacreBLEU's results depend on.
//!
//! `str.split()` and `str.rstrip()` treat as whitespace the characters Unicode marks
//! `White_Space` (Rust's [`char::is_whitespace`]) and also the four ASCII information separators
//! U+001C..U+001F, which Python counts as whitespace (bidirectional class B or S). A `\x1f`
//! between two words therefore splits them in SacreBLEU, and must here too.

/// Whether Python's `str.isspace()` holds for `c`.
pub fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.split()`: the non-empty runs between whitespace.
pub fn python_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_python_whitespace).filter(|w| !w.is_empty())
}

/// Python's `s.rstrip()`.
pub fn python_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_python_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn information_separators_are_whitespace_as_in_python() {
        assert_eq!(
            python_split(" a\u{1f}b\u{a0}c\u{200b}d  ").collect::<Vec<_>>(),
            ["a", "b", "c\u{200b}d"]
        );
        assert_eq!(python_rstrip("a \u{1c}\u{3000}\n"), "a");
    }
}
