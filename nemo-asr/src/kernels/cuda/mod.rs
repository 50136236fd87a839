//! nemo-asr's own CUDA kernels (the `cuda` feature): the `.cu` sources beside this file, built to
//! PTX by `build.rs`, loaded once per device by candle and launched from the custom ops'
//! `cuda_fwd`. What they share: argument views checked against the expected layout, the dtype
//! suffix of a kernel's name, and launch sizes.

pub(crate) mod add_relu;
pub(crate) mod batch_norm;
pub(crate) mod depthwise_conv1d;
pub(crate) mod time_mask;

use candle_core::cuda_backend::cudarc::driver::{CudaView, DeviceRepr, LaunchConfig};
use candle_core::cuda_backend::{CudaDType, CudaStorage};
use candle_core::{DType, Layout, Shape, bail};

use super::cpu_args::contiguous_range;

/// Threads per block of the element-wise kernels.
const BLOCK: u32 = 256;

/// The name suffix of a kernel's instance for `dtype` (`f32`, `f16`, `bf16`).
pub(crate) fn dtype_suffix(op: &str, dtype: DType) -> candle_core::Result<&'static str> {
    Ok(match dtype {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        dtype => bail!("{op}: no CUDA kernel for {dtype:?}, only f32, f16 and bf16"),
    })
}

/// Calls the generic `$f::<T>(args)` with `T` = `f32`, `f16` or `bf16` as `$dtype` says.
macro_rules! dispatch_half {
    ($op:expr, $dtype:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $dtype {
            candle_core::DType::F32 => $f::<f32>($($arg),*),
            candle_core::DType::F16 => $f::<half::f16>($($arg),*),
            candle_core::DType::BF16 => $f::<half::bf16>($($arg),*),
            dtype => candle_core::bail!("{}: no CUDA kernel for {dtype:?}, only f32, f16 and bf16", $op),
        }
    };
}
pub(crate) use dispatch_half;

/// Checks that a custom op's argument is contiguous with the expected shape, and returns a view
/// of its data.
pub(crate) fn arg_view<'a, T: CudaDType + DeviceRepr>(
    op: &str,
    what: &str,
    storage: &'a CudaStorage,
    layout: &Layout,
    expected: &Shape,
) -> candle_core::Result<CudaView<'a, T>> {
    let range = contiguous_range(op, what, layout, expected)?;
    let slice = storage.as_cuda_slice::<T>()?;
    if range.end > slice.len() {
        bail!("{op}: {what} storage is shorter than its layout");
    }
    Ok(slice.slice(range))
}

/// One thread per element of `n` (grid-stride loops cover any rest).
pub(crate) fn elementwise_launch(op: &str, n: usize) -> candle_core::Result<LaunchConfig> {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, i32::MAX as usize);
    let Ok(blocks) = u32::try_from(blocks) else {
        bail!("{op}: {n} elements are too many for one launch");
    };
    Ok(LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// `v` as the kernels' `int`, or an error naming the size.
pub(crate) fn as_i32(op: &str, what: &str, v: usize) -> candle_core::Result<i32> {
    match i32::try_from(v) {
        Ok(v) => Ok(v),
        Err(_) => bail!("{op}: {what} = {v} exceeds the CUDA kernels' 32-bit sizes"),
    }
}

/// `v` as the kernels' `int64_t`, or an error naming the size.
pub(crate) fn as_i64(op: &str, v: usize) -> candle_core::Result<i64> {
    match i64::try_from(v) {
        Ok(v) => Ok(v),
        Err(_) => bail!("{op}: {v} elements exceed the CUDA kernels' 64-bit sizes"),
    }
}
