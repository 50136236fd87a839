//! Layer normalization over the last axis (Ba et al. 2016, <https://arxiv.org/abs/1607.06450>),
//! as PyTorch's `nn.LayerNorm(D)`, with a fused CPU kernel **and** a hand-written backward.
//!
//! For a row `x` of `D` values, a scale `γ` (`weight`) and a shift `β` (`bias`), both `(D)`:
//!
//! ```text
//! μ = (1/D) Σᵢ xᵢ        σ² = (1/D) Σᵢ (xᵢ − μ)²  (biased)        x̂ᵢ = (xᵢ − μ) / √(σ² + eps)
//! yᵢ = γᵢ·x̂ᵢ + βᵢ
//! ```
//!
//! and with `g = ∂L/∂y`, summing over all rows for the parameters:
//!
//! ```text
//! ∂L/∂βᵢ = Σ_rows gᵢ        ∂L/∂γᵢ = Σ_rows gᵢ·x̂ᵢ
//! ∂L/∂xᵢ = (1/√(σ² + eps))·(gᵢγᵢ − (1/D) Σⱼ gⱼγⱼ − x̂ᵢ·(1/D) Σⱼ gⱼγⱼx̂ⱼ)
//! ```
//!
//! # Why not candle's
//!
//! `candle_nn::ops::layer_norm` is fused but records no backward, and `candle_nn::LayerNorm`
//! takes it for every contiguous input: every parameter upstream of such a layer silently gets
//! no gradient (huggingface/candle #2168, #2977). `candle_nn::ops::layer_norm_slow` composes
//! a dozen differentiable ops, each a pass over the tensor forward and again backward. The op
//! here reads `x` once and writes `y` once forward, and reads `x`, `∂L/∂y` once and writes
//! `∂L/∂x` once backward (the row statistics are recomputed there from the row in cache rather
//! than saved).
//!
//! # Dtypes and devices
//!
//! On the CPU, `f32`, `f16` and `bf16` rows are computed in `f32`, `f64` rows in `f64`; `γ` and
//! `β` may have `x`'s dtype or that compute dtype (mixed precision keeps `f32` parameters).
//! Other devices run the same formulas as candle's differentiable ops (in `f32` for half
//! types): slower, but they train. A CUDA kernel goes in `LayerNormOp::cuda_fwd` and
//! `LayerNormGrad::cuda_fwd` (one block per row, the same packed gradient layout), with
//! `uses_kernel` widened to match.
//!
//! ```
//! # fn main() -> nemo_core::Result<()> {
//! use candle_core::{DType, Device, Tensor};
//! use nemo_core::nn::LayerNormConfig;
//! use nemo_core::params::Parameters;
//!
//! let params = Parameters::new();
//! let ln = LayerNormConfig::default().init(8, params.var_builder(DType::F32, &Device::Cpu))?;
//! let x = Tensor::randn(0f32, 3., (2, 5, 8), &Device::Cpu)?; // (B, T, D)
//! let y = ln.forward(&x)?;
//! let mean = y.mean_keepdim(2)?.abs()?.max_all()?.to_scalar::<f32>()?;
//! assert!(mean < 1e-5);
//! # Ok(())
//! # }
//! ```

use std::mem::MaybeUninit;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, D, DType, Layout, Shape, Tensor, WithDType, bail};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::cpu_kernel::{
    Acc, Elem, contiguous_slice, dispatch_elem, has_avx2_fma, lane_sum, par_uninit, rows_per_task,
};
use crate::{Error, Result};

/// Name of the op in error messages.
const OP: &str = "layer_norm";

fn default_eps() -> f64 {
    1e-5
}

/// Settings of a [`LayerNorm`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerNormConfig {
    /// Added to the variance before the square root (default `1e-5`, PyTorch's and NeMo's).
    #[serde(default = "default_eps")]
    pub eps: f64,
}

impl Default for LayerNormConfig {
    fn default() -> Self {
        LayerNormConfig { eps: default_eps() }
    }
}

