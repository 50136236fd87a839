//! Connectionist Temporal Classification (CTC) loss with an exact backward pass.
//!
//! Given per-frame log-probabilities `log_probs (B, T, D)` over `D = labels + 1` classes and a
//! padded label sequence `targets (B, S)`, the loss of sample `b` is the negative log-likelihood
//! `-ln p(y | x) = -ln Σ_π Π_t p_t(π_t)`, summed over every frame-level path `π` of length
//! `input_lengths[b]` that collapses to `targets[b, ..target_lengths[b]]` once repeats are merged
//! and blanks dropped (Graves et al. 2006, <https://www.cs.toronto.edu/~graves/icml_2006.pdf>).
//!
//! # The math
//!
//! The label sequence `y` of length `U` is extended with blanks to `y' = (∅, y₁, ∅, y₂, …, y_U, ∅)`
//! of length `L = 2U + 1`. The forward variable `α_t(s)` (log-probability of all path prefixes
//! ending in state `s` at frame `t`) obeys
//!
//! ```text
//! α_t(s) = ln p_t(y'_s) + LSE(α_{t-1}(s), α_{t-1}(s-1), α_{t-1}(s-2) if y'_s ≠ ∅ and y'_s ≠ y'_{s-2})
//! ```
//!
//! and `ln p(y|x) = LSE(α_{T-1}(L-1), α_{T-1}(L-2))`. The backward variable `β_t(s)` runs the same
//! recursion from the end. The gradient of the per-sample loss with respect to the log-probability
//! `ln p_t(k)` is minus the posterior occupancy of class `k` at frame `t`:
//!
//! ```text
//! ∂(-ln p(y|x)) / ∂ ln p_t(k) = -Σ_{s : y'_s = k} exp(α_t(s) + β_t(s) - ln p_t(k) - ln p(y|x))
//! ```
//!
//! Every quantity lives in **log space** (`LSE` is log-sum-exp): a product of `T` probabilities
//! underflows `f64` after a few hundred frames of confident outputs, and even per-frame scaling fails
//! when log-probabilities reach the `-1000` range that a sharp log-softmax produces in `f32`. The
//! recursion is evaluated in `f64` whatever the input precision, and the posteriors, all in `[0, 1]`,
//! are exponentiated only at the end.
//!
//! The blank is the **last** class by default (`blank = D - 1`), as in NeMo: NeMo's decoders emit
//! `num_classes + 1` outputs and append the blank after the vocabulary, so label ids from the
//! tokenizer are also the class indices and need no shift
//! (NeMo `nemo/collections/asr/losses/ctc.py` at commit
//! [`3ce44c5`](https://github.com/NVIDIA/NeMo/blob/3ce44c5d88daa68f0044e896b037a00bc137bc05/nemo/collections/asr/losses/ctc.py):
//! `self._blank = num_classes`).
//!
//! # Autograd
//!
//! The per-sample loss is a candle [`CustomOp1`](candle_core::CustomOp1) on `log_probs`, so `loss.backward()` works. When
//! `log_probs` tracks gradients, the forward pass also runs the backward recursion and keeps the
//! per-sample gradient; `backward` then only scales it by the incoming gradient. Reductions are
//! ordinary candle ops. The returned gradient is the exact derivative with respect to `log_probs`;
//! PyTorch's `ctc_loss` adds `exp(log_probs)` to it (a term that cancels in log-softmax's backward),
//! so the two agree on gradients with respect to the logits before the log-softmax.
//!
//! # Implementation
//!
//! Computation runs on the CPU, in parallel over the batch (rayon), with per-thread scratch
//! buffers reused across samples. Within a sample, the blank states and the label states are
//! kept in separate arrays, so each frame is a few branch-free loops over contiguous rows that
//! vectorize (AVX2+FMA where the CPU has them, chosen at run time); `exp` and `ln` are
//! polynomial implementations accurate to a few ulp (libm's are scalar calls), and the
//! log-sum-exp of three terms needs two `exp`s and one `ln`. Only states that can lie on a
//! complete path at frame `t` are visited. Tensors on another device are copied to the CPU and
//! the loss (and its gradient) copied back. `f32` and `f64` are computed natively; `f16`/`bf16`
//! are cast to `f32`. A `NaN` anywhere in a sample's valid frames makes its loss and gradient
//! `NaN`.
//!
//! # Example
//!
//! ```
//! # fn main() -> nemo_asr::Result<()> {
//! use candle_core::{Device, Tensor, Var};
//! use nemo_asr::losses::{CtcOptions, ctc_loss};
//!
//! let dev = Device::Cpu;
//! // (B, T, D) = (1, 4, 3): labels {0, 1}, blank = 2 (the last class)
//! let logits = Var::from_tensor(&Tensor::zeros((1, 4, 3), candle_core::DType::F32, &dev)?)?;
//! let log_probs = candle_nn::ops::log_softmax(logits.as_tensor(), 2)?;
//! let targets = Tensor::new(&[[0u32, 1]], &dev)?;
//! let input_lengths = Tensor::new(&[4u32], &dev)?;
//! let target_lengths = Tensor::new(&[2u32], &dev)?;
//! let loss = ctc_loss(&log_probs, &targets, &input_lengths, &target_lengths, &CtcOptions::default())?;
//! let grads = loss.backward()?;
//! assert!(grads.get(&logits).is_some());
//! # Ok(())
//! # }
//! ```

