//! What the custom ops of this module share: checking an argument's layout (CPU and CUDA), reading its
//! CPU data, dispatching on the float dtype, and parallel zero-filled buffers.

use candle_core::{CpuStorage, Layout, Shape, WithDType, bail};
use rayon::prelude::*;

/// Checks that a custom op's argument has the expected shape and is contiguous; returns the
/// range of its storage it covers. (The CPU and the CUDA ops check their arguments alike.)
pub(crate) fn contiguous_range(
    op: &str,
    what: &str,
    layout: &Layout,
    expected: &Shape,
) -> candle_core::Result<std::ops::Range<usize>> {
    if layout.shape() != expected {
        bail!(
            "{op}: {what} has shape {:?}, expected {expected:?}",
            layout.shape()
        );
    }
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(start..end),
        None => bail!("{op}: {what} must be contiguous"),
    }
}

/// Checks that a custom op's argument is contiguous with the expected shape, and returns its data.
pub(crate) fn arg_slice<'a, T: WithDType>(
    op: &str,
    what: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
    expected: &Shape,
) -> candle_core::Result<&'a [T]> {
    let range = contiguous_range(op, what, layout, expected)?;
    match storage.as_slice::<T>()?.get(range) {
        Some(data) => Ok(data),
        None => bail!("{op}: {what} storage is shorter than its layout"),
    }
}

/// `n` zeros, written by all rayon workers: a single-threaded `memset` of a `(B, C, T)` buffer is
/// a sizeable part of these ops.
pub(crate) fn zeroed<T: WithDType>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    v.par_extend(rayon::iter::repeat_n(T::zero(), n));
    v
}

/// Calls the generic `$f::<T>(args)` with `T` = `f32` or `f64` as `$dtype` says.
macro_rules! dispatch_float {
    ($op:expr, $dtype:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $dtype {
            candle_core::DType::F32 => $f::<f32>($($arg),*),
            candle_core::DType::F64 => $f::<f64>($($arg),*),
            dtype => candle_core::bail!("{}: no CPU kernel for {dtype:?}, only f32 and f64", $op),
        }
    };
}
pub(crate) use dispatch_float;
