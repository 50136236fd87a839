//! A stack of Transformer decoder blocks, NeMo 0.x's `TransformerDecoder`
//! (`transformer_decoders.py`, v0.11.1), over embedded targets `(B, T, D)` and the encoder's
//! states `(B, S, D)`, with `(B, T)` and `(B, S)` padding masks and a causal mask on the
//! targets; with `pre_ln`, a `final_layer_norm` after the last block.
//!
//! For generation, [`TransformerDecoder::start`] projects the source's keys and values once per
//! layer into a [`DecoderCache`], and [`TransformerDecoder::step`] runs only the new positions,
//! growing each layer's self-attention keys and values: the hidden states it returns are those
//! of the full causal [`forward`](TransformerDecoder::forward) at the same positions (up to
//! rounding). Embed step `t`'s tokens with `start_pos = cache.len()`.
//!
//! ```
//! # fn main() -> nemo_core::Result<()> {
//! use candle_core::{DType, Device, Tensor};
//! use nemo_core::ForwardCtx;
//! use nemo_core::nn::{TransformerDecoderConfig, seeded_var_builder};
//! use nemo_core::params::Parameters;
//!
//! let params = Parameters::new();
//! let vb = seeded_var_builder(params.varmap(), 0, DType::F32, &Device::Cpu);
//! let decoder = TransformerDecoderConfig::new(1, 8, 16, 2).init(vb)?;
//! let src = Tensor::randn(0f32, 1.0, (1, 4, 8), &Device::Cpu)?; // (B, S, D) encoder states
//! let tgt = Tensor::randn(0f32, 1.0, (1, 3, 8), &Device::Cpu)?; // (B, T, D) embedded targets
//! let full = decoder.forward(&tgt, None, &src, None, &ForwardCtx::eval())?;
//! let mut cache = decoder.start(&src, None)?;
//! for t in 0..3 {
//!     let h = decoder.step(&tgt.narrow(1, t, 1)?, None, &mut cache)?; // (B, 1, D)
//!     let diff = (h - full.narrow(1, t, 1)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
//!     assert!(diff < 1e-5);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Names: `layers.{i}.*` (see [`TransformerDecoderBlock`]), `final_layer_norm` (pre-LN only).

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::block::{TransformerBlockConfig, check_mask, check_states};
use super::decoder_block::TransformerDecoderBlock;
use super::feed_forward::HiddenAct;
use super::mask::{causal_padding_mask, padding_mask};
use super::multi_head_attention::KeyValues;
use crate::nn::{LayerNorm, LayerNormConfig};
use crate::{Error, ForwardCtx, Result};

const OP: &str = "TransformerDecoder";

fn one() -> usize {
    1
}

fn default_eps() -> f64 {
    1e-5
}

/// Settings of a [`TransformerDecoder`]: the block settings of [`TransformerBlockConfig`]
/// (flat, as NeMo's keys) plus the number of blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerDecoderConfig {
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
    /// Every LayerNorm's eps (default 1e-5).
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

