//! The character label set of CTC models, transcript normalization, and text <-> label ids.
//!
//! A [`Vocabulary`] is an ordered list of distinct characters; a character's id is its position. The
//! CTC blank is not a label: it takes the id `len()` (the last class of the decoder), as in NeMo.
//! The English default is NeMo's 28 characters `" ", a..z, "'"` (ids 0..=27, blank 28).
//!
//! [`normalize_transcript`] cleans a transcript the way NeMo's English character parser
//! (`ENCharParser`, `nemo/collections/asr/parts/parsers.py`, via `cleaners.clean_text`) does, minus
//! the parts that need language data NeMo takes from other packages:
//!
//! 1. typographic quotes, apostrophes and dashes become their ASCII forms (the few `unidecode`
//!    mappings that matter for English transcripts; other non-ASCII characters are kept),
//! 2. lowercase,
//! 3. `+`, `&`, `%` become ` plus `, ` and `, ` percent `,
//! 4. every other ASCII punctuation character that is not a label becomes a space,
//! 5. runs of whitespace collapse to one space, and the ends are trimmed.
//!
//! Not reproduced: NeMo spells out numbers (`inflect`) and expands a few abbreviations
//! (`mr.` → `mister`). Here digits stay digits, so a transcript with digits fails
//! [`Vocabulary::encode`] with the character named, and `mr.` becomes `mr`.
//!
//! ```
//! # fn main() -> nemo_asr::Result<()> {
//! use nemo_asr::data::{normalize_transcript, Vocabulary};
//! let labels = Vocabulary::english();
//! let text = normalize_transcript("  Rock & Roll — it's “great”! ", &labels);
//! assert_eq!(text, "rock and roll it's great");
//! let ids = labels.encode(&text).map_err(|e| nemo_asr::Error::Config { key: "text".into(), msg: e.to_string() })?;
//! assert_eq!(labels.decode(&ids)?, text);
//! assert_eq!(labels.blank_id(), 28);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;

use crate::{Error, Result};

/// NeMo's 28 English characters: space, `a`..`z`, apostrophe, in this order.
pub const ENGLISH_LABELS: [char; 28] = [
    ' ', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r',
    's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '\'',
];

/// An ordered set of distinct characters; a character's id is its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    chars: Vec<char>,
    ids: HashMap<char, u32>,
}

/// A character of a transcript that is not in the label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownChar {
    /// The character.
    pub ch: char,
    /// Its 0-based position in the text, counted in characters.
    pub column: usize,
}

impl fmt::Display for UnknownChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "character {:?} (U+{:04X}) at column {} is not in the labels",
            self.ch,
            u32::from(self.ch),
            self.column
        )
    }
}

impl std::error::Error for UnknownChar {}

impl Vocabulary {
    /// A label set from characters in id order; duplicates and an empty set are errors.
    pub fn new(chars: impl IntoIterator<Item = char>) -> Result<Self> {
        let chars: Vec<char> = chars.into_iter().collect();
        if chars.is_empty() {
            return Err(Error::Config {
                key: "labels".into(),
                msg: "the label set is empty".into(),
            });
        }
        let mut ids = HashMap::with_capacity(chars.len());
        for (i, &c) in chars.iter().enumerate() {
            let id = u32::try_from(i).map_err(|_| Error::Config {
                key: "labels".into(),
                msg: format!("more than {} labels", u32::MAX),
            })?;
            if let Some(first) = ids.insert(c, id) {
                return Err(Error::Config {
                    key: format!("labels[{i}]"),
                    msg: format!("{c:?} repeats labels[{first}]"),
                });
            }
        }
        Ok(Self { chars, ids })
    }

