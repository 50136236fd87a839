//! `TransformerEncoderNm` (NeMo 0.x's `TransformerEncoderNM`, `transformer_nm.py` at v0.11.1):
//! token ids and their padding mask in, encoded hidden states out — the core
//! [`TransformerEmbedding`] (token + sinusoidal position embedding, LayerNorm, dropout) followed
//! by the core [`TransformerEncoder`] stack.
//!
//! | port | type | NeMo 0.11 |
//! |---|---|---|
//! | `input_ids` | `(B, T) TokenIds` | `(B, T) ChannelType` |
//! | `input_mask_src` | `(B, T) SourceMask` | `(B, T) ChannelType` |
//! | `hidden_states` | `(B, T, D) EncodedRepresentation` | `(B, T, D) ChannelType` |
//!
//! The stricter types make a mask wired where ids go, the target's mask where the source's goes,
//! or the decoder's own states wired where the source's encoding goes, a build error. Weights: `embedding_layer.*` and `encoder.*`
//! (NeMo's names, so its checkpoints map key for key).
//!
//! ```
//! # fn main() -> nemo_core::Result<()> {
//! use candle_core::{DType, Device, Tensor};
//! use nemo_core::prelude::*;
//! use nemo_core::params::Parameters;
//! use nemo_nlp::element_types::{SourceMask, TokenIds};
//! use nemo_nlp::modules::{TransformerEncoderNmConfig, TransformerEncoderNmInputs};
//!
//! let params = Parameters::new();
//! let vb = params.var_builder(DType::F32, &Device::Cpu);
//! let encoder = TransformerEncoderNmConfig::new(100, 16, 32, 2, 2).init(vb.pp("encoder"))?;
//! let ids = NTensor::<(B, T), TokenIds>::new(Tensor::new(&[[2i64, 7, 9, 3]], &Device::Cpu)?)?;
//! let mask = NTensor::<(B, T), SourceMask>::new(Tensor::new(&[[1u8, 1, 1, 1]], &Device::Cpu)?)?;
//! let out = encoder.forward(TransformerEncoderNmInputs { input_ids: &ids, input_mask_src: &mask })?;
//! assert_eq!(out.hidden_states.tensor().dims(), &[1, 4, 16]); // (B, T, D)
//! # Ok(())
//! # }
//! ```

use candle_core::Tensor;
use candle_nn::VarBuilder;
use nemo_core::nn::{
    HiddenAct, TransformerEmbedding, TransformerEmbeddingConfig, TransformerEncoder,
    TransformerEncoderConfig,
};
use nemo_core::{Forward, ForwardCtx, neural_module};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::element_types::{SourceMask, TokenIds};

use super::transformer_settings::{check_settings, default_heads, default_max_seq_length};

/// Settings of a [`TransformerEncoderNm`], with NeMo's argument names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerEncoderNmConfig {
    /// Tokens in the source vocabulary. A model fills it in from its tokenizer when it is 0 or
    /// absent.
    #[serde(default)]
    pub vocab_size: usize,
    /// `D`, the width of every hidden state.
    pub d_model: usize,
    /// Width of the feed-forward layer of each block.
    pub d_inner: usize,
    /// Blocks in the stack.
    pub num_layers: usize,
    /// Attention heads (default 1); must divide `d_model`.
    #[serde(default = "default_heads")]
    pub num_attn_heads: usize,
    /// Longest sequence the position table covers (default 512).
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
    /// Also mask future positions, as a language model's encoder does (default false).
    #[serde(default)]
    pub mask_future: bool,
    /// Pre-LN blocks and a final LayerNorm (default false: NeMo 0.x's post-LN).
    #[serde(default)]
    pub pre_ln: bool,
}

