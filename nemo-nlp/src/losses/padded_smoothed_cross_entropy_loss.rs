//! `PaddedSmoothedCrossEntropyLossNm` (NeMo 0.x's `PaddedSmoothedCrossEntropyLossNM`,
//! `transformer_nm.py` at commit abd50d2339, and v0.11.1's `SmoothedCrossEntropyLoss`): the
//! label-smoothed negative log-likelihood of the target tokens, padding left out.
//!
//! | port | type | NeMo |
//! |---|---|---|
//! | `log_probs` | `(B, T, C) Logprobs` | `(B, T, D) ChannelType` |
//! | `target_ids` | `(B, T) TokenIds` | `(B, T) LabelsType` |
//! | `loss` | `Loss` | `LossType` |
//!
//! With vocabulary `V`, smoothing `ε` (`label_smoothing`), `s = V·ε / (V − 1)` and
//! `m = [target ≠ pad_id]`:
//!
//! ```text
//! nll[b, t] = −((1 − s) · log_probs[b, t, target] + s · mean_v log_probs[b, t, v])
//! loss      = Σ nll · m / Σ m
//! ```
//!
//! — the cross-entropy against `1 − ε` on the target and `ε / (V − 1)` on every other token. It
//! is the core [`SequenceLoss`] with [`LabelSmoothing::OtherClasses`]; NeMo divides by
//! `Σ m + 10⁻⁶`, which differs by one part in a million per token. NeMo's `predict_last_k`
//! (score only the last k positions, for language models) is not offered.

use nemo_core::nn::{LabelSmoothing, SequenceLoss, SequenceLossConfig};
use nemo_core::{Forward, ForwardCtx, neural_module};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::element_types::TokenIds;
use crate::tokenizer::PAD_ID;

fn default_pad_id() -> u32 {
    PAD_ID
}

/// Settings of a [`PaddedSmoothedCrossEntropyLossNm`] (NeMo's names; a model's `loss:` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaddedSmoothedCrossEntropyLossNmConfig {
    /// The id whose positions are not scored (default 0, the collection's `<PAD>`).
    #[serde(default = "default_pad_id")]
    pub pad_id: u32,
    /// `ε`, the probability mass moved from the target to the other tokens (default 0; the
    /// paper's recipe uses 0.1).
    #[serde(default)]
    pub label_smoothing: f64,
}

impl Default for PaddedSmoothedCrossEntropyLossNmConfig {
    fn default() -> Self {
        PaddedSmoothedCrossEntropyLossNmConfig {
            pad_id: default_pad_id(),
            label_smoothing: 0.0,
        }
    }
}

impl From<f64> for PaddedSmoothedCrossEntropyLossNmConfig {
    /// The loss with smoothing `label_smoothing` and the collection's `<PAD>`.
    fn from(label_smoothing: f64) -> Self {
        PaddedSmoothedCrossEntropyLossNmConfig {
            label_smoothing,
            ..Self::default()
        }
    }
}

impl PaddedSmoothedCrossEntropyLossNmConfig {
    /// The core loss's settings.
    pub fn sequence_loss(&self) -> SequenceLossConfig {
        SequenceLossConfig {
            pad_id: self.pad_id,
            smoothing_coef: self.label_smoothing,
            smoothing: LabelSmoothing::OtherClasses,
            sample_wise: false,
        }
    }

    /// Checks `label_smoothing` is in `[0, 1)`; the error names `loss.label_smoothing`.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(crate::Error::Config {
                key: "loss.label_smoothing".into(),
                msg: format!("must be in [0, 1), got {}", self.label_smoothing),
            });
        }
        Ok(())
    }

    /// Builds the loss.
    pub fn init(&self) -> Result<PaddedSmoothedCrossEntropyLossNm> {
        self.validate()?;
        Ok(PaddedSmoothedCrossEntropyLossNm {
            loss: self.sequence_loss().init()?,
            config: self.clone(),
        })
    }
}

