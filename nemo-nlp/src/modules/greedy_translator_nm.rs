//! `GreedyTranslatorNm`: the encoded source in, token ids out, taking the most probable token at
//! each step (NeMo 0.x's `GreedySequenceGenerator` behind the translator's ports). It is what
//! evaluation during training decodes with: a beam of 4 costs about four times as much.
//!
//! | port | type |
//! |---|---|
//! | `hidden_states_src` | `(B, T_src, D) EncodedRepresentation` |
//! | `input_mask_src` | `(B, T_src) SourceMask` |
//! | `output_ids` | `(B, T_out) TokenIds` |
//!
//! Lengths follow NeMo's rule, `min(max_seq_length, source length + max_delta_length)`; the
//! output has no `<BOS>` or `<EOS>` and is padded with `<PAD>`.

use nemo_core::decoding::BeamSearchConfig;
use nemo_core::{Forward, ForwardCtx, neural_module};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::element_types::{SourceMask, TokenIds};

use super::transformer_decoder_nm::TransformerDecoderNm;
use super::transformer_log_softmax_nm::TransformerLogSoftmaxNm;
use super::translation_search::{ids_to_tensor, search};

fn default_max_seq_length() -> usize {
    512
}

fn default_max_delta_length() -> usize {
    50
}

/// Length limits of a [`GreedyTranslatorNm`] (NeMo's names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreedyTranslatorNmConfig {
    /// Most tokens of a translation, `<EOS>` excluded (default 512).
    #[serde(default = "default_max_seq_length")]
    pub max_seq_length: usize,
    /// A translation is at most this many tokens longer than its source (default 50).
    #[serde(default = "default_max_delta_length")]
    pub max_delta_length: usize,
}

impl Default for GreedyTranslatorNmConfig {
    fn default() -> Self {
        GreedyTranslatorNmConfig {
            max_seq_length: default_max_seq_length(),
            max_delta_length: default_max_delta_length(),
        }
    }
}

impl GreedyTranslatorNmConfig {
    /// The core search settings: a beam of 1.
    pub fn search_config(&self) -> BeamSearchConfig {
        BeamSearchConfig {
            beam_size: 1,
            max_len: self.max_seq_length,
            max_len_a: 1.0,
            max_len_b: self.max_delta_length,
            ..BeamSearchConfig::default()
        }
    }

    /// A translator driving `decoder` and `log_softmax` (their weights are shared).
    pub fn init(
        &self,
        decoder: &TransformerDecoderNm,
        log_softmax: &TransformerLogSoftmaxNm,
    ) -> Result<GreedyTranslatorNm> {
        self.search_config().validate()?;
        Ok(GreedyTranslatorNm {
            d_model: decoder.config().d_model,
            decoder: decoder.clone(),
            log_softmax: log_softmax.clone(),
            config: self.clone(),
        })
    }
}

/// Greedy search over a decoder and its output projection, typed; see the
/// [module docs](self).
#[neural_module(
    inputs(
        hidden_states_src: (B, T as src_time, D = d_model) EncodedRepresentation,
        input_mask_src: (B, T as src_time) SourceMask,
    ),
    outputs(output_ids: (B, T as out_time) TokenIds),
)]
#[derive(Debug, Clone)]
#[doc(alias = "GreedySequenceGenerator")]
pub struct GreedyTranslatorNm {
    d_model: usize,
    decoder: TransformerDecoderNm,
    log_softmax: TransformerLogSoftmaxNm,
    config: GreedyTranslatorNmConfig,
}

impl GreedyTranslatorNm {
    /// The length limits.
    pub fn config(&self) -> &GreedyTranslatorNmConfig {
        &self.config
    }
}

impl Forward for GreedyTranslatorNm {
    fn forward_tensors(
        &self,
        x: GreedyTranslatorNmInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo_core::Result<GreedyTranslatorNmOutputTensors> {
        let rows = search(
            &self.decoder,
            &self.log_softmax,
            &x.hidden_states_src,
            &x.input_mask_src,
            &self.config.search_config(),
        )?;
        Ok(GreedyTranslatorNmOutputTensors {
            output_ids: ids_to_tensor(&rows, x.hidden_states_src.device())?,
        })
    }
}