impl From<f64> for LayerNormConfig {
    /// A config with this `eps`.
    fn from(eps: f64) -> Self {
        LayerNormConfig { eps }
    }
}

impl LayerNormConfig {
    /// Builds a layer over rows of `dim` values with `weight` (initialized to 1) and `bias` (0)
    /// from `vb`; a store holding the legacy names `gamma`/`beta` instead is read under those.
    ///
    /// # Errors
    /// [`Error::Shape`] for `dim = 0` or a negative or non-finite `eps`; [`Error::Candle`] when
    /// `vb` holds a tensor of another shape under one of the names.
    pub fn init(&self, dim: usize, vb: VarBuilder) -> Result<LayerNorm> {
        let (w, b) = if !vb.contains_tensor("weight") && vb.contains_tensor("gamma") {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        if dim == 0 {
            return Err(shape_err("a layer over rows of 0 values".into()));
        }
        let weight = vb.get_with_hints(dim, w, candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, b, candle_nn::Init::Const(0.0))?;
        LayerNorm::new(weight, bias, self.eps)
    }
}

/// Layer normalization over the last axis with a learned scale and shift; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// A layer from ready `weight` and `bias` tensors, both `(D)`.
    ///
    /// # Errors
    /// [`Error::Shape`] when they are not both `(D)` with `D > 0`, or `eps` is negative or not
    /// finite.
    pub fn new(weight: Tensor, bias: Tensor, eps: f64) -> Result<Self> {
        check_eps(eps)?;
        match (weight.dims(), bias.dims()) {
            (&[d], &[e]) if d == e && d > 0 => Ok(LayerNorm { weight, bias, eps }),
            (w, b) => Err(shape_err(format!(
                "weight {w:?} and bias {b:?} must both be (D) with D > 0"
            ))),
        }
    }

    /// `γ`, `(D)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `β`, `(D)`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// The constant added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// `D`, the length of the normalized rows.
    pub fn dim(&self) -> usize {
        self.weight.elem_count()
    }

    /// Normalizes each row of `x` over its last axis, then scales and shifts it.
    ///
    /// # Shapes
    /// * `x`: `(.., D)`, any rank ≥ 1 (e.g. `(B, T, D)`)
    /// * returns `x`'s shape and dtype
    ///
    /// # Errors
    /// As [`layer_norm`].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

impl candle_core::Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        LayerNorm::forward(self, x).map_err(|e| match e {
            Error::Candle(e) => e,
            e => candle_core::Error::wrap(e),
        })
    }
}

/// Layer normalization of `x` over its last axis with scale `weight` and shift `bias`,
/// differentiable in all three (see the [module docs](self) for the formulas and the kernel).
///
/// # Shapes
/// * `x`: `(.., D)`; `weight`, `bias`: `(D)`
/// * returns `x`'s shape and dtype
///
/// # Errors
/// [`Error::Shape`] when `x` has no axes or an empty last axis, `weight` or `bias` is not
/// `(D)`, a dtype is not a float type fitting `x`'s, the devices differ, or `eps` is negative
/// or not finite; [`Error::Candle`] when a backend op fails.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    check_eps(eps)?;
    let d = match x.dims().last() {
        Some(&d) if d > 0 => d,
        _ => {
            return Err(shape_err(format!(
                "x must be (.., D) with D > 0, got {:?}",
                x.dims()
            )));
        }
    };
    let compute = compute_dtype(x.dtype())?;
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if t.dims() != [d] {
            return Err(shape_err(format!(
                "{name} must be (D) with D = {d} (x is {:?}), got {:?}",
                x.dims(),
                t.dims()
            )));
        }
        if t.dtype() != x.dtype() && t.dtype() != compute {
            return Err(shape_err(format!(
                "dtype mismatch, {name}: {:?}, x: {:?}",
                t.dtype(),
                x.dtype()
            )));
        }
        if !t.device().same_device(x.device()) {
            return Err(shape_err(format!(
                "device mismatch, {name}: {:?}, x: {:?}",
                t.device().location(),
                x.device().location()
            )));
        }
    }
    if uses_kernel(x) {
        let w = weight.to_dtype(compute)?.contiguous()?;
        let b = bias.to_dtype(compute)?.contiguous()?;
        Ok(x.contiguous()?.apply_op3(&w, &b, LayerNormOp { eps })?)
    } else {
        layer_norm_composed(x, weight, bias, eps)
    }
}

