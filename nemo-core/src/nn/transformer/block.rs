//! What the encoder and decoder blocks share: their settings ([`TransformerBlockConfig`]) and
//! the residual wiring of a sub-layer with its LayerNorm, after it (post-LN, NeMo 0.x and
//! Vaswani et al.) or before it (pre-LN, Xiong et al. 2020, <https://arxiv.org/abs/2002.04745>):
//!
//! ```text
//! post-LN:  x ← LayerNorm(x + sublayer(x))
//! pre-LN:   x ← x + sublayer(LayerNorm(x))      (and one LayerNorm after the last block)
//! ```
//!
//! Pre-LN keeps an un-normalized residual path from input to output, which trains deep stacks
//! without warm-up; post-LN is what NeMo 0.x's checkpoints hold.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::feed_forward::{HiddenAct, PositionWiseFfConfig};
use super::multi_head_attention::MultiHeadAttentionConfig;
use crate::nn::LayerNorm;
use crate::{Error, Result};

fn one() -> usize {
    1
}

fn default_eps() -> f64 {
    1e-5
}

/// Settings of one encoder or decoder block (NeMo's block arguments, with its
/// `TransformerEncoderNM` spellings as aliases).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerBlockConfig {
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
    /// LayerNorm before each sub-layer instead of after (default false: post-LN, NeMo 0.x).
    #[serde(default)]
    pub pre_ln: bool,
    /// Every LayerNorm's eps (default 1e-5).
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

impl TransformerBlockConfig {
    /// A post-LN ReLU block of width `hidden_size`, feed-forward width `inner_size` and
    /// `num_attention_heads` heads, without dropout.
    pub fn new(hidden_size: usize, inner_size: usize, num_attention_heads: usize) -> Self {
        TransformerBlockConfig {
            hidden_size,
            inner_size,
            num_attention_heads,
            attn_score_dropout: 0.0,
            attn_layer_dropout: 0.0,
            ffn_dropout: 0.0,
            hidden_act: HiddenAct::Relu,
            pre_ln: false,
            layer_norm_eps: default_eps(),
        }
    }

    /// The attention sub-layers' settings.
    pub fn attention(&self) -> MultiHeadAttentionConfig {
        MultiHeadAttentionConfig {
            hidden_size: self.hidden_size,
            num_attention_heads: self.num_attention_heads,
            attn_score_dropout: self.attn_score_dropout,
            attn_layer_dropout: self.attn_layer_dropout,
        }
    }

    /// The feed-forward sub-layer's settings.
    pub fn feed_forward(&self) -> PositionWiseFfConfig {
        PositionWiseFfConfig {
            hidden_size: self.hidden_size,
            inner_size: self.inner_size,
            ffn_dropout: self.ffn_dropout,
            hidden_act: self.hidden_act,
        }
    }

    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        self.attention().validate()?;
        self.feed_forward().validate()?;
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return Err(Error::Config {
                key: "layer_norm_eps".into(),
                msg: format!(
                    "must be finite and non-negative, got {}",
                    self.layer_norm_eps
                ),
            });
        }
        Ok(())
    }
}

/// `x` plus `sublayer` with `norm` after the sum (post-LN) or on the sub-layer's input (pre-LN).
pub(crate) fn residual(
    x: &Tensor,
    norm: &LayerNorm,
    pre_ln: bool,
    sublayer: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if pre_ln {
        Ok((x + sublayer(&norm.forward(x)?)?)?)
    } else {
        norm.forward(&(x + sublayer(x)?)?)
    }
}

/// Checks that an input is `(B, T, D)` with the model's `D`; returns `(B, T)`.
pub(crate) fn check_states(
    op: &'static str,
    name: &str,
    x: &Tensor,
    d: usize,
) -> Result<(usize, usize)> {
    match *x.dims() {
        [b, t, dx] if dx == d => Ok((b, t)),
        _ => Err(Error::Shape {
            op,
            msg: format!("{name} must be (B, T, D = {d}), got {:?}", x.dims()),
        }),
    }
}

/// Checks that a padding mask is `(B, T)` for the given sizes.
pub(crate) fn check_mask(
    op: &'static str,
    name: &str,
    mask: &Tensor,
    b: usize,
    t: usize,
) -> Result<()> {
    if mask.dims() == [b, t] {
        Ok(())
    } else {
        Err(Error::Shape {
            op,
            msg: format!("{name} must be (B, T) = ({b}, {t}), got {:?}", mask.dims()),
        })
    }
}
