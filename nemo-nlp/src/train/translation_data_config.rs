//! The `train_ds:` section of a translation run config: how training batches are made from the
//! parallel text the command line names, and where the tokenizer comes from.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{CleaningRules, TranslationDataLayerConfig};
use crate::{Error, Result};

/// `train_ds:` of a translation run (NeMo's `TranslationDataLayer` settings without the files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranslationDataConfig {
    /// Most padded tokens in a training batch, source and target together (default 4096).
    pub tokens_in_batch: usize,
    /// Drop noisy training pairs by NeMo's rules (default true).
    pub clean: bool,
    /// Cleaning: longest side kept, with `<BOS>`/`<EOS>` (default 128).
    pub max_tokens: usize,
    /// Cleaning: shortest side kept (default 3).
    pub min_tokens: usize,
    /// Cleaning: largest length difference kept (default 25).
    pub max_tokens_diff: usize,
    /// Cleaning: largest length ratio kept (default 2.5).
    pub max_tokens_ratio: f64,
    /// An overflowing batch is cut to a multiple of this many pairs (default 8).
    pub batch_size_multiple: usize,
    /// Padded tokens per batch of the validation loss and per batch of source tokens when
    /// translating the validation set (default 8192).
    pub eval_tokens_in_batch: usize,
    /// Score BLEU during training on the first this many validation sentences only (default:
    /// all); the validation loss always covers all of them.
    pub eval_max_sentences: Option<usize>,
    /// A model directory (or folder) holding the tokenizer file(s) to use instead of training
    /// new ones from the training text.
    pub tokenizer_dir: Option<PathBuf>,
}

impl Default for TranslationDataConfig {
    fn default() -> Self {
        let rules = CleaningRules::default();
        TranslationDataConfig {
            tokens_in_batch: 4096,
            clean: true,
            max_tokens: rules.max_tokens,
            min_tokens: rules.min_tokens,
            max_tokens_diff: rules.max_tokens_diff,
            max_tokens_ratio: rules.max_tokens_ratio,
            batch_size_multiple: 8,
            eval_tokens_in_batch: 8192,
            eval_max_sentences: None,
            tokenizer_dir: None,
        }
    }
}

impl TranslationDataConfig {
    /// The training layer's settings over `src` and `tgt`, shuffled with `seed`.
    pub fn train_layer(&self, src: &Path, tgt: &Path, seed: u64) -> TranslationDataLayerConfig {
        TranslationDataLayerConfig {
            tokens_in_batch: self.tokens_in_batch,
            clean: self.clean,
            shuffle: true,
            seed,
            max_tokens: self.max_tokens,
            min_tokens: self.min_tokens,
            max_tokens_diff: self.max_tokens_diff,
            max_tokens_ratio: self.max_tokens_ratio,
            batch_size_multiple: self.batch_size_multiple,
            ..TranslationDataLayerConfig::new(src, tgt)
        }
    }

    /// A validation layer's settings over `src` and `tgt`: every pair, in packing order.
    pub fn eval_layer(&self, src: &Path, tgt: &Path) -> TranslationDataLayerConfig {
        TranslationDataLayerConfig {
            tokens_in_batch: self.eval_tokens_in_batch,
            clean: false,
            shuffle: false,
            batch_size_multiple: 1,
            ..TranslationDataLayerConfig::new(src, tgt)
        }
    }

    /// Checks the values; errors name the key under `train_ds`.
    pub fn validate(&self) -> Result<()> {
        let layer = self.train_layer(Path::new(""), Path::new(""), 0);
        layer.validate().map_err(|e| match e {
            Error::Config { key, msg } => Error::Config {
                key: format!("train_ds.{key}"),
                msg,
            },
            e => e,
        })?;
        if self.eval_tokens_in_batch == 0 {
            return Err(Error::Config {
                key: "train_ds.eval_tokens_in_batch".into(),
                msg: "must be at least 1".into(),
            });
        }
        if self.eval_max_sentences == Some(0) {
            return Err(Error::Config {
                key: "train_ds.eval_max_sentences".into(),
                msg: "must be at least 1 (leave it out to score all)".into(),
            });
        }
        Ok(())
    }
}
