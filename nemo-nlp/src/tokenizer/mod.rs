//! Tokenizers: text to token ids and back.
//!
//! - [`special_tokens`]: `<PAD>` 0, `<UNK>` 1, `<BOS>` 2, `<EOS>` 3 in every vocabulary;
//! - [`bpe_tokenizer`]: [`BpeTokenizer`], byte-level BPE trained with the Hugging Face
//!   `tokenizers` crate, saved as `tokenizer.json`;
//! - [`translation_tokenizers`]: [`TranslationTokenizers`], the source and target tokenizers of
//!   a translation model (shared or one per language) and their files in a model directory.

pub mod bpe_tokenizer;
pub mod special_tokens;
pub mod translation_tokenizers;

pub use bpe_tokenizer::{BpeTokenizer, BpeTokenizerConfig, MIN_VOCAB_SIZE};
pub use special_tokens::{BOS, BOS_ID, EOS, EOS_ID, PAD, PAD_ID, SPECIAL_TOKENS, UNK, UNK_ID};
pub use translation_tokenizers::{
    SHARED_TOKENIZER_FILE, SOURCE_TOKENIZER_FILE, TARGET_TOKENIZER_FILE, TranslationTokenizers,
    TranslationTokenizersConfig,
};