impl TransformerDecoderConfig {
    /// `num_layers` post-LN ReLU blocks of width `hidden_size`, feed-forward width `inner_size`
    /// and `num_attention_heads` heads, without dropout.
    pub fn new(
        num_layers: usize,
        hidden_size: usize,
        inner_size: usize,
        num_attention_heads: usize,
    ) -> Self {
        let b = TransformerBlockConfig::new(hidden_size, inner_size, num_attention_heads);
        TransformerDecoderConfig {
            num_layers,
            hidden_size,
            inner_size,
            num_attention_heads,
            attn_score_dropout: b.attn_score_dropout,
            attn_layer_dropout: b.attn_layer_dropout,
            ffn_dropout: b.ffn_dropout,
            hidden_act: b.hidden_act,
            pre_ln: b.pre_ln,
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
                key: "decoder.num_layers".into(),
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
    pub fn init(&self, vb: VarBuilder) -> Result<TransformerDecoder> {
        self.validate()?;
        let block = self.block();
        let layers = (0..self.num_layers)
            .map(|i| TransformerDecoderBlock::new(&block, vb.pp(format!("layers.{i}"))))
            .collect::<Result<_>>()?;
        let final_layer_norm = if self.pre_ln {
            Some(
                LayerNormConfig::from(self.layer_norm_eps)
                    .init(self.hidden_size, vb.pp("final_layer_norm"))?,
            )
        } else {
            None
        };
        Ok(TransformerDecoder {
            layers,
            final_layer_norm,
            config: self.clone(),
        })
    }
}

/// What [`TransformerDecoder::step`] keeps between steps: per layer the self-attention's keys
/// and values of all past positions and the source's keys and values, the source mask, and the
/// validity of past target positions.
#[derive(Debug, Clone)]
pub struct DecoderCache {
    self_kv: Vec<Option<KeyValues>>,
    cross_kv: Vec<KeyValues>,
    /// Additive `(B, 1, 1, S)`.
    src_mask: Option<Tensor>,
    /// `(B, T_past)` `u8` validity of past target positions; `None` while all are valid.
    tgt_valid: Option<Tensor>,
    batch: usize,
    len: usize,
}

impl DecoderCache {
    /// `T_past`, the number of target positions run so far (the `start_pos` of the next step).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no step has run yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `B`, the number of sequences decoded side by side.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// Keeps batch rows `rows` (a `(K)` `u32`/`i64` index tensor) of everything cached: beam
    /// expansion (a row repeated per beam) and reordering after each step.
    ///
    /// # Errors
    /// [`Error::Candle`] for an index out of range.
    pub fn index_select(&self, rows: &Tensor) -> Result<DecoderCache> {
        let pick = |t: &Option<Tensor>| -> Result<Option<Tensor>> {
            Ok(t.as_ref().map(|t| t.index_select(rows, 0)).transpose()?)
        };
        Ok(DecoderCache {
            self_kv: self
                .self_kv
                .iter()
                .map(|kv| kv.as_ref().map(|kv| kv.index_select(rows)).transpose())
                .collect::<Result<_>>()?,
            cross_kv: self
                .cross_kv
                .iter()
                .map(|kv| kv.index_select(rows))
                .collect::<Result<_>>()?,
            src_mask: pick(&self.src_mask)?,
            tgt_valid: pick(&self.tgt_valid)?,
            batch: rows.elem_count(),
            len: self.len,
        })
    }
}

/// A stack of decoder blocks; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct TransformerDecoder {
    layers: Vec<TransformerDecoderBlock>,
    final_layer_norm: Option<LayerNorm>,
    config: TransformerDecoderConfig,
}

impl TransformerDecoder {
    /// The settings it was built with.
    pub fn config(&self) -> &TransformerDecoderConfig {
        &self.config
    }

    /// The blocks.
    pub fn layers(&self) -> &[TransformerDecoderBlock] {
        &self.layers
    }

    /// Decodes the whole target sequence `x` (teacher forcing), each position attending to
    /// itself and earlier valid positions and to the valid source positions; dropout in
    /// training draws from `ctx.for_module("layers.{i}")`.
    ///
    /// # Shapes
    /// * `x`: `(B, T, D)` (embedded targets); `tgt_mask`: `(B, T)` validity or `None`
    /// * `encoder_states`: `(B, S, D)`; `src_mask`: `(B, S)` validity or `None`
    /// * returns `(B, T, D)`
    ///
    /// # Errors
    /// [`Error::Shape`] when shapes do not fit.
    pub fn forward(
        &self,
        x: &Tensor,
        tgt_mask: Option<&Tensor>,
        encoder_states: &Tensor,
        src_mask: Option<&Tensor>,
        ctx: &ForwardCtx,
    ) -> Result<Tensor> {
        let d = self.config.hidden_size;
        let (b, t) = check_states(OP, "x", x, d)?;
        let src_additive = self.source_mask(encoder_states, src_mask, b)?;
        if let Some(m) = tgt_mask {
            check_mask(OP, "tgt_mask", m, b, t)?;
        }
        let self_mask = causal_padding_mask(tgt_mask, t, t, x.dtype(), x.device())?;
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let layer_ctx = ctx.for_module(&format!("layers.{i}"));
            h = layer.forward(
                &h,
                Some(&self_mask),
                encoder_states,
                src_additive.as_ref(),
                &layer_ctx,
            )?;
        }
        self.finish(h)
    }

