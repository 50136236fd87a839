//! Zeroing each sequence of a padded batch past its length: the mask that Jasper's `MaskedConv1d`
//! applies before every convolution, as a candle custom op.
//!
//! Written as `x.broadcast_mul(&mask)` with a `(B, 1, T)` mask, candle's backward also computes
//! the gradient of the mask (a full `(B, C, T)` product reduced over channels) and accumulates
//! both gradients through fresh zero tensors: five passes over the activations where the op needs
//! one. Here the lengths are part of the op, the backward is the same masking of `∂L/∂y`, and
//! nothing is computed for the mask.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::cpu_args::{arg_slice, dispatch_float};
use super::has_direct_kernel;
use crate::error::{Error, Result};

const OP: &str = "time_mask";

/// `x` with `x[b, :, t] = 0` for `t ≥ lengths[b]`; `x` itself (no copy, no graph node) when no
/// row is cut.
///
/// Differentiable in `x` (the gradient is masked alike, by the same op). `f32`/`f64` CPU tensors
/// and (with the `cuda` feature) `f32`/`f16`/`bf16` CUDA tensors use the kernels of this op, other
/// dtypes and devices a `(B, 1, T)` mask product.
///
/// # Shapes
/// * `x`: `(B, C, T)`; `lengths`: `B` values (a length over `T` keeps the whole row)
/// * returns `(B, C, T)`
///
/// # Errors
/// [`Error::Shape`] when `x` is not 3-D or `lengths` does not have one entry per batch item;
/// [`Error::Candle`] when a backend op fails.
pub fn time_mask(x: &Tensor, lengths: &[usize]) -> Result<Tensor> {
    let (b, _, t) = x.dims3().map_err(|_| Error::Shape {
        op: OP,
        msg: format!("x must be (B, C, T), got {:?}", x.dims()),
    })?;
    if lengths.len() != b {
        return Err(Error::Shape {
            op: OP,
            msg: format!("{} lengths for a batch of {b}", lengths.len()),
        });
    }
    if lengths.iter().all(|&l| l >= t) {
        return Ok(x.clone());
    }
    let lengths: Vec<usize> = lengths.iter().map(|&l| l.min(t)).collect();
    if has_direct_kernel(x) {
        Ok(x.contiguous()?.apply_op1(TimeMask { lengths })?)
    } else {
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..t).map(move |i| if i < l { 1.0 } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, t), x.device())?.to_dtype(x.dtype())?;
        Ok(x.broadcast_mul(&mask)?)
    }
}

/// The op, with each row's kept length (at most `T`).
struct TimeMask {
    lengths: Vec<usize>,
}

/// Copies `x` `(B, C, T)` with every row of item `b` cut at `lengths[b]`, items in parallel.
fn masked<T: WithDType>(lengths: &[usize], x: &[T], shape: &Shape) -> candle_core::Result<Vec<T>> {
    let (b, c, t) = shape.dims3()?;
    let mut y = vec![T::zero(); x.len()];
    if b == 0 || c * t == 0 {
        return Ok(y);
    }
    y.par_chunks_mut(c * t)
        .zip(x.par_chunks(c * t))
        .zip(lengths)
        .for_each(|((y_b, x_b), &len)| {
            for (y_row, x_row) in y_b.chunks_mut(t).zip(x_b.chunks(t)) {
                y_row[..len].copy_from_slice(&x_row[..len]);
            }
        });
    Ok(y)
}

fn masked_storage<T: WithDType>(
    lengths: &[usize],
    s: &CpuStorage,
    l: &Layout,
) -> candle_core::Result<CpuStorage> {
    let x = arg_slice::<T>(OP, "x", s, l, l.shape())?;
    Ok(T::to_cpu_storage_owned(masked(lengths, x, l.shape())?))
}

impl CustomOp1 for TimeMask {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        if l.shape().dims3()?.0 != self.lengths.len() {
            candle_core::bail!("{OP}: {} lengths for {:?}", self.lengths.len(), l.shape());
        }
        let storage = dispatch_float!(OP, s.dtype(), masked_storage(&self.lengths, s, l))?;
        Ok((storage, l.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::kernels::cuda::time_mask::launch(OP, &self.lengths, (s, l))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let op = TimeMask {
            lengths: self.lengths.clone(),
        };
        Ok(Some(dy.contiguous()?.apply_op1(op)?))
    }
}
