//! The Transformer NMT modules of the paper's §4.2.1, typed: each wraps the core's Transformer
//! layers (`nemo_core::nn::transformer`) behind NeMo's ports.
//!
//! ```text
//! src, src_mask, tgt, tgt_mask, labels, sent_ids = TranslationDataLayer
//! src_hiddens = TransformerEncoderNm(input_ids = src, input_mask_src = src_mask)
//! tgt_hiddens = TransformerDecoderNm(input_ids_tgt = tgt, hidden_states_src = src_hiddens,
//!                                    input_mask_src = src_mask, input_mask_tgt = tgt_mask)
//! log_probs   = TransformerLogSoftmaxNm(hidden_states = tgt_hiddens)
//! loss        = PaddedSmoothedCrossEntropyLossNm(log_probs, target_ids = labels)
//! output_ids  = BeamSearchTranslatorNm(hidden_states_src = src_hiddens, input_mask_src = src_mask)
//! ```
//!
//! - [`transformer_encoder_nm`], [`transformer_decoder_nm`], [`transformer_log_softmax_nm`];
//! - [`beam_search_translator_nm`], [`greedy_translator_nm`]: generation;
//! - [`translation_search`]: the one search call over the core's `TransformerStepDecoder`;
//! - the loss is in [`crate::losses`].

pub mod beam_search_translator_nm;
pub mod greedy_translator_nm;
pub mod transformer_decoder_nm;
pub mod transformer_encoder_nm;
pub mod transformer_log_softmax_nm;
mod transformer_settings;
pub mod translation_search;

pub use beam_search_translator_nm::{
    BeamSearchTranslatorNm, BeamSearchTranslatorNmConfig, BeamSearchTranslatorNmInputs,
    BeamSearchTranslatorNmOutputs,
};
pub use greedy_translator_nm::{
    GreedyTranslatorNm, GreedyTranslatorNmConfig, GreedyTranslatorNmInputs,
    GreedyTranslatorNmOutputs,
};
pub use transformer_decoder_nm::{
    TransformerDecoderNm, TransformerDecoderNmConfig, TransformerDecoderNmInputs,
    TransformerDecoderNmOutputs,
};
pub use transformer_encoder_nm::{
    TransformerEncoderNm, TransformerEncoderNmConfig, TransformerEncoderNmInputs,
    TransformerEncoderNmOutputs,
};
pub use transformer_log_softmax_nm::{
    TransformerLogSoftmaxNm, TransformerLogSoftmaxNmConfig, TransformerLogSoftmaxNmInputs,
    TransformerLogSoftmaxNmOutputs,
};
pub use translation_search::search;
