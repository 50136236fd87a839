//! `TransformerLogSoftmaxNm` (the paper's `TransformerLogSoftmaxNM`, `transformer_nm.py` at
//! NeMo commit abd50d2339): hidden states to log-probabilities over the target vocabulary,
//! `log_softmax(h Wᵀ + b)`.
//!
//! | port | type | NeMo (paper) |
//! |---|---|---|
//! | `hidden_states` | `(B, T, D) Channel` | `(B, T, D) ChannelType` |
//! | `log_probs` | `(B, T, C) Logprobs` | `(B, T, C) ChannelType` |
//!
//! NeMo's recipe ties `W` `(C, D)` to the decoder's token embedding (the paper's script assigns
//! `log_softmax.dense.weight = encoder.embedding_layer.token_embedding.weight`): a model builds
//! this module with [`TransformerLogSoftmaxNmConfig::init_tied`], so both are one variable and
//! one entry of the weights file. Built alone ([`init`](TransformerLogSoftmaxNmConfig::init)),
//! `dense.weight` is Xavier-uniform.
//! `dense.bias` `(C)` starts at 0 and is never tied.
//!
//! The log-softmax is the core's differentiable [`log_softmax`] (candle's fused softmax records
//! no backward).

use candle_core::Tensor;
use candle_nn::VarBuilder;
use nemo_core::nn::log_softmax;
use nemo_core::nn::transformer::init::xavier_linear;
use nemo_core::{Forward, ForwardCtx, neural_module};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Settings of a [`TransformerLogSoftmaxNm`] (NeMo's names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerLogSoftmaxNmConfig {
    /// `C`, tokens in the target vocabulary (0 or absent: a model takes its tokenizer's).
    #[serde(default)]
    pub vocab_size: usize,
    /// `D`, the width of the hidden states.
    pub d_model: usize,
}

impl TransformerLogSoftmaxNmConfig {
    /// A projection from `d_model` to `vocab_size` classes.
    pub fn new(vocab_size: usize, d_model: usize) -> Self {
        TransformerLogSoftmaxNmConfig {
            vocab_size,
            d_model,
        }
    }

    /// Checks that both sizes are positive.
    pub fn validate(&self) -> Result<()> {
        for (key, v) in [("vocab_size", self.vocab_size), ("d_model", self.d_model)] {
            if v == 0 {
                return Err(Error::Config {
                    key: format!("log_softmax.{key}"),
                    msg: "must be positive, got 0".into(),
                });
            }
        }
        Ok(())
    }

    /// Builds the module with `dense.weight` `(C, D)` and `dense.bias` `(C)` from `vb`.
    pub fn init(&self, vb: VarBuilder) -> Result<TransformerLogSoftmaxNm> {
        self.validate()?;
        let dense = xavier_linear(self.d_model, self.vocab_size, vb.pp("dense"))?;
        let bias = dense.bias().cloned().ok_or_else(|| Error::Config {
            key: "log_softmax.dense.bias".into(),
            msg: "the projection has no bias".into(),
        })?;
        Ok(TransformerLogSoftmaxNm {
            d_model: self.d_model,
            vocab_size: self.vocab_size,
            weight: dense.weight().clone(),
            bias,
        })
    }
}

impl TransformerLogSoftmaxNmConfig {
    /// The module around an existing `W` `(C, D)` (a token table: tied weights); only
    /// `dense.bias` `(C)` comes from `vb`.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero size; [`Error::Shape`] when `weight` is not `(C, D)`.
    pub fn init_tied(&self, weight: &Tensor, vb: VarBuilder) -> Result<TransformerLogSoftmaxNm> {
        self.validate()?;
        if weight.dims() != [self.vocab_size, self.d_model] {
            return Err(Error::Shape {
                op: "TransformerLogSoftmaxNm",
                msg: format!(
                    "a tied weight must be (C, D) = ({}, {}), got {:?}",
                    self.vocab_size,
                    self.d_model,
                    weight.dims()
                ),
            });
        }
        let bias =
            vb.pp("dense")
                .get_with_hints(self.vocab_size, "bias", candle_nn::Init::Const(0.0))?;
        Ok(TransformerLogSoftmaxNm {
            d_model: self.d_model,
            vocab_size: self.vocab_size,
            weight: weight.clone(),
            bias,
        })
    }
}

/// The output projection and log-softmax, typed; see the [module docs](self).
#[neural_module(
    inputs(hidden_states: (B, T as steps, D = d_model) Channel),
    outputs(log_probs: (B, T as steps, C = vocab_size) Logprobs),
)]
#[derive(Debug, Clone)]
#[doc(alias = "TransformerLogSoftmaxNM")]
#[doc(alias = "TransformerLogSoftmax")]
pub struct TransformerLogSoftmaxNm {
    d_model: usize,
    vocab_size: usize,
    weight: Tensor,
    bias: Tensor,
}

impl TransformerLogSoftmaxNm {
    /// `W` `(C, D)`, possibly shared with a token embedding.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `b` `(C)`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// `C`.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Log-probabilities of plain hidden states.
    ///
    /// # Shapes
    /// `(.., D)` → `(.., C)`
    pub fn log_probs(&self, hidden_states: &Tensor) -> Result<Tensor> {
        let dims = hidden_states.dims().to_vec();
        let Some((&d, lead)) = dims.split_last() else {
            return Err(Error::Shape {
                op: "TransformerLogSoftmaxNm",
                msg: "hidden states must have a last axis D".into(),
            });
        };
        if d != self.d_model {
            return Err(Error::Shape {
                op: "TransformerLogSoftmaxNm",
                msg: format!(
                    "hidden states {dims:?} end in {d}, the projection takes D = {}",
                    self.d_model
                ),
            });
        }
        let rows: usize = lead.iter().product();
        // One (N, D) × (D, C) product: the vocabulary projection is the largest GEMM of a step.
        let logits = hidden_states
            .reshape((rows, d))?
            .matmul(&self.weight.t()?)?
            .broadcast_add(&self.bias)?; // (N, C)
        let mut out_dims = lead.to_vec();
        out_dims.push(self.vocab_size);
        Ok(log_softmax(&logits)?.reshape(out_dims)?)
    }
}

impl Forward for TransformerLogSoftmaxNm {
    fn forward_tensors(
        &self,
        x: TransformerLogSoftmaxNmInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo_core::Result<TransformerLogSoftmaxNmOutputTensors> {
        Ok(TransformerLogSoftmaxNmOutputTensors {
            log_probs: self.log_probs(&x.hidden_states)?,
        })
    }
}
