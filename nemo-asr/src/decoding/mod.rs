//! Turning network outputs into label sequences and text.
//!
//! - [`greedy_ctc`]: best-path CTC decoding of `(B, T, D)` log-probabilities (argmax per frame,
//!   merge repeats, drop blanks) and the id-to-text mapping.

pub mod greedy_ctc;

pub use greedy_ctc::{
    GreedyCtcDecoder, LabelText, collapse_ctc_frames, ctc_greedy_decode, ids_to_text,
};
