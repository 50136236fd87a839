//! One Transformer decoder block, NeMo 0.x's `TransformerDecoderBlock`
//! (`transformer_decoders.py`, v0.11.1): masked self-attention, attention over the encoder's
//! states, then the position-wise feed-forward network, each with a residual sum and a LayerNorm
//! (after it by default, before it with `pre_ln`; see [`super::block`]).
//!
//! [`step`](TransformerDecoderBlock::step) runs new positions only, against a cache of the
//! self-attention's past keys and values and the source's keys and values projected once
//! ([`cross_key_values`](TransformerDecoderBlock::cross_key_values)). NeMo 0.x caches each
//! layer's input states and re-projects all of them every step; caching projected keys and
//! values gives the same outputs with one projection per new position.
//!
//! Names (NeMo's): `first_sub_layer` (self-attention), `second_sub_layer` (encoder-decoder
//! attention), `third_sub_layer` (feed-forward), each with its `layer_norm`.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::block::{TransformerBlockConfig, residual};
use super::feed_forward::PositionWiseFf;
use super::multi_head_attention::{KeyValues, MultiHeadAttention};
use crate::nn::{LayerNorm, LayerNormConfig};
use crate::{ForwardCtx, Result};

/// A decoder block; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct TransformerDecoderBlock {
    self_attention: MultiHeadAttention,
    self_attention_norm: LayerNorm,
    cross_attention: MultiHeadAttention,
    cross_attention_norm: LayerNorm,
    feed_forward: PositionWiseFf,
    feed_forward_norm: LayerNorm,
    pre_ln: bool,
}

impl TransformerDecoderBlock {
    /// Builds the block with weights from `vb` (NeMo's names, see the module docs).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an invalid setting;
    /// [`Error::Candle`](crate::Error::Candle) when `vb` holds a tensor of another shape.
    pub fn new(config: &TransformerBlockConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let norm = LayerNormConfig::from(config.layer_norm_eps);
        let d = config.hidden_size;
        let (first, second, third) = (
            vb.pp("first_sub_layer"),
            vb.pp("second_sub_layer"),
            vb.pp("third_sub_layer"),
        );
        Ok(TransformerDecoderBlock {
            self_attention: config.attention().init(first.clone())?,
            self_attention_norm: norm.init(d, first.pp("layer_norm"))?,
            cross_attention: config.attention().init(second.clone())?,
            cross_attention_norm: norm.init(d, second.pp("layer_norm"))?,
            feed_forward: config.feed_forward().init(third.clone())?,
            feed_forward_norm: norm.init(d, third.pp("layer_norm"))?,
            pre_ln: config.pre_ln,
        })
    }

    /// The source's projected keys and values for the encoder-decoder attention, computed once
    /// per source for [`step`](Self::step).
    ///
    /// # Shapes
    /// `encoder_states` `(B, S, D)` → [`KeyValues`] `(B, H, S, d_head)`
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) when the states are not `(B, S, D)`.
    pub fn cross_key_values(&self, encoder_states: &Tensor) -> Result<KeyValues> {
        self.cross_attention
            .key_values(encoder_states, encoder_states)
    }

    /// Runs the block over a whole target sequence; dropout in training draws from `ctx`.
    ///
    /// # Shapes
    /// * `x`: `(B, T, D)`; `encoder_states`: `(B, S, D)`
    /// * `self_mask`: additive, broadcastable to `(B, H, T, T)` (causal, see [`super::mask`])
    /// * `src_mask`: additive, broadcastable to `(B, H, T, S)`
    /// * returns `(B, T, D)`
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) when shapes do not fit.
    pub fn forward(
        &self,
        x: &Tensor,
        self_mask: Option<&Tensor>,
        encoder_states: &Tensor,
        src_mask: Option<&Tensor>,
        ctx: &ForwardCtx,
    ) -> Result<Tensor> {
        let cross = self.cross_key_values(encoder_states)?;
        let self_ctx = ctx.for_module("first_sub_layer");
        let h = residual(x, &self.self_attention_norm, self.pre_ln, |h| {
            self.self_attention.forward(h, h, h, self_mask, &self_ctx)
        })?;
        self.cross_and_feed_forward(&h, &cross, src_mask, ctx)
    }

    /// Runs the block over new positions `x` (eval mode), appending their self-attention keys
    /// and values to `cache` (`None` before the first step).
    ///
    /// # Shapes
    /// * `x`: `(B, T_new, D)`; `cache`: `(B, H, T_past, d_head)`; `cross`: `(B, H, S, d_head)`
    /// * `self_mask`: additive, broadcastable to `(B, H, T_new, T_past + T_new)`
    /// * `src_mask`: additive, broadcastable to `(B, H, T_new, S)`
    /// * returns `(B, T_new, D)`
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) when shapes do not fit; `cache` is then unchanged.
    pub fn step(
        &self,
        x: &Tensor,
        self_mask: Option<&Tensor>,
        cache: &mut Option<KeyValues>,
        cross: &KeyValues,
        src_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let eval = ForwardCtx::eval();
        let mut grown = None;
        let h = residual(x, &self.self_attention_norm, self.pre_ln, |h| {
            let new = self.self_attention.key_values(h, h)?;
            let all = match cache.as_ref() {
                Some(past) => past.append(&new)?,
                None => new,
            };
            let out = self.self_attention.attend(h, &all, self_mask, &eval)?;
            grown = Some(all);
            Ok(out)
        })?;
        let out = self.cross_and_feed_forward(&h, cross, src_mask, &eval)?;
        *cache = grown;
        Ok(out)
    }

    /// The second and third sub-layers.
    fn cross_and_feed_forward(
        &self,
        h: &Tensor,
        cross: &KeyValues,
        src_mask: Option<&Tensor>,
        ctx: &ForwardCtx,
    ) -> Result<Tensor> {
        let cross_ctx = ctx.for_module("second_sub_layer");
        let h = residual(h, &self.cross_attention_norm, self.pre_ln, |h| {
            self.cross_attention.attend(h, cross, src_mask, &cross_ctx)
        })?;
        let ffn_ctx = ctx.for_module("third_sub_layer");
        residual(&h, &self.feed_forward_norm, self.pre_ln, |h| {
            self.feed_forward.forward(h, &ffn_ctx)
        })
    }
}
