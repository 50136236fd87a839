//! Fast CPU kernels for QuartzNet's time-channel separable convolutions.
//!
//! A separable block is a depthwise convolution over time, `(B, C, T) → (B, C, T_out)` with one
//! `K`-tap filter per channel, followed by a pointwise (1×1) convolution mixing channels,
//! `(B, C_in, T) → (B, C_out, T)`. candle 0.11 runs the first as one convolution per channel and
//! the second through im2col; both are far slower than PyTorch on the CPU. This module provides:
//!
//! * [`depthwise_conv1d`]: direct kernels (forward, input gradient, weight gradient) as candle
//!   custom ops, with autograd;
//! * [`pointwise_conv1d`]: the 1×1 convolution as a batched GEMM on `(B, C, T)`, without im2col.
//!
//! Both take and return candle [`Tensor`](candle_core::Tensor)s, record their backward in candle's
//! autograd graph, and fall back to candle's own ops where the fast path does not apply (other
//! dtypes, other devices), so callers never need to branch.

pub mod depthwise_conv1d;
pub mod pointwise_conv1d;

pub use depthwise_conv1d::depthwise_conv1d;
pub use pointwise_conv1d::pointwise_conv1d;
