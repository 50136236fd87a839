//! Byte-level BPE tokenizers: trained from text files, saved as and loaded from Hugging Face
//! `tokenizer.json` files.
//!
//! The tokenizer is the Hugging Face `tokenizers` crate's BPE model behind its byte-level
//! pre-tokenizer and decoder (GPT-2's scheme): text is split into words, numbers and runs of
//! punctuation, each word carrying its leading space; every byte has a symbol of its own, so
//! any text encodes without an unknown token and decodes back to exactly the same text (a
//! leading space is added before encoding and removed after decoding, so that a sentence's first
//! word is the same token as inside a sentence). No normalisation is applied: what is decoded is
//! what was written, which is what BLEU on detokenised text needs.
//!
//! The vocabulary starts with the four [special tokens](super::special_tokens) at ids 0..=3
//! (`<PAD>`, `<UNK>`, `<BOS>`, `<EOS>`), then the 256 byte symbols, then the merges learnt in
//! order. [`BpeTokenizer::text_to_ids`] adds no special token: the data layer adds `<BOS>` and
//! `<EOS>`, as NeMo's `dataset_to_ids` does. [`BpeTokenizer::ids_to_text`] drops special ids,
//! as NeMo's `YouTokenToMeTokenizer.ids_to_text`. Text that contains a special token's spelling
//! literally (`<EOS>`) encodes to that token.
//!
//! ```no_run
//! # fn main() -> nemo_nlp::Result<()> {
//! use nemo_nlp::tokenizer::{BpeTokenizer, BpeTokenizerConfig};
//! let tokenizer = BpeTokenizerConfig::new(8192).train(&["corpus/bible/train.en"])?;
//! let ids = tokenizer.text_to_ids("In the beginning God created the heaven and the earth.")?;
//! assert_eq!(tokenizer.ids_to_text(&ids)?, "In the beginning God created the heaven and the earth.");
//! tokenizer.save("model/tokenizer.json")?;
//! let again = BpeTokenizer::from_file("model/tokenizer.json")?;
//! assert_eq!(again.text_to_ids("In the beginning")?, tokenizer.text_to_ids("In the beginning")?);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, NormalizerWrapper, PostProcessorWrapper, Tokenizer, TokenizerBuilder,
};

use super::special_tokens::{BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK, UNK_ID};
use crate::text_file::read_lines;
use crate::{Error, Result};

/// Symbols every byte-level vocabulary holds besides its merges: the special tokens and one per
/// byte value.
pub const MIN_VOCAB_SIZE: usize = SPECIAL_TOKENS.len() + 256;

/// How to train a [`BpeTokenizer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BpeTokenizerConfig {
    /// Size of the vocabulary, the 4 special tokens and 256 byte symbols included; at least
    /// [`MIN_VOCAB_SIZE`] (default 8192, the paper's 8k BPE). Training stops earlier when no
    /// pair is frequent enough.
    pub vocab_size: usize,
    /// A pair seen fewer times than this in the training text is never merged (default 2, so
    /// that no merge is learnt from a single occurrence).
    pub min_frequency: u64,
}

impl Default for BpeTokenizerConfig {
    fn default() -> Self {
        Self {
            vocab_size: 8192,
            min_frequency: 2,
        }
    }
}

impl From<usize> for BpeTokenizerConfig {
    fn from(vocab_size: usize) -> Self {
        Self::new(vocab_size)
    }
}

