//! Softmax over the last axis, optionally of `x + mask` with an additive mask fused in (the
//! attention pattern `softmax(scores + mask)`), with a fused CPU kernel **and** a hand-written
//! backward.
//!
//! ```text
//! zᵢ = xᵢ + maskᵢ        yᵢ = e^(zᵢ − max z) / Σⱼ e^(zⱼ − max z)
//! ∂L/∂xᵢ = yᵢ·(gᵢ − Σⱼ gⱼyⱼ)        (g = ∂L/∂y; the mask gets the same gradient, summed over
//!                                   the axes it is broadcast along)
//! ```
//!
//! # Why not candle's
//!
//! `candle_nn::ops::softmax_last_dim` is fused but records no backward: anything upstream of it
//! silently gets no gradient (huggingface/candle #2977). `candle_nn::ops::softmax` composes
//! differentiable ops (max, subtract, exp, sum, divide — five passes forward, more backward,
//! plus the mask's add). The op here reads `x` (and the mask) once and writes `y` once; the
//! backward reads `∂L/∂y` and `y` once and writes `∂L/∂x` once. `exp` is a vectorized
//! polynomial (relative error < 3·10⁻⁷).
//!
//! A row whose every entry is −∞ (fully masked with an infinite mask) comes out as zeros, not
//! NaN as the composed formula gives; with NeMo's finite −10000 mask no row is fully masked.
//!
//! # Dtypes and devices
//!
//! On the CPU, `f32`, `f16` and `bf16` rows are computed in `f32` (as NeMo computes attention
//! probabilities in `f32` under mixed precision), `f64` rows in `f64`. Other devices run the
//! composed formula with candle's differentiable ops; a CUDA kernel goes in `cuda_fwd` of
//! `Softmax`, `MaskedSoftmax` and `SoftmaxGrad`, with `uses_kernel` widened to match.
//!
//! ```
//! # fn main() -> nemo_core::Result<()> {
//! use candle_core::{Device, Tensor};
//! use nemo_core::nn::softmax;
//!
//! let scores = Tensor::new(&[[[1f32, 2.0, 3.0], [1.0, 1.0, 1.0]]], &Device::Cpu)?; // (B, T_q, T_k)
//! let mask = Tensor::new(&[[[0f32, 0.0, -10000.0]]], &Device::Cpu)?; //            (B, 1, T_k)
//! let p = softmax(&scores, Some(&mask))?;
//! let p = p.to_vec3::<f32>()?;
//! assert_eq!(p[0][1][2], 0.0);
//! assert!((p[0][1][0] - 0.5).abs() < 1e-6);
//! # Ok(())
//! # }
//! ```

use std::mem::MaybeUninit;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, D, Layout, Shape, Tensor, bail};

use super::cpu_kernel::{
    Acc, Elem, contiguous_slice, dispatch_elem, has_avx2_fma, lane_max2, lane_sum2, par_rows2,
    par_uninit, rows_per_task,
};
use crate::{Error, Result};

/// Name of the op in error messages.
const OP: &str = "softmax";

/// `softmax(x + mask)` over the last axis, differentiable in `x` and in `mask` (see the
/// [module docs](self)).
///
/// # Shapes
/// * `x`: `(.., N)`, any rank ≥ 1 (attention scores: `(B, H, T_q, T_k)`)
/// * `mask`: additive, broadcastable to `x` (e.g. `(B, 1, 1, T_k)` for key padding,
///   `(1, 1, T_q, T_k)` for a causal mask); a float dtype, cast to `x`'s
/// * returns `x`'s shape and dtype
///
/// # Errors
/// [`Error::Shape`] when `x` has no axes or is not a float tensor, or the mask does not
/// broadcast to `x`, is not a float tensor or lives on another device; [`Error::Candle`] when a
/// backend op fails.
pub fn softmax(x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    if x.rank() == 0 || !x.dtype().is_float() {
        return Err(shape_err(format!(
            "x must be a float tensor (.., N), got {:?} {:?}",
            x.dims(),
            x.dtype()
        )));
    }
    let mask = match mask {
        Some(m) => Some(prepare_mask(x, m)?),
        None => None,
    };
    if x.elem_count() == 0 {
        return Ok(x.clone());
    }
    if uses_kernel(x) {
        let x = x.contiguous()?;
        Ok(match mask {
            Some(m) => x.apply_op2(&m, MaskedSoftmax)?,
            None => x.apply_op1(Softmax)?,
        })
    } else {
        softmax_composed(x, mask.as_ref())
    }
}

