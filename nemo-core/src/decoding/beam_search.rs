//! Greedy and beam search over a [`StepDecoder`]; the [module docs of `decoding`](crate::decoding)
//! describe both searches.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::nemo_beam::{Ends, NemoBeam};
use crate::{Error, Result};

/// One decoder step's outputs for `N` rows.
#[derive(Debug, Clone)]
pub struct StepOutput<S> {
    /// `(N, V)` log-probabilities of the next token, any float dtype.
    pub log_probs: Tensor,
    /// `(N, T)` attention weights over the source, if the decoder attends (the coverage term
    /// needs them).
    pub attention: Option<Tensor>,
    /// The state after the step.
    pub state: S,
}

/// A decoder the searches can drive one token at a time.
pub trait StepDecoder {
    /// What the decoder carries from one step to the next for a set of rows (hypotheses): its
    /// recurrent state or key/value cache, and the source each row attends to.
    type State;

    /// One step for every row of `state`: `prev` holds each row's last token.
    fn step(&self, prev: &[u32], state: &Self::State) -> Result<StepOutput<Self::State>>;

    /// The state of the rows `rows` of `state`, in that order (beams kept, reordered, repeated).
    fn select(&self, state: &Self::State, rows: &[u32]) -> Result<Self::State>;
}

/// How a hypothesis's log-probability is normalized by its length `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthPenalty {
    /// GNMT's `((5 + len) / 6)^α` (Wu et al., 2016), NeMo's ASR beam search.
    #[default]
    Gnmt,
    /// `len^α`, NeMo 0.x's translation beam search.
    Power,
}

impl LengthPenalty {
    /// The divisor of a hypothesis of `len` tokens.
    pub fn value(self, len: usize, alpha: f64) -> f64 {
        match self {
            LengthPenalty::Gnmt => ((5.0 + len as f64) / 6.0).powf(alpha),
            LengthPenalty::Power => (len.max(1) as f64).powf(alpha),
        }
    }
}

/// What a beam search does with a hypothesis that has ended (see the
/// [module docs](crate::decoding#what-happens-to-an-ended-hypothesis)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishedHypotheses {
    /// It leaves the beam with its normalized score `log p / lp(len)` (`len` counting EOS); the
    /// best extensions that do not end fill the beam; an item stops once no live hypothesis can
    /// beat its best ended one. Its answer is the best ended hypothesis (default).
    #[default]
    Retire,
    /// NeMo 0.x's `BeamSearchSequenceGenerator`, step for step:
    ///
    /// * the first step takes the `beam_size` best tokens after BOS, all live with
    ///   `len = 3` — even EOS, which then goes on generating (NeMo marks hypotheses ended only
    ///   from the second step on);
    /// * every later step, a live hypothesis offers its `beam_size` best tokens at
    ///   `score + log p`, an ended one itself (PAD, no cost); all rank by
    ///   `candidate / lp(parent's len)` (ties: the earlier hypothesis, then its better token) and
    ///   the best `beam_size` form the new beam — a hypothesis ends at EOS, or at `pad_id`;
    /// * the kept score is the ranking score multiplied by `lp` of the length of the hypothesis
    ///   that held the same beam slot before (NeMo's code multiplies by the old slot's length,
    ///   not the parent's: with `α > 0` and hypotheses of different lengths the scores drift;
    ///   reproduced, since it decides ties between lengths);
    /// * the search ends when every hypothesis of *every* item has ended, or after `limit`
    ///   steps; an item whose hypotheses have all ended is re-ranked at every further step of
    ///   the batch, as NeMo's batch does (which moves scores only through the quirk above);
    /// * the answer is the argmax of `score / lp(len)` over the beam, EOS and PAD removed
    ///   from its tokens (NeMo's text conversion drops them).
    ///
    /// Not reproduced: NeMo also scores an ended hypothesis's other `beam_size − 1`
    /// continuations at `score + 10001 · log p` (its `−10000` mask multiplied in), which never
    /// outrank a real candidate (`log p ≤ ln ½` there); and NeMo attends uniformly over the past
    /// in a step whose input is PAD, which only a hypothesis whose first token is PAD sees.
    /// The coverage term does not apply.
    Nemo,
}