use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use nemo_core::{Forward, ForwardCtx, neural_module};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::kernels::ctc::{Alignment, CtcOp, shape_err, to_u32};

/// How the per-sample losses of a batch are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CtcReduction {
    /// NeMo's default `mean_batch`: each sample's negative log-likelihood (summed over time), then
    /// the mean over the batch. Output shape `()`.
    #[default]
    MeanBatch,
    /// PyTorch's `mean`: each loss divided by its target length (at least 1), then the mean over
    /// the batch. Output shape `()`.
    Mean,
    /// NeMo's `mean_volume`: the sum of the losses divided by the sum of the target lengths (at
    /// least 1), so longer samples weigh more. Output shape `()`.
    MeanVolume,
    /// The sum of the per-sample losses. Output shape `()`.
    Sum,
    /// No reduction: the per-sample losses, shape `(B)`.
    None,
}

/// Settings of the function [`ctc_loss`]; the defaults are NeMo's `CTCLoss` defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CtcOptions {
    /// Index of the blank class; `None` (the default) means the last class, `D - 1`, as NeMo's
    /// `CTCLoss(num_classes)` sets `blank = num_classes`.
    pub blank: Option<usize>,
    /// How per-sample losses are combined; default [`CtcReduction::MeanBatch`].
    pub reduction: CtcReduction,
    /// Replace infinite losses (no alignment fits in the input length) by zero, with a zero
    /// gradient for that sample; default `false`. Without it such a sample's loss is `+inf` and its
    /// gradient `NaN`, as in PyTorch.
    pub zero_infinity: bool,
}

impl From<CtcReduction> for CtcOptions {
    fn from(reduction: CtcReduction) -> Self {
        Self {
            reduction,
            ..Self::default()
        }
    }
}

/// The settings of [`CtcLoss`], NeMo's `CTCLoss` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtcLossConfig {
    /// Labels, not counting the blank: the blank is class `num_classes`, the last of the
    /// decoder's `num_classes + 1` outputs.
    pub num_classes: usize,
    /// How per-sample losses are combined; default [`CtcReduction::MeanBatch`].
    #[serde(default)]
    pub reduction: CtcReduction,
    /// Replace infinite losses (no alignment fits in the input length) by zero, with a zero
    /// gradient for that sample; default `false`.
    #[serde(default)]
    pub zero_infinity: bool,
}

impl CtcLossConfig {
    /// The NeMo defaults for `num_classes` labels.
    pub fn new(num_classes: usize) -> Self {
        CtcLossConfig {
            num_classes,
            reduction: CtcReduction::default(),
            zero_infinity: false,
        }
    }

    /// Builds the loss.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for `num_classes = 0`.
    pub fn init(&self) -> Result<CtcLoss> {
        if self.num_classes == 0 {
            return Err(crate::Error::Config {
                key: "num_classes".into(),
                msg: "must be a positive number of labels, found 0".into(),
            });
        }
        Ok(CtcLoss {
            config: self.clone(),
            classes: self.num_classes + 1,
        })
    }
}

/// The CTC loss as a typed loss module (NeMo's `CTCLoss`, `CtcLoss` in NeMo 0.x); the blank is
/// the last class.
///
/// Ports: `log_probs (B, T, D = num_classes + 1) Logprobs`, `targets (B, T) Labels`,
/// `input_length (B) Lengths`, `target_length (B) Lengths` → `loss Loss`.
#[doc(alias = "CTCLoss", alias = "CTCLossNM")]
#[neural_module(
    kind = loss,
    inputs(
        log_probs: (B, T, D = classes) Logprobs,
        targets: (B, T) Labels,
        input_length: (B) Lengths,
        target_length: (B) Lengths,
    ),
    outputs(loss: Loss),
)]
#[derive(Debug, Clone)]
pub struct CtcLoss {
    config: CtcLossConfig,
    /// Labels + blank.
    classes: usize,
}

