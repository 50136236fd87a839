//! A stack of Transformer encoder blocks, NeMo 0.x's `TransformerEncoder`
//! (`transformer_encoders.py`, v0.11.1), over embedded inputs `(B, T, D)` with a `(B, T)`
//! padding mask; with `pre_ln`, one more LayerNorm (`final_layer_norm`) after the last block,
//! as pre-LN stacks need (NeMo 1.x's `pre_ln_final_layer_norm`). `mask_future` adds a causal
//! mask (a language model's encoder).
//!
//! ```
//! # fn main() -> nemo_core::Result<()> {
//! use candle_core::{DType, Device, Tensor};
//! use nemo_core::ForwardCtx;
//! use nemo_core::nn::{TransformerEncoderConfig, seeded_var_builder};
//! use nemo_core::params::Parameters;
//!
//! let params = Parameters::new();
//! let vb = seeded_var_builder(params.varmap(), 0, DType::F32, &Device::Cpu);
//! let encoder = TransformerEncoderConfig::new(2, 16, 32, 4).init(vb.pp("encoder"))?;
//! let x = Tensor::randn(0f32, 1.0, (2, 5, 16), &Device::Cpu)?; //         (B, T, D)
//! let mask = Tensor::new(&[[1u8, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &Device::Cpu)?; // (B, T)
//! let h = encoder.forward(&x, Some(&mask), &ForwardCtx::eval())?;
//! assert_eq!(h.dims(), &[2, 5, 16]);
//! # Ok(())
//! # }
//! ```
//!
//! Names: `layers.{i}.*` (see [`TransformerEncoderBlock`]), `final_layer_norm` (pre-LN only).

use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::block::{TransformerBlockConfig, check_mask, check_states};
use super::encoder_block::TransformerEncoderBlock;
use super::feed_forward::HiddenAct;
use super::mask::{causal_padding_mask, padding_mask};
use crate::nn::{LayerNorm, LayerNormConfig};
use crate::{Error, ForwardCtx, Result};

fn one() -> usize {
    1
}

fn default_eps() -> f64 {
    1e-5
}

/// Settings of a [`TransformerEncoder`]: the block settings of [`TransformerBlockConfig`]
/// (flat, as NeMo's keys) plus the stack's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerEncoderConfig {
    /// Blocks in the stack.
    pub num_layers: usize,
    /// `D`, the model width (`d_model`).
    #[serde(alias = "d_model")]
    pub hidden_size: usize,
    /// Width of the feed-forward hidden layer (`d_inner`).
    #[serde(alias = "d_inner")]
    pub inner_size: usize,
    /// Attention heads (default 1; `num_attn_heads`).
    #[serde(default = "one", alias = "num_attn_heads")]
    pub num_attention_heads: usize,
    /// Dropout on attention probabilities in training (default 0).
    #[serde(default)]
    pub attn_score_dropout: f64,
    /// Dropout on each attention output before the residual sum (default 0).
    #[serde(default)]
    pub attn_layer_dropout: f64,
    /// Dropout on the feed-forward output before the residual sum (default 0).
    #[serde(default)]
    pub ffn_dropout: f64,
    /// Feed-forward activation, `relu` (default) or `gelu`.
    #[serde(default)]
    pub hidden_act: HiddenAct,
    /// Pre-LN blocks and a final LayerNorm instead of NeMo 0.x's post-LN (default false).
    #[serde(default)]
    pub pre_ln: bool,
    /// Mask future positions too, as a language model does (default false).
    #[serde(default)]
    pub mask_future: bool,
    /// Every LayerNorm's eps (default 1e-5).
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

