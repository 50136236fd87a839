//! NeMo's `TranslationDataLayer`: parallel text in, token-bucketed batches of a source and a
//! target language out, on typed ports.
//!
//! | port | type | NeMo 0.11 |
//! |---|---|---|
//! | `src_ids` | `(B, T) TokenIds` | `(B, T) ChannelType` |
//! | `src_mask` | `(B, T) SourceMask` | `(B, T) MaskType` |
//! | `tgt_ids` | `(B, T) TokenIds` | `(B, T) LabelsType` |
//! | `tgt_mask` | `(B, T) TargetMask` | `(B, T) MaskType` |
//! | `labels` | `(B, T) TokenIds` | `(B, T) LabelsType` |
//! | `sent_ids` | `(B) Index` | `(B) ChannelType` |
//!
//! Ids are [`TokenIds`] (a kind of `Labels` that a `Mask` is not) and line numbers `Index`, so
//! a mask wired into an ids port, or ids into a mask port, fails to compile; the masks are
//! [`SourceMask`] and [`TargetMask`], so neither goes where the other is read. The source ports
//! share one time symbol and the target ports another, checked when a batch is made. The
//! [dataset](super::dataset) describes the tensors; [`TranslationDataLayerConfig`] the settings.
//!
//! A module that reads token ids takes `batch.src_ids`...
//!
//! ```no_run
//! use nemo_core::prelude::*;
//! use nemo_nlp::TokenIds;
//!
//! #[neural_module(inputs(input_ids: (B, T) TokenIds), outputs(ids: (B, T) TokenIds))]
//! struct Passthrough;
//!
//! impl Forward for Passthrough {
//!     fn forward_tensors(&self, x: PassthroughInputTensors, _: &ForwardCtx) -> nemo_core::Result<PassthroughOutputTensors> {
//!         Ok(PassthroughOutputTensors { ids: x.input_ids })
//!     }
//! }
//!
//! fn wire(layer: &nemo_nlp::TranslationDataLayer, batch: nemo_nlp::data::TranslationBatch) -> nemo_core::Result<()> {
//!     let batch = layer.wrap_outputs(batch)?;
//!     Passthrough.forward(PassthroughInputs { input_ids: &batch.src_ids })?;
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! ...and `batch.src_mask` in its place does not compile: "error\[E0277\]: port `input_ids` of
//! `Passthrough` expects `(B, T) TokenIds`, found `(B, T) SourceMask`". Ids into a `Mask` port fail the same way.
//!
//! ```compile_fail
//! # use nemo_core::prelude::*;
//! # use nemo_nlp::TokenIds;
//! #
//! # #[neural_module(inputs(input_ids: (B, T) TokenIds), outputs(ids: (B, T) TokenIds))]
//! # struct Passthrough;
//! #
//! # impl Forward for Passthrough {
//! #     fn forward_tensors(&self, x: PassthroughInputTensors, _: &ForwardCtx) -> nemo_core::Result<PassthroughOutputTensors> {
//! #         Ok(PassthroughOutputTensors { ids: x.input_ids })
//! #     }
//! # }
//! #
//! fn wire(layer: &nemo_nlp::TranslationDataLayer, batch: nemo_nlp::data::TranslationBatch) -> nemo_core::Result<()> {
//!     let batch = layer.wrap_outputs(batch)?;
//!     Passthrough.forward(PassthroughInputs { input_ids: &batch.src_mask })?;
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! Batches are made once, from the token-count packing of NeMo's `TranslationDataset`; each epoch
//! visits all of them in an order shuffled by a ChaCha8 generator seeded with `seed` on stream
//! `epoch`, so the order depends only on the seed and the epoch. `sent_ids` give each row's line
//! in the files, to put translations back in the input's order.
//!
//! Differences from NeMo 0.11: the port types above; masks are `u8` (NeMo: float), which candle's
//! `where_cond` takes and which keeps mixed-precision calls free of a float dtype clash;
//! `sent_ids` are line numbers in the files (NeMo's index the pairs left after cleaning);
//! `shuffle: false` keeps NeMo's batch order (NeMo's layer shuffles whatever `shuffle` says) and
//! the shuffle is seeded; batches never exceed `tokens_in_batch` unless one pair does (see
//! [`batching`](super::batching)); the cleaning limits are config keys; `tgt_ids` and `tgt_mask`
//! stop before `<EOS>` in every row (see [`dataset`](super::dataset)); source = target compares
//! the texts (NeMo compares ids, which is the same for a shared tokenizer).
//!
//! ```no_run
//! # fn main() -> nemo_nlp::Result<()> {
//! use candle_core::Device;
//! use nemo_nlp::data::{TranslationDataLayer, TranslationDataLayerConfig};
//! use nemo_nlp::tokenizer::TranslationTokenizers;
//! let tokenizers = TranslationTokenizers::load("runs/nmt")?;
//! let mut config = TranslationDataLayerConfig::new("corpus/bible/train.en", "corpus/bible/train.es");
//! config.tokens_in_batch = 4096;
//! config.clean = true;
//! let layer = TranslationDataLayer::new(config, &tokenizers)?;
//! println!("{}", layer.summary()); // what cleaning dropped
//! for batch in layer.epoch(0, &Device::Cpu) {
//!     let batch = batch?;
//!     let typed = layer.wrap_outputs(batch)?; // NTensor<(B, T), TokenIds>, ...
//!     # let _ = typed;
//! }
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;

