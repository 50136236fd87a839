//! Corpus BLEU as SacreBLEU 2.6.0 computes it (Papineni et al. 2002; Post 2018,
//! <https://aclanthology.org/W18-6319>), so that a number printed here can be quoted beside
//! SacreBLEU's: same tokenisation, statistics, smoothing, rounding and signature.
//!
//! For each segment, the hypothesis and its references are right-stripped, optionally
//! lowercased and tokenised ([`tokenize_13a`] by default); n-grams of orders 1..=4 are counted,
//! a hypothesis n-gram matching at most as often as it occurs in the reference that has most of
//! it ("clipped" counts), and the reference length is the one closest to the hypothesis length
//! (the shorter on a tie). Counts and lengths are summed over the corpus, and
//!
//! ```text
//! BLEU = BP · exp( Σₙ log pₙ / N ),   pₙ = 100 · correctₙ / totalₙ,
//! BP = 1 if hyp_len ≥ ref_len, else exp(1 − ref_len / hyp_len)  (0 for an empty hypothesis)
//! ```
//!
//! With the default `exp` smoothing (mteval-v13a's), the k-th order with no match counts as
//! `100 / (2ᵏ · totalₙ)`; an order with no n-gram at all ends the product with log 0 taken as
//! `-9999999999` (score 0), as SacreBLEU does, unless `effective_order` drops such orders (the
//! sentence-level default). A corpus with no matching n-gram scores 0.
//!
//! Deliberate limits: the `13a` and `none` tokenisations only (not `intl`, `zh`, `ja-mecab`,
//! `spm`); every segment must have every reference stream (SacreBLEU allows `None` holes); with
//! `add-k` smoothing [`BleuScore::counts`] are the counts before `k` is added (SacreBLEU
//! reports them after).
//!
//! ```
//! # fn main() -> nemo_nlp::Result<()> {
//! use nemo_nlp::metrics::Bleu;
//! let hyps = ["The cat sat on mat.", "Hello world!"];
//! let refs = [["The cat sat on the mat.", "Hello, world!"]];
//! let score = Bleu::default().corpus_score(&hyps, &refs)?;
//! assert_eq!(
//!     score.to_string(),
//!     "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 44.5 \
//!      100.0/71.4/40.0/33.3 (BP = 0.801 ratio = 0.818 hyp_len = 9 ref_len = 11)"
//! );
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::py_str::{python_rstrip, python_split};
use super::tokenizer_13a::tokenize_13a;
use crate::text_file::read_lines;
use crate::{Error, Result};

/// The SacreBLEU release whose numbers and signature this module reproduces; it is the
/// `version` of [`BleuSignature`].
pub const SACREBLEU_VERSION: &str = "2.6.0";

/// The highest n-gram order by default.
pub const MAX_NGRAM_ORDER: usize = 4;

/// `log 0` in SacreBLEU's `my_log`: a finite number, so that a zero precision gives a score of
/// exactly 0 instead of a NaN.
const LOG_ZERO: f64 = -9_999_999_999.0;

/// How orders without a matching n-gram are scored (Chen & Cherry 2014,
/// <https://aclanthology.org/W14-3346>).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Smoothing {
    /// No smoothing: a zero precision makes the score 0.
    None,
    /// Method 1: a zero count becomes the value (SacreBLEU's default 0.1).
    Floor(f64),
    /// Method 2: orders above 1 add the value (default 1) to the count and the total.
    AddK(f64),
    /// Method 3, mteval-v13a's: the k-th zero order counts as `1 / 2ᵏ` matches (the default).
    #[default]
    Exp,
}

impl Smoothing {
    /// `floor` with SacreBLEU's default value 0.1.
    pub fn floor() -> Self {
        Smoothing::Floor(0.1)
    }

    /// `add-k` with SacreBLEU's default value 1.
    pub fn add_k() -> Self {
        Smoothing::AddK(1.0)
    }

