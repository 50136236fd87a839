//! `SequenceLoss` (NeMo 0.x's name): the masked token negative log-likelihood of a sequence
//! decoder, with optional label smoothing.
//!
//! Ports: `log_probs (B, T, D) Logprobs`, `targets (B, T) Labels` → `loss Loss`.
//!
//! With `m[b, t] = 1` where `targets[b, t] ≠ pad_id` (else 0), `V` classes, `ε = smoothing_coef`,
//! `s` the share of the mean ([`LabelSmoothing`]: `ε` for NeMo's ASR `SequenceLoss`,
//! `V·ε/(V − 1)` for its NMT `PaddedSmoothedCrossEntropyLoss`) and
//! `ℓ[b, t] = (1 − s) · log_probs[b, t, targets[b, t]] + s · mean_d log_probs[b, t, d]`:
//!
//! ```text
//! loss = −Σ_{b,t} m ℓ / Σ_{b,t} m                    (sample_wise: false, NeMo's default)
//! loss = −mean_b ( Σ_t m ℓ / Σ_t m )                 (sample_wise: true)
//! ```
//!
//! Padding never contributes, whatever its log-probabilities. A batch without any valid token
//! gives loss 0 (the denominator is clamped to 1; NeMo's NMT loss divides by `Σ m + 10⁻⁶`
//! instead, which differs by one part in a million per token).

use crate::{Forward, ForwardCtx, neural_module};
use candle_core::{D, DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where label smoothing puts its mass `ε = smoothing_coef`. NeMo has both: the same
/// `(1 − s) · log p[y] + s · mean log p` with a different `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelSmoothing {
    /// Spread over all `V` classes, the target's included: `s = ε` (NeMo 0.x's `SequenceLoss`,
    /// the ASR attention model's).
    #[default]
    AllClasses,
    /// Spread over the `V − 1` other classes, the target keeping exactly `1 − ε`:
    /// `s = V·ε / (V − 1)` (NeMo 0.x's `PaddedSmoothedCrossEntropyLossNM` and
    /// `SmoothedCrossEntropyLoss` of its Transformer NMT; fairseq's `label_smoothed_cross_entropy`).
    OtherClasses,
}

impl LabelSmoothing {
    /// The weight `s` of the mean log-probability for smoothing `epsilon` over `classes`.
    pub fn mean_weight(self, epsilon: f64, classes: usize) -> f64 {
        match self {
            LabelSmoothing::AllClasses => epsilon,
            LabelSmoothing::OtherClasses if classes > 1 => {
                classes as f64 * epsilon / (classes as f64 - 1.0)
            }
            LabelSmoothing::OtherClasses => 0.0,
        }
    }
}

/// The loss configuration, NeMo's `loss:` section; missing keys take the [`Default`] values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SequenceLossConfig {
    /// The padding id whose positions are ignored (NeMo's `pad_id`, default 0).
    pub pad_id: u32,
    /// Label smoothing `s` in `[0, 1)` (NeMo's `smoothing_coef`, default 0).
    pub smoothing_coef: f64,
    /// Where the smoothing mass goes (default `all_classes`, NeMo's `SequenceLoss`).
    pub smoothing: LabelSmoothing,
    /// Average per utterance first, then over the batch (NeMo's `sample_wise`, default false:
    /// average over all valid tokens of the batch).
    pub sample_wise: bool,
}

impl SequenceLossConfig {
    /// Checks the smoothing coefficient.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.smoothing_coef) {
            return Err(Error::Config {
                key: "loss.smoothing_coef".into(),
                msg: format!("{} is not in [0, 1)", self.smoothing_coef),
            });
        }
        Ok(())
    }
}

/// The masked sequence NLL.
#[neural_module(
    kind = loss,
    inputs(
        log_probs: (B, T as steps, D) Logprobs,
        targets: (B, T as steps) Labels,
    ),
    outputs(loss: Loss),
)]
#[derive(Debug, Clone)]
pub struct SequenceLoss {
    config: SequenceLossConfig,
}

impl SequenceLossConfig {
    /// Validates the settings and builds the loss.
    pub fn init(&self) -> Result<SequenceLoss> {
        SequenceLoss::new(self.clone())
    }
}

impl SequenceLoss {
    /// A loss with `config`.
    fn new(config: SequenceLossConfig) -> Result<Self> {
        config.validate()?;
        Ok(SequenceLoss { config })
    }

    /// The configuration.
    pub fn config(&self) -> &SequenceLossConfig {
        &self.config
    }

