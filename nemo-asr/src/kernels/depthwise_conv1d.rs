//! Depthwise 1-D convolution (`groups = C`), the first half of QuartzNet's time-channel separable
//! convolution, as candle custom ops with a hand-written backward.
//!
//! # What it computes
//!
//! For an input `x` of shape `(B, C, T)` and a weight `w` of shape `(C, 1, K)` (PyTorch's layout for
//! `Conv1d(C, C, K, groups=C)`), with `stride`, `padding` (zeros, both sides) and `dilation`:
//!
//! ```text
//! y[b, c, t] = Σ_k  w[c, 0, k] · x[b, c, t·stride + k·dilation − padding]      (out of range: 0)
//! T_out      = ⌊(T + 2·padding − dilation·(K − 1) − 1) / stride⌋ + 1
//! ```
//!
//! so `y` has shape `(B, C, T_out)`, exactly as PyTorch's `conv1d(x, w, stride=stride,
//! padding=padding, dilation=dilation, groups=C)`. There is no bias: QuartzNet's separable
//! convolutions have none (a BatchNorm follows).
//!
//! # Why not candle's `conv1d(groups = C)`
//!
//! candle 0.11 runs a grouped convolution as one single-channel convolution per group, and its
//! backward zero-pads and adds a full tensor per group: at `(16, 256, 400)`, `K = 21`, two cores,
//! that is about 70 ms forward and 1.3–2 s forward+backward, where these kernels take about
//! 1.5 ms and 9 ms (the latter including candle's gradient bookkeeping; see `benches/conv.rs`).
//!
//! # Kernel layout
//!
//! * **Parallel over rows.** The forward and the input gradient treat each `(b, c)` row
//!   independently (rayon over `B·C` rows); the weight gradient reduces over batch and time, so it
//!   runs in parallel over channels and loops over the batch inside.
//! * **Phase-split, zero-padded row.** Each row is first copied into a scratch buffer that holds the
//!   zero padding explicitly and, for `stride = s > 1`, splits the row into its `s` phases
//!   (`phase[r][j] = x_pad[j·s + r]`). A tap `k` with `k·dilation = q·s + r` then reads
//!   `phase[r][t + q]`: every tap becomes a *contiguous* read at a fixed offset, whatever the stride
//!   and dilation, and the inner loops have no boundary tests.
//! * **Time-blocked accumulators, FMA over the taps.** The output row is produced in blocks of
//!   64 time steps kept in a fixed-size accumulator array (8 AVX registers for `f32`); for each
//!   of the `K` taps one weight is broadcast and fused-multiply-added onto the whole block, one
//!   load per FMA. The last partial block uses 16-step blocks with two accumulator arrays (even and
//!   odd taps), so that it still has enough independent FMA chains. The compiler vectorizes the
//!   fixed-size blocks; on x86-64 the loops are compiled a second time with AVX2+FMA enabled and
//!   chosen at run time, so no `-C target-cpu` is needed.
//! * **The input gradient is the same kernel.** `dx` is a correlation of the zero-padded `dy` with
//!   the taps in reverse order, computed phase by phase of `x` (only the taps whose offset falls in
//!   that phase contribute); for stride 1 it is written straight into the row of `dx`.
//! * **The weight gradient swaps the roles of time and taps.** `dw[c, k] = Σ_{b,t} dy[b, c, t] ·
//!   x_pad[b, c, t·s + k·d]`. With the row split into `dilation` phases, all `K` taps of one step `t`
//!   are consecutive, so the same broadcast-and-FMA kernel runs with the taps as the vector axis
//!   (all of them in registers, up to 64 at a time, two accumulator sets for short kernels) and the
//!   `T_out` steps as the terms: no horizontal sums, and one load per FMA. It runs in parallel over
//!   channels and loops over the batch inside.
//!
//! The three ops are each other's adjoints (`dx = Gₓ(dy, w)`, `dw = G_w(x, dy)`, and the backward of
//! `Gₓ` and `G_w` is again made of `F`, `Gₓ`, `G_w`), so second-order gradients stay on the fast
//! kernels too. (candle detaches gradients at intermediate nodes unless
//! `CANDLE_GRAD_DO_NOT_DETACH=1`; gradients of the op's direct arguments keep their graph.)
//!
//! # Dtypes and devices
//!
//! `f32` and `f64` on the CPU use these kernels (non-contiguous inputs are made contiguous first).
//! With the `cuda` feature, `f32`, `f16` and `bf16` on CUDA use the same three ops written as CUDA
//! kernels (`cuda/depthwise_conv1d.cu`: one thread per output element for the forward pass and
//! the input gradient, one block-wide sum per tap for the weight gradient; f16/bf16 accumulate
//! in f32), so the backward stays on them too. Any other combination (`f16` on the CPU, `f64` on
//! CUDA, Metal) falls back to candle's `conv1d(.., groups = C)`, which is correct everywhere but
//! slow (one convolution per channel: on an H100 the small QuartzNet's training step took 384 ms
//! with it against PyTorch's 11 ms), so the function works on every backend candle supports.
//!
//! ```
//! # fn main() -> nemo_asr::Result<()> {
//! use candle_core::{Device, Tensor};
//! use nemo_asr::kernels::depthwise_conv1d;
//!
//! let x = Tensor::randn(0f32, 1., (2, 8, 50), &Device::Cpu)?; // (B, C, T)
//! let w = Tensor::randn(0f32, 1., (8, 1, 5), &Device::Cpu)?; //  (C, 1, K)
//! let y = depthwise_conv1d(&x, &w, 1, 2, 1)?; //                  stride 1, padding 2, dilation 1
//! assert_eq!(y.dims(), &[2, 8, 50]);
//! # Ok(())
//! # }
//! ```

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::cpu_args::dispatch_float;
use super::depthwise_cpu::{forward_storage, grad_input_storage, grad_weight_storage};
use super::depthwise_geometry::Geometry;
use super::has_direct_kernel;
use crate::Result;

