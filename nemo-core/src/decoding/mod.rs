//! Turning a sequence model's step-by-step outputs into token sequences: greedy and beam search
//! over any [`StepDecoder`], with length penalties, per-item length limits and a coverage term.

mod beam_search;

pub use beam_search::{
    BeamSearchConfig, LengthPenalty, StepDecoder, StepOutput, beam_search, greedy_search,
};
