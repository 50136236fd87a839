//! Word and character error rates (WER, CER).
//!
//! The WER of a corpus is `Σ_u lev(hyp_u, ref_u) / Σ_u |ref_u|`, the word-level Levenshtein
//! distance (substitutions + deletions + insertions) summed over utterances and divided by the
//! total number of reference words; errors are pooled, not averaged per utterance, so short
//! utterances do not dominate. The CER is the same over Unicode scalar values (spaces included).
//! Words are the whitespace-separated pieces of the text (Python's `str.split()`), as in NeMo's
//! `word_error_rate(hypotheses, references, use_cer)` (NeMo
//! `nemo/collections/asr/metrics/wer.py`).
//!
//! # Example
//!
//! ```
//! # fn main() -> nemo_asr::Result<()> {
//! use nemo_asr::metrics::{WordErrorRate, word_error_rate};
//!
//! // sat → sit, "the" deleted, "down" inserted: 3 errors over 6 reference words.
//! let wer = word_error_rate(&["the cat sit on mat down"], &["the cat sat on the mat"])?;
//! assert_eq!(wer, 0.5);
//!
//! let mut acc = WordErrorRate::new();
//! acc.update("hello world", "hello word");
//! assert_eq!(acc.wer(), Some(0.5));
//! # Ok(())
//! # }
//! ```

use crate::{Error, Result};

/// Levenshtein distance between two sequences: the fewest substitutions, insertions and deletions
/// turning `a` into `b` (`strsim::generic_levenshtein`). `O(|a|·|b|)` time,
/// `O(min(|a|, |b|))` memory.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    // strsim keeps one row as long as its second argument: give it the shorter sequence.
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let short: Vec<&T> = short.iter().collect();
    let long: Vec<&T> = long.iter().collect();
    strsim::generic_levenshtein(&long, &short)
}

/// Running word and character error counts over (hypothesis, reference) pairs (NeMo's `WER`
/// metric state: `scores` and `words`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WordErrorRate {
    word_errors: usize,
    words: usize,
    char_errors: usize,
    chars: usize,
    utterances: usize,
}

impl WordErrorRate {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one utterance: its word and character edit distances and reference lengths.
    pub fn update(&mut self, hypothesis: &str, reference: &str) {
        let h: Vec<&str> = hypothesis.split_whitespace().collect();
        let r: Vec<&str> = reference.split_whitespace().collect();
        self.word_errors += edit_distance(&h, &r);
        self.words += r.len();
        let h: Vec<char> = hypothesis.chars().collect();
        let r: Vec<char> = reference.chars().collect();
        self.char_errors += edit_distance(&h, &r);
        self.chars += r.len();
        self.utterances += 1;
    }

    /// Adds aligned lists of hypotheses and references.
    ///
    /// # Errors
    /// [`Error::Shape`] with op `word_error_rate` when the lists differ in length (nothing is
    /// added then).
    pub fn update_batch<H: AsRef<str>, R: AsRef<str>>(
        &mut self,
        hypotheses: &[H],
        references: &[R],
    ) -> Result<()> {
        check_aligned(hypotheses.len(), references.len())?;
        for (h, r) in hypotheses.iter().zip(references) {
            self.update(h.as_ref(), r.as_ref());
        }
        Ok(())
    }

    /// Adds the counts of another accumulator (e.g. from another worker).
    pub fn merge(&mut self, other: &WordErrorRate) {
        self.word_errors += other.word_errors;
        self.words += other.words;
        self.char_errors += other.char_errors;
        self.chars += other.chars;
        self.utterances += other.utterances;
    }

    /// Clears all counts.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Word error rate, `word_errors / words`; `None` when no reference word was seen.
    pub fn wer(&self) -> Option<f64> {
        (self.words > 0).then(|| self.word_errors as f64 / self.words as f64)
    }

    /// Character error rate, `char_errors / chars`; `None` when no reference character was seen.
    pub fn cer(&self) -> Option<f64> {
        (self.chars > 0).then(|| self.char_errors as f64 / self.chars as f64)
    }

    /// Summed word-level edit distance.
    pub fn word_errors(&self) -> usize {
        self.word_errors
    }

    /// Total reference words.
    pub fn words(&self) -> usize {
        self.words
    }

    /// Summed character-level edit distance.
    pub fn char_errors(&self) -> usize {
        self.char_errors
    }

    /// Total reference characters.
    pub fn chars(&self) -> usize {
        self.chars
    }

    /// Utterances added.
    pub fn utterances(&self) -> usize {
        self.utterances
    }
}

/// Corpus word error rate of aligned hypotheses and references (NeMo `word_error_rate`).
///
/// # Errors
/// [`Error::Shape`] with op `word_error_rate` when the lists differ in length or the references
/// hold no word (the rate is undefined; NeMo returns `inf` there).
pub fn word_error_rate<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[R],
) -> Result<f64> {
    let mut acc = WordErrorRate::new();
    acc.update_batch(hypotheses, references)?;
    acc.wer().ok_or_else(|| Error::Shape {
        op: "word_error_rate",
        msg: format!(
            "the {} references hold no word; the rate is undefined",
            references.len()
        ),
    })
}

/// Corpus character error rate (NeMo `word_error_rate(..., use_cer=True)`).
///
/// # Errors
/// [`Error::Shape`] with op `word_error_rate` when the lists differ in length or the references
/// are all empty.
pub fn char_error_rate<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[R],
) -> Result<f64> {
    let mut acc = WordErrorRate::new();
    acc.update_batch(hypotheses, references)?;
    acc.cer().ok_or_else(|| Error::Shape {
        op: "word_error_rate",
        msg: format!(
            "the {} references hold no character; the rate is undefined",
            references.len()
        ),
    })
}

fn check_aligned(hypotheses: usize, references: usize) -> Result<()> {
    if hypotheses == references {
        Ok(())
    } else {
        Err(Error::Shape {
            op: "word_error_rate",
            msg: format!(
                "{hypotheses} hypotheses but {references} references; the lists must align"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook full-matrix recurrence, as an independent check.
    fn full_matrix(a: &[u8], b: &[u8]) -> usize {
        let mut m = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in m.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in m[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let sub = m[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
                m[i][j] = sub.min(m[i - 1][j] + 1).min(m[i][j - 1] + 1);
            }
        }
        m[a.len()][b.len()]
    }

    #[test]
    fn distance_matches_full_matrix() {
        let words: [&[u8]; 7] = [b"", b"a", b"ab", b"kitten", b"sitting", b"flaw", b"lawn"];
        for a in words {
            for b in words {
                assert_eq!(edit_distance(a, b), full_matrix(a, b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn whitespace_runs_do_not_make_words() {
        let mut acc = WordErrorRate::new();
        acc.update("  a\tb \n", "a b");
        assert_eq!(acc.word_errors(), 0);
        assert_eq!(acc.words(), 2);
        assert_eq!(acc.utterances(), 1);
    }
}
