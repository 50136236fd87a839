//! Training a translation model with the core runner ([`nemo_core::train::run`]): the run
//! config (`model:`, `train_ds:`, `train:`), the training task and the validation set.
//!
//! - [`translation_data_config`]: `train_ds:` ([`TranslationDataConfig`]);
//! - [`translation_train_task`]: [`TranslationTrainTask`], batches by global index, loss
//!   normalised by target tokens;
//! - [`translation_eval_set`]: [`TranslationEvalSet`], validation loss and BLEU.

use std::path::Path;

pub mod translation_data_config;
pub mod translation_eval_set;
pub mod translation_train_task;

pub use translation_data_config::TranslationDataConfig;
pub use translation_eval_set::{TranslationEval, TranslationEvalSet};
pub use translation_train_task::TranslationTrainTask;

use crate::models::MtEncDecModelConfig;
use crate::{Error, Result};

/// A whole translation run: `model:` ([`MtEncDecModelConfig`]), `train_ds:`
/// ([`TranslationDataConfig`]) and the core's `train:` section.
pub type TranslationRunConfig =
    nemo_core::train::RunConfig<MtEncDecModelConfig, TranslationDataConfig>;

/// Reads and validates a run config; errors name the file, line and key.
pub fn read_run_config(path: &Path) -> Result<TranslationRunConfig> {
    let cfg = TranslationRunConfig::from_yaml_file(path)?;
    let named = |e: Error| match e {
        Error::Config { key, msg } => Error::Config {
            key: format!("{}: {key}", path.display()),
            msg,
        },
        e => e,
    };
    cfg.model.validate().map_err(|e| match e {
        Error::Config { key, msg } => named(Error::Config {
            key: format!("model.{key}"),
            msg,
        }),
        e => e,
    })?;
    cfg.train_ds.validate().map_err(named)?;
    Ok(cfg)
}