impl BpeTokenizerConfig {
    /// The defaults with `vocab_size`.
    pub fn new(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            ..Self::default()
        }
    }

    /// Trains on the lines of `files` (UTF-8, one sentence per line; empty lines are skipped).
    pub fn train(&self, files: &[impl AsRef<Path>]) -> Result<BpeTokenizer> {
        let mut lines = Vec::new();
        for file in files {
            lines.extend(read_lines(file)?);
        }
        if files.is_empty() {
            return Err(Error::Tokenizer {
                op: "train",
                msg: "no training file given".into(),
            });
        }
        self.train_from_lines(&lines)
    }

    /// Trains on sentences in memory (empty ones are skipped).
    pub fn train_from_lines<S: AsRef<str> + Sync>(&self, lines: &[S]) -> Result<BpeTokenizer> {
        self.validate()?;
        let model = BPE::builder()
            .unk_token(UNK.into())
            .build()
            .map_err(|e| train_error(&*e))?;
        let mut tokenizer = TokenizerBuilder::<
            BPE,
            NormalizerWrapper,
            ByteLevel,
            PostProcessorWrapper,
            ByteLevel,
        >::new()
        .with_model(model)
        .with_normalizer(None)
        .with_pre_tokenizer(Some(ByteLevel::default()))
        .with_post_processor(None)
        .with_decoder(Some(ByteLevel::default()))
        .build()
        .map_err(|e| train_error(&*e))?;
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(self.vocab_size)
            .min_frequency(self.min_frequency)
            .show_progress(false)
            .special_tokens(
                SPECIAL_TOKENS
                    .iter()
                    .map(|t| AddedToken::from(*t, true))
                    .collect(),
            )
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let sentences = lines.iter().map(AsRef::as_ref).filter(|s| !s.is_empty());
        tokenizer
            .train(&mut trainer, sentences)
            .map_err(|e| train_error(&*e))?;
        let tokenizer = BpeTokenizer::new(tokenizer.into(), None)?;
        tracing::debug!(
            vocab_size = tokenizer.vocab_size(),
            "trained a byte-level BPE tokenizer"
        );
        Ok(tokenizer)
    }

    fn validate(&self) -> Result<()> {
        if self.vocab_size < MIN_VOCAB_SIZE {
            return Err(Error::Config {
                key: "vocab_size".into(),
                msg: format!(
                    "must be at least {MIN_VOCAB_SIZE} (4 special tokens and 256 bytes), got {}",
                    self.vocab_size
                ),
            });
        }
        Ok(())
    }
}

fn train_error(e: &(dyn std::error::Error + Send + Sync)) -> Error {
    Error::Tokenizer {
        op: "train",
        msg: e.to_string(),
    }
}

/// A BPE tokenizer with the collection's special tokens at fixed ids (NeMo 0.x's
/// `YouTokenToMeTokenizer`, whose methods it keeps: `text_to_ids`, `ids_to_text`, ...).
#[doc(alias = "YouTokenToMeTokenizer")]
#[doc(alias = "TokenizerSpec")]
#[derive(Clone)]
pub struct BpeTokenizer {
    inner: Tokenizer,
    strip_prefix_space: bool,
}

impl fmt::Debug for BpeTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BpeTokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish_non_exhaustive()
    }
}