use candle_core::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use nemo_core::dag::DataLayer;
use nemo_core::module::{NamedTensors, PortTypes, TensorStruct};
use nemo_core::{NeuralModule, neural_module};

use super::cleaning::{CleaningRules, CleaningSummary};
use super::dataset::TranslationDataset;
use crate::element_types::{SourceMask, TargetMask, TokenIds};
use crate::tokenizer::TranslationTokenizers;
use crate::{Error, Result};

fn default_tokens_in_batch() -> usize {
    1024
}
fn default_true() -> bool {
    true
}
fn default_batch_size_multiple() -> usize {
    8
}

/// Settings of [`TranslationDataLayer`], with NeMo 0.11's keys and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslationDataLayerConfig {
    /// Source-language text, one sentence per line (NeMo's `dataset_src`).
    pub dataset_src: PathBuf,
    /// Target-language text, aligned line by line with the source (`dataset_tgt`).
    pub dataset_tgt: PathBuf,
    /// Most padded tokens in a batch, source and target together with `<BOS>`/`<EOS>`
    /// (default 1024).
    #[serde(default = "default_tokens_in_batch")]
    pub tokens_in_batch: usize,
    /// Drop noisy pairs by NeMo's rules (default false; for training data, not evaluation).
    #[serde(default)]
    pub clean: bool,
    /// Visit the batches in a new order every epoch (default true, as NeMo's layer always
    /// does); false keeps the packing order.
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// Seed of the per-epoch shuffle (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Cleaning: longest side kept, tokens with `<BOS>`/`<EOS>` (default 128).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Cleaning: shortest side kept, tokens with `<BOS>`/`<EOS>` (default 3).
    #[serde(default = "default_min_tokens")]
    pub min_tokens: usize,
    /// Cleaning: largest length difference kept (default 25).
    #[serde(default = "default_max_tokens_diff")]
    pub max_tokens_diff: usize,
    /// Cleaning: largest length ratio kept (default 2.5).
    #[serde(default = "default_max_tokens_ratio")]
    pub max_tokens_ratio: f64,
    /// A batch that overflows is cut to a multiple of this many pairs, the rest starting the
    /// next batch (default 8, NeMo's; 1 turns it off).
    #[serde(default = "default_batch_size_multiple")]
    pub batch_size_multiple: usize,
}

fn default_max_tokens() -> usize {
    CleaningRules::default().max_tokens
}
fn default_min_tokens() -> usize {
    CleaningRules::default().min_tokens
}
fn default_max_tokens_diff() -> usize {
    CleaningRules::default().max_tokens_diff
}
fn default_max_tokens_ratio() -> f64 {
    CleaningRules::default().max_tokens_ratio
}

