//! Fast CPU kernels for QuartzNet's time-channel separable convolutions.
//!
//! A separable block is a depthwise convolution over time, `(B, C, T) → (B, C, T_out)` with one
//! `K`-tap filter per channel, followed by a pointwise (1×1) convolution mixing channels,
//! `(B, C_in, T) → (B, C_out, T)`, then BatchNorm and ReLU. candle 0.11 runs the depthwise
//! convolution as one convolution per channel and the pointwise one through im2col; both are far
//! slower than a direct kernel on the CPU. This module provides:
//!
//! * [`depthwise_conv1d()`](fn@depthwise_conv1d) (module [`depthwise_conv1d`](mod@depthwise_conv1d)):
//!   direct kernels (forward, input gradient, weight gradient) as candle
//!   custom ops, with autograd;
//! * [`pointwise_conv1d()`](fn@pointwise_conv1d) (module [`pointwise_conv1d`](mod@pointwise_conv1d)):
//!   the 1×1 convolution as a batched GEMM on `(B, C, T)`, without im2col,
//!   with its gradients as GEMMs too;
//! * [`batch_norm`]: batch normalization, optionally fused with the ReLU (see its module docs);
//! * [`time_mask()`](fn@time_mask) and [`add_relu()`](fn@add_relu): the block's length masking and
//!   its residual sum with ReLU, each one pass forward and one backward where candle's composite
//!   ops take five to eight.
//!
//! They take and return candle [`Tensor`]s, record their backward in candle's
//! autograd graph, and fall back to candle's own ops where the fast path does not apply (dtypes
//! other than `f32`/`f64`, devices other than the CPU), so callers never need to branch.

pub mod add_relu;
pub mod batch_norm;
mod batch_norm_cpu;
mod batch_norm_op;
mod cpu_args;
pub(crate) mod ctc;
mod ctc_recursion;
#[cfg(feature = "cuda")]
mod cuda;
pub mod depthwise_conv1d;
mod depthwise_cpu;
mod depthwise_geometry;
mod log_space;
pub mod pointwise_conv1d;
pub mod time_mask;

use candle_core::{DType, Device, Tensor};

pub use add_relu::add_relu;
pub use batch_norm::{BatchNorm1d, BatchStats, batch_norm_train};
pub use depthwise_conv1d::depthwise_conv1d;
pub use pointwise_conv1d::pointwise_conv1d;
pub use time_mask::time_mask;

/// Whether `x` runs on this module's direct kernels (CPU `f32`/`f64`; with the `cuda` feature,
/// CUDA `f32`/`f16`/`bf16`) rather than candle's fallback ops.
pub(crate) fn has_direct_kernel(x: &Tensor) -> bool {
    let dtype = x.dtype();
    match x.device() {
        Device::Cpu => matches!(dtype, DType::F32 | DType::F64),
        Device::Cuda(_) => {
            cfg!(feature = "cuda") && matches!(dtype, DType::F32 | DType::F16 | DType::BF16)
        }
        _ => false,
    }
}