impl BpeTokenizer {
    /// Wraps a Hugging Face tokenizer after checking its special tokens (`path` names where it
    /// came from, for the error).
    fn new(inner: Tokenizer, path: Option<&Path>) -> Result<Self> {
        for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
            let found = inner.token_to_id(token);
            if found != Some(id as u32) {
                let msg = match found {
                    Some(other) => format!("special token `{token}` has id {other}, expected {id}"),
                    None => format!("special token `{token}` (id {id}) is missing"),
                };
                return Err(match path {
                    Some(path) => Error::TokenizerFile {
                        path: path.to_path_buf(),
                        msg,
                    },
                    None => Error::Tokenizer { op: "load", msg },
                });
            }
        }
        let strip_prefix_space = matches!(
            inner.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::ByteLevel(b)) if b.add_prefix_space
        );
        Ok(Self {
            inner,
            strip_prefix_space,
        })
    }

    /// Reads a `tokenizer.json` (this crate's, or any Hugging Face tokenizer whose vocabulary
    /// has the [special tokens](super::special_tokens) at their ids).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let inner = Tokenizer::from_file(path).map_err(|e| Error::TokenizerFile {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        Self::new(inner, Some(path))
    }

    /// Parses the text of a `tokenizer.json`.
    pub fn from_json(json: &str) -> Result<Self> {
        let inner: Tokenizer = json
            .parse()
            .map_err(|e: tokenizers::Error| Error::Tokenizer {
                op: "load",
                msg: e.to_string(),
            })?;
        Self::new(inner, None)
    }

    /// The `tokenizer.json` text (pretty-printed, deterministic for a given tokenizer).
    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(true).map_err(|e| Error::Tokenizer {
            op: "save",
            msg: e.to_string(),
        })
    }

    /// Writes the `tokenizer.json` to `path` atomically (a crash leaves the old file).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = self.to_json().map_err(|e| Error::TokenizerFile {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        nemo_core::io::write_atomic(path, json.as_bytes())?;
        Ok(())
    }

    /// The ids of `text`, without special tokens.
    pub fn text_to_ids(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer {
                op: "encode",
                msg: format!("{e} (text {text:?})"),
            })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The ids of many texts, encoded in parallel.
    pub fn batch_text_to_ids<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .inner
            .encode_batch(inputs, false)
            .map_err(|e| Error::Tokenizer {
                op: "encode",
                msg: e.to_string(),
            })?;
        Ok(encodings.iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// The tokens of `text` as the vocabulary spells them (byte symbols: a space is `Ġ`).
    pub fn text_to_tokens(&self, text: &str) -> Result<Vec<String>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer {
                op: "encode",
                msg: format!("{e} (text {text:?})"),
            })?;
        Ok(encoding.get_tokens().to_vec())
    }

    /// The text of `ids`; special ids (padding, `<BOS>`, `<EOS>`, `<UNK>`) are left out. An id
    /// outside the vocabulary is an error.
    pub fn ids_to_text(&self, ids: &[u32]) -> Result<String> {
        let size = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= size) {
            return Err(Error::Tokenizer {
                op: "decode",
                msg: format!("id {bad} is outside the vocabulary of {size}"),
            });
        }
        let kept: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| !Self::is_special(id))
            .collect();
        let text = self
            .inner
            .decode(&kept, true)
            .map_err(|e| Error::Tokenizer {
                op: "decode",
                msg: e.to_string(),
            })?;
        Ok(match text.strip_prefix(' ') {
            Some(rest) if self.strip_prefix_space => rest.to_owned(),
            _ => text,
        })
    }

    /// The vocabulary's spelling of `id`.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of a token as the vocabulary spells it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Whether `id` is one of the four special tokens.
    pub fn is_special(id: u32) -> bool {
        (id as usize) < SPECIAL_TOKENS.len()
    }

    /// Tokens in the vocabulary, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of `<PAD>` (0).
    pub fn pad_id(&self) -> u32 {
        PAD_ID
    }

    /// Id of `<UNK>` (1).
    pub fn unk_id(&self) -> u32 {
        UNK_ID
    }

    /// Id of `<BOS>` (2).
    pub fn bos_id(&self) -> u32 {
        BOS_ID
    }

    /// Id of `<EOS>` (3).
    pub fn eos_id(&self) -> u32 {
        EOS_ID
    }

    /// The Hugging Face tokenizer inside.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        let words = ["the", "thee", "then", "there", "other", "mother", "brother"];
        (0..200)
            .map(|i| {
                (0..8)
                    .map(|j| words[(i * 7 + j * 3) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn special_tokens_come_first_and_bytes_follow() -> Result<()> {
        let tok = BpeTokenizerConfig::new(300).train_from_lines(&corpus())?;
        for (id, t) in SPECIAL_TOKENS.iter().enumerate() {
            assert_eq!(tok.token_to_id(t), Some(id as u32));
        }
        assert!(tok.vocab_size() > MIN_VOCAB_SIZE && tok.vocab_size() <= 300);
        // Learnt merges: the frequent word is one token.
        assert_eq!(tok.text_to_tokens("the mother")?, ["Ġthe", "Ġmother"]);
        Ok(())
    }

    #[test]
    fn a_small_vocabulary_is_a_config_error() {
        let e = BpeTokenizerConfig::new(100).train_from_lines(&corpus());
        assert!(
            matches!(&e, Err(Error::Config { key, .. }) if key == "vocab_size"),
            "{e:?}"
        );
    }

    #[test]
    fn decoding_checks_ids_and_drops_special_ones() -> Result<()> {
        let tok = BpeTokenizerConfig::new(280).train_from_lines(&corpus())?;
        let mut ids = vec![BOS_ID];
        ids.extend(tok.text_to_ids("other brother")?);
        ids.extend([EOS_ID, PAD_ID, PAD_ID]);
        assert_eq!(tok.ids_to_text(&ids)?, "other brother");
        let e = tok.ids_to_text(&[100_000]).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                format!(
                    "tokenizer decode: id 100000 is outside the vocabulary of {}",
                    tok.vocab_size()
                )
                .as_str()
            )
        );
        Ok(())
    }
}
