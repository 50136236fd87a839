//! Evaluation metrics of the ASR collection.
//!
//! - [`wer`]: word and character error rates (Levenshtein distance over words or characters,
//!   summed over utterances and divided by the total reference length), as NeMo reports them.

pub mod wer;

pub use wer::{WordErrorRate, char_error_rate, edit_distance, word_error_rate};
