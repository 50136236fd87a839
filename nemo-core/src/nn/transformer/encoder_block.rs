//! One Transformer encoder block, NeMo 0.x's `TransformerEncoderBlock`
//! (`transformer_encoders.py`, v0.11.1): self-attention, then the position-wise feed-forward
//! network, each with a residual sum and a LayerNorm (after it by default, before it with
//! `pre_ln`; see [`super::block`]).
//!
//! Names (NeMo's): `first_sub_layer.{query_net, key_net, value_net, out_projection,
//! layer_norm}`, `second_sub_layer.{dense_in, dense_out, layer_norm}`.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::block::{TransformerBlockConfig, residual};
use super::feed_forward::PositionWiseFf;
use super::multi_head_attention::MultiHeadAttention;
use crate::nn::{LayerNorm, LayerNormConfig};
use crate::{ForwardCtx, Result};

/// An encoder block; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct TransformerEncoderBlock {
    self_attention: MultiHeadAttention,
    attention_norm: LayerNorm,
    feed_forward: PositionWiseFf,
    feed_forward_norm: LayerNorm,
    pre_ln: bool,
}

impl TransformerEncoderBlock {
    /// Builds the block with weights from `vb` (NeMo's names, see the module docs).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an invalid setting;
    /// [`Error::Candle`](crate::Error::Candle) when `vb` holds a tensor of another shape.
    pub fn new(config: &TransformerBlockConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let norm = LayerNormConfig::from(config.layer_norm_eps);
        let (first, second) = (vb.pp("first_sub_layer"), vb.pp("second_sub_layer"));
        Ok(TransformerEncoderBlock {
            self_attention: config.attention().init(first.clone())?,
            attention_norm: norm.init(config.hidden_size, first.pp("layer_norm"))?,
            feed_forward: config.feed_forward().init(second.clone())?,
            feed_forward_norm: norm.init(config.hidden_size, second.pp("layer_norm"))?,
            pre_ln: config.pre_ln,
        })
    }

    /// Runs the block; dropout in training draws from `ctx`.
    ///
    /// # Shapes
    /// * `x`: `(B, T, D)`
    /// * `mask`: additive, broadcastable to `(B, H, T, T)` (see [`super::mask`])
    /// * returns `(B, T, D)`
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) when `x` is not `(B, T, D)` or the mask does not
    /// broadcast.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>, ctx: &ForwardCtx) -> Result<Tensor> {
        let attn_ctx = ctx.for_module("first_sub_layer");
        let h = residual(x, &self.attention_norm, self.pre_ln, |h| {
            self.self_attention.forward(h, h, h, mask, &attn_ctx)
        })?;
        let ffn_ctx = ctx.for_module("second_sub_layer");
        residual(&h, &self.feed_forward_norm, self.pre_ln, |h| {
            self.feed_forward.forward(h, &ffn_ctx)
        })
    }
}
