//! The position-wise feed-forward network of a Transformer block, NeMo 0.x's `PositionWiseFF`
//! (`transformer_modules.py`, v0.11.1) without its residual and LayerNorm (the blocks add
//! those):
//!
//! ```text
//! out = dropout(act(x W_in + b_in) W_out + b_out)        act = ReLU (NMT) or GELU (BERT)
//! ```
//!
//! Names: `dense_in` (`weight` `(D_inner, D)`), `dense_out` (`weight` `(D, D_inner)`), Xavier-
//! uniform weights and zero biases.

use candle_core::{Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::dropout_t;
use super::init::xavier_linear;
use crate::{Error, ForwardCtx, Result};

/// The activation between the two layers (NeMo's `hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HiddenAct {
    /// `max(0, x)`, NeMo's default.
    #[default]
    Relu,
    /// `x·Φ(x)` with the exact (erf) normal CDF, as NeMo's and BERT's `gelu`.
    Gelu,
}

/// Settings of a [`PositionWiseFf`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionWiseFfConfig {
    /// `D`, the model width.
    pub hidden_size: usize,
    /// `D_inner`, the width of the hidden layer (`d_inner`; usually 4·D).
    pub inner_size: usize,
    /// Dropout on the output in training (default 0).
    #[serde(default)]
    pub ffn_dropout: f64,
    /// `relu` (default) or `gelu`.
    #[serde(default)]
    pub hidden_act: HiddenAct,
}

impl PositionWiseFfConfig {
    /// A ReLU network `D → D_inner → D` without dropout.
    pub fn new(hidden_size: usize, inner_size: usize) -> Self {
        PositionWiseFfConfig {
            hidden_size,
            inner_size,
            ffn_dropout: 0.0,
            hidden_act: HiddenAct::Relu,
        }
    }

    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| Error::Config {
            key: format!("feed_forward.{key}"),
            msg,
        };
        if self.hidden_size == 0 || self.inner_size == 0 {
            return Err(bad(
                "inner_size",
                format!(
                    "hidden_size {} and inner_size {} must be positive",
                    self.hidden_size, self.inner_size
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.ffn_dropout) {
            return Err(bad(
                "ffn_dropout",
                format!("must be in [0, 1), got {}", self.ffn_dropout),
            ));
        }
        Ok(())
    }

    /// Builds the network with weights from `vb` (`dense_in`, `dense_out`).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid setting; [`Error::Candle`] when `vb` holds a tensor of
    /// another shape under one of the names.
    pub fn init(&self, vb: VarBuilder) -> Result<PositionWiseFf> {
        self.validate()?;
        Ok(PositionWiseFf {
            dense_in: xavier_linear(self.hidden_size, self.inner_size, vb.pp("dense_in"))?,
            dense_out: xavier_linear(self.inner_size, self.hidden_size, vb.pp("dense_out"))?,
            config: self.clone(),
        })
    }
}

/// The position-wise feed-forward network; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct PositionWiseFf {
    dense_in: Linear,
    dense_out: Linear,
    config: PositionWiseFfConfig,
}

impl PositionWiseFf {
    /// The settings it was built with.
    pub fn config(&self) -> &PositionWiseFfConfig {
        &self.config
    }

    /// Applies the network at every position; dropout in training draws from `ctx`.
    ///
    /// # Shapes
    /// `(B, T, D)` → `(B, T, D)`
    ///
    /// # Errors
    /// [`Error::Candle`] when `x` does not end in `D`.
    pub fn forward(&self, x: &Tensor, ctx: &ForwardCtx) -> Result<Tensor> {
        let h = self.dense_in.forward(x)?;
        let h = match self.config.hidden_act {
            HiddenAct::Relu => h.relu()?,
            HiddenAct::Gelu => h.gelu_erf()?,
        };
        let out = self.dense_out.forward(&h)?;
        dropout_t(&out, self.config.ffn_dropout, ctx)
    }
}
