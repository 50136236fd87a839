//! Decoding an attention decoder ([`DecoderRNN`]) into token sequences: batched greedy search
//! and beam search with a length penalty (NeMo 0.x's `GreedySearch` / `BeamSearch`).
//!
//! Both take the connector's encoder outputs `(B, T_k, H)` with valid lengths `(B)`, start every
//! hypothesis from `bos_id`, and stop a hypothesis at `eos_id` (not included in the output) or
//! after `min(max_len, floor(max_len_a × T + max_len_b))` tokens for `T` encoder frames
//! (fairseq's `max_len_a`/`max_len_b`; the defaults 1 and 0 allow a character per frame, 50 per
//! second with QuartzNet's stride 2, several times any speaking rate). A decoder that lost its
//! place in the audio repeats itself until this limit, so a bound near the fastest speaking rate
//! keeps such an error from costing more than a few words.
//!
//! Beam search keeps `beam_size` hypotheses per utterance; a hypothesis ending in EOS is scored
//! `log p / lp(len)` with NeMo's (GNMT's) length penalty `lp(len) = ((5 + len) / 6)^α`
//! (`α = length_penalty`, `len` counting the EOS). At each step the `beam_size` best-scoring
//! extensions that do not end stay live; the search ends when no live hypothesis can still beat
//! the best ended one (log-probabilities only fall, so `log p / lp(max_len + 1)` bounds a live
//! hypothesis's final score), or at `max_len`, where live hypotheses are scored the same way.
//! With `beam_size: 1` it is the greedy search.
//!
//! A coverage term (Chorowski & Jaitly, 2017) counters an attention decoder's typical error,
//! skipping words: with `coverage_penalty: β > 0` a hypothesis gains `β × coverage`, where
//! `coverage` counts the encoder frames whose attention summed over the hypothesis's steps
//! exceeds `coverage_threshold` (τ). A hypothesis that skips part of the audio, or loops over one
//! part of it, covers fewer frames than one that reads it all. The term is added to the ranking
//! score `log p` of live hypotheses at every step and to the length-normalized score of ended
//! ones; as coverage can grow up to the frame count `T`, the stopping bound adds `β × T`.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::modules::{AttentionContext, DecoderRNN};
use crate::{Error, Result};

fn default_beam() -> usize {
    1
}
fn default_max_len() -> usize {
    256
}

/// How to turn decoder outputs into transcripts (the model's `decoding:` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeamSearchConfig {
    /// Hypotheses kept per utterance; 1 (the default) is greedy search.
    #[serde(default = "default_beam")]
    pub beam_size: usize,
    /// `α` of the length penalty `((5 + len) / 6)^α`; 0 (the default) disables it.
    #[serde(default)]
    pub length_penalty: f64,
    /// The most tokens a hypothesis may have, EOS excluded (default 256).
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Tokens allowed per encoder frame (default 1).
    #[serde(default = "default_max_len_a")]
    pub max_len_a: f64,
    /// Tokens allowed on top of `max_len_a` × frames (default 0).
    #[serde(default)]
    pub max_len_b: usize,
    /// `β` of the coverage term (beam search only); 0 (the default) disables it.
    #[serde(default)]
    pub coverage_penalty: f64,
    /// `τ`: the summed attention above which a frame counts as covered (default 0.5).
    #[serde(default = "default_coverage_threshold")]
    pub coverage_threshold: f64,
}

fn default_coverage_threshold() -> f64 {
    0.5
}

fn default_max_len_a() -> f64 {
    1.0
}

impl Default for BeamSearchConfig {
    fn default() -> Self {
        BeamSearchConfig {
            beam_size: 1,
            length_penalty: 0.0,
            max_len: default_max_len(),
            max_len_a: default_max_len_a(),
            max_len_b: 0,
            coverage_penalty: 0.0,
            coverage_threshold: default_coverage_threshold(),
        }
    }
}

impl BeamSearchConfig {
    /// Checks ranges.
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
}

impl BeamSearchConfig {
    /// The most tokens a hypothesis over `frames` encoder frames may have (at least 1).
    pub fn limit(&self, frames: usize) -> usize {
        let by_frames = (self.max_len_a * frames as f64).floor() as usize + self.max_len_b;
        by_frames.min(self.max_len).max(1)
    }
}