    /// The scalar loss of `log_probs` `(B, T, V)` against `targets` `(B, T)` (integer ids).
    pub fn compute(&self, log_probs: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let (b, t, v) = log_probs.dims3()?;
        if targets.dims() != [b, t] {
            return Err(Error::Shape {
                op: "SequenceLoss",
                msg: format!(
                    "targets {:?} do not match log_probs {:?}",
                    targets.dims(),
                    log_probs.dims()
                ),
            });
        }
        let ids = targets.to_dtype(DType::I64)?;
        let flat: Vec<i64> = ids.flatten_all()?.to_vec1()?;
        let pad = i64::from(self.config.pad_id);
        if let Some((pos, bad)) = flat
            .iter()
            .enumerate()
            .find(|&(_, &x)| x != pad && (x < 0 || x as usize >= v))
        {
            return Err(Error::Shape {
                op: "SequenceLoss",
                msg: format!(
                    "target id {bad} at row {}, step {} is not a class id (0..{v})",
                    pos / t.max(1),
                    pos % t.max(1)
                ),
            });
        }
        let dtype = log_probs.dtype();
        let mask_vals: Vec<u8> = flat.iter().map(|&x| u8::from(x != pad)).collect();
        let mask = Tensor::from_vec(mask_vals, (b, t), log_probs.device())?.to_dtype(dtype)?;
        // Padding may hold any id (even one past the classes): gather at a valid one, then mask.
        let safe: Vec<u32> = flat
            .iter()
            .map(|&x| {
                if x >= 0 && (x as usize) < v {
                    x as u32
                } else {
                    0
                }
            })
            .collect();
        let index = Tensor::from_vec(safe, (b, t, 1), log_probs.device())?;
        let mut token = log_probs.gather(&index, 2)?.squeeze(2)?; // (B, T)
        let s = self
            .config
            .smoothing
            .mean_weight(self.config.smoothing_coef, v);
        if s > 0.0 {
            let mean = log_probs.mean(D::Minus1)?;
            token = ((token * (1.0 - s))? + (mean * s)?)?;
        }
        let masked = (token * &mask)?;
        if self.config.sample_wise {
            let per = masked.sum(1)?; // (B)
            let counts = mask.sum(1)?.clamp(1.0, f64::INFINITY)?;
            Ok(per.div(&counts)?.mean_all()?.neg()?)
        } else {
            let total = mask.sum_all()?.clamp(1.0, f64::INFINITY)?;
            Ok(masked.sum_all()?.div(&total)?.neg()?)
        }
    }
}

impl Forward for SequenceLoss {
    fn forward_tensors(
        &self,
        x: SequenceLossInputTensors,
        _ctx: &ForwardCtx,
    ) -> crate::Result<SequenceLossOutputTensors> {
        Ok(SequenceLossOutputTensors {
            loss: self.compute(&x.log_probs, &x.targets)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// `other_classes` is the cross-entropy against `1 − ε` on the target and `ε / (V − 1)` on
    /// every other class (fairseq's form of NeMo's NMT loss).
    #[test]
    fn other_classes_smoothing_is_a_soft_target_distribution() -> Result<()> {
        let logits = Tensor::new(
            &[[[0.3f64, -1.2, 2.0, 0.1], [1.5, 0.2, -0.4, 0.0]]],
            &Device::Cpu,
        )?;
        let logp = crate::nn::log_softmax(&logits)?;
        let targets = Tensor::new(&[[2i64, 1]], &Device::Cpu)?;
        let eps = 0.1;
        let loss = SequenceLossConfig {
            smoothing_coef: eps,
            smoothing: LabelSmoothing::OtherClasses,
            pad_id: 9,
            ..Default::default()
        }
        .init()?
        .compute(&logp, &targets)?
        .to_scalar::<f64>()?;
        let lp: Vec<Vec<f64>> = logp.squeeze(0)?.to_vec2()?;
        let want: f64 = [(0usize, 2usize), (1, 1)]
            .iter()
            .map(|&(t, y)| {
                -(0..4)
                    .map(|v| {
                        let q = if v == y { 1.0 - eps } else { eps / 3.0 };
                        q * lp[t][v]
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
            / 2.0;
        assert!((loss - want).abs() < 1e-12, "{loss} vs {want}");
        assert_eq!(LabelSmoothing::OtherClasses.mean_weight(0.1, 1), 0.0);
        assert!((LabelSmoothing::OtherClasses.mean_weight(0.1, 4) - 0.4 / 3.0).abs() < 1e-15);
        Ok(())
    }
}
