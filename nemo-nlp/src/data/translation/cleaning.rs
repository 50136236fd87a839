//! NeMo's cleaning of parallel training text (`clean_src_and_target` of
//! `TranslationDataset`, NeMo v0.11): a sentence pair is dropped when
//!
//! 1. either side is longer than `max_tokens` (128), or
//! 2. either side is shorter than `min_tokens` (3), or
//! 3. the source is the target (an untranslated copy), or
//! 4. the sides' lengths differ by more than `max_tokens_diff` (25), or
//! 5. one side is more than `max_tokens_ratio` (2.5) times as long as the other.
//!
//! Lengths are NeMo's: token ids *with* `<BOS>` and `<EOS>`, so `min_tokens = 3` keeps a
//! one-token sentence; the ratio is taken without them, each length at least 1
//! (`max(len − 2, 1)`). A dropped pair is counted under the first rule it breaks, in this
//! order.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The limits of the cleaning rules, with NeMo's defaults (the keyword arguments of NeMo's
/// `clean_src_and_target`).
#[doc(alias = "clean_src_and_target")]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleaningRules {
    /// Longest side kept, tokens with `<BOS>` and `<EOS>` (default 128).
    pub max_tokens: usize,
    /// Shortest side kept, tokens with `<BOS>` and `<EOS>` (default 3).
    pub min_tokens: usize,
    /// Largest difference of the sides' lengths kept (default 25).
    pub max_tokens_diff: usize,
    /// Largest ratio of the sides' lengths (without `<BOS>`/`<EOS>`) kept (default 2.5).
    pub max_tokens_ratio: f64,
}

impl Default for CleaningRules {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            min_tokens: 3,
            max_tokens_diff: 25,
            max_tokens_ratio: 2.5,
        }
    }
}

/// Why a pair was dropped: the first rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A side is longer than `max_tokens`.
    TooLong,
    /// A side is shorter than `min_tokens`.
    TooShort,
    /// The source is the target.
    SameAsSource,
    /// The lengths differ by more than `max_tokens_diff`.
    LengthDifference,
    /// One side is more than `max_tokens_ratio` times as long as the other.
    LengthRatio,
}

impl CleaningRules {
    /// The rule the pair breaks, if any. `src_len` and `tgt_len` count `<BOS>` and `<EOS>`;
    /// `same` says whether source and target are the same sentence.
    pub fn check(&self, src_len: usize, tgt_len: usize, same: bool) -> Option<DropReason> {
        if src_len > self.max_tokens || tgt_len > self.max_tokens {
            return Some(DropReason::TooLong);
        }
        if src_len < self.min_tokens || tgt_len < self.min_tokens {
            return Some(DropReason::TooShort);
        }
        if same {
            return Some(DropReason::SameAsSource);
        }
        if src_len.abs_diff(tgt_len) > self.max_tokens_diff {
            return Some(DropReason::LengthDifference);
        }
        let ratio =
            src_len.saturating_sub(2).max(1) as f64 / tgt_len.saturating_sub(2).max(1) as f64;
        if ratio > self.max_tokens_ratio || ratio < 1.0 / self.max_tokens_ratio {
            return Some(DropReason::LengthRatio);
        }
        None
    }

    /// Checks the limits: at least one token, a ratio of at least 1.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_tokens < self.min_tokens {
            return Err((
                "max_tokens",
                format!(
                    "{} is below min_tokens {}",
                    self.max_tokens, self.min_tokens
                ),
            ));
        }
        if !(self.max_tokens_ratio.is_finite() && self.max_tokens_ratio >= 1.0) {
            return Err((
                "max_tokens_ratio",
                format!(
                    "must be a finite number >= 1, got {}",
                    self.max_tokens_ratio
                ),
            ));
        }
        Ok(())
    }
}

/// How many sentence pairs were read, kept, and dropped by each rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleaningSummary {
    /// Pairs read.
    pub pairs: usize,
    /// Pairs kept.
    pub kept: usize,
    /// Dropped: a side over `max_tokens`.
    pub too_long: usize,
    /// Dropped: a side under `min_tokens`.
    pub too_short: usize,
    /// Dropped: source equals target.
    pub same_as_source: usize,
    /// Dropped: lengths differ by more than `max_tokens_diff`.
    pub length_difference: usize,
    /// Dropped: length ratio over `max_tokens_ratio`.
    pub length_ratio: usize,
}