/// Whether `x` runs on the fused kernels of this file (any float dtype on the CPU).
fn uses_kernel(x: &Tensor) -> bool {
    x.device().is_cpu()
}

/// The dtype rows are computed in: `f32` for the half types and `f32`, `f64` for `f64`.
fn compute_dtype(dtype: DType) -> Result<DType> {
    match dtype {
        DType::F16 | DType::BF16 | DType::F32 => Ok(DType::F32),
        DType::F64 => Ok(DType::F64),
        other => Err(shape_err(format!(
            "x must be a float tensor, got {other:?}"
        ))),
    }
}

/// The same formulas as candle's differentiable ops, for devices without a kernel.
fn layer_norm_composed(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = compute_dtype(x.dtype())?;
    let xc = x.to_dtype(dtype)?;
    let d = x.dim(D::Minus1)? as f64;
    let mean = (xc.sum_keepdim(D::Minus1)? / d)?;
    let centered = xc.broadcast_sub(&mean)?;
    let var = (centered.sqr()?.sum_keepdim(D::Minus1)? / d)?;
    let inv_std = (var + eps)?.sqrt()?.recip()?;
    let y = centered
        .broadcast_mul(&inv_std)?
        .broadcast_mul(&weight.to_dtype(dtype)?)?
        .broadcast_add(&bias.to_dtype(dtype)?)?;
    Ok(y.to_dtype(x.dtype())?)
}

fn shape_err(msg: String) -> Error {
    Error::Shape { op: OP, msg }
}

fn check_eps(eps: f64) -> Result<()> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(shape_err(format!(
            "eps must be finite and non-negative, got {eps}"
        )))
    }
}

/// The forward op on `(x, γ, β)`: `x` of any float dtype, `γ`, `β` `(D)` in the compute dtype.
struct LayerNormOp {
    eps: f64,
}

/// The backward op on `(x, γ, ∂L/∂y)`: returns `∂L/∂x`, `∂L/∂γ`, `∂L/∂β` packed in one vector
/// `(N·D + 2·D)` of the compute dtype (`N` rows).
struct LayerNormGrad {
    eps: f64,
}

/// `(rows, D)` of a custom op's `x` argument, checked against `γ`.
fn row_dims(op: &str, x: &Layout, gamma: &Layout) -> candle_core::Result<(usize, usize)> {
    let Some(&d) = x.dims().last() else {
        bail!("{op}: x has no axes");
    };
    if gamma.dims() != [d] {
        bail!(
            "{op}: weight {:?} does not fit x {:?}",
            gamma.dims(),
            x.dims()
        );
    }
    Ok((x.shape().elem_count() / d.max(1), d))
}