    /// A label set from NeMo's YAML form, a list of one-character strings.
    pub fn from_strings<S: AsRef<str>>(labels: &[S]) -> Result<Self> {
        let mut chars = Vec::with_capacity(labels.len());
        for (i, s) in labels.iter().enumerate() {
            let s = s.as_ref();
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => chars.push(c),
                _ => {
                    return Err(Error::Config {
                        key: format!("labels[{i}]"),
                        msg: format!("a label is one character, got {s:?}"),
                    });
                }
            }
        }
        Self::new(chars)
    }

    /// NeMo's English set [`ENGLISH_LABELS`]: `" ", a..z, "'"`.
    pub fn english() -> Self {
        let ids = ENGLISH_LABELS
            .iter()
            .zip(0u32..)
            .map(|(&c, i)| (c, i))
            .collect();
        Self {
            chars: ENGLISH_LABELS.to_vec(),
            ids,
        }
    }

    /// Number of labels (the CTC blank not included).
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Always false: a label set has at least one label.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The CTC blank id, `len()`: the class after the last label.
    pub fn blank_id(&self) -> u32 {
        // `new` keeps the count within u32, so this cannot saturate for a built set.
        u32::try_from(self.chars.len()).unwrap_or(u32::MAX)
    }

    /// The labels in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// Whether `c` is a label.
    pub fn contains(&self, c: char) -> bool {
        self.ids.contains_key(&c)
    }

    /// The id of `c`, if it is a label.
    pub fn id(&self, c: char) -> Option<u32> {
        self.ids.get(&c).copied()
    }

    /// The ids of every character of `text`; the first character that is not a label is an error.
    pub fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, UnknownChar> {
        text.chars()
            .enumerate()
            .map(|(column, ch)| self.id(ch).ok_or(UnknownChar { ch, column }))
            .collect()
    }

    /// The text of `ids`; an id that is not a label (the blank included) is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        ids.iter()
            .enumerate()
            .map(|(pos, &id)| {
                usize::try_from(id)
                    .ok()
                    .and_then(|i| self.chars.get(i))
                    .copied()
                    .ok_or_else(|| Error::Shape {
                        op: "Vocabulary::decode",
                        msg: format!(
                            "id {id} at position {pos} is not a label id (0..{})",
                            self.chars.len()
                        ),
                    })
            })
            .collect()
    }
}

impl Default for Vocabulary {
    /// [`Vocabulary::english`].
    fn default() -> Self {
        Self::english()
    }
}

/// The ASCII form `unidecode` gives the typographic characters common in English transcripts.
fn ascii_form(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{02BC}' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}'
        | '\u{00BB}' => "\"",
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        | '\u{2212}' => "-",
        '\u{2026}' => "...",
        '\u{00A0}' | '\u{2009}' | '\u{202F}' => " ",
        _ => return None,
    })
}

/// Normalizes a transcript as NeMo's English character parser does (see the module docs):
/// typographic characters to ASCII, lowercase, `+ & %` spelled out, ASCII punctuation that is not
/// a label to spaces, whitespace collapsed and trimmed. Idempotent.
pub fn normalize_transcript(text: &str, labels: &Vocabulary) -> String {
    let mut spaced = String::with_capacity(text.len() + 8);
    let push = |c: char, out: &mut String| match c {
        '+' if !labels.contains('+') => out.push_str(" plus "),
        '&' if !labels.contains('&') => out.push_str(" and "),
        '%' if !labels.contains('%') => out.push_str(" percent "),
        c if c.is_ascii_punctuation() && !labels.contains(c) => out.push(' '),
        c => out.push(c),
    };
    for c in text.chars() {
        match ascii_form(c) {
            Some(ascii) => ascii.chars().for_each(|a| push(a, &mut spaced)),
            None => c.to_lowercase().for_each(|l| push(l, &mut spaced)),
        }
    }
    let mut out = String::with_capacity(spaced.len());
    for word in spaced.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_defaults() {
        let l = Vocabulary::english();
        assert_eq!(l.len(), 28);
        assert_eq!(l.id(' '), Some(0));
        assert_eq!(l.id('a'), Some(1));
        assert_eq!(l.id('\''), Some(27));
        assert_eq!(l.blank_id(), 28);
        assert_eq!(Vocabulary::new(ENGLISH_LABELS).ok(), Some(l));
    }

    #[test]
    fn bad_label_sets() {
        let e = Vocabulary::from_strings(&["a", "bc"])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("config `labels[1]`: a label is one character, got \"bc\"")
        );
        let e = Vocabulary::new(['a', 'b', 'a'])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("config `labels[2]`: 'a' repeats labels[0]")
        );
        assert!(Vocabulary::new([]).is_err());
    }

    #[test]
    fn normalization_cases() {
        let l = Vocabulary::english();
        let n = |s: &str| normalize_transcript(s, &l);
        assert_eq!(n("Hello,   World!"), "hello world");
        assert_eq!(n("\tDon’t stop\n"), "don't stop");
        assert_eq!(n("R&D: 50% + more"), "r and d 50 percent plus more");
        assert_eq!(n("well-known (really)"), "well known really");
        assert_eq!(n("Ünïcode"), "ünïcode");
        assert_eq!(n("...!?"), "");
        let with_digits = Vocabulary::new("0123456789 abc-".chars()).ok();
        if let Some(d) = with_digits {
            assert_eq!(normalize_transcript("A-1, B.", &d), "a-1 b");
        }
    }

    #[test]
    fn encode_names_the_character() {
        let l = Vocabulary::english();
        let e = l.encode("ab3c").err();
        assert_eq!(e, Some(UnknownChar { ch: '3', column: 2 }));
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("character '3' (U+0033) at column 2 is not in the labels")
        );
        assert!(l.decode(&[1, 28]).is_err());
    }
}
