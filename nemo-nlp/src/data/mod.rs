//! Data pipelines of the NLP collection.
//!
//! - [`translation`]: aligned source/target text files → cleaned, token-bucketed batches
//!   `src_ids`, `src_mask`, `tgt_ids`, `tgt_mask`, `labels`, `sent_ids`
//!   ([`TranslationDataLayer`]).

pub mod translation;

pub use translation::{
    CleaningRules, CleaningSummary, TranslationBatch, TranslationDataLayer,
    TranslationDataLayerConfig, TranslationDataLayerHandles, TranslationDataLayerOutputTensors,
    TranslationDataLayerOutputs, TranslationDataset, TranslationEpoch,
};