/// Checks `mask` against `x` and returns it in `x`'s dtype, broadcast to `x`'s shape (a view).
fn prepare_mask(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let fits = mask.rank() <= x.rank()
        && mask
            .dims()
            .iter()
            .rev()
            .zip(x.dims().iter().rev())
            .all(|(&m, &d)| m == d || m == 1);
    if !fits {
        return Err(shape_err(format!(
            "mask {:?} does not broadcast to x {:?}",
            mask.dims(),
            x.dims()
        )));
    }
    if !mask.dtype().is_float() {
        return Err(shape_err(format!(
            "the mask is added to x and must be a float tensor, got {:?} (turn a 0/1 mask into \
             an additive one first)",
            mask.dtype()
        )));
    }
    if !mask.device().same_device(x.device()) {
        return Err(shape_err(format!(
            "device mismatch, mask: {:?}, x: {:?}",
            mask.device().location(),
            x.device().location()
        )));
    }
    Ok(mask.to_dtype(x.dtype())?.broadcast_as(x.shape())?)
}

/// Whether `x` runs on the fused kernels of this file (any float dtype on the CPU).
fn uses_kernel(x: &Tensor) -> bool {
    x.device().is_cpu()
}

/// The composed formula with candle's differentiable ops, for devices without a kernel.
fn softmax_composed(x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let dtype = match x.dtype() {
        candle_core::DType::F16 | candle_core::DType::BF16 => candle_core::DType::F32,
        d => d,
    };
    let mut z = x.to_dtype(dtype)?;
    if let Some(m) = mask {
        z = (z + m.to_dtype(dtype)?)?;
    }
    // The maximum only shifts the exponent for stability; the result does not depend on it.
    let max = z.max_keepdim(D::Minus1)?.detach();
    let e = z.broadcast_sub(&max)?.exp()?;
    let y = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
    Ok(y.to_dtype(x.dtype())?)
}

fn shape_err(msg: String) -> Error {
    Error::Shape { op: OP, msg }
}

/// The forward op without a mask.
struct Softmax;

/// The forward op on `(x, mask)`, the mask broadcast to `x`'s shape (any strides).
struct MaskedSoftmax;

/// The backward op on `(∂L/∂y, y)`, returning `∂L/∂x`.
struct SoftmaxGrad;

/// Where each row's mask values live in a strided (broadcast) mask storage.
struct MaskView<'a, T> {
    data: &'a [T],
    start: usize,
    /// Sizes and strides of the axes before the last.
    lead: Vec<(usize, usize)>,
    last_stride: usize,
}

impl<'a, T: Copy> MaskView<'a, T> {
    fn new(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<Self>
    where
        T: candle_core::WithDType,
    {
        let (Some(&last_stride), rank) = (layout.stride().last(), layout.dims().len()) else {
            bail!("{OP}: the mask has no axes");
        };
        let lead = layout.dims()[..rank - 1]
            .iter()
            .copied()
            .zip(layout.stride()[..rank - 1].iter().copied())
            .collect();
        Ok(MaskView {
            data: storage.as_slice::<T>()?,
            start: layout.start_offset(),
            lead,
            last_stride,
        })
    }

    /// The `n` mask values of row `r`: a slice of the storage when they are contiguous,
    /// else gathered into `scratch`.
    fn row<'s>(
        &'s self,
        r: usize,
        n: usize,
        scratch: &'s mut Vec<T>,
    ) -> candle_core::Result<&'s [T]>
    where
        'a: 's,
    {
        let mut rest = r;
        let mut offset = self.start;
        for &(size, stride) in self.lead.iter().rev() {
            offset += (rest % size) * stride;
            rest /= size;
        }
        if self.last_stride == 1 {
            match self.data.get(offset..offset + n) {
                Some(row) => Ok(row),
                None => bail!("{OP}: mask row {r} is outside its storage"),
            }
        } else {
            scratch.clear();
            for i in 0..n {
                match self.data.get(offset + i * self.last_stride) {
                    Some(&v) => scratch.push(v),
                    None => bail!("{OP}: mask row {r} is outside its storage"),
                }
            }
            Ok(scratch)
        }
    }
}

