//! Turning a sequence model's step-by-step outputs into token sequences: greedy and beam search
//! over any [`StepDecoder`], with length penalties, per-item length limits, a coverage term, and
//! two ways of treating ended hypotheses (ours, or NeMo 0.x's to the token).
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
//!
//! # What happens to an ended hypothesis
//!
//! [`BeamSearchConfig::finished_hypotheses`] picks one of two searches:
//!
//! * [`FinishedHypotheses::Retire`] (the default, described above): an ended hypothesis leaves
//!   the beam for a list of finished ones, so the beam always holds `beam_size` live hypotheses.
//! * [`FinishedHypotheses::Nemo`]: NeMo 0.x's `BeamSearchSequenceGenerator`
//!   (`transformer_generators.py`, v0.11.1; the same algorithm as the paper-era `generators.py`
//!   of commit `abd50d2339`). An ended hypothesis stays in the beam, emitting `<PAD>` at no cost,
//!   and competes with the live ones until `beam_size` better candidates push it out; the search
//!   runs until every hypothesis of the batch has ended or the length limit. Its length is
//!   `len = 2 + tokens that are not EOS (or PAD)` (NeMo counts BOS and adds 1), the candidates
//!   of a step rank by `score / lp(len of the parent)`, and the answer is the argmax of
//!   `score / lp(len)` (first maximum). See [`FinishedHypotheses::Nemo`] for the details that
//!   make it NeMo's to the token, quirks included.

mod beam_search;
mod nemo_beam;

pub use beam_search::{
    BeamSearchConfig, FinishedHypotheses, LengthPenalty, StepDecoder, StepOutput, beam_search,
    greedy_search,
};
