//! Batch normalization over `(B, C, T)` tensors (PyTorch's `BatchNorm1d`), optionally fused with
//! the ReLU that follows it, as a candle custom op with a hand-written backward.
//!
//! # What it computes
//!
//! For an input `x` of shape `(B, C, T)`, a scale `γ` (`weight`) and a shift `β` (`bias`), both of
//! shape `(C)`, training mode normalizes each channel by the statistics of the batch, taken over
//! the `N = B·T` values of that channel:
//!
//! ```text
//! μ[c]      = (1/N) Σ_{b,t} x[b, c, t]
//! σ²[c]     = (1/N) Σ_{b,t} (x[b, c, t] − μ[c])²                    (biased)
//! x̂[b,c,t]  = (x[b, c, t] − μ[c]) / √(σ²[c] + eps)
//! y[b,c,t]  = γ[c]·x̂[b, c, t] + β[c]                 (with `relu`: max(0, γ[c]·x̂ + β[c]))
//! ```
//!
//! and updates the running statistics in place as PyTorch does, with the *unbiased* variance:
//!
//! ```text
//! running_mean ← (1 − momentum)·running_mean + momentum·μ
//! running_var  ← (1 − momentum)·running_var  + momentum·σ²·N/(N − 1)
//! ```
//!
//! Evaluation mode uses the running statistics instead: `y = γ·(x − running_mean) /
//! √(running_var + eps) + β`. See PyTorch's `torch.nn.BatchNorm1d` and Ioffe & Szegedy, *Batch
//! Normalization* (<https://arxiv.org/abs/1502.03167>).
//!
//! # Why not `candle_nn::BatchNorm`
//!
//! candle's layer builds training mode out of about a dozen tensor ops (transpose, contiguous copy,
//! two means, broadcast subtract and divide, scale, shift, transpose back), each a full pass over the
//! tensor, and its autograd replays them in reverse; at `(16, 256, 200)` on two cores that is about
//! 60 ms for forward and backward, and the ReLU after it another 7 ms — three times the cost of the
//! separable convolution it follows. The fused op here reads `x` once and writes `y` once in the
//! forward, and reads `x`, `y`, `∂L/∂y` once and writes `∂L/∂x` once in the backward.
//!
//! # Kernel layout
//!
//! * **Parallel over channels.** Everything a channel needs is its own `B` rows of `T` values, so
//!   rayon runs one task per channel; the rows of a channel (a few kilobytes) stay in cache across
//!   the passes over them.
//! * **Statistics in `f64`.** The mean is taken first, then the sum of squared deviations from it
//!   (two passes, no `E[x²] − E[x]²` cancellation), both accumulated in `f64` lanes, so the variance
//!   is exact to `f32` rounding whatever the offset of the data and the length of the batch. The
//!   backward's two reductions (`Σ ∂L/∂y` and `Σ ∂L/∂y·(x − μ)`) are accumulated the same way.
//! * **Element-wise passes in the input's precision**, with per-channel coefficients computed in
//!   `f64`: `y = (x − μ)·(γ/σ) + β` and `∂L/∂x = a·g + k·(x − μ) + c₀` (below), contiguous over `T`
//!   so the compiler vectorizes them. `μ` enters them as an unevaluated sum `μ_hi + μ_lo` of two
//!   input-precision numbers and `x − μ` as `(x − μ_hi) − μ_lo`, so a channel far from zero (an
//!   offset of 10⁴ with unit spread) loses no digits to the rounding of its mean.
//!
//! # Backward
//!
//! With `g = ∂L/∂y` (masked by `y > 0` first when the ReLU is fused, as PyTorch's ReLU backward
//! does) and `x̂` as above:
//!
//! ```text
//! ∂L/∂β[c] = Σ_{b,t} g
//! ∂L/∂γ[c] = Σ_{b,t} g·x̂
//! ∂L/∂x    = (γ[c] / √(σ²[c] + eps)) · (g − ∂L/∂β[c]/N − x̂·∂L/∂γ[c]/N)
//! ```
//!
//! The backward is itself a custom op without a backward: gradients of gradients (double
//! backward) through the fast path return candle's `BackwardNotSupported` error.
//!
//! # Dtypes and devices
//!
//! `f32` and `f64` tensors on the CPU use the fused kernels (non-contiguous inputs are made
//! contiguous first). With the `cuda` feature, `f32`, `f16` and `bf16` tensors on CUDA with `f32`
//! parameters use the CUDA kernels of `cuda/batch_norm.cu` (one block per channel, statistics in
//! `f64` kept on the device, the same formulas; half-precision input computes in `f32`). Any other
//! dtype or device falls back to the same formulas written with candle's differentiable tensor
//! ops, so the module runs, and trains, on every backend candle supports.
//!
//! ```
//! # fn main() -> nemo_asr::Result<()> {
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{VarBuilder, VarMap};
//! use nemo_asr::kernels::BatchNorm1d;
//!
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! let bn = BatchNorm1d::new(8, 1e-3, 0.1, vb)?; //              weight 1, bias 0, stats (0, 1)
//! let x = Tensor::randn(0f32, 1., (2, 8, 50), &Device::Cpu)?; // (B, C, T)
//! let y = bn.forward_t(&x, true, true)?; //                      training mode, ReLU fused
//! assert_eq!(y.dims(), &[2, 8, 50]);
//! # Ok(())
//! # }
//! ```