fn forward_storage<T: Elem>(
    (s1, l1): (&CpuStorage, &Layout),
    mask: Option<(&CpuStorage, &Layout)>,
) -> candle_core::Result<CpuStorage> {
    let x = contiguous_slice::<T>(OP, "x", s1, l1, l1.shape())?;
    let Some(&n) = l1.dims().last() else {
        bail!("{OP}: x has no axes");
    };
    let mask = match mask {
        Some((s2, l2)) => {
            if l2.shape() != l1.shape() {
                bail!(
                    "{OP}: mask {:?} is not broadcast to x {:?}",
                    l2.dims(),
                    l1.dims()
                );
            }
            Some(MaskView::<T>::new(s2, l2)?)
        }
        None => None,
    };
    if n == 0 {
        return Ok(T::to_cpu_storage_owned(Vec::new()));
    }
    let rows = rows_per_task(n);
    let avx = has_avx2_fma();
    let fill = |task: usize, y: &mut [MaybeUninit<T>]| -> candle_core::Result<()> {
        let Some(x) = x.get(task * rows * n..task * rows * n + y.len()) else {
            bail!("{OP}: chunk {task} is outside x");
        };
        if !y.len().is_multiple_of(n) {
            bail!(
                "{OP}: a chunk of {} values is not whole rows of {n}",
                y.len()
            );
        }
        let mut z = vec![T::A::ZERO; n];
        let mut scratch = Vec::new();
        for (i, (yr, xr)) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)).enumerate() {
            let m = match &mask {
                Some(view) => Some(view.row(task * rows + i, n, &mut scratch)?),
                None => None,
            };
            forward_row(avx, yr, xr, m, &mut z)?;
        }
        Ok(())
    };
    // SAFETY: `y` and `x` have the same length, a multiple of `n` (checked), so the loop above
    // hands every row of `y` to `forward_row`, which writes all of it when it returns `Ok`.
    let (y, _) = unsafe { par_uninit(x.len(), rows * n, fill) }?;
    Ok(T::to_cpu_storage_owned(y))
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_elem!(OP, s.dtype(), forward_storage((s, l), None))?;
        Ok((storage, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op2(y, SoftmaxGrad)?))
    }
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if s1.dtype() != s2.dtype() {
            bail!(
                "{OP}: mask {:?} and x {:?} differ in dtype",
                s2.dtype(),
                s1.dtype()
            );
        }
        let storage = dispatch_elem!(OP, s1.dtype(), forward_storage((s1, l1), Some((s2, l2))))?;
        Ok((storage, l1.shape().clone()))
    }

    /// The mask gets `∂L/∂x` too, when anything upstream of it is tracked: it is added to `x`.
    /// (Its broadcast is undone by the backward of `broadcast_as`.)
    fn bwd(
        &self,
        _x: &Tensor,
        mask: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = dy.contiguous()?.apply_op2(y, SoftmaxGrad)?;
        let dmask = mask.track_op().then(|| dx.clone());
        Ok((Some(dx), dmask))
    }
}

fn backward_storage<T: Elem>(
    dy: (&CpuStorage, &Layout),
    y: (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let avx = has_avx2_fma();
    // SAFETY: `backward_task` returns `Ok` only after writing every element of `dx` (see there).
    let dx = unsafe {
        par_rows2("softmax backward", (["dy", "y"], dy, y), |dx, g, y, n| {
            backward_task(avx, dx, g, y, n)
        })
    }?;
    Ok(T::to_cpu_storage_owned(dx))
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_elem!(OP, s1.dtype(), backward_storage((s1, l1), (s2, l2)))?;
        Ok((storage, l1.shape().clone()))
    }
}