impl TranslationDataLayerConfig {
    /// NeMo's defaults for the two files.
    pub fn new(dataset_src: impl Into<PathBuf>, dataset_tgt: impl Into<PathBuf>) -> Self {
        let rules = CleaningRules::default();
        Self {
            dataset_src: dataset_src.into(),
            dataset_tgt: dataset_tgt.into(),
            tokens_in_batch: default_tokens_in_batch(),
            clean: false,
            shuffle: true,
            seed: 0,
            max_tokens: rules.max_tokens,
            min_tokens: rules.min_tokens,
            max_tokens_diff: rules.max_tokens_diff,
            max_tokens_ratio: rules.max_tokens_ratio,
            batch_size_multiple: default_batch_size_multiple(),
        }
    }

    /// The cleaning limits.
    pub fn cleaning_rules(&self) -> CleaningRules {
        CleaningRules {
            max_tokens: self.max_tokens,
            min_tokens: self.min_tokens,
            max_tokens_diff: self.max_tokens_diff,
            max_tokens_ratio: self.max_tokens_ratio,
        }
    }

    /// Checks the values; an error names the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| {
            Err(Error::Config {
                key: key.into(),
                msg,
            })
        };
        if self.tokens_in_batch == 0 {
            return bad("tokens_in_batch", "must be at least 1".into());
        }
        if self.batch_size_multiple == 0 {
            return bad("batch_size_multiple", "must be at least 1".into());
        }
        if let Err((key, msg)) = self.cleaning_rules().validate() {
            return bad(key, msg);
        }
        Ok(())
    }
}

/// One batch, the six output ports of [`TranslationDataLayer`] as plain tensors (see the
/// [dataset](super::dataset) for their contents); [`TranslationDataLayer::wrap_outputs`] checks
/// and types them.
pub type TranslationBatch = TranslationDataLayerOutputTensors;

/// NeMo's `TranslationDataLayer`: a [`TranslationDataset`] visited in a seeded order each epoch,
/// on typed output ports. Iterate [`epoch`](Self::epoch) for eager training, or add it to a lazy
/// graph with `call` (it is a [`DataLayer`]).
#[neural_module(
    kind = data_layer,
    outputs(
        src_ids: (B, T as src_time) TokenIds,
        src_mask: (B, T as src_time) SourceMask,
        tgt_ids: (B, T as tgt_time) TokenIds,
        tgt_mask: (B, T as tgt_time) TargetMask,
        labels: (B, T as tgt_time) TokenIds,
        sent_ids: (B) Index,
    ),
)]
#[derive(Debug)]
pub struct TranslationDataLayer {
    config: TranslationDataLayerConfig,
    dataset: TranslationDataset,
    device: Device,
}

impl TranslationDataLayer {
    /// Reads, tokenises, cleans and batches the files of `config` (see
    /// [`TranslationDataset::new`]); graph batches are made on the CPU until
    /// [`on_device`](Self::on_device).
    pub fn new(
        config: TranslationDataLayerConfig,
        tokenizers: &TranslationTokenizers,
    ) -> Result<Self> {
        let dataset = TranslationDataset::new(&config, tokenizers)?;
        Ok(Self::from_dataset(config, dataset))
    }

    /// The layer over a dataset made already; `config` gives the shuffle settings.
    pub fn from_dataset(config: TranslationDataLayerConfig, dataset: TranslationDataset) -> Self {
        Self {
            config,
            dataset,
            device: Device::Cpu,
        }
    }

    /// The same layer making its graph batches on `device`.
    pub fn on_device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// The settings.
    pub fn config(&self) -> &TranslationDataLayerConfig {
        &self.config
    }

    /// The dataset.
    pub fn dataset(&self) -> &TranslationDataset {
        &self.dataset
    }

    /// Sentence pairs kept.
    pub fn len(&self) -> usize {
        self.dataset.len()
    }

    /// Whether no pair was kept.
    pub fn is_empty(&self) -> bool {
        self.dataset.is_empty()
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        self.dataset.num_batches()
    }

    /// Pairs read, kept and dropped by cleaning.
    pub fn summary(&self) -> CleaningSummary {
        self.dataset.summary()
    }