    /// The method as the signature spells it: `exp`, `none`, `floor[0.10]`, `add-k[1.00]`.
    pub fn signature(&self) -> String {
        match self {
            Smoothing::None => "none".into(),
            Smoothing::Exp => "exp".into(),
            Smoothing::Floor(v) => format!("floor[{v:.2}]"),
            Smoothing::AddK(v) => format!("add-k[{v:.2}]"),
        }
    }
}

/// The tokenisation applied before counting n-grams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BleuTokenizer {
    /// mteval-v13a's ([`tokenize_13a`]), SacreBLEU's default.
    #[default]
    #[serde(rename = "13a")]
    Mteval13a,
    /// None: the text is split at whitespace as it is.
    #[serde(rename = "none")]
    None,
}

impl BleuTokenizer {
    /// The name in the signature (`13a`, `none`).
    pub fn signature(&self) -> &'static str {
        match self {
            BleuTokenizer::Mteval13a => "13a",
            BleuTokenizer::None => "none",
        }
    }

    /// Tokenises one (stripped, possibly lowercased) segment.
    pub fn tokenize(&self, text: &str) -> String {
        match self {
            BleuTokenizer::Mteval13a => tokenize_13a(text),
            BleuTokenizer::None => text.to_owned(),
        }
    }
}

/// SacreBLEU's `BLEU` metric: its settings, with SacreBLEU's defaults.
#[doc(alias = "BLEU")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bleu {
    /// Lowercase hypotheses and references first (default false; `case:lc` in the signature).
    pub lowercase: bool,
    /// Tokenisation (default `13a`).
    pub tokenize: BleuTokenizer,
    /// Smoothing (default `exp`).
    pub smooth_method: Smoothing,
    /// Highest n-gram order (default 4).
    pub max_ngram_order: usize,
    /// Leave out orders with no n-gram at all instead of scoring 0 (default false; SacreBLEU's
    /// `sentence_bleu` sets it).
    pub effective_order: bool,
}

impl Default for Bleu {
    fn default() -> Self {
        Self {
            lowercase: false,
            tokenize: BleuTokenizer::Mteval13a,
            smooth_method: Smoothing::Exp,
            max_ngram_order: MAX_NGRAM_ORDER,
            effective_order: false,
        }
    }
}

/// The sufficient statistics of BLEU over some segments: summing two of them and then
/// [`Bleu::compute`] equals scoring the segments together, so a corpus can be scored in parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BleuStatistics {
    /// Hypothesis tokens.
    pub sys_len: usize,
    /// Reference tokens (the closest reference length of each segment).
    pub ref_len: usize,
    /// Clipped matching n-grams per order (index 0: unigrams).
    pub correct: Vec<usize>,
    /// Hypothesis n-grams per order.
    pub total: Vec<usize>,
    /// Segments counted.
    pub segments: usize,
}

impl BleuStatistics {
    /// Adds the counts of `other`.
    pub fn add(&mut self, other: &BleuStatistics) {
        self.sys_len += other.sys_len;
        self.ref_len += other.ref_len;
        for (field, theirs) in [
            (&mut self.correct, &other.correct),
            (&mut self.total, &other.total),
        ] {
            if field.len() < theirs.len() {
                field.resize(theirs.len(), 0);
            }
            field.iter_mut().zip(theirs).for_each(|(a, b)| *a += b);
        }
        self.segments += other.segments;
    }
}

/// A BLEU score with what it was computed from, as SacreBLEU's `BLEUScore`.
#[doc(alias = "BLEUScore")]
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScore {
    /// BLEU, 0..=100.
    pub score: f64,
    /// Clipped matching n-grams per order.
    pub counts: Vec<usize>,
    /// Hypothesis n-grams per order.
    pub totals: Vec<usize>,
    /// Precision per order in percent, after smoothing.
    pub precisions: Vec<f64>,
    /// The brevity penalty.
    pub bp: f64,
    /// `sys_len / ref_len` (0 without reference tokens).
    pub ratio: f64,
    /// Hypothesis tokens.
    pub sys_len: usize,
    /// Reference tokens.
    pub ref_len: usize,
    /// How it was computed.
    pub signature: BleuSignature,
}