/// The search settings (a model's `decoding:` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeamSearchConfig {
    /// Hypotheses kept per item; 1 (the default) is greedy search.
    pub beam_size: usize,
    /// `α` of the length penalty; 0 (the default) disables it.
    pub length_penalty: f64,
    /// Which length penalty; default GNMT's.
    pub length_penalty_kind: LengthPenalty,
    /// The most tokens a hypothesis may have, EOS excluded (default 256).
    pub max_len: usize,
    /// Tokens allowed per source position (fairseq's `max_len_a`; default 1): an item of source
    /// length `T` may have `min(max_len, floor(max_len_a × T) + max_len_b)` tokens
    /// ([`limit`](Self::limit)). NeMo 0.x's `max_delta_length` is `max_len_a: 1`,
    /// `max_len_b: delta`.
    pub max_len_a: f64,
    /// Tokens allowed on top of `max_len_a` × source length (default 0).
    pub max_len_b: usize,
    /// `β` of the coverage term (beam search only); 0 (the default) disables it.
    pub coverage_penalty: f64,
    /// `τ`: the summed attention above which a source position counts as covered (default 0.5).
    pub coverage_threshold: f64,
    /// What happens to a hypothesis that has ended: `retire` (default) or `nemo`.
    pub finished_hypotheses: FinishedHypotheses,
    /// A token that ends a hypothesis as EOS does, with `finished_hypotheses: nemo` (NeMo's
    /// `<PAD>`, usually set by the model from its tokenizer; default none).
    pub pad_id: Option<u32>,
}

impl Default for BeamSearchConfig {
    fn default() -> Self {
        BeamSearchConfig {
            beam_size: 1,
            length_penalty: 0.0,
            length_penalty_kind: LengthPenalty::default(),
            max_len: 256,
            max_len_a: 1.0,
            max_len_b: 0,
            coverage_penalty: 0.0,
            coverage_threshold: 0.5,
            finished_hypotheses: FinishedHypotheses::default(),
            pad_id: None,
        }
    }
}

impl BeamSearchConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key under `decoding`.
    pub fn validate(&self) -> Result<()> {
        if self.beam_size == 0 || self.max_len == 0 {
            return Err(Error::Config {
                key: "decoding".into(),
                msg: format!(
                    "beam_size {} and max_len {} must be positive",
                    self.beam_size, self.max_len
                ),
            });
        }
        if !self.max_len_a.is_finite() || self.max_len_a < 0.0 {
            return Err(Error::Config {
                key: "decoding.max_len_a".into(),
                msg: format!("{} is not a non-negative number", self.max_len_a),
            });
        }
        for (key, v) in [
            ("decoding.length_penalty", self.length_penalty),
            ("decoding.coverage_penalty", self.coverage_penalty),
            ("decoding.coverage_threshold", self.coverage_threshold),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Config {
                    key: key.into(),
                    msg: format!("{v} is not a non-negative number"),
                });
            }
        }
        if self.finished_hypotheses == FinishedHypotheses::Nemo && self.coverage_penalty > 0.0 {
            return Err(Error::Config {
                key: "decoding.coverage_penalty".into(),
                msg: format!(
                    "{} needs finished_hypotheses: retire (NeMo's search has no coverage term)",
                    self.coverage_penalty
                ),
            });
        }
        Ok(())
    }

    /// The most tokens a hypothesis over a source of `source_len` positions may have (at least
    /// 1).
    pub fn limit(&self, source_len: usize) -> usize {
        let by_source = (self.max_len_a * source_len as f64).floor() as usize + self.max_len_b;
        by_source.min(self.max_len).max(1)
    }

    pub(super) fn penalty(&self, len: usize) -> f64 {
        self.length_penalty_kind.value(len, self.length_penalty)
    }
}

/// The index of the first maximum of `row`.
fn argmax(row: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in row.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// The `k` largest entries of `row` as `(index, value)`, best first; equal values by lower
/// index (the order a full sort by `(value desc, index asc)` gives, without sorting the row).
pub(super) fn top_k(row: &[f32], k: usize) -> Vec<(usize, f32)> {
    let worse = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mut top: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    for (i, &v) in row.iter().enumerate() {
        let cand = (i, v);
        if top.len() == k
            && top
                .last()
                .is_none_or(|last| worse(&cand, last) != std::cmp::Ordering::Less)
        {
            continue;
        }
        let at = top.partition_point(|t| worse(t, &cand) == std::cmp::Ordering::Less);
        top.insert(at, cand);
        top.truncate(k);
    }
    top
}

fn rows_f32(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.to_dtype(DType::F32)?.to_vec2()?)
}

