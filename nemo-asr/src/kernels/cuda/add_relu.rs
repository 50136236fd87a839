//! Launches of `add_relu.cu`: the forward op and the ReLU mask of its backward on CUDA, for the
//! custom ops of [`crate::kernels::add_relu`].

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, PushKernelArg, ValidAsZeroBits};
use candle_core::cuda_backend::{CudaDType, CudaStorage, WrapErr};
use candle_core::{Layout, Shape};

use super::{arg_view, as_i64, dispatch_half, dtype_suffix, elementwise_launch};

/// The kernels' PTX, built by `build.rs`.
const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/add_relu.ptx"));

/// Which of the two ops to run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pass {
    /// `y = max(0, x + residual)` on `(x, residual)`.
    AddRelu,
    /// `∂L/∂y` where `y > 0`, else 0, on `(∂L/∂y, y)`.
    ReluGrad,
}

/// Runs `pass` on two same-shaped arguments; returns the result and its shape.
pub(crate) fn launch(
    pass: Pass,
    op: &str,
    a: (&CudaStorage, &Layout),
    b: (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, Shape)> {
    dispatch_half!(op, a.0.dtype(), launch_typed(pass, op, a, b))
}

fn launch_typed<T: CudaDType + DeviceRepr + ValidAsZeroBits>(
    pass: Pass,
    op: &str,
    (s1, l1): (&CudaStorage, &Layout),
    (s2, l2): (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, Shape)> {
    let (kernel, n1, n2) = match pass {
        Pass::AddRelu => ("add_relu", "x", "residual"),
        Pass::ReluGrad => ("relu_grad", "dy", "y"),
    };
    let shape = l1.shape().clone();
    let a = arg_view::<T>(op, n1, s1, l1, &shape)?;
    let b = arg_view::<T>(op, n2, s2, l2, &shape)?;
    let dev = &s1.device;
    let n = shape.elem_count();
    if n == 0 {
        let out = dev.alloc_zeros::<T>(0)?;
        return Ok((CudaStorage::wrap_cuda_slice(out, dev.clone()), shape));
    }
    let name = format!("{kernel}_{}", dtype_suffix(op, s1.dtype())?);
    let func = dev.get_or_load_custom_func(&name, "nemo_asr_add_relu", PTX)?;
    // SAFETY: the kernel writes every element before anything reads it.
    let out = unsafe { dev.alloc::<T>(n) }?;
    let len = as_i64(op, n)?;
    let mut builder = func.builder();
    builder.arg(&a).arg(&b).arg(&out).arg(&len);
    // SAFETY: the arguments match the kernel's signature (two contiguous inputs and the output,
    // all of `n` elements, then `n`); the grid-stride loop covers any launch size.
    unsafe { builder.launch(elementwise_launch(op, n)?) }.w()?;
    Ok((CudaStorage::wrap_cuda_slice(out, dev.clone()), shape))
}