    /// A cache for decoding against `encoder_states`: the source's keys and values of every
    /// layer, and its mask.
    ///
    /// # Shapes
    /// * `encoder_states`: `(B, S, D)`; `src_mask`: `(B, S)` validity or `None`
    ///
    /// # Errors
    /// [`Error::Shape`] when shapes do not fit.
    pub fn start(
        &self,
        encoder_states: &Tensor,
        src_mask: Option<&Tensor>,
    ) -> Result<DecoderCache> {
        let (b, _) = check_states(
            OP,
            "encoder_states",
            encoder_states,
            self.config.hidden_size,
        )?;
        let src_mask = self.source_mask(encoder_states, src_mask, b)?;
        let cross_kv = self
            .layers
            .iter()
            .map(|layer| layer.cross_key_values(encoder_states))
            .collect::<Result<_>>()?;
        Ok(DecoderCache {
            self_kv: vec![None; self.layers.len()],
            cross_kv,
            src_mask,
            tgt_valid: None,
            batch: b,
            len: 0,
        })
    }

    /// Decodes new positions `x` (eval mode: no dropout) after those in `cache`, and appends
    /// them to it. Returns the hidden states the full [`forward`](Self::forward) gives at those
    /// positions.
    ///
    /// # Shapes
    /// * `x`: `(B, T_new, D)`, usually `T_new = 1` (embedded at `start_pos = cache.len()`)
    /// * `tgt_mask`: `(B, T_new)` validity of the new positions, or `None` for all valid
    /// * returns `(B, T_new, D)`
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` or `tgt_mask` does not fit the cache's batch; `cache` is
    /// then unchanged.
    pub fn step(
        &self,
        x: &Tensor,
        tgt_mask: Option<&Tensor>,
        cache: &mut DecoderCache,
    ) -> Result<Tensor> {
        let (b, t_new) = check_states(OP, "x", x, self.config.hidden_size)?;
        if b != cache.batch || cache.self_kv.len() != self.layers.len() {
            return Err(Error::Shape {
                op: OP,
                msg: format!(
                    "x {:?} does not fit a cache of batch {} and {} layers (this decoder has {})",
                    x.dims(),
                    cache.batch,
                    cache.self_kv.len(),
                    self.layers.len()
                ),
            });
        }
        let t_total = cache.len + t_new;
        let new_valid = match tgt_mask {
            Some(m) => {
                check_mask(OP, "tgt_mask", m, b, t_new)?;
                Some(m.ne(0f64)?)
            }
            None => None,
        };
        let ones = |t: usize| Tensor::ones((b, t), DType::U8, x.device());
        let valid = match (&cache.tgt_valid, new_valid) {
            (None, None) => None,
            (Some(past), None) => Some(Tensor::cat(&[past, &ones(t_new)?], 1)?),
            (None, Some(new)) => Some(Tensor::cat(&[&ones(cache.len)?, &new], 1)?),
            (Some(past), Some(new)) => Some(Tensor::cat(&[past, &new], 1)?),
        };
        let self_mask = causal_padding_mask(valid.as_ref(), t_new, t_total, x.dtype(), x.device())?;
        let mut self_kv = cache.self_kv.clone();
        let mut h = x.clone();
        for ((layer, kv), cross) in self.layers.iter().zip(&mut self_kv).zip(&cache.cross_kv) {
            h = layer.step(&h, Some(&self_mask), kv, cross, cache.src_mask.as_ref())?;
        }
        let out = self.finish(h)?;
        cache.self_kv = self_kv;
        cache.tgt_valid = valid;
        cache.len = t_total;
        Ok(out)
    }

    /// The additive `(B, 1, 1, S)` source mask, after checking the states and mask shapes.
    fn source_mask(
        &self,
        encoder_states: &Tensor,
        src_mask: Option<&Tensor>,
        b: usize,
    ) -> Result<Option<Tensor>> {
        let (bs, s) = check_states(
            OP,
            "encoder_states",
            encoder_states,
            self.config.hidden_size,
        )?;
        if bs != b {
            return Err(Error::Shape {
                op: OP,
                msg: format!(
                    "encoder_states {:?} has a batch of {bs}, the targets {b}",
                    encoder_states.dims()
                ),
            });
        }
        match src_mask {
            Some(m) => {
                check_mask(OP, "src_mask", m, b, s)?;
                Ok(Some(padding_mask(m, encoder_states.dtype())?))
            }
            None => Ok(None),
        }
    }

    fn finish(&self, h: Tensor) -> Result<Tensor> {
        match &self.final_layer_norm {
            Some(norm) => norm.forward(&h),
            None => Ok(h),
        }
    }
}