/// Greedy search over a batch whose `B` rows are `state`'s: the argmax token at each step until
/// `eos` or the item's limit (`limits[b]` tokens; 0 gives an empty output). Returns each item's
/// tokens without BOS and EOS.
///
/// # Errors
/// A `limits` length other than the batch's; the decoder's errors.
pub fn greedy_search<D: StepDecoder>(
    decoder: &D,
    state: D::State,
    bos: u32,
    eos: u32,
    limits: &[usize],
) -> Result<Vec<Vec<u32>>> {
    let b = limits.len();
    let mut state = state;
    let mut prev = vec![bos; b];
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut done: Vec<bool> = limits.iter().map(|&l| l == 0).collect();
    let steps = limits.iter().copied().max().unwrap_or(0);
    for _ in 0..steps {
        if done.iter().all(|&d| d) {
            break;
        }
        let step = decoder.step(&prev, &state)?;
        state = step.state;
        let rows = rows_f32(&step.log_probs)?;
        if rows.len() != b {
            return Err(Error::Shape {
                op: "greedy_search",
                msg: format!("the decoder gave {} rows for {b} items", rows.len()),
            });
        }
        for (i, row) in rows.iter().enumerate() {
            let tok = argmax(row).unwrap_or(0) as u32;
            let limit = limits.get(i).copied().unwrap_or(0);
            if let (Some(p), Some(d), Some(o)) = (prev.get_mut(i), done.get_mut(i), out.get_mut(i))
            {
                *p = tok;
                if !*d {
                    if tok == eos {
                        *d = true;
                    } else {
                        o.push(tok);
                        *d = o.len() >= limit;
                    }
                }
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct Hyp {
    tokens: Vec<u32>,
    logp: f64,
    /// `(T)` attention summed over the hypothesis's steps (empty without a coverage term).
    attention: Vec<f32>,
}

/// The search of one item with [`FinishedHypotheses::Retire`].
#[derive(Debug)]
struct RetireBeam {
    live: Vec<Hyp>,
    finished: Vec<(f64, Vec<u32>)>,
    limit: usize,
    done: bool,
}

impl RetireBeam {
    fn new(limit: usize) -> Self {
        RetireBeam {
            live: vec![Hyp {
                tokens: Vec::new(),
                logp: 0.0,
                attention: Vec::new(),
            }],
            finished: Vec::new(),
            limit,
            done: false,
        }
    }

    /// One step: `step.rows` are the log-probabilities after each live hypothesis (and
    /// `step.weights` their attention, with a coverage term); the rows to keep for the next step
    /// are appended to `kept`.
    fn advance(
        &mut self,
        step: &ItemStep,
        kept: &mut Vec<u32>,
        config: &BeamSearchConfig,
        eos: u32,
    ) {
        let ItemStep {
            step_no,
            rows,
            weights,
            first_row,
        } = *step;
        let k = config.beam_size;
        let (beta, tau) = (config.coverage_penalty, config.coverage_threshold);
        let n = self.live.len();
        // Each beam's attention summed through this step, when the coverage term needs it.
        let attention: Vec<Vec<f32>> = if beta > 0.0 {
            self.live
                .iter()
                .zip(weights)
                .map(|(h, w)| accumulate(&h.attention, w))
                .collect()
        } else {
            vec![Vec::new(); n]
        };
        let bonus: Vec<f64> = attention
            .iter()
            .map(|a| beta * coverage(a, tau) as f64)
            .collect();
        // Candidates (rank, log p, beam, token), best first; ties by beam then token.
        let mut cands: Vec<(f64, f64, usize, u32)> = Vec::new();
        for (bi, (h, r)) in self.live.iter().zip(rows).enumerate() {
            let extra = bonus.get(bi).copied().unwrap_or(0.0);
            for (tok, lp) in top_k(r, k) {
                let logp = h.logp + f64::from(lp);
                cands.push((logp + extra, logp, bi, tok as u32));
            }
        }
        cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)).then(a.3.cmp(&b.3)));
        // The best candidates in order: EOS ends a hypothesis, others fill the next beam.
        let mut next = Vec::with_capacity(k);
        let mut next_rows: Vec<u32> = Vec::with_capacity(k);
        for (_, logp, bi, tok) in cands {
            if next.len() >= k {
                break;
            }
            let Some(h) = self.live.get(bi) else { continue };
            let extra = bonus.get(bi).copied().unwrap_or(0.0);
            if tok == eos {
                let norm = logp / config.penalty(h.tokens.len() + 1) + extra;
                self.finished.push((norm, h.tokens.clone()));
            } else {
                let mut tokens = h.tokens.clone();
                tokens.push(tok);
                next.push(Hyp {
                    tokens,
                    logp,
                    attention: attention.get(bi).cloned().unwrap_or_default(),
                });
                next_rows.push((first_row + bi) as u32);
            }
        }
        self.live = next;
        let frames = attention.first().map_or(0, Vec::len);
        self.done = self.live.is_empty() || step_no + 1 >= self.limit || {
            // No live hypothesis can beat the best ended one: log-probabilities only fall,
            // dividing a negative score by the largest reachable penalty bounds it from above,
            // and coverage is at most the source length.
            match self.finished.iter().map(|f| f.0).reduce(f64::max) {
                Some(best_done) => {
                    let bound = config.penalty(self.limit + 1);
                    let best_live = self
                        .live
                        .iter()
                        .map(|h| h.logp / bound + beta * frames as f64)
                        .fold(f64::NEG_INFINITY, f64::max);
                    best_live <= best_done
                }
                None => false,
            }
        };
        if self.done {
            for h in &self.live {
                if h.tokens.len() >= self.limit {
                    let norm = h.logp / config.penalty(h.tokens.len())
                        + beta * coverage(&h.attention, tau) as f64;
                    self.finished.push((norm, h.tokens.clone()));
                }
            }
        } else {
            kept.extend(next_rows);
        }
    }

    fn best(&self) -> Vec<u32> {
        let mut best: Option<&(f64, Vec<u32>)> = None;
        for f in &self.finished {
            if best.is_none_or(|b| f.0 > b.0) {
                best = Some(f);
            }
        }
        match best {
            Some((_, tokens)) => tokens.clone(),
            None => self
                .live
                .first()
                .map(|h| h.tokens.clone())
                .unwrap_or_default(),
        }
    }
}

/// One step's outputs for the live hypotheses of one item.
#[derive(Debug, Clone, Copy)]
pub(super) struct ItemStep<'a> {
    /// The step's number, from 0.
    pub(super) step_no: usize,
    /// `(n, V)` log-probabilities after each of the item's `n` live hypotheses, in order.
    pub(super) rows: &'a [Vec<f32>],
    /// `(n, T)` attention weights (only with a coverage term; else empty).
    pub(super) weights: &'a [Vec<f32>],
    /// The row of the step that `rows[0]` is.
    pub(super) first_row: usize,
}