impl BleuScore {
    /// The part SacreBLEU prints after the score:
    /// `64.3/42.9/33.3/20.0 (BP = 0.867 ratio = 0.875 hyp_len = 7 ref_len = 8)`.
    pub fn verbose(&self) -> String {
        let precisions: Vec<String> = self.precisions.iter().map(|p| format!("{p:.1}")).collect();
        format!(
            "{} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            precisions.join("/"),
            self.bp,
            self.ratio,
            self.sys_len,
            self.ref_len
        )
    }

    /// The line `sacrebleu -f text -w WIDTH` prints:
    /// `BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 44.5 100.0/...`.
    pub fn format(&self, width: usize) -> String {
        format!(
            "BLEU|{} = {:.width$} {}",
            self.signature,
            self.score,
            self.verbose()
        )
    }

    /// The JSON object `sacrebleu -w WIDTH` prints by default, byte for byte (one-space indent,
    /// the score rounded to `width` decimals).
    pub fn to_json(&self, width: usize) -> String {
        let rounded = format!("{:.width$}", self.score);
        let score = rounded
            .parse::<f64>()
            .map(python_float_repr)
            .unwrap_or(rounded);
        let s = &self.signature;
        let fields = [
            ("name", json_str("BLEU")),
            ("score", score),
            ("signature", json_str(&s.to_string())),
            ("verbose_score", json_str(&self.verbose())),
            ("nrefs", json_str(&s.nrefs.to_string())),
            ("case", json_str(s.case())),
            ("eff", json_str(s.eff())),
            ("tok", json_str(s.tokenize.signature())),
            ("smooth", json_str(&s.smooth_method.signature())),
            ("version", json_str(SACREBLEU_VERSION)),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!(" \"{k}\": {v}"))
            .collect();
        format!("{{\n{}\n}}", body.join(",\n"))
    }
}

/// The line the SacreBLEU command prints with `-f text` (its default width, 1 decimal).
impl fmt::Display for BleuScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(1))
    }
}

/// Python's `repr` of a float in the range a rounded BLEU score takes (`0.0`, `44.5`, `100.0`).
fn python_float_repr(x: f64) -> String {
    let s = format!("{x}");
    if s.contains(['.', 'e', 'E', 'n', 'i']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// A JSON string literal (`ensure_ascii=False`, as SacreBLEU writes).
fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// SacreBLEU's reproducibility signature, e.g.
/// `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`.
#[doc(alias = "BLEUSignature")]
#[derive(Debug, Clone, PartialEq)]
pub struct BleuSignature {
    /// Reference streams.
    pub nrefs: usize,
    /// Lowercased (`case:lc`) or not (`case:mixed`).
    pub lowercase: bool,
    /// Effective order (`eff:yes`).
    pub effective_order: bool,
    /// Tokenisation.
    pub tokenize: BleuTokenizer,
    /// Smoothing.
    pub smooth_method: Smoothing,
}

impl BleuSignature {
    fn case(&self) -> &'static str {
        if self.lowercase { "lc" } else { "mixed" }
    }

    fn eff(&self) -> &'static str {
        if self.effective_order { "yes" } else { "no" }
    }
}

impl fmt::Display for BleuSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nrefs:{}|case:{}|eff:{}|tok:{}|smooth:{}|version:{SACREBLEU_VERSION}",
            self.nrefs,
            self.case(),
            self.eff(),
            self.tokenize.signature(),
            self.smooth_method.signature()
        )
    }
}

impl Bleu {
    /// SacreBLEU's defaults (see [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The signature of scores against `nrefs` reference streams.
    pub fn signature(&self, nrefs: usize) -> BleuSignature {
        BleuSignature {
            nrefs,
            lowercase: self.lowercase,
            effective_order: self.effective_order,
            tokenize: self.tokenize,
            smooth_method: self.smooth_method,
        }
    }

