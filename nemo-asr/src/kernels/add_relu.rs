//! `max(0, x + residual)`: the end of a residual Jasper block, as one candle custom op.
//!
//! As `(x + residual).relu()`, candle's backward takes eight passes over the activations (the
//! ReLU's `ge`, cast and product, then a fresh zero tensor and an add for each of the three
//! gradients it accumulates). Here the forward is one pass and the backward one masking pass whose
//! result is the gradient of both inputs.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor, WithDType, bail};
use rayon::prelude::*;

use super::cpu_args::{arg_slice, dispatch_float};
use super::has_direct_kernel;
use crate::error::{Error, Result};

const OP: &str = "add_relu";

/// Values per rayon task: large enough that the split costs nothing next to the pass.
const CHUNK: usize = 1 << 14;

/// `max(0, x + residual)`, differentiable in both (the gradient at exactly 0 is 0, as PyTorch's).
/// `f32`/`f64` CPU tensors and (with the `cuda` feature) `f32`/`f16`/`bf16` CUDA tensors use the
/// kernels of this op, other dtypes and devices candle's ops.
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
    if has_direct_kernel(x) {
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

/// `out[i] = f(a[i], b[i])` over two same-shaped contiguous arguments (named `names`), in chunks
/// across rayon's workers.
fn zip_map_storage<T: WithDType>(
    names: [&str; 2],
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    f: impl Fn(T, T) -> T + Sync,
) -> candle_core::Result<CpuStorage> {
    let a = arg_slice::<T>(OP, names[0], s1, l1, l1.shape())?;
    let b = arg_slice::<T>(OP, names[1], s2, l2, l1.shape())?;
    let mut out = vec![T::zero(); a.len()];
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(out, (a, b))| {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        });
    Ok(T::to_cpu_storage_owned(out))
}

/// `max(0, x + r)`.
fn add_relu_storage<T: WithDType>(
    x: (&CpuStorage, &Layout),
    r: (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let zero = T::zero();
    zip_map_storage(["x", "residual"], x, r, |a: T, b: T| {
        let s = a + b;
        if s > zero { s } else { zero }
    })
}

/// `∂L/∂y` where `y > 0`, else 0.
fn relu_grad_storage<T: WithDType>(
    dy: (&CpuStorage, &Layout),
    y: (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let zero = T::zero();
    zip_map_storage(
        ["dy", "y"],
        dy,
        y,
        |d: T, v: T| if v > zero { d } else { zero },
    )
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

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::kernels::cuda::add_relu::{Pass, launch};
        launch(Pass::AddRelu, OP, (s1, l1), (s2, l2))
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

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::kernels::cuda::add_relu::{Pass, launch};
        launch(Pass::ReluGrad, self.name(), (s1, l1), (s2, l2))
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