/// One row forward: the maximum of `x (+ m)`, `z = exp(x (+ m) − max)`, then `y = z / Σ z`.
/// Writes every element of `y` when it returns `Ok`: `y`, `x`, `m` and `z` have one length
/// (checked), and both ways out write `y` through a loop over all of it.
/// Without `MASKED`, `m` is ignored (pass `x`; its reads hit the same cache lines).
#[inline(always)]
fn forward_row_body<T: Elem, const FMA: bool, const MASKED: bool>(
    y: &mut [MaybeUninit<T>],
    x: &[T],
    m: &[T],
    z: &mut [T::A],
) -> candle_core::Result<()> {
    let n = y.len();
    if x.len() != n || z.len() != n || m.len() != n {
        bail!("{OP}: a row of {n} outputs met inputs of other lengths");
    }
    let at = |a: T, b: T| -> T::A {
        if MASKED {
            a.to_acc() + b.to_acc()
        } else {
            a.to_acc()
        }
    };
    let max = lane_max2(x, m, at);
    if max == T::A::NEG_INFINITY {
        for o in y.iter_mut() {
            o.write(T::from_acc(T::A::ZERO));
        }
        return Ok(());
    }
    // z = exp(x (+ mask) − max), summed in 8 lanes: the polynomial keeps the CPU busy enough
    // that one chain of adds does not wait (with 32 lanes LLVM spills registers).
    let (z_chunks, z_tail) = z.as_chunks_mut::<8>();
    let (x_chunks, x_tail) = x.as_chunks::<8>();
    let (m_chunks, m_tail) = m.as_chunks::<8>();
    let mut acc = [T::A::ZERO; 8];
    for ((zc, xc), mc) in z_chunks.iter_mut().zip(x_chunks).zip(m_chunks) {
        for l in 0..8 {
            let e = (at(xc[l], mc[l]) - max).exp::<FMA>();
            zc[l] = e;
            acc[l] += e;
        }
    }
    let mut sum = T::A::ZERO;
    for a in acc {
        sum += a;
    }
    for ((zv, &a), &b) in z_tail.iter_mut().zip(x_tail).zip(m_tail) {
        *zv = (at(a, b) - max).exp::<FMA>();
        sum += *zv;
    }
    let inv = T::A::of(1.0) / sum;
    for (o, &e) in y.iter_mut().zip(z.iter()) {
        o.write(T::from_acc(e * inv));
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_row_avx2<T: Elem, const MASKED: bool>(
    y: &mut [MaybeUninit<T>],
    x: &[T],
    m: &[T],
    z: &mut [T::A],
) -> candle_core::Result<()> {
    forward_row_body::<T, true, MASKED>(y, x, m, z)
}

/// [`forward_row_body`] compiled for this CPU.
fn forward_row<T: Elem>(
    avx: bool,
    y: &mut [MaybeUninit<T>],
    x: &[T],
    mask: Option<&[T]>,
    z: &mut [T::A],
) -> candle_core::Result<()> {
    #[cfg(target_arch = "x86_64")]
    if avx {
        // SAFETY: `avx` comes from `has_avx2_fma()`: this CPU runs AVX2 and FMA.
        return unsafe {
            match mask {
                Some(m) => forward_row_avx2::<T, true>(y, x, m, z),
                None => forward_row_avx2::<T, false>(y, x, x, z),
            }
        };
    }
    let _ = avx;
    match mask {
        Some(m) => forward_row_body::<T, false, true>(y, x, m, z),
        None => forward_row_body::<T, false, false>(y, x, x, z),
    }
}

/// The backward of the rows of one task: `dx = y·(g − Σ g·y)` per row. Writes every element
/// of `dx` when it returns `Ok`: `dx`, `g` and `y` are whole rows of `n` alike (checked), and
/// each row's loop zips `n` outputs with `n` values of each.
#[inline(always)]
fn backward_task_body<T: Elem, const FMA: bool>(
    dx: &mut [MaybeUninit<T>],
    g: &[T],
    y: &[T],
    n: usize,
) -> candle_core::Result<()> {
    if n == 0 || !dx.len().is_multiple_of(n) || g.len() != dx.len() || y.len() != dx.len() {
        bail!(
            "softmax backward: a task of {} outputs is not whole rows of {n} alike",
            dx.len()
        );
    }
    for ((dxr, gr), yr) in dx
        .chunks_exact_mut(n)
        .zip(g.chunks_exact(n))
        .zip(y.chunks_exact(n))
    {
        let dot = lane_sum2(gr, yr, |a: T, b: T| a.to_acc() * b.to_acc());
        for ((o, &gv), &yv) in dxr.iter_mut().zip(gr).zip(yr) {
            o.write(T::from_acc(yv.to_acc() * (gv.to_acc() - dot)));
        }
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_task_avx2<T: Elem>(
    dx: &mut [MaybeUninit<T>],
    g: &[T],
    y: &[T],
    n: usize,
) -> candle_core::Result<()> {
    backward_task_body::<T, true>(dx, g, y, n)
}

/// [`backward_task_body`] compiled for this CPU.
fn backward_task<T: Elem>(
    avx: bool,
    dx: &mut [MaybeUninit<T>],
    g: &[T],
    y: &[T],
    n: usize,
) -> candle_core::Result<()> {
    #[cfg(target_arch = "x86_64")]
    if avx {
        // SAFETY: `avx` comes from `has_avx2_fma()`: this CPU runs AVX2 and FMA.
        return unsafe { backward_task_avx2(dx, g, y, n) };
    }
    let _ = avx;
    backward_task_body::<T, false>(dx, g, y, n)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;

    #[test]
    fn kernel_matches_the_composed_fallback_with_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&(Tensor::randn(0f64, 2.0, (2, 3, 4, 9), &dev)?))?;
        let mask = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 1, 1, 9), &dev)?)?;
        let up = Tensor::randn(0f64, 1.0, (2, 3, 4, 9), &dev)?;
        let run = |f: &dyn Fn() -> Result<Tensor>| -> Result<Vec<Vec<f64>>> {
            let y = f()?;
            let grads = (&y * &up)?.sum_all()?.backward()?;
            let mut out = vec![y.flatten_all()?.to_vec1::<f64>()?];
            for v in [&x, &mask] {
                let g = grads
                    .get(v.as_tensor())
                    .ok_or(shape_err("no grad".into()))?;
                out.push(g.flatten_all()?.to_vec1::<f64>()?);
            }
            Ok(out)
        };
        let m = mask.as_tensor();
        let ours = run(&|| softmax(x.as_tensor(), Some(m)))?;
        let theirs = run(&|| {
            let mb = m.broadcast_as(x.shape())?;
            softmax_composed(x.as_tensor(), Some(&mb))
        })?;
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a.len(), b.len());
            for (p, q) in a.iter().zip(b) {
                assert!((p - q).abs() < 1e-12, "{p} vs {q}");
            }
        }
        Ok(())
    }

    #[test]
    fn fully_masked_rows_are_zero_and_errors_name_shapes() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &dev)?;
        let mask = Tensor::new(&[[f32::NEG_INFINITY, f32::NEG_INFINITY], [0.0, 0.0]], &dev)?;
        let y = softmax(&x, Some(&mask))?.to_vec2::<f32>()?;
        assert_eq!(y[0], [0.0, 0.0]);
        assert!((y[1][0] + y[1][1] - 1.0).abs() < 1e-6);
        let bad = Tensor::zeros(3, DType::F32, &dev)?;
        let err = softmax(&x, Some(&bad)).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("softmax: mask [3] does not broadcast to x [2, 2]")
        );
        let u8_mask = Tensor::zeros(2, DType::U8, &dev)?;
        assert!(softmax(&x, Some(&u8_mask)).is_err());
        Ok(())
    }
}