    /// Corpus BLEU of `hypotheses` against reference streams: `references[r][i]` is the `r`-th
    /// reference of hypothesis `i`. Every stream must have one segment per hypothesis.
    pub fn corpus_score<H, R, S>(&self, hypotheses: &[H], references: &[S]) -> Result<BleuScore>
    where
        H: AsRef<str>,
        R: AsRef<str>,
        S: AsRef<[R]>,
    {
        let stats = self.statistics(hypotheses, references)?;
        self.compute(&stats, references.len())
    }

    /// BLEU of one hypothesis against its references (one per stream), with this metric's
    /// settings. SacreBLEU's [`sentence_bleu`] also turns on `effective_order`.
    pub fn sentence_score<R: AsRef<str>>(
        &self,
        hypothesis: &str,
        references: &[R],
    ) -> Result<BleuScore> {
        let streams: Vec<[&str; 1]> = references.iter().map(|r| [r.as_ref()]).collect();
        self.corpus_score(&[hypothesis], &streams)
    }

    /// Corpus BLEU of the hypothesis file against reference files, one segment per line (the
    /// SacreBLEU command `sacrebleu REF... -i HYP`). Files of different line counts are an
    /// error naming both.
    pub fn corpus_score_files(
        &self,
        hypotheses: impl AsRef<Path>,
        references: &[impl AsRef<Path>],
    ) -> Result<BleuScore> {
        let hyp_path = hypotheses.as_ref();
        let hyps = read_lines(hyp_path)?;
        let mut refs = Vec::with_capacity(references.len());
        for path in references {
            let lines = read_lines(path)?;
            if lines.len() != hyps.len() {
                return Err(Error::Alignment {
                    first: hyp_path.to_path_buf(),
                    second: path.as_ref().to_path_buf(),
                    msg: format!(
                        "{} hypothesis lines but {} reference lines",
                        hyps.len(),
                        lines.len()
                    ),
                });
            }
            refs.push(lines);
        }
        self.corpus_score(&hyps, &refs)
    }

    /// The summed statistics of `hypotheses` against the reference streams (see
    /// [`corpus_score`](Self::corpus_score)).
    pub fn statistics<H, R, S>(&self, hypotheses: &[H], references: &[S]) -> Result<BleuStatistics>
    where
        H: AsRef<str>,
        R: AsRef<str>,
        S: AsRef<[R]>,
    {
        self.check()?;
        if references.is_empty() {
            return Err(Error::Metric {
                metric: "BLEU",
                msg: "no reference stream given".into(),
            });
        }
        for (r, stream) in references.iter().enumerate() {
            let n = stream.as_ref().len();
            if n != hypotheses.len() {
                return Err(Error::Metric {
                    metric: "BLEU",
                    msg: format!(
                        "reference stream {r} has {n} segments, the hypotheses {}",
                        hypotheses.len()
                    ),
                });
            }
        }
        let mut stats = BleuStatistics {
            correct: vec![0; self.max_ngram_order],
            total: vec![0; self.max_ngram_order],
            ..BleuStatistics::default()
        };
        let mut refs = Vec::with_capacity(references.len());
        for (i, hyp) in hypotheses.iter().enumerate() {
            refs.clear();
            for stream in references {
                // Lengths were checked above.
                if let Some(r) = stream.as_ref().get(i) {
                    refs.push(r.as_ref());
                }
            }
            stats.add(&self.segment_statistics(hyp.as_ref(), &refs));
        }
        Ok(stats)
    }

