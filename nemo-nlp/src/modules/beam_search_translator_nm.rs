//! `BeamSearchTranslatorNm` (NeMo 0.x's `BeamSearchTranslatorNM`, `transformer_nm.py` at
//! v0.11.1): the encoded source in, the best translation's token ids out, by beam search over
//! a [`TransformerDecoderNm`] and its [`TransformerLogSoftmaxNm`].
//!
//! | port | type | NeMo 0.11 |
//! |---|---|---|
//! | `hidden_states_src` | `(B, T_src, D) EncodedRepresentation` | `(B, T, D) ChannelType` |
//! | `input_mask_src` | `(B, T_src) SourceMask` | `(B, T) ChannelType` |
//! | `output_ids` | `(B, T_out) TokenIds` | `(B, T) ChannelType` |
//!
//! `output_ids` holds each row's tokens without `<BOS>` and `<EOS>`, padded with `<PAD>` (NeMo
//! keeps the leading `<BOS>`). A hypothesis that ends scores `log p / lp(len)`: NeMo's `len^α`
//! (`length_penalty_kind: power`, the default) or GNMT's `((5 + len) / 6)^α`; α = 0 (NeMo's
//! default) ranks by `log p` alone. Search settings and their NeMo names:
//! [`BeamSearchTranslatorNmConfig`]; the search itself: [`search`](super::translation_search).
//!
//! Like NeMo's module, it is built from the decoder and the output projection it drives (it has
//! no weights of its own), so it is not one of the YAML types.

use candle_core::Device;
use nemo_core::decoding::{BeamSearchConfig, FinishedHypotheses, LengthPenalty};
use nemo_core::{Forward, ForwardCtx, neural_module};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::element_types::{SourceMask, TokenIds};

use super::transformer_decoder_nm::TransformerDecoderNm;
use super::transformer_log_softmax_nm::TransformerLogSoftmaxNm;
use super::translation_search::{ids_to_tensor, search};

fn default_beam_size() -> usize {
    4
}

fn default_max_seq_length() -> usize {
    512
}

fn default_max_delta_length() -> usize {
    50
}

fn default_finished_hypotheses() -> FinishedHypotheses {
    FinishedHypotheses::Nemo
}

fn default_length_penalty_kind() -> LengthPenalty {
    LengthPenalty::Power
}

/// How translations are searched: NeMo's `BeamSearchTranslatorNM` arguments (a model's
/// `decoding:` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeamSearchTranslatorNmConfig {
    /// Hypotheses kept per sentence (default 4, NeMo's); 1 is greedy search.
    #[serde(default = "default_beam_size")]
    pub beam_size: usize,
    /// α of the length penalty (default 0, NeMo's: no normalisation; its scripts' `len_pen`).
    #[serde(default, alias = "len_pen")]
    pub length_penalty: f64,
    /// `power` (default): NeMo's `len^α`; `gnmt`: `((5 + len) / 6)^α`.
    #[serde(default = "default_length_penalty_kind")]
    pub length_penalty_kind: LengthPenalty,
    /// Most tokens of a translation, `<EOS>` excluded (default 512; also capped by the
    /// decoder's position table).
    #[serde(default = "default_max_seq_length")]
    pub max_seq_length: usize,
    /// A translation is at most this many tokens longer than its source (default 50, NeMo's).
    #[serde(default = "default_max_delta_length")]
    pub max_delta_length: usize,
    /// What an ended hypothesis does: `nemo` (default; NeMo 0.x's generator: it stays in the
    /// beam emitting `<PAD>`, the search stops when all have ended) or `retire` (it leaves the
    /// beam; see `nemo_core::decoding::FinishedHypotheses`).
    #[serde(default = "default_finished_hypotheses")]
    pub finished_hypotheses: FinishedHypotheses,
}

impl Default for BeamSearchTranslatorNmConfig {
    fn default() -> Self {
        BeamSearchTranslatorNmConfig {
            beam_size: default_beam_size(),
            length_penalty: 0.0,
            length_penalty_kind: default_length_penalty_kind(),
            max_seq_length: default_max_seq_length(),
            max_delta_length: default_max_delta_length(),
            finished_hypotheses: default_finished_hypotheses(),
        }
    }
}

impl BeamSearchTranslatorNmConfig {
    /// The core search settings: NeMo's `max_delta_length` is `max_len_a: 1`,
    /// `max_len_b: max_delta_length`.
    pub fn search_config(&self) -> BeamSearchConfig {
        BeamSearchConfig {
            beam_size: self.beam_size,
            length_penalty: self.length_penalty,
            length_penalty_kind: self.length_penalty_kind,
            max_len: self.max_seq_length,
            max_len_a: 1.0,
            max_len_b: self.max_delta_length,
            finished_hypotheses: self.finished_hypotheses,
            pad_id: Some(crate::tokenizer::PAD_ID),
            ..BeamSearchConfig::default()
        }
    }

    /// The same limits with a beam of 1: greedy search.
    pub fn greedy(&self) -> Self {
        BeamSearchTranslatorNmConfig {
            beam_size: 1,
            ..self.clone()
        }
    }

    /// Checks the settings; errors name the key under `decoding`.
    pub fn validate(&self) -> Result<()> {
        Ok(self.search_config().validate()?)
    }

    /// A translator driving `decoder` and `log_softmax` (their weights are shared, not copied).
    pub fn init(
        &self,
        decoder: &TransformerDecoderNm,
        log_softmax: &TransformerLogSoftmaxNm,
    ) -> Result<BeamSearchTranslatorNm> {
        self.validate()?;
        Ok(BeamSearchTranslatorNm {
            d_model: decoder.config().d_model,
            decoder: decoder.clone(),
            log_softmax: log_softmax.clone(),
            config: self.clone(),
        })
    }
}

/// Beam search over a decoder and its output projection, typed; see the [module docs](self).
#[neural_module(
    inputs(
        hidden_states_src: (B, T as src_time, D = d_model) EncodedRepresentation,
        input_mask_src: (B, T as src_time) SourceMask,
    ),
    outputs(output_ids: (B, T as out_time) TokenIds),
)]
#[derive(Debug, Clone)]
#[doc(alias = "BeamSearchTranslatorNM")]
#[doc(alias = "BeamSearchSequenceGenerator")]
pub struct BeamSearchTranslatorNm {
    d_model: usize,
    decoder: TransformerDecoderNm,
    log_softmax: TransformerLogSoftmaxNm,
    config: BeamSearchTranslatorNmConfig,
}

impl BeamSearchTranslatorNm {
    /// The search settings.
    pub fn config(&self) -> &BeamSearchTranslatorNmConfig {
        &self.config
    }
}

impl Forward for BeamSearchTranslatorNm {
    fn forward_tensors(
        &self,
        x: BeamSearchTranslatorNmInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo_core::Result<BeamSearchTranslatorNmOutputTensors> {
        let rows = search(
            &self.decoder,
            &self.log_softmax,
            &x.hidden_states_src,
            &x.input_mask_src,
            &self.config.search_config(),
        )?;
        let device: &Device = x.hidden_states_src.device();
        Ok(BeamSearchTranslatorNmOutputTensors {
            output_ids: ids_to_tensor(&rows, device)?,
        })
    }
}
