//! `TransformerDecoderNm` (NeMo 0.x's `TransformerDecoderNM`, `transformer_nm.py` at v0.11.1):
//! target ids (teacher forcing) and the encoded source in, decoder hidden states out — the core
//! [`TransformerEmbedding`] followed by the core [`TransformerDecoder`] stack (causal
//! self-attention, attention over the source).
//!
//! | port | type | NeMo 0.11 |
//! |---|---|---|
//! | `input_ids_tgt` | `(B, T_tgt) TokenIds` | `(B, T) ChannelType` |
//! | `hidden_states_src` | `(B, T_src, D) EncodedRepresentation` | `(B, T, D) ChannelType` |
//! | `input_mask_src` | `(B, T_src) SourceMask` | `(B, T) ChannelType` |
//! | `input_mask_tgt` | `(B, T_tgt) TargetMask` | `(B, T) ChannelType` |
//! | `hidden_states` | `(B, T_tgt, D) Channel` | `(B, T, D) ChannelType` |
//!
//! The masks are two element types, so the source mask wired into `input_mask_tgt` fails at
//! build; `T_src` and `T_tgt` are two symbols of the time axis, whose lengths the call checks
//! when it runs. The output is plain
//! `Channel`, not an encoding of the source: it does not fit `hidden_states_src`.
//!
//! For generation, [`TransformerDecoderNm::start`] caches the source's keys and values; the
//! core's `TransformerStepDecoder` steps [`TransformerDecoderNm::embedding`] and
//! [`TransformerDecoderNm::decoder`] against the cache.
//!
//! Weights: `embedding_layer.*` and `decoder.*` (NeMo's names).

use candle_core::Tensor;
use candle_nn::VarBuilder;
use nemo_core::nn::{
    DecoderCache, HiddenAct, TransformerDecoder, TransformerDecoderConfig, TransformerEmbedding,
    TransformerEmbeddingConfig,
};
use nemo_core::{Forward, ForwardCtx, neural_module};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::element_types::{SourceMask, TargetMask, TokenIds};

use super::transformer_settings::{check_settings, default_heads, default_max_seq_length};

/// Settings of a [`TransformerDecoderNm`], with NeMo's argument names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerDecoderNmConfig {
    /// Tokens in the target vocabulary. A model fills it in from its tokenizer when it is 0 or
    /// absent.
    #[serde(default)]
    pub vocab_size: usize,
    /// `D`, the width of every hidden state (the encoder's too).
    pub d_model: usize,
    /// Width of the feed-forward layer of each block.
    pub d_inner: usize,
    /// Blocks in the stack.
    pub num_layers: usize,
    /// Attention heads (default 1); must divide `d_model`.
    #[serde(default = "default_heads")]
    pub num_attn_heads: usize,
    /// Longest target the position table covers (default 512); also bounds generation.
    #[serde(default = "default_max_seq_length")]
    pub max_seq_length: usize,
    /// Dropout on the feed-forward outputs in training (default 0).
    #[serde(default)]
    pub ffn_dropout: f64,
    /// Dropout on the embedding outputs in training (default 0).
    #[serde(default)]
    pub embedding_dropout: f64,
    /// Dropout on attention probabilities in training (default 0).
    #[serde(default)]
    pub attn_score_dropout: f64,
    /// Dropout on attention outputs in training (default 0).
    #[serde(default)]
    pub attn_layer_dropout: f64,
    /// Learned position embeddings instead of sinusoids (default false).
    #[serde(default)]
    pub learn_positional_encodings: bool,
    /// Feed-forward activation, `relu` (default) or `gelu`.
    #[serde(default)]
    pub hidden_act: HiddenAct,
    /// Pre-LN blocks and a final LayerNorm (default false: NeMo 0.x's post-LN).
    #[serde(default)]
    pub pre_ln: bool,
}

impl TransformerDecoderNmConfig {
    /// A post-LN decoder without dropout: `vocab_size` tokens, width `d_model`, feed-forward
    /// width `d_inner`, `num_layers` blocks of `num_attn_heads` heads.
    pub fn new(
        vocab_size: usize,
        d_model: usize,
        d_inner: usize,
        num_layers: usize,
        num_attn_heads: usize,
    ) -> Self {
        TransformerDecoderNmConfig {
            vocab_size,
            d_model,
            d_inner,
            num_layers,
            num_attn_heads,
            max_seq_length: default_max_seq_length(),
            ffn_dropout: 0.0,
            embedding_dropout: 0.0,
            attn_score_dropout: 0.0,
            attn_layer_dropout: 0.0,
            learn_positional_encodings: false,
            hidden_act: HiddenAct::Relu,
            pre_ln: false,
        }
    }

    /// The core embedding's settings.
    pub fn embedding(&self) -> TransformerEmbeddingConfig {
        TransformerEmbeddingConfig {
            max_sequence_length: self.max_seq_length,
            embedding_dropout: self.embedding_dropout,
            learn_positional_encodings: self.learn_positional_encodings,
            ..TransformerEmbeddingConfig::new(self.vocab_size, self.d_model)
        }
    }

    /// The core stack's settings.
    pub fn stack(&self) -> TransformerDecoderConfig {
        TransformerDecoderConfig {
            attn_score_dropout: self.attn_score_dropout,
            attn_layer_dropout: self.attn_layer_dropout,
            ffn_dropout: self.ffn_dropout,
            hidden_act: self.hidden_act,
            pre_ln: self.pre_ln,
            ..TransformerDecoderConfig::new(
                self.num_layers,
                self.d_model,
                self.d_inner,
                self.num_attn_heads,
            )
        }
    }

