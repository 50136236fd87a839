//! The `13a` tokenisation of SacreBLEU (`sacrebleu/tokenizers/tokenizer_13a.py` and
//! `tokenizer_re.py`), the one mteval-v13a.pl applies and WMT reports BLEU with.
//!
//! On one line:
//! 1. remove `<skipped>`, join `-\n` line breaks, turn `\n` into a space, and unescape `&quot;`,
//!    `&amp;`, `&lt;`, `&gt;`;
//! 2. pad with a space on each side;
//! 3. surround with spaces every ASCII punctuation character except `'`, `,`, `-` and `.`
//!    (the ranges `{-~`, `` [-` ``, ` -&`, `(-+`, `:-@` and `/`);
//! 4. split `.` and `,` off unless both neighbours are digits (`1,000.5` stays one token, `a.b`
//!    becomes `a . b`), in two passes as SacreBLEU's two regular expressions do;
//! 5. split `-` off a preceding digit (`1-2` → `1 - 2`);
//! 6. collapse whitespace (Python's definition, see [`py_str`](super::py_str)) to single spaces.
//!
//! Steps 3–5 are SacreBLEU's regular-expression substitutions written as single left-to-right
//! scans with the same non-overlapping, leftmost-match semantics (a character consumed by one
//! match is not the first character of the next): `a..` tokenises as `a . .` and `1.,a` as
//! `1 . , a`, exactly as SacreBLEU does.
//!
//! ```
//! use nemo_nlp::metrics::tokenize_13a;
//! assert_eq!(tokenize_13a("Hello, world! It costs $1,000.50."), "Hello , world ! It costs $ 1,000.50 .");
//! ```

use super::py_str::python_split;

/// SacreBLEU's `13a` tokenisation of `line` (see the [module](self) docs).
#[doc(alias = "Tokenizer13a")]
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let padded: Vec<char> = std::iter::once(' ')
        .chain(line.chars())
        .chain(std::iter::once(' '))
        .collect();
    let spaced = pad_punctuation(&padded);
    let spaced = substitute_pairs(
        &spaced,
        |a, b| !a.is_ascii_digit() && is_period_or_comma(b),
        |a, b, out| {
            // `([^0-9])([\.,])` → `\1 \2 `
            out.extend([a, ' ', b, ' ']);
        },
    );
    let spaced = substitute_pairs(
        &spaced,
        |a, b| is_period_or_comma(a) && !b.is_ascii_digit(),
        |a, b, out| {
            // `([\.,])([^0-9])` → ` \1 \2`
            out.extend([' ', a, ' ', b]);
        },
    );
    let spaced = substitute_pairs(
        &spaced,
        |a, b| a.is_ascii_digit() && b == '-',
        |a, b, out| {
            // `([0-9])(-)` → `\1 \2 `
            out.extend([a, ' ', b, ' ']);
        },
    );
    let text: String = spaced.into_iter().collect();
    python_split(&text).collect::<Vec<_>>().join(" ")
}

fn is_period_or_comma(c: char) -> bool {
    c == '.' || c == ','
}

/// The character class `[\{-\~\[-\` -\&\(-\+\:-\@\/]` of SacreBLEU's first substitution: ASCII
/// punctuation (and the space) except `'`, `,`, `-`, `.`.
fn is_13a_punctuation(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// `([punct])` → ` \1 `.
fn pad_punctuation(chars: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() * 2);
    for &c in chars {
        if is_13a_punctuation(c) {
            out.extend([' ', c, ' ']);
        } else {
            out.push(c);
        }
    }
    out
}

/// Python's `re.sub` for a two-character pattern `(x)(y)`: scanning left to right, each pair
/// `(a, b)` that matches is replaced by `replace` and both characters are consumed.
fn substitute_pairs(
    chars: &[char],
    matches: impl Fn(char, char) -> bool,
    replace: impl Fn(char, char, &mut Vec<char>),
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() + chars.len() / 4);
    let mut i = 0;
    while let Some(&a) = chars.get(i) {
        match chars.get(i + 1) {
            Some(&b) if matches(a, b) => {
                replace(a, b, &mut out);
                i += 2;
            }
            _ => {
                out.push(a);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_periods_follow_python_re_sub() {
        // Values from sacrebleu 2.6.0's Tokenizer13a.
        assert_eq!(tokenize_13a("a.."), "a . .");
        assert_eq!(tokenize_13a("1.,a"), "1 . , a");
        assert_eq!(tokenize_13a("3.14 and 1,000"), "3.14 and 1,000");
        assert_eq!(tokenize_13a("A-1-2 x-y"), "A-1 - 2 x-y");
        assert_eq!(tokenize_13a("&quot;a&amp;b&lt;&gt;"), "\" a & b < >");
        assert_eq!(tokenize_13a("don't<skipped>"), "don't");
        assert_eq!(tokenize_13a(""), "");
    }
}