impl CtcLoss {
    /// The settings.
    pub fn config(&self) -> &CtcLossConfig {
        &self.config
    }
}

impl Forward for CtcLoss {
    fn forward_tensors(
        &self,
        x: CtcLossInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo_core::Result<CtcLossOutputTensors> {
        let options = CtcOptions {
            blank: Some(self.config.num_classes),
            reduction: self.config.reduction,
            zero_infinity: self.config.zero_infinity,
        };
        let loss = ctc_loss(
            &x.log_probs,
            &x.targets,
            &x.input_length,
            &x.target_length,
            &options,
        )?;
        Ok(CtcLossOutputTensors { loss })
    }
}

/// The CTC loss of a batch, differentiable with respect to `log_probs`.
///
/// `log_probs (B, T, D)` are batch-first log-probabilities (NeMo's decoder output), `targets (B, S)`
/// padded label ids (`u8`, `u32`, `i16`, `i32` or `i64`), `input_lengths (B)` and
/// `target_lengths (B)` integer lengths. Returns the reduced loss (shape `()`), or the per-sample
/// losses `(B)` with [`CtcReduction::None`], in the dtype and on the device of `log_probs`.
///
/// A sample with `input_length = 0` and `target_length = 0` has loss 0 (the empty alignment).
///
/// # Errors
/// [`Error::Shape`](crate::Error::Shape) with op `ctc_loss` when a rank, size or dtype is wrong, the batch is empty,
/// a length is negative or exceeds its axis, the blank is not a class, or a label in the valid
/// part of `targets` is negative, `>= D` or the blank; the message names the sample and value.
pub fn ctc_loss(
    log_probs: &Tensor,
    targets: &Tensor,
    input_lengths: &Tensor,
    target_lengths: &Tensor,
    config: &CtcOptions,
) -> Result<Tensor> {
    let (batch, frames, classes) = match log_probs.dims() {
        &[b, t, d] => (b, t, d),
        dims => {
            return Err(shape_err(format!(
                "`log_probs` must be (B, T, D), got shape {dims:?}"
            )));
        }
    };
    let orig_dtype = log_probs.dtype();
    let compute_dtype = match orig_dtype {
        DType::F32 | DType::F64 => orig_dtype,
        DType::F16 | DType::BF16 => DType::F32,
        other => {
            return Err(shape_err(format!(
                "`log_probs` must be a float tensor, got dtype {other:?}"
            )));
        }
    };
    if batch == 0 {
        return Err(shape_err("the batch is empty (B = 0)".to_string()));
    }
    let blank = config.blank.unwrap_or(classes.saturating_sub(1));
    if blank >= classes {
        return Err(shape_err(format!(
            "blank index {blank} is not a class of `log_probs` with D = {classes}"
        )));
    }
    let blank_id = to_u32(blank, "blank index")?;
    let alignment = Alignment::new(
        targets,
        input_lengths,
        target_lengths,
        batch,
        frames,
        classes,
        blank_id,
        config.zero_infinity,
    )?;

    let orig_device = log_probs.device().clone();
    let lp = log_probs
        .to_device(&Device::Cpu)?
        .to_dtype(compute_dtype)?
        .contiguous()?;
    let op = CtcOp {
        want_grad: lp.track_op(),
        alignment,
        grad: Mutex::new(None),
    };
    let target_total: usize = op.alignment.target_lengths.iter().sum();
    let target_lengths_f: Vec<f64> = op
        .alignment
        .target_lengths
        .iter()
        .map(|&l| l.max(1) as f64)
        .collect();
    let nll = lp.apply_op1(op)?; // (B)

    let loss = match config.reduction {
        CtcReduction::None => nll,
        CtcReduction::Sum => nll.sum_all()?,
        CtcReduction::MeanBatch => nll.mean_all()?,
        CtcReduction::Mean => {
            let divisors =
                Tensor::from_vec(target_lengths_f, batch, &Device::Cpu)?.to_dtype(compute_dtype)?;
            (nll / divisors)?.mean_all()?
        }
        CtcReduction::MeanVolume => {
            let total = target_total.max(1) as f64;
            (nll.sum_all()? / total)?
        }
    };
    Ok(loss.to_dtype(orig_dtype)?.to_device(&orig_device)?)
}
