//! Evaluation metrics of the NLP collection.
//!
//! - [`bleu`]: corpus and sentence BLEU equal to SacreBLEU 2.6.0's ([`Bleu`], [`corpus_bleu`],
//!   [`sentence_bleu`]), with its signature line;
//! - [`tokenizer_13a`]: the mteval-v13a tokenisation BLEU is computed on ([`tokenize_13a`]);
//! - [`py_str`]: Python's whitespace rules, which both depend on.

pub mod bleu;
pub mod py_str;
pub mod tokenizer_13a;

pub use bleu::{
    Bleu, BleuScore, BleuSignature, BleuStatistics, BleuTokenizer, MAX_NGRAM_ORDER,
    SACREBLEU_VERSION, Smoothing, corpus_bleu, sentence_bleu,
};
pub use tokenizer_13a::tokenize_13a;