impl TransformerEncoderNmConfig {
    /// A post-LN encoder without dropout: `vocab_size` tokens, width `d_model`, feed-forward
    /// width `d_inner`, `num_layers` blocks of `num_attn_heads` heads.
    pub fn new(
        vocab_size: usize,
        d_model: usize,
        d_inner: usize,
        num_layers: usize,
        num_attn_heads: usize,
    ) -> Self {
        TransformerEncoderNmConfig {
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
            mask_future: false,
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
    pub fn stack(&self) -> TransformerEncoderConfig {
        TransformerEncoderConfig {
            attn_score_dropout: self.attn_score_dropout,
            attn_layer_dropout: self.attn_layer_dropout,
            ffn_dropout: self.ffn_dropout,
            hidden_act: self.hidden_act,
            pre_ln: self.pre_ln,
            mask_future: self.mask_future,
            ..TransformerEncoderConfig::new(
                self.num_layers,
                self.d_model,
                self.d_inner,
                self.num_attn_heads,
            )
        }
    }

    /// Checks the settings; errors name the key under `encoder`.
    pub fn validate(&self) -> Result<()> {
        check_settings(
            "encoder",
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

    /// Builds the encoder with weights from `vb`: `embedding_layer.*` and `encoder.*`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the key of an invalid setting; a candle error when `vb` holds a
    /// tensor of another shape under one of the names.
    pub fn init(&self, vb: VarBuilder) -> Result<TransformerEncoderNm> {
        self.validate()?;
        Ok(TransformerEncoderNm {
            d_model: self.d_model,
            embedding: self.embedding().init(vb.pp("embedding_layer"))?,
            encoder: self.stack().init(vb.pp("encoder"))?,
            config: self.clone(),
        })
    }
}

/// Token embedding + Transformer encoder stack, typed; see the [module docs](self).
#[neural_module(
    inputs(
        input_ids: (B, T as src_time) TokenIds,
        input_mask_src: (B, T as src_time) SourceMask,
    ),
    outputs(hidden_states: (B, T as src_time, D = d_model) EncodedRepresentation),
)]
#[derive(Debug, Clone)]
#[doc(alias = "TransformerEncoderNM")]
pub struct TransformerEncoderNm {
    d_model: usize,
    embedding: TransformerEmbedding,
    encoder: TransformerEncoder,
    config: TransformerEncoderNmConfig,
}

impl TransformerEncoderNm {
    /// The settings it was built with.
    pub fn config(&self) -> &TransformerEncoderNmConfig {
        &self.config
    }

    /// The embedding layer (its token table is what a model ties other tables to).
    pub fn embedding(&self) -> &TransformerEmbedding {
        &self.embedding
    }

    /// The stack of blocks.
    pub fn encoder(&self) -> &TransformerEncoder {
        &self.encoder
    }

    /// Encodes plain tensors; dropout in training draws from `ctx.for_module("embedding_layer")`
    /// and `ctx.for_module("encoder")`.
    ///
    /// # Shapes
    /// * `input_ids`: `(B, T)` integer ids; `input_mask_src`: `(B, T)`, 1 for tokens, 0 for
    ///   padding
    /// * returns `(B, T, D)`
    pub fn encode(
        &self,
        input_ids: &Tensor,
        input_mask_src: &Tensor,
        ctx: &ForwardCtx,
    ) -> Result<Tensor> {
        let x = self
            .embedding
            .forward(input_ids, None, 0, &ctx.for_module("embedding_layer"))?; // (B, T, D)
        Ok(self
            .encoder
            .forward(&x, Some(input_mask_src), &ctx.for_module("encoder"))?) // (B, T, D)
    }
}

impl Forward for TransformerEncoderNm {
    fn forward_tensors(
        &self,
        x: TransformerEncoderNmInputTensors,
        ctx: &ForwardCtx,
    ) -> nemo_core::Result<TransformerEncoderNmOutputTensors> {
        Ok(TransformerEncoderNmOutputTensors {
            hidden_states: self.encode(&x.input_ids, &x.input_mask_src, ctx)?,
        })
    }
}