use std::sync::{Arc, OnceLock};

use candle_core::{DType, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use super::batch_norm_cpu::{Dims, OP};
#[cfg(feature = "cuda")]
use super::batch_norm_op::SavedStat;
use super::batch_norm_op::{BatchNormTrain, Saved};
use crate::{Error, Result};

/// Batch normalization of `(B, C, T)` tensors with learned scale and shift and running
/// statistics, as PyTorch's `BatchNorm1d(C, eps, momentum, affine=True, track_running_stats=True)`.
///
/// Training mode runs the fused kernel of this module (see the module docs) and updates the running
/// statistics; evaluation mode normalizes with the running statistics. Either mode can apply a
/// ReLU to the result in the same pass.
#[derive(Debug, Clone)]
pub struct BatchNorm1d {
    /// `γ`, `(C)`.
    weight: Tensor,
    /// `β`, `(C)`.
    bias: Tensor,
    /// Running mean, `(C)`, updated in place in training mode.
    running_mean: Var,
    /// Running (unbiased) variance, `(C)`, updated in place in training mode.
    running_var: Var,
    /// Added to the variance before the square root.
    eps: f64,
    /// Weight of the batch statistics in the running-statistics update.
    momentum: f64,
}

impl BatchNorm1d {
    /// Builds the layer for `channels` channels, taking `weight` (initialized to 1), `bias` (0),
    /// `running_mean` (0) and `running_var` (1) from `vb`, PyTorch's names and initial values.
    ///
    /// NeMo's Jasper/QuartzNet use `eps = 1e-3`, `momentum = 0.1`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `eps` is negative or not finite, or `momentum` is outside `[0, 1]`;
    /// [`Error::Candle`] when `vb` holds a tensor of another shape under one of the names.
    pub fn new(channels: usize, eps: f64, momentum: f64, vb: VarBuilder) -> Result<Self> {
        check_hyper(eps, momentum)?;
        let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
        let running_mean = vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?;
        let running_var = vb.get_with_hints(channels, "running_var", Init::Const(1.0))?;
        Self::from_tensors(weight, bias, running_mean, running_var, eps, momentum)
    }

    /// Builds the layer from ready tensors, all of shape `(C)`. A running statistic that is already
    /// a candle [`Var`] (as those a `VarMap` hands out) is updated in place, so the owner of the
    /// variable sees the new values; any other tensor is copied into a new variable.
    ///
    /// # Errors
    /// [`Error::Shape`] when a tensor is not `(C)` with the same `C` as `weight`, the dtypes or
    /// devices differ, `eps` is negative or not finite, or `momentum` is outside `[0, 1]`.
    pub fn from_tensors(
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        eps: f64,
        momentum: f64,
    ) -> Result<Self> {
        check_hyper(eps, momentum)?;
        let channels = match *weight.dims() {
            [c] => c,
            _ => {
                return Err(shape_err(format!(
                    "weight must be (C), got {:?}",
                    weight.dims()
                )));
            }
        };
        for (name, t) in [
            ("bias", &bias),
            ("running_mean", &running_mean),
            ("running_var", &running_var),
        ] {
            check_channel_vector(name, t, channels, &weight)?;
        }
        Ok(Self {
            weight,
            bias,
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            eps,
            momentum,
        })
    }

    /// `γ`, `(C)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `β`, `(C)`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// The running mean, `(C)`.
    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    /// The running unbiased variance, `(C)`.
    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    /// The constant added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The momentum of the running statistics.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// `C`.
    pub fn channels(&self) -> usize {
        self.weight.elem_count()
    }

    /// Normalizes `x`, then applies a ReLU when `relu`.
    ///
    /// With `train`, normalizes with the statistics of the batch ([`batch_norm_train`]) and updates
    /// the running statistics in place (outside the autograd graph); otherwise normalizes with the
    /// running statistics. Differentiable in `x`, `weight` and `bias` in both modes.
    ///
    /// # Shapes
    /// * `x`: `(B, C, T)`
    /// * returns `(B, C, T)`
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` is not `(B, C, T)` with this layer's `C`, its dtype or device is
    /// not the parameters', or, in training, a channel has fewer than two values (`B·T < 2`);
    /// [`Error::Candle`] when a backend op fails.
    pub fn forward_t(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        if train {
            let (y, stats) = batch_norm_train(x, &self.weight, &self.bias, self.eps, relu)?;
            self.update_running_stats(&stats)?;
            Ok(y)
        } else {
            self.forward_eval(x, relu)
        }
    }

    /// `running ← (1 − m)·running + m·batch`, with the unbiased batch variance; not recorded in
    /// autograd.
    fn update_running_stats(&self, stats: &BatchStats) -> Result<()> {
        let m = self.momentum;
        let n = stats.count as f64;
        let update = |running: &Var, batch: &Tensor, factor: f64| -> Result<()> {
            let old = running.as_detached_tensor();
            let batch = batch
                .detach()
                .to_dtype(old.dtype())?
                .to_device(old.device())?;
            let new = ((old * (1.0 - m))? + (batch * (m * factor))?)?;
            running.set(&new)?;
            Ok(())
        };
        update(&self.running_mean, &stats.mean, 1.0)?;
        update(&self.running_var, &stats.var, n / (n - 1.0))
    }

    /// `γ·(x − running_mean)/√(running_var + eps) + β` with candle's ops (then a ReLU).
    fn forward_eval(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let (_, c, _) = check_input(x, &self.weight, &self.bias)?;
        let dtype = compute_dtype(x.dtype());
        let per_channel =
            |t: &Tensor| -> Result<Tensor> { Ok(t.to_dtype(dtype)?.reshape((1, c, 1))?) };
        let mean = per_channel(&self.running_mean.as_detached_tensor())?;
        let inv_std = per_channel(&self.running_var.as_detached_tensor())?
            .affine(1.0, self.eps)?
            .sqrt()?
            .recip()?;
        let scale = per_channel(&self.weight)?.mul(&inv_std)?;
        let y = x
            .to_dtype(dtype)?
            .broadcast_sub(&mean)?
            .broadcast_mul(&scale)?
            .broadcast_add(&per_channel(&self.bias)?)?;
        let y = if relu { y.relu()? } else { y };
        Ok(y.to_dtype(x.dtype())?)
    }
}

/// The statistics of one training-mode batch, detached from the autograd graph.
#[derive(Debug, Clone)]
pub struct BatchStats {
    /// `μ`, the mean of each channel, `(C)`.
    pub mean: Tensor,
    /// `σ²`, the biased (population) variance of each channel, `(C)`.
    pub var: Tensor,
    /// `N = B·T`, the number of values per channel.
    pub count: usize,
}

/// Training-mode batch normalization of `x` `(B, C, T)` with the batch's own statistics, then a
/// ReLU when `relu`; returns the result and the statistics (for a running-statistics update).
///
/// Differentiable in `x`, `weight` and `bias`. `f32`/`f64` CPU tensors use the fused kernel of this
/// module, anything else candle's tensor ops (see the module docs). The statistics are in `x`'s
/// dtype (`f32` for `f16`/`bf16`).
///
/// # Shapes
/// * `x`: `(B, C, T)`; `weight`, `bias`: `(C)`
/// * returns `(B, C, T)` and statistics of shape `(C)`
///
/// # Errors
/// [`Error::Shape`] when the shapes do not fit together, the dtypes or devices differ, `eps` is
/// negative or not finite, or a channel has fewer than two values (`B·T < 2`, as PyTorch refuses);
/// [`Error::Candle`] when a backend op fails.
pub fn batch_norm_train(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, BatchStats)> {
    check_hyper(eps, 0.0)?;
    let (b, c, t) = check_input(x, weight, bias)?;
    let count = b * t;
    if count < 2 {
        return Err(shape_err(format!(
            "training needs more than one value per channel, got x {:?}",
            x.dims()
        )));
    }
    if uses_fused_kernel(x, weight, bias) {
        let dims = Dims {
            batch: b,
            channels: c,
            time: t,
        };
        let saved = Arc::new(OnceLock::new());
        let op = BatchNormTrain {
            dims,
            eps,
            relu,
            saved: Arc::clone(&saved),
        };
        let y = x
            .contiguous()?
            .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?;
        #[cfg(feature = "cuda")]
        let saved_ref = Arc::clone(&saved);
        let Some(saved) = saved.get() else {
            return Err(shape_err(
                "the kernel did not record the batch statistics".into(),
            ));
        };
        let (mean, var) = match saved {
            Saved::Host(saved) => {
                let stat = |v: &[f64]| -> Result<Tensor> {
                    Ok(Tensor::new(v, x.device())?.to_dtype(x.dtype())?)
                };
                (stat(&saved.mean)?, stat(&saved.var)?)
            }
            #[cfg(feature = "cuda")]
            Saved::Device(_) => {
                use crate::kernels::cuda::batch_norm::Stat;
                let stat = |which: Stat| -> Result<Tensor> {
                    let op = SavedStat {
                        saved: Arc::clone(&saved_ref),
                        which,
                    };
                    Ok(weight
                        .apply_op1_no_bwd(&op)?
                        .to_dtype(compute_dtype(x.dtype()))?)
                };
                (stat(Stat::Mean)?, stat(Stat::Var)?)
            }
        };
        Ok((y, BatchStats { mean, var, count }))
    } else {
        batch_norm_train_fallback(x, weight, bias, eps, relu, count)
    }
}

/// [`batch_norm_train`] with candle's differentiable ops, for dtypes and devices without a kernel.
fn batch_norm_train_fallback(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    relu: bool,
    count: usize,
) -> Result<(Tensor, BatchStats)> {
    let c = weight.elem_count();
    let dtype = compute_dtype(x.dtype());
    let per_channel = |t: &Tensor| -> Result<Tensor> { Ok(t.to_dtype(dtype)?.reshape((1, c, 1))?) };
    let xc = x.to_dtype(dtype)?;
    let n = count as f64;
    let mean = (xc.sum_keepdim((0, 2))? / n)?;
    let centered = xc.broadcast_sub(&mean)?;
    let var = (centered.sqr()?.sum_keepdim((0, 2))? / n)?;
    let inv_std = var.affine(1.0, eps)?.sqrt()?.recip()?;
    let y = centered
        .broadcast_mul(&inv_std)?
        .broadcast_mul(&per_channel(weight)?)?
        .broadcast_add(&per_channel(bias)?)?;
    let y = if relu { y.relu()? } else { y };
    let stats = BatchStats {
        mean: mean.detach().flatten_all()?,
        var: var.detach().flatten_all()?,
        count,
    };
    Ok((y.to_dtype(x.dtype())?, stats))
}

/// Whether `x` runs on this module's kernels (CPU, `f32` or `f64`; with the `cuda` feature CUDA,
/// `f32`, `f16` or `bf16` with `f32` parameters) rather than candle's ops.
fn uses_fused_kernel(x: &Tensor, weight: &Tensor, bias: &Tensor) -> bool {
    match x.device() {
        candle_core::Device::Cpu => matches!(x.dtype(), DType::F32 | DType::F64),
        candle_core::Device::Cuda(_) => {
            cfg!(feature = "cuda")
                && matches!(x.dtype(), DType::F32 | DType::F16 | DType::BF16)
                && weight.dtype() == DType::F32
                && bias.dtype() == DType::F32
        }
        _ => false,
    }
}

/// The dtype the statistics are computed in: `f32` for the half types, else the input's.
fn compute_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    }
}

/// An [`Error::Shape`] of this op.
fn shape_err(msg: String) -> Error {
    Error::Shape { op: OP, msg }
}

/// Checks `eps ≥ 0` (finite) and `momentum ∈ [0, 1]`.
fn check_hyper(eps: f64, momentum: f64) -> Result<()> {
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(shape_err(format!(
            "eps must be finite and non-negative, got {eps}"
        )));
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(shape_err(format!(
            "momentum must be in [0, 1], got {momentum}"
        )));
    }
    Ok(())
}

/// Checks that `t` (named `name`) is `(C)` with `reference`'s dtype and device.
fn check_channel_vector(name: &str, t: &Tensor, channels: usize, reference: &Tensor) -> Result<()> {
    if t.dims() != [channels] {
        return Err(shape_err(format!(
            "{name} must be (C) with C = {channels}, got {:?}",
            t.dims()
        )));
    }
    // f16/bf16 input may come with f32 parameters (mixed precision): they are used in f32.
    if t.dtype() != reference.dtype() && t.dtype() != compute_dtype(reference.dtype()) {
        return Err(shape_err(format!(
            "dtype mismatch, {name}: {:?}, x: {:?}",
            t.dtype(),
            reference.dtype()
        )));
    }
    if !t.device().same_device(reference.device()) {
        return Err(shape_err(format!(
            "device mismatch, {name}: {:?}, x: {:?}",
            t.device().location(),
            reference.device().location()
        )));
    }
    Ok(())
}

/// Checks `x` `(B, C, T)` against `weight` and `bias` `(C)`; returns `(B, C, T)`.
fn check_input(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<(usize, usize, usize)> {
    let (b, c, t) = match *x.dims() {
        [b, c, t] => (b, c, t),
        _ => {
            return Err(shape_err(format!(
                "x must be (B, C, T), got {:?}",
                x.dims()
            )));
        }
    };
    check_channel_vector("weight", weight, c, x)?;
    check_channel_vector("bias", bias, c, x)?;
    Ok((b, c, t))
}