    /// The order the batches are visited in `epoch`: `0..num_batches` shuffled by a ChaCha8
    /// generator seeded with `seed` on stream `epoch` when `shuffle`, else in order.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.num_batches()).collect();
        if self.config.shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
            rng.set_stream(epoch);
            order.shuffle(&mut rng);
        }
        order
    }

    /// The batches of `epoch`, made on `device` as they are consumed.
    pub fn epoch(&self, epoch: u64, device: &Device) -> TranslationEpoch<'_> {
        TranslationEpoch {
            dataset: &self.dataset,
            order: self.epoch_order(epoch).into_iter(),
            device: device.clone(),
        }
    }
}

impl DataLayer for TranslationDataLayer {
    fn type_name(&self) -> &'static str {
        <Self as NeuralModule>::NAME
    }

    fn dyn_output_types(&self) -> PortTypes {
        NeuralModule::output_types(self)
    }

    fn num_batches(&self) -> usize {
        TranslationDataLayer::num_batches(self)
    }

    /// Batch `index` of [`epoch_order`](TranslationDataLayer::epoch_order)`(epoch)`, checked
    /// against the output ports.
    fn batch(&self, epoch: u64, index: usize) -> nemo_core::Result<NamedTensors> {
        let Some(&b) = self.epoch_order(epoch).get(index) else {
            return Err(Error::Config {
                key: "batch".into(),
                msg: format!(
                    "batch {index} of epoch {epoch} is past the layer's {} batches",
                    self.num_batches()
                ),
            }
            .into());
        };
        let batch = self.dataset.collate_batch(b, &self.device)?;
        let typed = self.wrap_outputs(batch)?;
        Ok(TranslationBatch {
            src_ids: typed.src_ids.into_tensor(),
            src_mask: typed.src_mask.into_tensor(),
            tgt_ids: typed.tgt_ids.into_tensor(),
            tgt_mask: typed.tgt_mask.into_tensor(),
            labels: typed.labels.into_tensor(),
            sent_ids: typed.sent_ids.into_tensor(),
        }
        .into_named())
    }
}

/// The batches of one epoch, in the layer's order for that epoch.
#[derive(Debug)]
pub struct TranslationEpoch<'a> {
    dataset: &'a TranslationDataset,
    order: std::vec::IntoIter<usize>,
    device: Device,
}

impl Iterator for TranslationEpoch<'_> {
    type Item = Result<TranslationBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.order.next()?;
        Some(self.dataset.collate_batch(b, &self.device))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.order.size_hint()
    }
}

impl ExactSizeIterator for TranslationEpoch<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_match_nemo() -> Result<()> {
        let c: TranslationDataLayerConfig = serde_json::from_str(
            r#"{"dataset_src": "a.en", "dataset_tgt": "a.es"}"#,
        )
        .map_err(|e| Error::Config {
            key: "json".into(),
            msg: e.to_string(),
        })?;
        assert_eq!(c, TranslationDataLayerConfig::new("a.en", "a.es"));
        assert_eq!(c.tokens_in_batch, 1024);
        assert!(!c.clean && c.shuffle);
        assert_eq!(c.cleaning_rules(), CleaningRules::default());
        assert_eq!(c.batch_size_multiple, 8);
        let unknown = serde_json::from_str::<TranslationDataLayerConfig>(
            r#"{"dataset_src": "a", "dataset_tgt": "b", "tokens_per_batch": 9}"#,
        );
        assert!(unknown.is_err());
        Ok(())
    }

    #[test]
    fn invalid_settings_name_their_key() {
        let key = |c: TranslationDataLayerConfig| match c.validate() {
            Err(Error::Config { key, .. }) => key,
            other => format!("{other:?}"),
        };
        let base = TranslationDataLayerConfig::new("a", "b");
        assert_eq!(
            key(TranslationDataLayerConfig {
                tokens_in_batch: 0,
                ..base.clone()
            }),
            "tokens_in_batch"
        );
        assert_eq!(
            key(TranslationDataLayerConfig {
                batch_size_multiple: 0,
                ..base.clone()
            }),
            "batch_size_multiple"
        );
        assert_eq!(
            key(TranslationDataLayerConfig {
                min_tokens: 200,
                ..base.clone()
            }),
            "max_tokens"
        );
        assert_eq!(
            key(TranslationDataLayerConfig {
                max_tokens_ratio: f64::NAN,
                ..base
            }),
            "max_tokens_ratio"
        );
    }
}
