//! Launches of `batch_norm.cu`: the training-mode forward and backward of
//! [`crate::kernels::batch_norm`] on CUDA, and the statistics they keep on the device.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use candle_core::cuda_backend::{CudaDType, CudaStorage, WrapErr};
use candle_core::{Layout, Shape, bail};

use super::{arg_view, as_i32, dispatch_half, dtype_suffix};

/// The kernels' PTX, built by `build.rs`.
const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/batch_norm.ptx"));

/// Threads per block (one block per channel).
const BLOCK: u32 = 256;

/// What the forward leaves on the device for the backward and the running statistics.
#[derive(Debug)]
pub(crate) struct DeviceStats {
    /// `(3, C)` f64: `μ`, `σ²` (biased), `1/√(σ² + eps)`.
    stats: CudaSlice<f64>,
    /// `γ` as it was in the forward, `(C)` f32.
    gamma: CudaSlice<f32>,
}

/// A row of [`DeviceStats::stats`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stat {
    /// `μ`.
    Mean = 0,
    /// `σ²`.
    Var = 1,
}

/// `(B, C, T)`.
type Dims = (usize, usize, usize);

/// One block per channel.
fn per_channel_launch(op: &str, channels: usize) -> candle_core::Result<LaunchConfig> {
    let Ok(blocks) = u32::try_from(channels) else {
        bail!("{op}: {channels} channels are too many for one launch");
    };
    Ok(LaunchConfig {
        grid_dim: (blocks.max(1), 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// The kernel's name: pass, ReLU or not, dtype.
fn kernel_name(op: &str, pass: &str, relu: bool, s: &CudaStorage) -> candle_core::Result<String> {
    let variant = if relu { "relu" } else { "plain" };
    Ok(format!(
        "batch_norm_{pass}_{variant}_{}",
        dtype_suffix(op, s.dtype())?
    ))
}

/// `y` (`x`'s dtype) from `(x, γ, β)` (`γ`, `β` f32), and the batch statistics.
pub(crate) fn forward(
    op: &str,
    dims: Dims,
    eps: f64,
    relu: bool,
    x: (&CudaStorage, &Layout),
    gamma: (&CudaStorage, &Layout),
    beta: (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, DeviceStats)> {
    dispatch_half!(
        op,
        x.0.dtype(),
        forward_typed(op, dims, eps, relu, x, gamma, beta)
    )
}

fn forward_typed<T: CudaDType + DeviceRepr + ValidAsZeroBits>(
    op: &str,
    (b, c, t): Dims,
    eps: f64,
    relu: bool,
    (sx, lx): (&CudaStorage, &Layout),
    (sg, lg): (&CudaStorage, &Layout),
    (sb, lb): (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, DeviceStats)> {
    let x_shape = Shape::from((b, c, t));
    let x = arg_view::<T>(op, "x", sx, lx, &x_shape)?;
    let gamma = arg_view::<f32>(op, "weight", sg, lg, &Shape::from(c))?;
    let beta = arg_view::<f32>(op, "bias", sb, lb, &Shape::from(c))?;
    let dev = &sx.device;
    let func = dev.get_or_load_custom_func(
        &kernel_name(op, "fwd", relu, sx)?,
        "nemo_asr_batch_norm",
        PTX,
    )?;
    // SAFETY (the three buffers): the kernel writes every element of y and of the statistics, the
    // copy every element of γ's.
    let y = unsafe { dev.alloc::<T>(x_shape.elem_count()) }?;
    let stats = unsafe { dev.alloc::<f64>(3 * c) }?;
    let mut gamma_copy = unsafe { dev.alloc::<f32>(c) }?;
    dev.memcpy_dtod(&gamma, &mut gamma_copy)?;
    let (batch, channels, time) = (
        as_i32(op, "B", b)?,
        as_i32(op, "C", c)?,
        as_i32(op, "T", t)?,
    );
    let mut builder = func.builder();
    builder
        .arg(&x)
        .arg(&gamma)
        .arg(&beta)
        .arg(&y)
        .arg(&stats)
        .arg(&batch)
        .arg(&channels)
        .arg(&time)
        .arg(&eps);
    // SAFETY: the arguments match the kernel's signature (contiguous x and y of B·C·T elements,
    // γ and β of C, statistics of 3·C, then the sizes and eps); one block per channel.
    unsafe { builder.launch(per_channel_launch(op, c)?) }.w()?;
    let stats = DeviceStats {
        stats,
        gamma: gamma_copy,
    };
    Ok((CudaStorage::wrap_cuda_slice(y, dev.clone()), stats))
}

/// `∂L/∂x`, `∂L/∂γ`, `∂L/∂β` packed in one f32 vector of `B·C·T + 2·C`, from `(x, ∂L/∂y, y)`.
pub(crate) fn backward(
    op: &str,
    dims: Dims,
    relu: bool,
    saved: &DeviceStats,
    x: (&CudaStorage, &Layout),
    dy: (&CudaStorage, &Layout),
    y: (&CudaStorage, &Layout),
) -> candle_core::Result<CudaStorage> {
    dispatch_half!(
        op,
        x.0.dtype(),
        backward_typed(op, dims, relu, saved, x, dy, y)
    )
}

fn backward_typed<T: CudaDType + DeviceRepr + ValidAsZeroBits>(
    op: &str,
    (b, c, t): Dims,
    relu: bool,
    saved: &DeviceStats,
    (sx, lx): (&CudaStorage, &Layout),
    (sd, ld): (&CudaStorage, &Layout),
    (sy, ly): (&CudaStorage, &Layout),
) -> candle_core::Result<CudaStorage> {
    let x_shape = Shape::from((b, c, t));
    let x = arg_view::<T>(op, "x", sx, lx, &x_shape)?;
    let dy = arg_view::<T>(op, "dy", sd, ld, &x_shape)?;
    let y = arg_view::<T>(op, "y", sy, ly, &x_shape)?;
    if saved.gamma.len() != c || saved.stats.len() != 3 * c {
        bail!("{op}: the saved statistics are not for {c} channels");
    }
    let dev = &sx.device;
    let func = dev.get_or_load_custom_func(
        &kernel_name(op, "bwd", relu, sx)?,
        "nemo_asr_batch_norm",
        PTX,
    )?;
    // SAFETY: the kernel writes every element (dx, then dγ and dβ per channel).
    let out = unsafe { dev.alloc::<f32>(x_shape.elem_count() + 2 * c) }?;
    let (batch, channels, time) = (
        as_i32(op, "B", b)?,
        as_i32(op, "C", c)?,
        as_i32(op, "T", t)?,
    );
    let mut builder = func.builder();
    builder
        .arg(&x)
        .arg(&dy)
        .arg(&y)
        .arg(&saved.stats)
        .arg(&saved.gamma)
        .arg(&out)
        .arg(&batch)
        .arg(&channels)
        .arg(&time);
    // SAFETY: the arguments match the kernel's signature (contiguous x, dy, y of B·C·T elements,
    // the 3·C statistics and C γ of the forward, the packed output, then the sizes).
    unsafe { builder.launch(per_channel_launch(op, c)?) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

/// A copy of one statistic, `(C)` f64, on the device of `like`.
pub(crate) fn stat(
    saved: &DeviceStats,
    which: Stat,
    like: &CudaStorage,
) -> candle_core::Result<CudaStorage> {
    let c = saved.gamma.len();
    let row = which as usize;
    let dev = &like.device;
    // SAFETY: the copy below writes every element.
    let mut out = unsafe { dev.alloc::<f64>(c) }?;
    dev.memcpy_dtod(&saved.stats.slice(row * c..(row + 1) * c), &mut out)?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}