/// NeMo's length penalty `((5 + len) / 6)^α`.
pub fn length_penalty(len: usize, alpha: f64) -> f64 {
    ((5.0 + len as f64) / 6.0).powf(alpha)
}

fn argmax(row: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in row.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

fn check_batch(encoder_outputs: &Tensor, lengths: &[usize]) -> Result<usize> {
    let b = encoder_outputs.dim(0)?;
    if lengths.len() != b {
        return Err(Error::Shape {
            op: "decoding",
            msg: format!("{} lengths for {b} encoder outputs", lengths.len()),
        });
    }
    Ok(b)
}

/// Greedy search over a batch: the argmax token at each step until EOS or the length limit of
/// `config` (its `beam_size` and `length_penalty` are not used). Returns the token ids of each
/// utterance without BOS and EOS.
pub fn greedy_search(
    decoder: &DecoderRNN,
    encoder_outputs: &Tensor,
    lengths: &[usize],
    eos_id: u32,
    config: &BeamSearchConfig,
) -> Result<Vec<Vec<u32>>> {
    config.validate()?;
    let b = check_batch(encoder_outputs, lengths)?;
    let ctx = decoder.prepare(encoder_outputs, Some(lengths))?;
    let mut state = decoder.init_state(b)?;
    let mut prev = vec![decoder.config().bos_id; b];
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
    let limits: Vec<usize> = lengths
        .iter()
        .map(|&l| if l == 0 { 0 } else { config.limit(l) })
        .collect();
    let mut done: Vec<bool> = limits.iter().map(|&l| l == 0).collect();
    let steps = limits.iter().copied().max().unwrap_or(0);
    for _ in 0..steps {
        if done.iter().all(|&d| d) {
            break;
        }
        let step = decoder.step(&prev, &state, &ctx)?;
        state = step.state;
        let rows: Vec<Vec<f32>> = step.log_probs.to_dtype(DType::F32)?.to_vec2()?;
        for (i, row) in rows.iter().enumerate() {
            let tok = argmax(row).unwrap_or(0) as u32;
            let limit = limits.get(i).copied().unwrap_or(0);
            if let (Some(p), Some(d), Some(o)) = (prev.get_mut(i), done.get_mut(i), out.get_mut(i))
            {
                *p = tok;
                if !*d {
                    if tok == eos_id {
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
    /// `(T_k)` attention summed over the hypothesis's steps (empty without a coverage term).
    attention: Vec<f32>,
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

/// Beam search, one utterance at a time (its beams batched). Returns the best hypothesis of
/// each utterance without BOS and EOS.
pub fn beam_search(
    decoder: &DecoderRNN,
    encoder_outputs: &Tensor,
    lengths: &[usize],
    eos_id: u32,
    config: &BeamSearchConfig,
) -> Result<Vec<Vec<u32>>> {
    config.validate()?;
    let b = check_batch(encoder_outputs, lengths)?;
    let mut results = Vec::with_capacity(b);
    for (i, &len) in lengths.iter().enumerate() {
        let enc = encoder_outputs.narrow(0, i, 1)?;
        let t = enc.dim(1)?;
        if len == 0 || len > t {
            return Err(Error::Shape {
                op: "beam_search",
                msg: format!("encoder length {len} of row {i} is not in 1..={t}"),
            });
        }
        let enc = enc.narrow(1, 0, len)?;
        let ctx = decoder.prepare(&enc, None)?;
        results.push(beam_one(decoder, &ctx, eos_id, config, config.limit(len))?);
    }
    Ok(results)
}

fn beam_one(
    decoder: &DecoderRNN,
    ctx1: &AttentionContext,
    eos_id: u32,
    config: &BeamSearchConfig,
    max_len: usize,
) -> Result<Vec<u32>> {
    let k = config.beam_size;
    let alpha = config.length_penalty;
    let (beta, tau) = (config.coverage_penalty, config.coverage_threshold);
    let frames = ctx1.context.dim(1)?;
    let dev = ctx1.context.device().clone();
    let mut live = vec![Hyp {
        tokens: Vec::new(),
        logp: 0.0,
        attention: Vec::new(),
    }];
    let mut state = decoder.init_state(1)?;
    let mut ctx = ctx1.clone();
    let mut finished: Vec<(f64, Vec<u32>)> = Vec::new();
    for step_no in 0..max_len {
        let prev: Vec<u32> = live
            .iter()
            .map(|h| h.tokens.last().copied().unwrap_or(decoder.config().bos_id))
            .collect();
        let step = decoder.step(&prev, &state, &ctx)?;
        let rows: Vec<Vec<f32>> = step.log_probs.to_dtype(DType::F32)?.to_vec2()?;
        // Each beam's attention summed through this step, when the coverage term needs it.
        let attention: Vec<Vec<f32>> = if beta > 0.0 {
            let weights: Vec<Vec<f32>> = step.attention_weights.to_dtype(DType::F32)?.to_vec2()?;
            live.iter()
                .zip(&weights)
                .map(|(h, w)| accumulate(&h.attention, w))
                .collect()
        } else {
            vec![Vec::new(); live.len()]
        };
        let bonus: Vec<f64> = attention
            .iter()
            .map(|a| beta * coverage(a, tau) as f64)
            .collect();
        // Candidates (rank, log p, beam, token), best first; ties by beam then token.
        let mut cands: Vec<(f64, f64, usize, u32)> = Vec::new();
        for (bi, (h, row)) in live.iter().zip(&rows).enumerate() {
            let mut top: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
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
        let mut rows_kept: Vec<u32> = Vec::with_capacity(k);
        for (_, logp, bi, tok) in cands {
            if next.len() >= k {
                break;
            }
            let Some(h) = live.get(bi) else { continue };
            let extra = bonus.get(bi).copied().unwrap_or(0.0);
            if tok == eos_id {
                let norm = logp / length_penalty(h.tokens.len() + 1, alpha) + extra;
                finished.push((norm, h.tokens.clone()));
            } else {
                let mut tokens = h.tokens.clone();
                tokens.push(tok);
                next.push(Hyp {
                    tokens,
                    logp,
                    attention: attention.get(bi).cloned().unwrap_or_default(),
                });
                rows_kept.push(bi as u32);
            }
        }
        live = next;
        if live.is_empty() || step_no + 1 == max_len {
            break;
        }
        // Stop when no live hypothesis can beat the best ended one: log-probabilities only fall,
        // dividing a negative score by the largest reachable penalty bounds it from above, and
        // coverage is at most the frame count.
        if let Some(best_done) = finished.iter().map(|f| f.0).reduce(f64::max) {
            let bound = length_penalty(max_len + 1, alpha);
            let best_live = live
                .iter()
                .map(|h| h.logp / bound + beta * frames as f64)
                .fold(f64::NEG_INFINITY, f64::max);
            if best_live <= best_done {
                break;
            }
        }
        let rows = Tensor::new(rows_kept.as_slice(), &dev)?;
        state = step.state.index_select(&rows)?;
        ctx = ctx1.index_select(&Tensor::zeros(rows_kept.len(), DType::U32, &dev)?)?;
    }
    for h in &live {
        if h.tokens.len() >= max_len {
            let norm = h.logp / length_penalty(h.tokens.len(), alpha)
                + beta * coverage(&h.attention, tau) as f64;
            finished.push((norm, h.tokens.clone()));
        }
    }
    // Prefer the best finished hypothesis; ties keep the earliest found.
    let mut best: Option<&(f64, Vec<u32>)> = None;
    for f in &finished {
        if best.is_none_or(|b| f.0 > b.0) {
            best = Some(f);
        }
    }
    match best {
        Some((_, tokens)) => Ok(tokens.clone()),
        None => Ok(live.first().map(|h| h.tokens.clone()).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_penalty_is_gnmt_s() {
        assert_eq!(length_penalty(7, 0.0), 1.0);
        assert!((length_penalty(1, 1.0) - 1.0).abs() < 1e-12);
        assert!((length_penalty(13, 0.5) - 3.0f64.sqrt()).abs() < 1e-12);
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
    fn the_limit_follows_the_encoder_length() {
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
    fn coverage_counts_frames_over_the_threshold() {
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
}
