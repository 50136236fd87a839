//! Turning network outputs into label sequences and text.
//!
//! - [`greedy_ctc`]: best-path CTC decoding of `(B, T, D)` log-probabilities (argmax per frame,
//!   merge repeats, drop blanks) and the id-to-text mapping.
//! - [`beam_search`](mod@beam_search): greedy and beam search over an attention decoder
//!   ([`DecoderRNN`](crate::modules::DecoderRNN)).

pub mod beam_search;
pub mod greedy_ctc;

pub use beam_search::{BeamSearchConfig, beam_search, greedy_search, length_penalty};
pub use greedy_ctc::{
    GreedyCtcDecoder, LabelText, collapse_ctc_frames, ctc_greedy_decode, ids_to_text,
};
