//! Turning a sequence model's step-by-step outputs into token sequences: greedy and beam search
//! over any [`StepDecoder`], with length penalties, per-item length limits, a coverage term, and
//! two ways of treating ended hypotheses (ours, or NeMo 0.x's to the token).

mod beam_search;
mod nemo_beam;

pub use beam_search::{
    BeamSearchConfig, FinishedHypotheses, LengthPenalty, StepDecoder, StepOutput, beam_search,
    greedy_search,
};
