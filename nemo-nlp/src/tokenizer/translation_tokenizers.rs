//! The tokenizers of a translation model: one shared by both languages, or one per language,
//! and where a model directory keeps them.
//!
//! A shared tokenizer is trained on the source and target files together and gives both
//! languages one vocabulary, which a model needs to tie its encoder and decoder embeddings
//! (NeMo 1.x's `shared_tokenizer`, the default); separate tokenizers give each language its own
//! vocabulary of `vocab_size`. A model directory is self-contained:
//!
//! | layout | files |
//! |---|---|
//! | shared | [`SHARED_TOKENIZER_FILE`] (`tokenizer.json`) |
//! | separate | [`SOURCE_TOKENIZER_FILE`] (`tokenizer.source.json`), [`TARGET_TOKENIZER_FILE`] (`tokenizer.target.json`) |
//!
//! Each is a Hugging Face `tokenizer.json`, readable by the `tokenizers` library in any language.
//! [`TranslationTokenizers::save`] removes the other layout's files so that a directory never
//! holds both; [`TranslationTokenizers::load`] refuses a directory that does.
//!
//! ```no_run
//! # fn main() -> nemo_nlp::Result<()> {
//! use nemo_nlp::tokenizer::{TranslationTokenizers, TranslationTokenizersConfig};
//! let config = TranslationTokenizersConfig::default(); // shared, 8192 tokens
//! let tokenizers = config.train(&["corpus/bible/train.en"], &["corpus/bible/train.es"])?;
//! tokenizers.save("runs/nmt")?; // runs/nmt/tokenizer.json
//! let again = TranslationTokenizers::load("runs/nmt")?;
//! assert!(again.is_shared());
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::bpe_tokenizer::{BpeTokenizer, BpeTokenizerConfig};
use crate::{Error, Result};

/// The file of a shared tokenizer in a model directory.
pub const SHARED_TOKENIZER_FILE: &str = "tokenizer.json";
/// The file of the source-language tokenizer when each language has its own.
pub const SOURCE_TOKENIZER_FILE: &str = "tokenizer.source.json";
/// The file of the target-language tokenizer when each language has its own.
pub const TARGET_TOKENIZER_FILE: &str = "tokenizer.target.json";

/// How to train the tokenizers of a translation model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranslationTokenizersConfig {
    /// One tokenizer trained on both languages (default true; NeMo 1.x's `shared_tokenizer`),
    /// or one per language.
    #[doc(alias = "joint")]
    #[serde(alias = "joint")]
    pub shared_tokenizer: bool,
    /// Vocabulary size of each tokenizer (default 8192).
    pub vocab_size: usize,
    /// Pairs seen fewer times are never merged (default 2).
    pub min_frequency: u64,
}

impl Default for TranslationTokenizersConfig {
    fn default() -> Self {
        let bpe = BpeTokenizerConfig::default();
        Self {
            shared_tokenizer: true,
            vocab_size: bpe.vocab_size,
            min_frequency: bpe.min_frequency,
        }
    }
}

impl TranslationTokenizersConfig {
    /// The settings of each BPE tokenizer.
    pub fn bpe(&self) -> BpeTokenizerConfig {
        BpeTokenizerConfig {
            vocab_size: self.vocab_size,
            min_frequency: self.min_frequency,
        }
    }

    /// Trains on the source and target text files (one sentence per line): one tokenizer on
    /// both, or one on each.
    pub fn train(
        &self,
        source_files: &[impl AsRef<Path>],
        target_files: &[impl AsRef<Path>],
    ) -> Result<TranslationTokenizers> {
        let bpe = self.bpe();
        if self.shared_tokenizer {
            let files: Vec<&Path> = source_files
                .iter()
                .map(AsRef::as_ref)
                .chain(target_files.iter().map(AsRef::as_ref))
                .collect();
            Ok(TranslationTokenizers::shared(bpe.train(&files)?))
        } else {
            Ok(TranslationTokenizers::separate(
                bpe.train(source_files)?,
                bpe.train(target_files)?,
            ))
        }
    }
}

/// The source and target tokenizers of a translation model (possibly one and the same).
#[derive(Debug, Clone)]
pub struct TranslationTokenizers {
    source: Arc<BpeTokenizer>,
    target: Arc<BpeTokenizer>,
}

impl TranslationTokenizers {
    /// One tokenizer for both languages.
    pub fn shared(tokenizer: BpeTokenizer) -> Self {
        let tokenizer = Arc::new(tokenizer);
        Self {
            source: tokenizer.clone(),
            target: tokenizer,
        }
    }

    /// One tokenizer per language.
    pub fn separate(source: BpeTokenizer, target: BpeTokenizer) -> Self {
        Self {
            source: Arc::new(source),
            target: Arc::new(target),
        }
    }

    /// Whether both languages use one tokenizer.
    pub fn is_shared(&self) -> bool {
        Arc::ptr_eq(&self.source, &self.target)
    }

    /// The source-language tokenizer.
    pub fn source(&self) -> &BpeTokenizer {
        &self.source
    }

    /// The target-language tokenizer.
    pub fn target(&self) -> &BpeTokenizer {
        &self.target
    }

    /// Writes the tokenizer file(s) into the model directory `dir` (created if missing) and
    /// removes the other layout's files.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let (write, stale): (Vec<(&str, &BpeTokenizer)>, [&str; 2]) = if self.is_shared() {
            (
                vec![(SHARED_TOKENIZER_FILE, &self.source)],
                [SOURCE_TOKENIZER_FILE, TARGET_TOKENIZER_FILE],
            )
        } else {
            (
                vec![
                    (SOURCE_TOKENIZER_FILE, &self.source),
                    (TARGET_TOKENIZER_FILE, &self.target),
                ],
                [SHARED_TOKENIZER_FILE, SHARED_TOKENIZER_FILE],
            )
        };
        for (name, tokenizer) in write {
            tokenizer.save(dir.join(name))?;
        }
        for name in stale {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Io { path, source }),
            }
        }
        Ok(())
    }

    /// Reads the tokenizer(s) of the model directory `dir`: [`SHARED_TOKENIZER_FILE`], or
    /// [`SOURCE_TOKENIZER_FILE`] and [`TARGET_TOKENIZER_FILE`].
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let shared = dir.join(SHARED_TOKENIZER_FILE);
        let source = dir.join(SOURCE_TOKENIZER_FILE);
        let target = dir.join(TARGET_TOKENIZER_FILE);
        let error = |msg: String| Error::TokenizerFile {
            path: dir.to_path_buf(),
            msg,
        };
        match (shared.is_file(), source.is_file(), target.is_file()) {
            (true, false, false) => Ok(Self::shared(BpeTokenizer::from_file(&shared)?)),
            (false, true, true) => Ok(Self::separate(
                BpeTokenizer::from_file(&source)?,
                BpeTokenizer::from_file(&target)?,
            )),
            (true, _, _) => Err(error(format!(
                "both a shared `{SHARED_TOKENIZER_FILE}` and per-language tokenizer files; keep one layout"
            ))),
            (false, true, false) => Err(error(format!(
                "`{SOURCE_TOKENIZER_FILE}` without `{TARGET_TOKENIZER_FILE}`"
            ))),
            (false, false, true) => Err(error(format!(
                "`{TARGET_TOKENIZER_FILE}` without `{SOURCE_TOKENIZER_FILE}`"
            ))),
            (false, false, false) => Err(error(format!(
                "no tokenizer: expected `{SHARED_TOKENIZER_FILE}`, or `{SOURCE_TOKENIZER_FILE}` and `{TARGET_TOKENIZER_FILE}`"
            ))),
        }
    }
}