/// Depthwise 1-D convolution of `x` `(B, C, T)` with `w` `(C, 1, K)`, returning `(B, C, T_out)`.
///
/// `T_out = ⌊(T + 2·padding − dilation·(K − 1) − 1) / stride⌋ + 1`, as PyTorch's
/// `conv1d(x, w, stride=stride, padding=padding, dilation=dilation, groups=C)`.
///
/// Differentiable with respect to both `x` and `w` (second order included). `f32`/`f64` CPU tensors use the
/// direct kernels of this module; other dtypes and devices fall back to candle's grouped
/// `conv1d` (see the module docs).
///
/// # Shapes
/// * `x`: `(B, C, T)`
/// * `w`: `(C, 1, K)`
/// * returns `(B, C, T_out)`
///
/// # Errors
/// [`Error::Shape`](crate::Error::Shape) when the shapes do not fit together, `stride` or `dilation` is 0, the dilated
/// kernel is longer than the padded input, or the dtypes or devices differ; [`Error::Candle`](crate::Error::Candle) when
/// a backend op fails.
pub fn depthwise_conv1d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<Tensor> {
    let geo = Geometry::new(x, w, stride, padding, dilation)?;
    if has_direct_kernel(x) {
        let x = x.contiguous()?;
        let w = w.contiguous()?;
        Ok(x.apply_op2(&w, DepthwiseConv1d { geo })?)
    } else {
        Ok(x.conv1d(w, padding, stride, dilation, geo.channels)?)
    }
}

/// The forward op `y = F(x, w)` on `(x, w)`.
#[derive(Debug, Clone, Copy)]
struct DepthwiseConv1d {
    geo: Geometry,
}

/// The input gradient `dx = Gₓ(dy, w)` on `(dy, w)`; the adjoint of `F` in `x`.
#[derive(Debug, Clone, Copy)]
struct DepthwiseConv1dGradInput {
    geo: Geometry,
}

/// The weight gradient `dw = G_w(x, dy)` on `(x, dy)`; the adjoint of `F` in `w`.
#[derive(Debug, Clone, Copy)]
struct DepthwiseConv1dGradWeight {
    geo: Geometry,
}

impl CustomOp2 for DepthwiseConv1d {
    fn name(&self) -> &'static str {
        "depthwise-conv1d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_float!(
            self.name(),
            s1.dtype(),
            forward_storage(self.name(), &self.geo, (s1, l1), (s2, l2))
        )?;
        Ok((storage, self.geo.y_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::kernels::cuda::depthwise_conv1d::{Pass, launch};
        launch(Pass::Forward, self.name(), &self.geo, (s1, l1), (s2, l2))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let geo = self.geo;
        let dy = dy.contiguous()?;
        let dx = dy.apply_op2(w, DepthwiseConv1dGradInput { geo })?;
        let dw = x.apply_op2(&dy, DepthwiseConv1dGradWeight { geo })?;
        Ok((Some(dx), Some(dw)))
    }
}

impl CustomOp2 for DepthwiseConv1dGradInput {
    fn name(&self) -> &'static str {
        "depthwise-conv1d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_float!(
            self.name(),
            s1.dtype(),
            grad_input_storage(self.name(), &self.geo, (s1, l1), (s2, l2))
        )?;
        Ok((storage, self.geo.x_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::kernels::cuda::depthwise_conv1d::{Pass, launch};
        launch(Pass::GradInput, self.name(), &self.geo, (s1, l1), (s2, l2))
    }

    fn bwd(
        &self,
        dy: &Tensor,
        w: &Tensor,
        _dx: &Tensor,
        h: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // <h, Gₓ(dy, w)> = <F(h, w), dy> = <w, G_w(h, dy)>.
        let geo = self.geo;
        let h = h.contiguous()?;
        let d_dy = h.apply_op2(w, DepthwiseConv1d { geo })?;
        let d_w = h.apply_op2(dy, DepthwiseConv1dGradWeight { geo })?;
        Ok((Some(d_dy), Some(d_w)))
    }
}

impl CustomOp2 for DepthwiseConv1dGradWeight {
    fn name(&self) -> &'static str {
        "depthwise-conv1d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_float!(
            self.name(),
            s1.dtype(),
            grad_weight_storage(self.name(), &self.geo, (s1, l1), (s2, l2))
        )?;
        Ok((storage, self.geo.w_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use crate::kernels::cuda::depthwise_conv1d::{Pass, launch};
        launch(Pass::GradWeight, self.name(), &self.geo, (s1, l1), (s2, l2))
    }

    fn bwd(
        &self,
        x: &Tensor,
        dy: &Tensor,
        _dw: &Tensor,
        h: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // <h, G_w(x, dy)> = <F(x, h), dy> = <x, Gₓ(dy, h)>.
        let geo = self.geo;
        let h = h.contiguous()?;
        let d_x = dy.apply_op2(&h, DepthwiseConv1dGradInput { geo })?;
        let d_dy = x.apply_op2(&h, DepthwiseConv1d { geo })?;
        Ok((Some(d_x), Some(d_dy)))
    }
}
