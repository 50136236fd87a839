//! Greedy and beam search over any decoder that runs one token at a time ([`StepDecoder`]): the
//! search the collections' sequence models share (an ASR attention decoder, a translation
//! decoder).
//!
//! Every hypothesis starts from `bos` and stops at `eos` (not included in the output) or at its
//! item's length limit. Beam search keeps `beam_size` hypotheses per item; a hypothesis ending in
//! EOS is scored `log p / lp(len)` (`len` counting the EOS) with the length penalty of
//! [`LengthPenalty`] — GNMT's `((5 + len) / 6)^α` or NeMo 0.x's `len^α`. At each step the
//! `beam_size` best-scoring extensions that do not end stay live; an item's search ends when no
//! live hypothesis can still beat its best ended one (log-probabilities only fall, so
//! `log p / lp(limit + 1)` bounds a live hypothesis's final score), or at its limit, where live
//! hypotheses are scored the same way. With `beam_size: 1` it is the greedy search.
//!
//! A coverage term (Chorowski & Jaitly, 2017) counters an attention decoder's typical error,
//! skipping parts of its input: with `coverage_penalty: β > 0` a hypothesis gains
//! `β × coverage`, where `coverage` counts the source positions whose attention summed over the
//! hypothesis's steps exceeds `coverage_threshold` (τ). It needs a decoder that reports its
//! attention. The term is added to the ranking score `log p` of live hypotheses at every step and
//! to the normalized score of ended ones; as coverage can reach the source length `T`, the
//! stopping bound adds `β × T`.
//!
//! All items of a batch are searched together: the live hypotheses of every unfinished item form
//! the rows of one decoder step.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

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
        Ok(())
    }

    /// The most tokens a hypothesis over a source of `source_len` positions may have (at least
    /// 1).
    pub fn limit(&self, source_len: usize) -> usize {
        let by_source = (self.max_len_a * source_len as f64).floor() as usize + self.max_len_b;
        by_source.min(self.max_len).max(1)
    }

    fn penalty(&self, len: usize) -> f64 {
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

/// The search of one item.
#[derive(Debug)]
struct ItemSearch {
    live: Vec<Hyp>,
    finished: Vec<(f64, Vec<u32>)>,
    limit: usize,
    done: bool,
}

impl ItemSearch {
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
    let k = config.beam_size;
    let (beta, tau) = (config.coverage_penalty, config.coverage_threshold);
    let mut items: Vec<ItemSearch> = limits
        .iter()
        .map(|&l| ItemSearch {
            live: vec![Hyp {
                tokens: Vec::new(),
                logp: 0.0,
                attention: Vec::new(),
            }],
            finished: Vec::new(),
            limit: l.clamp(1, config.max_len),
            done: false,
        })
        .collect();
    let mut state = state;
    let mut step_no = 0usize;
    loop {
        // The rows of this step: the live hypotheses of every unfinished item, in item order.
        let owners: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, it)| !it.done)
            .flat_map(|(i, it)| std::iter::repeat_n(i, it.live.len()))
            .collect();
        if owners.is_empty() {
            break;
        }
        let prev: Vec<u32> = items
            .iter()
            .filter(|it| !it.done)
            .flat_map(|it| it.live.iter())
            .map(|h| h.tokens.last().copied().unwrap_or(bos))
            .collect();
        let step = decoder.step(&prev, &state)?;
        let rows = rows_f32(&step.log_probs)?;
        let weights = if beta > 0.0 {
            let att = step.attention.as_ref().ok_or_else(|| Error::Config {
                key: "decoding.coverage_penalty".into(),
                msg: "the coverage term needs a decoder that reports its attention".into(),
            })?;
            rows_f32(att)?
        } else {
            Vec::new()
        };
        if rows.len() != owners.len() {
            return Err(Error::Shape {
                op: "beam_search",
                msg: format!(
                    "the decoder gave {} rows for {} hypotheses",
                    rows.len(),
                    owners.len()
                ),
            });
        }
        let mut kept_rows: Vec<u32> = Vec::new();
        let mut row = 0usize;
        for item in items.iter_mut().filter(|it| !it.done) {
            let n = item.live.len();
            let item_rows = rows.get(row..row + n).unwrap_or(&[]);
            // Each beam's attention summed through this step, when the coverage term needs it.
            let attention: Vec<Vec<f32>> = if beta > 0.0 {
                item.live
                    .iter()
                    .zip(weights.get(row..row + n).unwrap_or(&[]))
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
            for (bi, (h, r)) in item.live.iter().zip(item_rows).enumerate() {
                let mut top: Vec<(usize, f32)> = r.iter().copied().enumerate().collect();
                top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let extra = bonus.get(bi).copied().unwrap_or(0.0);
                for &(tok, lp) in top.iter().take(k) {
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
                let Some(h) = item.live.get(bi) else { continue };
                let extra = bonus.get(bi).copied().unwrap_or(0.0);
                if tok == eos {
                    let norm = logp / config.penalty(h.tokens.len() + 1) + extra;
                    item.finished.push((norm, h.tokens.clone()));
                } else {
                    let mut tokens = h.tokens.clone();
                    tokens.push(tok);
                    next.push(Hyp {
                        tokens,
                        logp,
                        attention: attention.get(bi).cloned().unwrap_or_default(),
                    });
                    next_rows.push((row + bi) as u32);
                }
            }
            item.live = next;
            let frames = attention.first().map_or(0, Vec::len);
            item.done = item.live.is_empty() || step_no + 1 >= item.limit || {
                // No live hypothesis can beat the best ended one: log-probabilities only fall,
                // dividing a negative score by the largest reachable penalty bounds it from above,
                // and coverage is at most the source length.
                match item.finished.iter().map(|f| f.0).reduce(f64::max) {
                    Some(best_done) => {
                        let bound = config.penalty(item.limit + 1);
                        let best_live = item
                            .live
                            .iter()
                            .map(|h| h.logp / bound + beta * frames as f64)
                            .fold(f64::NEG_INFINITY, f64::max);
                        best_live <= best_done
                    }
                    None => false,
                }
            };
            if item.done {
                for h in &item.live {
                    if h.tokens.len() >= item.limit {
                        let norm = h.logp / config.penalty(h.tokens.len())
                            + beta * coverage(&h.attention, tau) as f64;
                        item.finished.push((norm, h.tokens.clone()));
                    }
                }
            } else {
                kept_rows.extend(next_rows);
            }
            row += n;
        }
        if kept_rows.is_empty() {
            break;
        }
        state = decoder.select(&step.state, &kept_rows)?;
        step_no += 1;
    }
    Ok(items.iter().map(ItemSearch::best).collect())
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
}
