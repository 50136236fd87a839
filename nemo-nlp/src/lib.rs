//! Language collection of nemo-rs.
//!
//! NeMo 0.x's NLP pieces for neural machine translation, typed as the rest of nemo-rs:
//!
//! * [`data`] — the translation data layer: aligned text files, NeMo's cleaning rules, batches
//!   by token count on typed ports (`src_ids`, `src_mask`, `tgt_ids`, `tgt_mask`, `labels`,
//!   `sent_ids`);
//! * [`element_types`] — [`TokenIds`], [`SourceMask`] and [`TargetMask`], so ids and masks,
//!   or the two masks, cannot be swapped;
//! * [`modules`] — the Transformer encoder, decoder and tied log-softmax of the paper's §4.2.1,
//!   the beam-search and greedy translators (over the core's `TransformerStepDecoder`);
//! * [`losses`] — NeMo's label-smoothed, pad-masked cross-entropy;
//! * [`models`] — [`MtEncDecModel`](models::MtEncDecModel): the modules wired as the paper's
//!   graph, translation, a self-contained model directory;
//! * [`train`] — the run config and the training task for the core runner;
//! * [`metrics`] — BLEU equal to SacreBLEU 2.6.0's (13a tokenisation, `exp` smoothing, the
//!   signature line);
//! * [`tokenizer`] — byte-level BPE tokenizers (Hugging Face `tokenizers`) with fixed special
//!   ids, trained from text files, kept in a model directory as `tokenizer.json`;
//! * [`text_file`] — one-sentence-per-line corpora.
//!
//! # Deviations from NeMo 0.11
//!
//! Each is explained where it is made; in short:
//! * ids are typed [`TokenIds`] (NeMo: `ChannelType` / `LabelsType`), line numbers `Index`
//!   (NeMo: `ChannelType`), masks [`SourceMask`] / [`TargetMask`] (NeMo: `MaskType` /
//!   `ChannelType`), so ids and masks cannot be swapped ([`element_types`]);
//! * masks are `u8`, not float; `sent_ids` are line numbers in the files, not indices of the
//!   cleaned pairs; `shuffle: false` is honoured and the shuffle is seeded; `tgt_ids` and
//!   `tgt_mask` stop before `<EOS>` in every row ([`data::translation::data_layer`],
//!   [`data::translation::dataset`]);
//! * a batch never exceeds `tokens_in_batch` unless one pair does; the look-ahead skips empty
//!   buckets ([`data::translation::batching`]); the cleaning limits are config keys and
//!   source = target compares texts ([`data::translation::cleaning`]);
//! * byte-level BPE instead of YouTokenToMe, with YouTokenToMe's special ids (no unknown
//!   tokens, exact detokenisation) ([`tokenizer`]).
//!
//! Sibling crates: `nemo-core` (types, modules, training), `nemo-macros`, `nemo-asr` (speech),
//! and the facade `nemo`, which re-exports this crate as `nemo::nlp`.

pub mod data;
pub mod element_types;
pub mod error;
pub mod losses;
pub mod metrics;
pub mod models;
pub mod modules;
pub mod text_file;
pub mod tokenizer;
pub mod train;

pub use data::{TranslationDataLayer, TranslationDataLayerConfig};
pub use element_types::{SourceMask, TargetMask, TokenIds};
pub use error::{Error, Result};
pub use metrics::{Bleu, BleuScore, corpus_bleu, sentence_bleu};
pub use tokenizer::{
    BpeTokenizer, BpeTokenizerConfig, TranslationTokenizers, TranslationTokenizersConfig,
};