fn forward_storage<T: Elem>(
    eps: f64,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let (_, d) = row_dims(OP, l1, l2)?;
    let x = contiguous_slice::<T>(OP, "x", s1, l1, l1.shape())?;
    let gamma = contiguous_slice::<T::A>(OP, "weight", s2, l2, l2.shape())?;
    let beta = contiguous_slice::<T::A>(OP, "bias", s3, l3, l2.shape())?;
    let task = rows_per_task(d) * d;
    let avx = has_avx2_fma();
    let eps = T::A::of(eps);
    let fill = |i: usize, y: &mut [MaybeUninit<T>]| -> candle_core::Result<()> {
        let Some(x) = x.get(i * task..i * task + y.len()) else {
            bail!("{OP}: chunk {i} is outside x");
        };
        forward_task(avx, y, x, gamma, beta, eps)
    };
    // SAFETY: `forward_task` returns `Ok` only after writing every element of `y` (see there).
    let (y, _) = unsafe { par_uninit(x.len(), task, fill) }?;
    Ok(T::to_cpu_storage_owned(y))
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_elem!(
            OP,
            s1.dtype(),
            forward_storage(self.eps, (s1, l1), (s2, l2), (s3, l3))
        )?;
        Ok((storage, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let packed = x.apply_op3(gamma, &dy.contiguous()?, LayerNormGrad { eps: self.eps })?;
        let (n, d) = (x.elem_count(), gamma.elem_count());
        let dx = packed
            .narrow(0, 0, n)?
            .reshape(x.shape())?
            .to_dtype(x.dtype())?;
        let dgamma = packed.narrow(0, n, d)?;
        let dbeta = packed.narrow(0, n + d, d)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

fn backward_storage<T: Elem>(
    eps: f64,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let op = "layer_norm backward";
    let (_, d) = row_dims(op, l1, l2)?;
    let x = contiguous_slice::<T>(op, "x", s1, l1, l1.shape())?;
    let gamma = contiguous_slice::<T::A>(op, "weight", s2, l2, l2.shape())?;
    let dy = contiguous_slice::<T>(op, "dy", s3, l3, l1.shape())?;
    let task = rows_per_task(d) * d;
    let avx = has_avx2_fma();
    let eps = T::A::of(eps);
    let fill = |i: usize, dx: &mut [MaybeUninit<T::A>]| -> candle_core::Result<Vec<T::A>> {
        let rows = i * task..i * task + dx.len();
        let (Some(x), Some(dy)) = (x.get(rows.clone()), dy.get(rows)) else {
            bail!("{op}: chunk {i} is outside x");
        };
        backward_task(avx, dx, x, dy, gamma, eps)
    };
    // SAFETY: `backward_task` returns `Ok` only after writing every element of `dx` (see there).
    let (mut packed, partials) = unsafe { par_uninit(x.len(), task, fill) }?;
    // The parameter gradients: per-task partial sums added in task order, in f64, so the result
    // does not depend on the thread count.
    let mut sums = vec![0f64; 2 * d];
    for part in &partials {
        for (s, &v) in sums.iter_mut().zip(part) {
            *s += v.wide();
        }
    }
    packed.extend(sums.into_iter().map(T::A::of));
    Ok(<T::A>::to_cpu_storage_owned(packed))
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "layer-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_elem!(
            OP,
            s1.dtype(),
            backward_storage(self.eps, (s1, l1), (s2, l2), (s3, l3))
        )?;
        let d = l2.shape().elem_count();
        Ok((storage, Shape::from(l1.shape().elem_count() + 2 * d)))
    }
}

/// The statistics of a row: `x̂ = ((x − shift) − rest)·rstd`.
#[derive(Clone, Copy)]
struct RowStats<A> {
    /// The mean as first summed in the compute precision.
    shift: A,
    /// `μ − shift`, from the shifted values: the rounding error of `shift`.
    rest: A,
    /// `1/√(σ² + eps)`.
    rstd: A,
}

impl<A: Acc> RowStats<A> {
    #[inline(always)]
    fn normalize(&self, x: A) -> A {
        ((x - self.shift) - self.rest) * self.rstd
    }
}

/// The statistics of a row, from three reductions over it (in cache): the mean, `Σ (x − shift)`
/// and `Σ (x − shift)²`. `x − shift` is exact for `x` near the mean (Sterbenz), so a row
/// far from zero — an offset of 25 with a spread of 0.01 — keeps the precision of its spread,
/// not of its offset, as a plain `f32` mean would lose it.
#[inline(always)]
fn row_stats<T: Elem>(x: &[T], eps: T::A) -> RowStats<T::A> {
    let n = T::A::of(x.len() as f64);
    let shift = lane_sum(x, |v: T| v.to_acc()) / n;
    let s1 = lane_sum(x, |v: T| v.to_acc() - shift);
    let s2 = lane_sum(x, |v: T| {
        let d = v.to_acc() - shift;
        d * d
    });
    let rest = s1 / n;
    let var = s2 / n - rest * rest;
    let var = if var > T::A::ZERO { var } else { T::A::ZERO };
    RowStats {
        shift,
        rest,
        rstd: T::A::of(1.0) / (var + eps).sqrt(),
    }
}

/// Checks that a task's output and inputs are whole rows of `d` alike: what makes the row
/// loops below write every output element.
fn check_task(
    op: &str,
    out: usize,
    inputs: &[usize],
    d: usize,
    params: &[usize],
) -> candle_core::Result<()> {
    if d == 0
        || !out.is_multiple_of(d)
        || inputs.iter().any(|&n| n != out)
        || params.iter().any(|&n| n != d)
    {
        bail!(
            "{op}: a task of {out} outputs, inputs {inputs:?} and parameters {params:?} is not whole rows of {d}"
        );
    }
    Ok(())
}

/// The forward of the rows of one task. Writes every element of `y` when it returns `Ok`: the
/// rows of `y` and `x` pair up exactly (checked), and each row's loop zips `D` outputs with
/// `D` inputs, weights and biases.
#[inline(always)]
fn forward_task_body<T: Elem, const FMA: bool>(
    y: &mut [MaybeUninit<T>],
    x: &[T],
    gamma: &[T::A],
    beta: &[T::A],
    eps: T::A,
) -> candle_core::Result<()> {
    let d = gamma.len();
    check_task(OP, y.len(), &[x.len()], d, &[beta.len()])?;
    for (yr, xr) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
        let stats = row_stats(xr, eps);
        for (((o, &v), &g), &b) in yr.iter_mut().zip(xr).zip(gamma).zip(beta) {
            o.write(T::from_acc(
                stats.normalize(v.to_acc()).mul_add::<FMA>(g, b),
            ));
        }
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_task_avx2<T: Elem>(
    y: &mut [MaybeUninit<T>],
    x: &[T],
    gamma: &[T::A],
    beta: &[T::A],
    eps: T::A,
) -> candle_core::Result<()> {
    forward_task_body::<T, true>(y, x, gamma, beta, eps)
}

/// [`forward_task_body`] compiled for this CPU.
fn forward_task<T: Elem>(
    avx: bool,
    y: &mut [MaybeUninit<T>],
    x: &[T],
    gamma: &[T::A],
    beta: &[T::A],
    eps: T::A,
) -> candle_core::Result<()> {
    #[cfg(target_arch = "x86_64")]
    if avx {
        // SAFETY: `avx` comes from `has_avx2_fma()`: this CPU runs AVX2 and FMA.
        return unsafe { forward_task_avx2(y, x, gamma, beta, eps) };
    }
    let _ = avx;
    forward_task_body::<T, false>(y, x, gamma, beta, eps)
}

/// The backward of the rows of one task: writes their `∂L/∂x` and returns their partial
/// `[∂L/∂γ, ∂L/∂β]` `(2·D)`. Writes every element of `dx` when it returns `Ok`: the rows of
/// `dx`, `x` and `dy` pair up exactly (checked), and each row's loop zips `D` outputs with `D`
/// values of every operand.
#[inline(always)]
fn backward_task_body<T: Elem, const FMA: bool>(
    dx: &mut [MaybeUninit<T::A>],
    x: &[T],
    dy: &[T],
    gamma: &[T::A],
    eps: T::A,
) -> candle_core::Result<Vec<T::A>> {
    let d = gamma.len();
    check_task(OP, dx.len(), &[x.len(), dy.len()], d, &[])?;
    let inv_d = T::A::of(1.0 / d as f64);
    let mut part = vec![T::A::ZERO; 2 * d];
    let (dgamma, dbeta) = part.split_at_mut(d);
    // Per row: x̂ and g·γ, kept in cache for the two sums and the final pass.
    let mut xhat = vec![T::A::ZERO; d];
    let mut gg = vec![T::A::ZERO; d];
    for ((dxr, xr), gr) in dx
        .chunks_exact_mut(d)
        .zip(x.chunks_exact(d))
        .zip(dy.chunks_exact(d))
    {
        let stats = row_stats(xr, eps);
        let rstd = stats.rstd;
        for ((((h, q), &v), &g), &w) in xhat
            .iter_mut()
            .zip(gg.iter_mut())
            .zip(xr)
            .zip(gr)
            .zip(gamma)
        {
            *h = stats.normalize(v.to_acc());
            *q = g.to_acc() * w;
        }
        let m1 = lane_sum(&gg, |v| v) * inv_d;
        let m2 = super::cpu_kernel::lane_sum2(&gg, &xhat, |a, b| a * b) * inv_d;
        for (((((o, &h), &q), &g), dg), db) in dxr
            .iter_mut()
            .zip(&xhat)
            .zip(&gg)
            .zip(gr)
            .zip(dgamma.iter_mut())
            .zip(dbeta.iter_mut())
        {
            let g = g.to_acc();
            o.write(rstd * (q - m1 - h * m2));
            *dg = g.mul_add::<FMA>(h, *dg);
            *db += g;
        }
    }
    Ok(part)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_task_avx2<T: Elem>(
    dx: &mut [MaybeUninit<T::A>],
    x: &[T],
    dy: &[T],
    gamma: &[T::A],
    eps: T::A,
) -> candle_core::Result<Vec<T::A>> {
    backward_task_body::<T, true>(dx, x, dy, gamma, eps)
}

/// [`backward_task_body`] compiled for this CPU.
fn backward_task<T: Elem>(
    avx: bool,
    dx: &mut [MaybeUninit<T::A>],
    x: &[T],
    dy: &[T],
    gamma: &[T::A],
    eps: T::A,
) -> candle_core::Result<Vec<T::A>> {
    #[cfg(target_arch = "x86_64")]
    if avx {
        // SAFETY: `avx` comes from `has_avx2_fma()`: this CPU runs AVX2 and FMA.
        return unsafe { backward_task_avx2(dx, x, dy, gamma, eps) };
    }
    let _ = avx;
    backward_task_body::<T, false>(dx, x, dy, gamma, eps)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    #[test]
    fn kernel_matches_the_composed_fallback_with_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (3, 4, 7), &dev)?.affine(3.0, 1.5)?)?;
        let w = Var::from_tensor(&Tensor::randn(1f64, 0.5, 7, &dev)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f64, 0.5, 7, &dev)?)?;
        let up = Tensor::randn(0f64, 1.0, (3, 4, 7), &dev)?;
        let run = |f: &dyn Fn() -> Result<Tensor>| -> Result<Vec<Vec<f64>>> {
            let y = f()?;
            let grads = (&y * &up)?.sum_all()?.backward()?;
            let mut out = vec![y.flatten_all()?.to_vec1::<f64>()?];
            for v in [&x, &w, &b] {
                let g = grads
                    .get(v.as_tensor())
                    .ok_or(shape_err("no grad".into()))?;
                out.push(g.flatten_all()?.to_vec1::<f64>()?);
            }
            Ok(out)
        };
        let ours = run(&|| layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5))?;
        let theirs =
            run(&|| layer_norm_composed(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5))?;
        for (a, b) in ours.iter().zip(&theirs) {
            for (p, q) in a.iter().zip(b) {
                assert!((p - q).abs() < 1e-12, "{p} vs {q}");
            }
        }
        Ok(())
    }

    #[test]
    fn config_defaults_and_errors() -> Result<()> {
        assert_eq!(LayerNormConfig::default().eps, 1e-5);
        let cfg: LayerNormConfig =
            serde_json::from_str("{}").map_err(|e| shape_err(e.to_string()))?;
        assert_eq!(cfg, LayerNormConfig::from(1e-5));
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 3), DType::F32, &dev)?;
        let w = Tensor::ones(4, DType::F32, &dev)?;
        let err = layer_norm(&x, &w, &w, 1e-5).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("layer_norm: weight must be (D) with D = 3 (x is [2, 3]), got [4]")
        );
        assert!(layer_norm(&x, &w, &w, -1.0).is_err());
        let xi = Tensor::zeros((2, 3), DType::U32, &dev)?;
        assert!(layer_norm(&xi, &w, &w, 1e-5).is_err());
        Ok(())
    }
}
