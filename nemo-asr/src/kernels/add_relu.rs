//! `max(0, x + residual)`: the end of a residual Jasper block, as one candle custom op.
//!
//! As `(x + residual).relu()`, candle's backward takes eight passes over the activations (the
//! ReLU's `ge`, cast and product, then a fresh zero tensor and an add for each of the three
//! gradients it accumulates). Here the forward is one pass and the backward one masking pass whose
//! result is the gradient of both inputs.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Tensor, WithDType, bail};
use rayon::prelude::*;

use super::cpu_args::{arg_slice, dispatch_float};
use crate::error::{Error, Result};

const OP: &str = "add_relu";

/// Values per rayon task: large enough that the split costs nothing next to the pass.
const CHUNK: usize = 1 << 14;

/// `max(0, x + residual)`, differentiable in both (the gradient at exactly 0 is 0, as PyTorch's).
/// `f32`/`f64` CPU tensors use the kernel of this module, other dtypes and devices candle's ops.
///
/// # Shapes
/// * `x`, `residual`: the same shape, any rank
/// * returns that shape
///
/// # Errors
/// [`Error::Shape`] when the shapes, dtypes or devices differ; [`Error::Candle`] when a backend op
/// fails.
pub fn add_relu(x: &Tensor, residual: &Tensor) -> Result<Tensor> {
    if x.shape() != residual.shape() || x.dtype() != residual.dtype() {
        return Err(Error::Shape {
            op: OP,
            msg: format!(
                "x {:?} {:?} and residual {:?} {:?} must have the same shape and dtype",
                x.dims(),
                x.dtype(),
                residual.dims(),
                residual.dtype()
            ),
        });
    }
    if !x.device().same_device(residual.device()) {
        return Err(Error::Shape {
            op: OP,
            msg: format!(
                "x is on {:?}, residual on {:?}",
                x.device().location(),
                residual.device().location()
            ),
        });
    }
    if matches!(x.device(), Device::Cpu) && matches!(x.dtype(), DType::F32 | DType::F64) {
        Ok(x.contiguous()?
            .apply_op2(&residual.contiguous()?, AddRelu)?)
    } else {
        Ok((x + residual)?.relu()?)
    }
}

/// The forward op: `(x, residual) ↦ max(0, x + residual)`.
struct AddRelu;

/// The backward op: `(∂L/∂y, y) ↦ ∂L/∂y` where `y > 0`, else 0.
struct ReluGrad;

fn add_relu_storage<T: WithDType>(
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let x = arg_slice::<T>(OP, "x", s1, l1, l1.shape())?;
    let r = arg_slice::<T>(OP, "residual", s2, l2, l1.shape())?;
    let zero = T::zero();
    let mut y = vec![zero; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(r.par_chunks(CHUNK)))
        .for_each(|(y, (x, r))| {
            for ((y, &a), &b) in y.iter_mut().zip(x).zip(r) {
                let s = a + b;
                *y = if s > zero { s } else { zero };
            }
        });
    Ok(T::to_cpu_storage_owned(y))
}

fn relu_grad_storage<T: WithDType>(
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let dy = arg_slice::<T>(OP, "dy", s1, l1, l1.shape())?;
    let y = arg_slice::<T>(OP, "y", s2, l2, l1.shape())?;
    let zero = T::zero();
    let mut g = vec![zero; dy.len()];
    g.par_chunks_mut(CHUNK)
        .zip(dy.par_chunks(CHUNK).zip(y.par_chunks(CHUNK)))
        .for_each(|(g, (dy, y))| {
            for ((g, &d), &v) in g.iter_mut().zip(dy).zip(y) {
                *g = if v > zero { d } else { zero };
            }
        });
    Ok(T::to_cpu_storage_owned(g))
}

/// Checks that both arguments have one shape and one dtype.
fn check_pair(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> candle_core::Result<()> {
    if l1.shape() != l2.shape() || s1.dtype() != s2.dtype() {
        bail!(
            "{OP}: arguments {:?} {:?} and {:?} {:?} differ",
            l1.shape(),
            s1.dtype(),
            l2.shape(),
            s2.dtype()
        );
    }
    Ok(())
}

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        check_pair(s1, l1, s2, l2)?;
        let storage = dispatch_float!(OP, s1.dtype(), add_relu_storage((s1, l1), (s2, l2)))?;
        Ok((storage, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _residual: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = dy.contiguous()?.apply_op2(y, ReluGrad)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "add_relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        check_pair(s1, l1, s2, l2)?;
        let storage = dispatch_float!(OP, s1.dtype(), relu_grad_storage((s1, l1), (s2, l2)))?;
        Ok((storage, l1.shape().clone()))
    }

    /// Linear in `∂L/∂y` with the same mask; the mask is piecewise constant in `y`.
    fn bwd(
        &self,
        _dy: &Tensor,
        y: &Tensor,
        _g: &Tensor,
        h: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(h.contiguous()?.apply_op2(y, ReluGrad)?), None))
    }
}