/// The search of one item, by [`FinishedHypotheses`].
#[derive(Debug)]
enum ItemSearch {
    Retire(RetireBeam),
    Nemo(NemoBeam),
}

impl ItemSearch {
    fn done(&self) -> bool {
        match self {
            ItemSearch::Retire(it) => it.done,
            ItemSearch::Nemo(it) => it.done(),
        }
    }

    /// The last token of each hypothesis the next step runs, in row order.
    fn prev_tokens(&self, bos: u32) -> Vec<u32> {
        let last = |t: &[u32]| t.last().copied().unwrap_or(bos);
        match self {
            ItemSearch::Retire(it) if !it.done => it.live.iter().map(|h| last(&h.tokens)).collect(),
            ItemSearch::Retire(_) => Vec::new(),
            ItemSearch::Nemo(it) => it.live_tokens().map(last).collect(),
        }
    }
}

/// Frames of `attention` above `threshold`, the coverage of a hypothesis.
fn coverage(attention: &[f32], threshold: f64) -> usize {
    attention
        .iter()
        .filter(|&&a| f64::from(a) > threshold)
        .count()
}

/// `sum + step`, element by element.
fn accumulate(sum: &[f32], step: &[f32]) -> Vec<f32> {
    if sum.is_empty() {
        return step.to_vec();
    }
    sum.iter().zip(step).map(|(a, b)| a + b).collect()
}