impl CleaningSummary {
    /// Counts one pair, kept (`None`) or dropped for `reason`.
    pub fn count(&mut self, reason: Option<DropReason>) {
        self.pairs += 1;
        match reason {
            None => self.kept += 1,
            Some(DropReason::TooLong) => self.too_long += 1,
            Some(DropReason::TooShort) => self.too_short += 1,
            Some(DropReason::SameAsSource) => self.same_as_source += 1,
            Some(DropReason::LengthDifference) => self.length_difference += 1,
            Some(DropReason::LengthRatio) => self.length_ratio += 1,
        }
    }

    /// Pairs dropped.
    pub fn dropped(&self) -> usize {
        self.pairs - self.kept
    }
}

impl fmt::Display for CleaningSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} sentence pairs kept; dropped {} ({} too long, {} too short, {} source = target, {} length difference, {} length ratio)",
            self.kept,
            self.pairs,
            self.dropped(),
            self.too_long,
            self.too_short,
            self.same_as_source,
            self.length_difference,
            self.length_ratio
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> CleaningRules {
        CleaningRules::default()
    }

    #[test]
    fn defaults_are_nemos() {
        assert_eq!(
            rules(),
            CleaningRules {
                max_tokens: 128,
                min_tokens: 3,
                max_tokens_diff: 25,
                max_tokens_ratio: 2.5
            }
        );
    }

    #[test]
    fn a_side_over_max_tokens_is_dropped() {
        assert_eq!(rules().check(128, 110, false), None);
        assert_eq!(rules().check(129, 110, false), Some(DropReason::TooLong));
        assert_eq!(rules().check(110, 129, false), Some(DropReason::TooLong));
    }

    #[test]
    fn a_side_under_min_tokens_is_dropped() {
        // `<BOS> x <EOS>` is 3 tokens: kept; `<BOS> <EOS>` (an empty line) is not.
        assert_eq!(rules().check(3, 3, false), None);
        assert_eq!(rules().check(2, 3, false), Some(DropReason::TooShort));
        assert_eq!(rules().check(3, 2, false), Some(DropReason::TooShort));
    }

    #[test]
    fn a_copy_of_the_source_is_dropped() {
        assert_eq!(rules().check(10, 10, true), Some(DropReason::SameAsSource));
    }

    #[test]
    fn a_length_difference_over_max_tokens_diff_is_dropped() {
        // 40 vs 65: a difference of 25 is kept (ratio 63/38 = 1.66), 26 is not.
        assert_eq!(rules().check(40, 65, false), None);
        assert_eq!(
            rules().check(40, 66, false),
            Some(DropReason::LengthDifference)
        );
        assert_eq!(
            rules().check(66, 40, false),
            Some(DropReason::LengthDifference)
        );
    }

    #[test]
    fn a_length_ratio_over_max_tokens_ratio_is_dropped() {
        // Without <BOS>/<EOS>: 10 vs 4 is 2.5 (kept), 11 vs 4 is 2.75 (dropped), both ways.
        assert_eq!(rules().check(12, 6, false), None);
        assert_eq!(rules().check(6, 12, false), None);
        assert_eq!(rules().check(13, 6, false), Some(DropReason::LengthRatio));
        assert_eq!(rules().check(6, 13, false), Some(DropReason::LengthRatio));
        // One-token sides count as 1: 3 real tokens vs 1 is a ratio of 3.
        assert_eq!(rules().check(5, 3, false), Some(DropReason::LengthRatio));
    }

    #[test]
    fn the_first_broken_rule_is_counted() {
        let mut s = CleaningSummary::default();
        for (src, tgt, same) in [
            (200, 2, true),
            (2, 2, true),
            (10, 10, true),
            (10, 40, false),
            (4, 10, false),
            (8, 9, false),
        ] {
            s.count(rules().check(src, tgt, same));
        }
        assert_eq!(
            s,
            CleaningSummary {
                pairs: 6,
                kept: 1,
                too_long: 1,
                too_short: 1,
                same_as_source: 1,
                length_difference: 1,
                length_ratio: 1
            }
        );
        assert_eq!(
            s.to_string(),
            "1 of 6 sentence pairs kept; dropped 5 (1 too long, 1 too short, 1 source = target, 1 length difference, 1 length ratio)"
        );
    }

    #[test]
    fn limits_are_validated() {
        let bad = CleaningRules {
            max_tokens_ratio: 0.5,
            ..rules()
        };
        assert_eq!(bad.validate().map_err(|e| e.0), Err("max_tokens_ratio"));
        let bad = CleaningRules {
            max_tokens: 2,
            ..rules()
        };
        assert_eq!(bad.validate().map_err(|e| e.0), Err("max_tokens"));
    }
}
