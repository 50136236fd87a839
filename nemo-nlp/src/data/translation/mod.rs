//! Parallel text for machine translation (NeMo's `TranslationDataset` and
//! `TranslationDataLayer`).
//!
//! - [`cleaning`]: NeMo's rules for dropping noisy pairs ([`CleaningRules`], [`CleaningSummary`]);
//! - [`batching`]: packing pairs into batches by token count ([`pack_into_batches`]);
//! - [`dataset`]: files → token ids → kept pairs → batches, and a batch's tensors
//!   ([`TranslationDataset`], [`collate`]);
//! - [`data_layer`]: the typed data layer ([`TranslationDataLayer`], its config and epochs).

pub mod batching;
pub mod cleaning;
pub mod data_layer;
pub mod dataset;

pub use batching::{batch_tokens, pack_into_batches};
pub use cleaning::{CleaningRules, CleaningSummary, DropReason};
pub use data_layer::{
    TranslationBatch, TranslationDataLayer, TranslationDataLayerConfig,
    TranslationDataLayerHandles, TranslationDataLayerOutputTensors, TranslationDataLayerOutputs,
    TranslationEpoch,
};
pub use dataset::{TranslationDataset, TranslationPair, collate};