/// Beam search over a batch whose `B` rows are `state`'s (one row per item; the search
/// duplicates rows as beams grow). `limits[b]` bounds item `b`'s length (at least 1 is used);
/// `config.max_len` bounds every item. Returns each item's best hypothesis without BOS and EOS.
///
/// # Errors
/// A bad `config`; the decoder's errors; a coverage term with a decoder that reports no
/// attention.
pub fn beam_search<D: StepDecoder>(
    decoder: &D,
    state: D::State,
    bos: u32,
    eos: u32,
    limits: &[usize],
    config: &BeamSearchConfig,
) -> Result<Vec<Vec<u32>>> {
    config.validate()?;
    let ends = Ends {
        eos,
        pad: config.pad_id,
    };
    let mut items: Vec<ItemSearch> = limits
        .iter()
        .map(|&l| {
            let limit = l.clamp(1, config.max_len);
            match config.finished_hypotheses {
                FinishedHypotheses::Retire => ItemSearch::Retire(RetireBeam::new(limit)),
                FinishedHypotheses::Nemo => ItemSearch::Nemo(NemoBeam::new(limit)),
            }
        })
        .collect();
    let mut state = state;
    let mut step_no = 0usize;
    loop {
        // The rows of this step: the live hypotheses of every unfinished item, in item order.
        let per_item: Vec<Vec<u32>> = items.iter().map(|it| it.prev_tokens(bos)).collect();
        let prev: Vec<u32> = per_item.iter().flatten().copied().collect();
        if prev.is_empty() {
            break;
        }
        let step = decoder.step(&prev, &state)?;
        let rows = rows_f32(&step.log_probs)?;
        let weights = if config.coverage_penalty > 0.0 {
            let att = step.attention.as_ref().ok_or_else(|| Error::Config {
                key: "decoding.coverage_penalty".into(),
                msg: "the coverage term needs a decoder that reports its attention".into(),
            })?;
            rows_f32(att)?
        } else {
            Vec::new()
        };
        if rows.len() != prev.len() {
            return Err(Error::Shape {
                op: "beam_search",
                msg: format!(
                    "the decoder gave {} rows for {} hypotheses",
                    rows.len(),
                    prev.len()
                ),
            });
        }
        let mut kept_rows: Vec<u32> = Vec::new();
        let mut row = 0usize;
        for (item, prev) in items.iter_mut().zip(&per_item) {
            if item.done() {
                continue;
            }
            let n = prev.len();
            let item_step = ItemStep {
                step_no,
                rows: rows.get(row..row + n).unwrap_or(&[]),
                weights: weights.get(row..row + n).unwrap_or(&[]),
                first_row: row,
            };
            match item {
                ItemSearch::Retire(it) => it.advance(&item_step, &mut kept_rows, config, eos),
                ItemSearch::Nemo(it) => it.advance(&item_step, &mut kept_rows, config, ends),
            }
            row += n;
        }
        if kept_rows.is_empty() {
            break;
        }
        state = decoder.select(&step.state, &kept_rows)?;
        step_no += 1;
    }
    Ok(items
        .iter()
        .map(|it| match it {
            ItemSearch::Retire(it) => it.best(),
            ItemSearch::Nemo(it) => it.best(config, ends),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_penalties() {
        let g = LengthPenalty::Gnmt;
        assert_eq!(g.value(7, 0.0), 1.0);
        assert!((g.value(1, 1.0) - 1.0).abs() < 1e-12);
        assert!((g.value(13, 0.5) - 3.0f64.sqrt()).abs() < 1e-12);
        let p = LengthPenalty::Power;
        assert_eq!(p.value(4, 0.5), 2.0);
        assert_eq!(p.value(9, 0.0), 1.0);
    }

    #[test]
    fn bad_settings_are_config_errors() {
        for cfg in [
            BeamSearchConfig {
                beam_size: 0,
                ..Default::default()
            },
            BeamSearchConfig {
                max_len: 0,
                ..Default::default()
            },
            BeamSearchConfig {
                length_penalty: -1.0,
                ..Default::default()
            },
            BeamSearchConfig {
                coverage_penalty: f64::INFINITY,
                ..Default::default()
            },
            BeamSearchConfig {
                coverage_threshold: -0.1,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(cfg.validate(), Err(Error::Config { .. })),
                "{cfg:?}"
            );
        }
        assert!(BeamSearchConfig::default().validate().is_ok());
    }

    #[test]
    fn the_limit_follows_the_source_length() {
        let c = BeamSearchConfig::default();
        assert_eq!((c.limit(40), c.limit(300)), (40, 256));
        let c = BeamSearchConfig {
            max_len_a: 0.5,
            max_len_b: 4,
            max_len: 30,
            ..Default::default()
        };
        assert_eq!((c.limit(0), c.limit(11), c.limit(100)), (4, 9, 30));
        let c = BeamSearchConfig {
            max_len_a: 0.0,
            ..Default::default()
        };
        assert_eq!(c.limit(50), 1);
        let bad = BeamSearchConfig {
            max_len_a: f64::NAN,
            ..Default::default()
        };
        assert!(matches!(bad.validate(), Err(Error::Config { .. })));
    }

    #[test]
    fn coverage_counts_positions_over_the_threshold() {
        // Binary fractions, so the sums are exact.
        let sum = accumulate(&accumulate(&[], &[0.5, 0.375, 0.125]), &[0.0, 0.25, 0.75]);
        assert_eq!(sum, vec![0.5, 0.625, 0.875]);
        assert_eq!(coverage(&sum, 0.5), 2);
        assert_eq!(coverage(&sum, 0.0), 3);
        assert_eq!(coverage(&[], 0.5), 0);
    }

    #[test]
    fn top_k_is_the_head_of_a_full_sort() {
        // Values from a small set, so that ties are common.
        let mut x = 12345u64;
        for len in [0usize, 1, 3, 17, 64] {
            let row: Vec<f32> = (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    [f32::NEG_INFINITY, -2.0, -1.0, -0.5, 0.0][(x >> 60) as usize % 5]
                })
                .collect();
            let mut sorted: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
            sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            for k in [1usize, 2, 4, 100] {
                let head: Vec<(usize, f32)> = sorted.iter().copied().take(k).collect();
                assert_eq!(top_k(&row, k), head, "len {len}, k {k}");
            }
        }
    }

    #[test]
    fn nemo_search_has_no_coverage_term() {
        let cfg = BeamSearchConfig {
            finished_hypotheses: FinishedHypotheses::Nemo,
            coverage_penalty: 0.5,
            ..Default::default()
        };
        assert!(matches!(cfg.validate(), Err(Error::Config { .. })));
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, -1.0]), Some(1));
        assert_eq!(argmax(&[]), None);
    }

    /// A decoder whose next-token distribution depends only on the last token: a fixed
    /// transition table, so the best sequence can be found by hand.
    struct Chain {
        table: Vec<Vec<f32>>,
    }

    impl StepDecoder for Chain {
        type State = usize;
        fn step(&self, prev: &[u32], state: &usize) -> Result<StepOutput<usize>> {
            let rows: Vec<f32> = prev
                .iter()
                .flat_map(|&p| self.table[p as usize].iter().map(|x| x.ln()))
                .collect();
            let v = self.table[0].len();
            Ok(StepOutput {
                log_probs: Tensor::from_vec(rows, (prev.len(), v), &candle_core::Device::Cpu)?,
                attention: None,
                state: *state,
            })
        }
        fn select(&self, state: &usize, _rows: &[u32]) -> Result<usize> {
            Ok(*state)
        }
    }

    #[test]
    fn beam_search_finds_what_greedy_search_misses() -> Result<()> {
        // Tokens: 0 = BOS, 1 = EOS, 2, 3. Greedy takes 2 (0.6) then must continue poorly;
        // 3 (0.4) leads to EOS with certainty: p(3, EOS) = 0.4 > p(2, EOS) = 0.6 × 0.1.
        let chain = Chain {
            table: vec![
                vec![0.0, 0.0, 0.6, 0.4],
                vec![0.25, 0.25, 0.25, 0.25],
                vec![0.0, 0.1, 0.45, 0.45],
                vec![0.0, 1.0, 0.0, 0.0],
            ],
        };
        let greedy = greedy_search(&chain, 0, 0, 1, &[4, 4])?;
        assert_eq!(greedy, vec![vec![2, 2, 2, 2]; 2]);
        let cfg = BeamSearchConfig {
            beam_size: 2,
            ..Default::default()
        };
        let beam = beam_search(&chain, 0, 0, 1, &[4, 4], &cfg)?;
        assert_eq!(beam, vec![vec![3]; 2]);
        let beam1 = beam_search(
            &chain,
            0,
            0,
            1,
            &[4],
            &BeamSearchConfig {
                beam_size: 1,
                ..Default::default()
            },
        )?;
        assert_eq!(beam1, vec![vec![2, 2, 2, 2]]);
        Ok(())
    }

    /// A [`Chain`] of `v` tokens (0 = BOS, 1 = EOS) from `(from, to, p)` entries; unlisted
    /// transitions have probability 0 (log-probability −∞), a row without entries is uniform.
    fn chain(v: usize, entries: &[(usize, usize, f32)]) -> Chain {
        let mut table = vec![vec![0.0; v]; v];
        for &(from, to, p) in entries {
            table[from][to] = p;
        }
        for row in &mut table {
            if row.iter().all(|&p| p == 0.0) {
                row.fill(1.0 / v as f32);
            }
        }
        Chain { table }
    }

    fn search(
        chain: &Chain,
        limits: &[usize],
        finished: FinishedHypotheses,
        alpha: f64,
    ) -> Result<Vec<Vec<u32>>> {
        let cfg = BeamSearchConfig {
            beam_size: 2,
            length_penalty: alpha,
            length_penalty_kind: LengthPenalty::Power,
            finished_hypotheses: finished,
            ..Default::default()
        };
        beam_search(chain, 0, 0, 1, limits, &cfg)
    }

    #[test]
    fn nemo_lets_live_candidates_push_an_ended_hypothesis_out() -> Result<()> {
        // 2 = X, 3 = a, 4 = z1, 5 = z2, 6 = w1, 7 = w2, 8 = r; beam 2, α = 0.
        let chain = chain(
            9,
            &[
                (0, 2, 0.7),
                (0, 3, 0.3),
                (2, 4, 0.8),
                (2, 5, 0.12),
                (2, 1, 0.08),
                (3, 1, 0.6),
                (3, 8, 0.4),
                (4, 6, 0.5),
                (4, 7, 0.45),
                (4, 1, 0.05),
                (5, 1, 1.0),
                (6, 1, 0.55),
                (6, 8, 0.45),
                (7, 1, 0.6),
                (7, 8, 0.4),
                (8, 1, 1.0),
            ],
        );
        // Step 1 ranks X z1 (.56), a EOS (.18), a r (.12), X z2 (.084). Retiring, "a" is kept
        // aside at .18 and X z1, a r fill the beam; nothing later beats .18 (X z1 w1 EOS .154).
        assert_eq!(
            search(&chain, &[6], FinishedHypotheses::Retire, 0.0)?,
            [vec![3]]
        );
        // NeMo's beam holds X z1 and a EOS; step 2 ranks X z1 w1 (.28), X z1 w2 (.252) above
        // a EOS (.18), which drops out; step 3 ends both: X z1 w1 EOS (.154) and X z1 w2 EOS
        // (.1512). The answer is the best of those.
        assert_eq!(
            search(&chain, &[6], FinishedHypotheses::Nemo, 0.0)?,
            [vec![2, 4, 6]]
        );
        // Items of a batch keep their own limits: after 2 steps the beam is X z1 (.56, live)
        // and a EOS (.18), and the live one wins.
        assert_eq!(
            search(&chain, &[6, 2], FinishedHypotheses::Nemo, 0.0)?,
            [vec![2, 4, 6], vec![2, 4]]
        );
        Ok(())
    }

    #[test]
    fn nemo_lets_a_first_token_eos_go_on() -> Result<()> {
        // 2 = a. After BOS: EOS .6, a .4; after EOS: a .9, EOS .1; after a: EOS.
        let chain = chain(
            3,
            &[
                (0, 1, 0.6),
                (0, 2, 0.4),
                (1, 2, 0.9),
                (1, 1, 0.1),
                (2, 1, 1.0),
            ],
        );
        // Retiring, EOS first is the empty hypothesis at .6, and a EOS (.4) cannot beat it.
        assert_eq!(
            search(&chain, &[5], FinishedHypotheses::Retire, 0.0)?,
            [Vec::<u32>::new()]
        );
        // NeMo marks nothing ended after the first step: EOS goes on to EOS a (.54), then
        // EOS a EOS (.54) beats a EOS (.4); EOS removed, the answer is "a".
        assert_eq!(
            search(&chain, &[5], FinishedHypotheses::Nemo, 0.0)?,
            [vec![2]]
        );
        Ok(())
    }

    #[test]
    fn nemo_length_penalty_by_hand() -> Result<()> {
        // 2 = a, 3 = b, 4 = c, 5 = d, 6 = x; beam 2, lp = len^α with NeMo's len (2 + tokens
        // that are not EOS).
        let chain = chain(
            7,
            &[
                (0, 2, 0.55),
                (0, 5, 0.45),
                (2, 3, 0.8),
                (2, 1, 0.2),
                (5, 1, 0.9),
                (5, 6, 0.1),
                (3, 4, 0.8),
                (3, 1, 0.2),
                (4, 1, 0.55),
                (4, 6, 0.45),
                (6, 1, 1.0),
            ],
        );
        // α = 0: raw scores. d EOS (ln .405 = −0.904) outranks a b c (−1.044) at step 2 and
        // a b c EOS (−1.642) at step 3.
        assert_eq!(
            search(&chain, &[10], FinishedHypotheses::Nemo, 0.0)?,
            [vec![5]]
        );
        // α = 1. Step 0: a −0.5978, d −0.7985, both len 3.
        // Step 1, ranks / 3: a b −0.2737, d EOS −0.3013 (a EOS −0.7358, d x −1.0337);
        //   kept ×3: a b −0.8210 (len 4), d EOS −0.9039 (len 3, ended).
        // Step 2: a b c −1.0441 / 4 = −0.2610, d EOS −0.3013 (a b EOS −0.6076);
        //   kept: a b c −0.2610 × 4 = −1.0441 (len 5), d EOS −0.3013 × 3 = −0.9039.
        // Step 3: d EOS −0.3013, a b c EOS −1.6420 / 5 = −0.3284 (a b c x −0.3685); all ended.
        //   NeMo keeps each rank × the old slot's length: d EOS −0.3013 × 5 = −1.5065 (len 3),
        //   a b c EOS −0.3284 × 3 = −0.9852 (len 5).
        // Answer: d EOS −1.5065 / 3 = −0.5022 < a b c EOS −0.9852 / 5 = −0.1970: "a b c" (by
        // true normalized scores, −0.3013 against −0.3284, it would be "d").
        assert_eq!(
            search(&chain, &[10], FinishedHypotheses::Nemo, 1.0)?,
            [vec![2, 3, 4]]
        );
        // Retiring with the same α (len counting EOS) keeps a b c x alive and ends it at
        // −1.8426 / 5 = −0.3685, above a b c EOS (−1.6420 / 4 = −0.4105) and d EOS (−0.4519).
        assert_eq!(
            search(&chain, &[10], FinishedHypotheses::Retire, 1.0)?,
            [vec![2, 3, 4, 6]]
        );
        Ok(())
    }

    #[test]
    fn nemo_ends_hypotheses_at_pad_and_drops_it() -> Result<()> {
        // 2 = PAD, 3 = a, 4 = b. After BOS: a .9, b .1; after a: PAD .6, EOS .4; b: EOS.
        let chain = chain(
            5,
            &[
                (0, 3, 0.9),
                (0, 4, 0.1),
                (3, 2, 0.6),
                (3, 1, 0.4),
                (4, 1, 1.0),
            ],
        );
        let cfg = BeamSearchConfig {
            beam_size: 2,
            finished_hypotheses: FinishedHypotheses::Nemo,
            pad_id: Some(2),
            ..Default::default()
        };
        // a PAD (.54) ends like a EOS (.36); PAD is not part of the answer.
        assert_eq!(beam_search(&chain, 0, 0, 1, &[5], &cfg)?, [vec![3]]);
        Ok(())
    }
}
