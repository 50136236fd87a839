//! Language collection of nemo-rs.
//!
//! NeMo 0.x's NLP pieces for neural machine translation, typed as the rest of nemo-rs:
//!
//! * [`metrics`] — BLEU equal to SacreBLEU 2.6.0's (13a tokenisation, `exp` smoothing, the
//!   signature line);
//! * [`tokenizer`] — byte-level BPE tokenizers (Hugging Face `tokenizers`) with fixed special
//!   ids, trained from text files, kept in a model directory as `tokenizer.json`;
//! * [`text_file`] — one-sentence-per-line corpora.
//!
//! Sibling crates: `nemo-core` (types, modules, training), `nemo-macros`, `nemo-asr` (speech),
//! and the facade `nemo`, which re-exports this crate as `nemo::nlp`.

pub mod error;
pub mod metrics;
pub mod text_file;
pub mod tokenizer;

pub use error::{Error, Result};
pub use metrics::{Bleu, BleuScore, corpus_bleu, sentence_bleu};
pub use tokenizer::{
    BpeTokenizer, BpeTokenizerConfig, TranslationTokenizers, TranslationTokenizersConfig,
};