/// The label-smoothed, padding-masked token NLL, typed; see the [module docs](self).
#[neural_module(
    kind = loss,
    inputs(
        log_probs: (B, T as steps, C) Logprobs,
        target_ids: (B, T as steps) TokenIds,
    ),
    outputs(loss: Loss),
)]
#[derive(Debug, Clone)]
#[doc(alias = "PaddedSmoothedCrossEntropyLossNM")]
#[doc(alias = "SmoothedCrossEntropyLoss")]
pub struct PaddedSmoothedCrossEntropyLossNm {
    loss: SequenceLoss,
    config: PaddedSmoothedCrossEntropyLossNmConfig,
}

impl PaddedSmoothedCrossEntropyLossNm {
    /// The settings.
    pub fn config(&self) -> &PaddedSmoothedCrossEntropyLossNmConfig {
        &self.config
    }

    /// The scalar loss of plain tensors: `log_probs` `(B, T, C)`, `target_ids` `(B, T)`.
    pub fn compute(
        &self,
        log_probs: &candle_core::Tensor,
        target_ids: &candle_core::Tensor,
    ) -> Result<candle_core::Tensor> {
        Ok(self.loss.compute(log_probs, target_ids)?)
    }
}

impl Forward for PaddedSmoothedCrossEntropyLossNm {
    fn forward_tensors(
        &self,
        x: PaddedSmoothedCrossEntropyLossNmInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo_core::Result<PaddedSmoothedCrossEntropyLossNmOutputTensors> {
        Ok(PaddedSmoothedCrossEntropyLossNmOutputTensors {
            loss: self.loss.compute(&x.log_probs, &x.target_ids)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use nemo_core::prelude::*;

    use super::*;
    use crate::TokenIds;

    /// NeMo's formula by hand: `s = V·ε/(V−1)`, `nll = −((1−s)·lp[y] + s·mean lp)`, averaged
    /// over the positions whose target is not `<PAD>`.
    #[test]
    fn matches_nemos_formula_by_hand() -> Result<()> {
        let dev = Device::Cpu;
        let logits = Tensor::new(
            &[
                [[2.0f64, 0.5, -1.0, 0.0, 1.0], [0.1, 0.2, 0.3, 0.4, 0.5]],
                [[-0.5, 1.5, 0.0, 2.5, -2.0], [1.0, 1.0, 1.0, 1.0, 1.0]],
            ],
            &dev,
        )?;
        let log_probs = nemo_core::nn::log_softmax(&logits)?;
        // Row 1's second position is padding (id 0).
        let targets = Tensor::new(&[[3i64, 1], [4, 0]], &dev)?;
        let eps = 0.1;
        let loss = PaddedSmoothedCrossEntropyLossNmConfig::from(eps).init()?;
        let out = loss.forward(PaddedSmoothedCrossEntropyLossNmInputs {
            log_probs: &NTensor::<(B, T, C), Logprobs>::new(log_probs.clone())?,
            target_ids: &NTensor::<(B, T), TokenIds>::new(targets)?,
        })?;
        let got = out.loss.tensor().to_scalar::<f64>()?;

        let lp: Vec<Vec<Vec<f64>>> = log_probs.to_vec3()?;
        let v = 5.0;
        let s = v * eps / (v - 1.0);
        let nll = |b: usize, t: usize, y: usize| {
            let mean = lp[b][t].iter().sum::<f64>() / v;
            -((1.0 - s) * lp[b][t][y] + s * mean)
        };
        let want = (nll(0, 0, 3) + nll(0, 1, 1) + nll(1, 0, 4)) / (3.0 + 1e-6);
        assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");

        // Without smoothing it is the plain mean NLL.
        let plain = PaddedSmoothedCrossEntropyLossNmConfig::default()
            .init()?
            .compute(&log_probs, &Tensor::new(&[[3i64, 1], [4, 0]], &dev)?)?
            .to_scalar::<f64>()?;
        let want = -(lp[0][0][3] + lp[0][1][1] + lp[1][0][4]) / 3.0;
        assert!((plain - want).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn smoothing_out_of_range_names_its_key() {
        let err = PaddedSmoothedCrossEntropyLossNmConfig::from(1.0)
            .init()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("config `loss.label_smoothing`: must be in [0, 1), got 1")
        );
    }
}