impl TransformerEncoderConfig {
    /// `num_layers` post-LN ReLU blocks of width `hidden_size`, feed-forward width `inner_size`
    /// and `num_attention_heads` heads, without dropout.
    pub fn new(
        num_layers: usize,
        hidden_size: usize,
        inner_size: usize,
        num_attention_heads: usize,
    ) -> Self {
        let b = TransformerBlockConfig::new(hidden_size, inner_size, num_attention_heads);
        TransformerEncoderConfig {
            num_layers,
            hidden_size,
            inner_size,
            num_attention_heads,
            attn_score_dropout: b.attn_score_dropout,
            attn_layer_dropout: b.attn_layer_dropout,
            ffn_dropout: b.ffn_dropout,
            hidden_act: b.hidden_act,
            pre_ln: b.pre_ln,
            mask_future: false,
            layer_norm_eps: b.layer_norm_eps,
        }
    }

    /// The settings of each block.
    pub fn block(&self) -> TransformerBlockConfig {
        TransformerBlockConfig {
            hidden_size: self.hidden_size,
            inner_size: self.inner_size,
            num_attention_heads: self.num_attention_heads,
            attn_score_dropout: self.attn_score_dropout,
            attn_layer_dropout: self.attn_layer_dropout,
            ffn_dropout: self.ffn_dropout,
            hidden_act: self.hidden_act,
            pre_ln: self.pre_ln,
            layer_norm_eps: self.layer_norm_eps,
        }
    }

    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.num_layers == 0 {
            return Err(Error::Config {
                key: "encoder.num_layers".into(),
                msg: "must be positive, got 0".into(),
            });
        }
        self.block().validate()
    }

    /// Builds the stack with weights from `vb` (`layers.{i}.*`, `final_layer_norm`).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid setting; [`Error::Candle`] when `vb` holds a tensor of
    /// another shape.
    pub fn init(&self, vb: VarBuilder) -> Result<TransformerEncoder> {
        self.validate()?;
        let block = self.block();
        let layers = (0..self.num_layers)
            .map(|i| TransformerEncoderBlock::new(&block, vb.pp(format!("layers.{i}"))))
            .collect::<Result<_>>()?;
        let final_layer_norm = if self.pre_ln {
            Some(
                LayerNormConfig::from(self.layer_norm_eps)
                    .init(self.hidden_size, vb.pp("final_layer_norm"))?,
            )
        } else {
            None
        };
        Ok(TransformerEncoder {
            layers,
            final_layer_norm,
            config: self.clone(),
        })
    }
}

/// A stack of encoder blocks; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct TransformerEncoder {
    layers: Vec<TransformerEncoderBlock>,
    final_layer_norm: Option<LayerNorm>,
    config: TransformerEncoderConfig,
}

impl TransformerEncoder {
    /// The settings it was built with.
    pub fn config(&self) -> &TransformerEncoderConfig {
        &self.config
    }

    /// The blocks.
    pub fn layers(&self) -> &[TransformerEncoderBlock] {
        &self.layers
    }

    /// Encodes `x` with keys masked where `mask` is 0; dropout in training draws from
    /// `ctx.for_module("layers.{i}")`.
    ///
    /// # Shapes
    /// * `x`: `(B, T, D)` (embedded tokens)
    /// * `mask`: `(B, T)` validity, 1 for tokens and 0 for padding, any dtype; `None` for all
    ///   valid
    /// * returns `(B, T, D)`
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` is not `(B, T, D)` or `mask` not `(B, T)`.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>, ctx: &ForwardCtx) -> Result<Tensor> {
        const OP: &str = "TransformerEncoder";
        let (b, t) = check_states(OP, "x", x, self.config.hidden_size)?;
        if let Some(m) = mask {
            check_mask(OP, "mask", m, b, t)?;
        }
        let attn_mask = match (mask, self.config.mask_future) {
            (m, true) => Some(causal_padding_mask(m, t, t, x.dtype(), x.device())?),
            (Some(m), false) => Some(padding_mask(m, x.dtype())?),
            (None, false) => None,
        };
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(
                &h,
                attn_mask.as_ref(),
                &ctx.for_module(&format!("layers.{i}")),
            )?;
        }
        match &self.final_layer_norm {
            Some(norm) => norm.forward(&h),
            None => Ok(h),
        }
    }
}