    /// The statistics of one hypothesis against its references.
    pub fn segment_statistics(&self, hypothesis: &str, references: &[&str]) -> BleuStatistics {
        let n_max = self.max_ngram_order;
        let ref_texts: Vec<String> = references.iter().map(|r| self.preprocess(r)).collect();
        let ref_tokens: Vec<Vec<&str>> = ref_texts
            .iter()
            .map(|t| python_split(t).collect())
            .collect();
        let ref_lens: Vec<usize> = ref_tokens.iter().map(Vec::len).collect();
        // The most times each n-gram occurs in one reference.
        let mut ref_ngrams: HashMap<&[&str], usize> = HashMap::new();
        for tokens in &ref_tokens {
            for (ngram, count) in count_ngrams(tokens, n_max) {
                let best = ref_ngrams.entry(ngram).or_insert(0);
                *best = (*best).max(count);
            }
        }
        let text = self.preprocess(hypothesis);
        let tokens: Vec<&str> = python_split(&text).collect();
        let mut stats = BleuStatistics {
            sys_len: tokens.len(),
            ref_len: closest_ref_len(tokens.len(), &ref_lens),
            correct: vec![0; n_max],
            total: vec![0; n_max],
            segments: 1,
        };
        for (ngram, count) in count_ngrams(&tokens, n_max) {
            let order = ngram.len() - 1;
            if let Some(t) = stats.total.get_mut(order) {
                *t += count;
            }
            if let (Some(&r), Some(c)) = (ref_ngrams.get(ngram), stats.correct.get_mut(order)) {
                *c += count.min(r);
            }
        }
        stats
    }