    /// Checks the settings; errors name the key under `decoder`.
    pub fn validate(&self) -> Result<()> {
        check_settings(
            "decoder",
            self.vocab_size,
            self.d_model,
            self.d_inner,
            self.num_layers,
            self.num_attn_heads,
            self.max_seq_length,
            &[
                ("ffn_dropout", self.ffn_dropout),
                ("embedding_dropout", self.embedding_dropout),
                ("attn_score_dropout", self.attn_score_dropout),
                ("attn_layer_dropout", self.attn_layer_dropout),
            ],
        )
    }

    /// Builds the decoder with weights from `vb`: `embedding_layer.*` and `decoder.*` (a model
    /// that ties the token table to the encoder's uses [`init_tied`](Self::init_tied)).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the key of an invalid setting; a candle
    /// error when `vb` holds a tensor of another shape under one of the names.
    pub fn init(&self, vb: VarBuilder) -> Result<TransformerDecoderNm> {
        self.validate()?;
        Ok(TransformerDecoderNm {
            d_model: self.d_model,
            embedding: self.embedding().init(vb.pp("embedding_layer"))?,
            decoder: self.stack().init(vb.pp("decoder"))?,
            config: self.clone(),
        })
    }

    /// [`init`](Self::init) around an existing token table `(vocab_size, d_model)` (NeMo's NMT
    /// ties the decoder's table to the encoder's): no `embedding_layer.token_embedding.weight`
    /// is read from `vb`.
    ///
    /// # Errors
    /// As [`init`](Self::init); a shape error when the table is not `(vocab_size, d_model)`.
    pub fn init_tied(
        &self,
        token_embedding: &Tensor,
        vb: VarBuilder,
    ) -> Result<TransformerDecoderNm> {
        self.validate()?;
        Ok(TransformerDecoderNm {
            d_model: self.d_model,
            embedding: self
                .embedding()
                .init_tied(token_embedding, vb.pp("embedding_layer"))?,
            decoder: self.stack().init(vb.pp("decoder"))?,
            config: self.clone(),
        })
    }
}

/// Token embedding + Transformer decoder stack, typed; see the [module docs](self).
#[neural_module(
    inputs(
        input_ids_tgt: (B, T as tgt_time) TokenIds,
        hidden_states_src: (B, T as src_time, D = d_model) EncodedRepresentation,
        input_mask_src: (B, T as src_time) SourceMask,
        input_mask_tgt: (B, T as tgt_time) TargetMask,
    ),
    outputs(hidden_states: (B, T as tgt_time, D = d_model) Channel),
)]
#[derive(Debug, Clone)]
#[doc(alias = "TransformerDecoderNM")]
pub struct TransformerDecoderNm {
    d_model: usize,
    embedding: TransformerEmbedding,
    decoder: TransformerDecoder,
    config: TransformerDecoderNmConfig,
}

impl TransformerDecoderNm {
    /// The settings it was built with.
    pub fn config(&self) -> &TransformerDecoderNmConfig {
        &self.config
    }

    /// The embedding layer (its token table is the one a tied output projection shares).
    pub fn embedding(&self) -> &TransformerEmbedding {
        &self.embedding
    }

    /// The stack of blocks.
    pub fn decoder(&self) -> &TransformerDecoder {
        &self.decoder
    }

    /// Decodes plain tensors, teacher-forced; dropout in training draws from
    /// `ctx.for_module("embedding_layer")` and `ctx.for_module("decoder")`.
    ///
    /// # Shapes
    /// * `input_ids_tgt`: `(B, T)` ids; `input_mask_tgt`: `(B, T)`
    /// * `hidden_states_src`: `(B, S, D)`; `input_mask_src`: `(B, S)`
    /// * returns `(B, T, D)`
    pub fn decode(
        &self,
        input_ids_tgt: &Tensor,
        hidden_states_src: &Tensor,
        input_mask_src: &Tensor,
        input_mask_tgt: &Tensor,
        ctx: &ForwardCtx,
    ) -> Result<Tensor> {
        let y =
            self.embedding
                .forward(input_ids_tgt, None, 0, &ctx.for_module("embedding_layer"))?; // (B, T, D)
        Ok(self.decoder.forward(
            &y,
            Some(input_mask_tgt),
            hidden_states_src,
            Some(input_mask_src),
            &ctx.for_module("decoder"),
        )?) // (B, T, D)
    }

    /// A cache for generating against `hidden_states_src` `(B, S, D)` with mask `(B, S)`.
    pub fn start(
        &self,
        hidden_states_src: &Tensor,
        input_mask_src: &Tensor,
    ) -> Result<DecoderCache> {
        Ok(self
            .decoder
            .start(hidden_states_src, Some(input_mask_src))?)
    }
}

impl Forward for TransformerDecoderNm {
    fn forward_tensors(
        &self,
        x: TransformerDecoderNmInputTensors,
        ctx: &ForwardCtx,
    ) -> nemo_core::Result<TransformerDecoderNmOutputTensors> {
        Ok(TransformerDecoderNmOutputTensors {
            hidden_states: self.decode(
                &x.input_ids_tgt,
                &x.hidden_states_src,
                &x.input_mask_src,
                &x.input_mask_tgt,
                ctx,
            )?,
        })
    }
}
