//! What the CPU custom ops of this module share: reading an argument's data after checking its
//! layout, dispatching on the float dtype, and parallel zero-filled buffers.

use candle_core::{CpuStorage, Layout, Shape, WithDType, bail};
use rayon::prelude::*;

/// Checks that a custom op's argument is contiguous with the expected shape, and returns its data.
pub(crate) fn arg_slice<'a, T: WithDType>(
    op: &str,
    what: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
    expected: &Shape,
) -> candle_core::Result<&'a [T]> {
    if layout.shape() != expected {
        bail!(
            "{op}: {what} has shape {:?}, expected {expected:?}",
            layout.shape()
        );
    }
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: {what} must be contiguous");
    };
    match storage.as_slice::<T>()?.get(start..end) {
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