    /// BLEU from summed statistics (SacreBLEU's `compute_bleu`), with `nrefs` for the
    /// signature.
    pub fn compute(&self, stats: &BleuStatistics, nrefs: usize) -> Result<BleuScore> {
        self.check()?;
        let n_max = self.max_ngram_order;
        let (sys_len, ref_len) = (stats.sys_len, stats.ref_len);
        let count = |v: &Vec<usize>, i: usize| v.get(i).copied().unwrap_or(0);
        let counts: Vec<usize> = (0..n_max).map(|i| count(&stats.correct, i)).collect();
        let totals: Vec<usize> = (0..n_max).map(|i| count(&stats.total, i)).collect();
        let bp = if sys_len < ref_len {
            if sys_len > 0 {
                (1.0 - ref_len as f64 / sys_len as f64).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        let ratio = if ref_len > 0 {
            sys_len as f64 / ref_len as f64
        } else {
            0.0
        };
        let mut precisions = vec![0.0; n_max];
        let mut score = 0.0;
        if counts.iter().any(|&c| c > 0) {
            let mut smooth_mteval = 1.0;
            let mut eff_order = n_max;
            for (n, (p, (&c, &t))) in precisions
                .iter_mut()
                .zip(counts.iter().zip(&totals))
                .enumerate()
            {
                let (mut correct, mut total) = (c as f64, t as f64);
                if let Smoothing::AddK(k) = self.smooth_method
                    && n > 0
                {
                    correct += k;
                    total += k;
                }
                if total == 0.0 {
                    break;
                }
                if self.effective_order {
                    eff_order = n + 1;
                }
                if correct == 0.0 {
                    match self.smooth_method {
                        Smoothing::Exp => {
                            smooth_mteval *= 2.0;
                            *p = 100.0 / (smooth_mteval * total);
                        }
                        Smoothing::Floor(v) => *p = 100.0 * v / total,
                        Smoothing::None | Smoothing::AddK(_) => {}
                    }
                } else {
                    *p = 100.0 * correct / total;
                }
            }
            let log_sum = precisions.iter().take(eff_order).fold(0.0, |acc, &p| {
                acc + if p == 0.0 { LOG_ZERO } else { p.ln() }
            });
            score = bp * (log_sum / eff_order as f64).exp();
        }
        Ok(BleuScore {
            score,
            counts,
            totals,
            precisions,
            bp,
            ratio,
            sys_len,
            ref_len,
            signature: self.signature(nrefs),
        })
    }

    /// Right-strips, lowercases (when asked) and tokenises one segment, as SacreBLEU's
    /// `_preprocess_segment`.
    pub fn preprocess(&self, segment: &str) -> String {
        if self.lowercase {
            self.tokenize
                .tokenize(python_rstrip(&segment.to_lowercase()))
        } else {
            self.tokenize.tokenize(python_rstrip(segment))
        }
    }

    fn check(&self) -> Result<()> {
        if self.max_ngram_order == 0 {
            return Err(Error::Config {
                key: "max_ngram_order".into(),
                msg: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Corpus BLEU with SacreBLEU's defaults (`sacrebleu.corpus_bleu`).
pub fn corpus_bleu<H, R, S>(hypotheses: &[H], references: &[S]) -> Result<BleuScore>
where
    H: AsRef<str>,
    R: AsRef<str>,
    S: AsRef<[R]>,
{
    Bleu::default().corpus_score(hypotheses, references)
}

/// Sentence BLEU as `sacrebleu.sentence_bleu`: the defaults with `effective_order` on.
pub fn sentence_bleu<R: AsRef<str>>(hypothesis: &str, references: &[R]) -> Result<BleuScore> {
    Bleu {
        effective_order: true,
        ..Bleu::default()
    }
    .sentence_score(hypothesis, references)
}

/// Counts of every n-gram of orders `1..=max_order` in `tokens`.
fn count_ngrams<'a, 't>(tokens: &'a [&'t str], max_order: usize) -> HashMap<&'a [&'t str], usize> {
    let mut counts = HashMap::new();
    for n in 1..=max_order {
        for ngram in tokens.windows(n) {
            *counts.entry(ngram).or_insert(0) += 1;
        }
    }
    counts
}

/// The reference length closest to `hyp_len`, the shorter on a tie (SacreBLEU's
/// `_get_closest_ref_len`); 0 without references.
fn closest_ref_len(hyp_len: usize, ref_lens: &[usize]) -> usize {
    ref_lens
        .iter()
        .copied()
        .min_by_key(|&r| (r.abs_diff(hyp_len), r))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_reference_prefers_the_shorter_on_ties() {
        assert_eq!(closest_ref_len(5, &[7, 3, 6]), 6);
        assert_eq!(closest_ref_len(5, &[7, 3]), 3);
        assert_eq!(closest_ref_len(5, &[]), 0);
    }

    #[test]
    fn perfect_match_is_100_and_empty_hypothesis_is_0() -> Result<()> {
        let refs = [["a b c d e f"]];
        let s = Bleu::new().corpus_score(&["a b c d e f"], &refs)?;
        assert!((s.score - 100.0).abs() < 1e-9, "{s}");
        let s = Bleu::new().corpus_score(&[""], &refs)?;
        assert_eq!((s.score, s.bp), (0.0, 0.0));
        Ok(())
    }

    #[test]
    fn statistics_add_up_across_parts() -> Result<()> {
        let bleu = Bleu::new();
        let hyps = ["the cat sat", "on the mat today", "hello"];
        let refs = ["the cat sat down", "on the mat", "hello there"];
        let whole = bleu.statistics(&hyps, &[refs])?;
        let mut parts = bleu.statistics(&hyps[..1], &[&refs[..1]])?;
        parts.add(&bleu.statistics(&hyps[1..], &[&refs[1..]])?);
        assert_eq!(whole, parts);
        Ok(())
    }

    #[test]
    fn mismatched_streams_are_errors() {
        let e = Bleu::new().corpus_score(&["a", "b"], &[["a"]]);
        assert!(
            matches!(&e, Err(Error::Metric { msg, .. }) if msg.contains("stream 0 has 1 segments, the hypotheses 2")),
            "{e:?}"
        );
        let none: [[&str; 1]; 0] = [];
        assert!(Bleu::new().corpus_score(&["a"], &none).is_err());
    }

    #[test]
    fn signatures_spell_settings_as_sacrebleu() {
        let bleu = Bleu {
            lowercase: true,
            tokenize: BleuTokenizer::None,
            smooth_method: Smoothing::floor(),
            effective_order: true,
            ..Bleu::default()
        };
        assert_eq!(
            bleu.signature(2).to_string(),
            "nrefs:2|case:lc|eff:yes|tok:none|smooth:floor[0.10]|version:2.6.0"
        );
        assert_eq!(Smoothing::add_k().signature(), "add-k[1.00]");
    }

    #[test]
    fn python_float_repr_keeps_a_decimal() {
        assert_eq!(python_float_repr(0.0), "0.0");
        assert_eq!(python_float_repr(100.0), "100.0");
        assert_eq!(python_float_repr(44.5), "44.5");
    }
}
