//! Turning network outputs into label sequences and text.
//!
//! - [`greedy_ctc`]: best-path CTC decoding of `(B, T, D)` log-probabilities (argmax per frame,
//!   merge repeats, drop blanks) and the id-to-text mapping.
//! - [`ctc_beam_search`]: CTC prefix beam search with an optional word n-gram LM and lexicon.
//! - [`ngram_lm`]: the ARPA n-gram model it uses, read from KenLM files or estimated from
//!   transcripts (interpolated Kneser–Ney).
//! - greedy and beam search over the attention decoder
//!   ([`DecoderRnn`](crate::modules::DecoderRnn)) are the core's, re-exported here:
//!   [`beam_search`], [`greedy_search`], [`BeamSearchConfig`].

pub mod ctc_beam_search;
pub mod greedy_ctc;
pub mod ngram_lm;

pub use ctc_beam_search::{CtcBeamSearch, CtcBeamSearchConfig};
pub use greedy_ctc::{
    GreedyCtcDecoder, LabelText, collapse_ctc_frames, ctc_greedy_decode, ids_to_text,
};
pub use nemo_core::decoding::{
    BeamSearchConfig, LengthPenalty, StepDecoder, beam_search, greedy_search,
};
pub use ngram_lm::NgramLm;
