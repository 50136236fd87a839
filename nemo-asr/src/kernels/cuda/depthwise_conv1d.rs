//! Launches of `depthwise_conv1d.cu`: the forward op and its two adjoints on CUDA, for the custom
//! ops of [`crate::kernels::depthwise_conv1d`] (which define the geometry and the backward).

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use candle_core::cuda_backend::{CudaDType, CudaStorage, WrapErr};
use candle_core::{Layout, Shape, bail};

use super::{arg_view, as_i32, dispatch_half, dtype_suffix, elementwise_launch};
use crate::kernels::depthwise_geometry::Geometry;

/// The kernels' PTX, built by `build.rs`.
const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/depthwise_conv1d.ptx"));

/// Threads per block of the weight gradient (one block per tap, a block-wide sum).
const GRAD_WEIGHT_BLOCK: u32 = 256;

/// Which of the three ops to run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pass {
    /// `y = F(x, w)` on `(x, w)`.
    Forward,
    /// `dx = Gₓ(dy, w)` on `(dy, w)`.
    GradInput,
    /// `dw = G_w(x, dy)` on `(x, dy)`.
    GradWeight,
}

/// Runs `pass` on the two arguments' storages; returns the result and its shape.
pub(crate) fn launch(
    pass: Pass,
    op: &str,
    geo: &Geometry,
    a: (&CudaStorage, &Layout),
    b: (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, Shape)> {
    dispatch_half!(op, a.0.dtype(), launch_typed(pass, op, geo, a, b))
}

fn launch_typed<T: CudaDType + DeviceRepr + ValidAsZeroBits>(
    pass: Pass,
    op: &str,
    geo: &Geometry,
    (s1, l1): (&CudaStorage, &Layout),
    (s2, l2): (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, Shape)> {
    let (x, w, y) = (geo.x_shape(), geo.w_shape(), geo.y_shape());
    let (kernel, (n1, sh1), (n2, sh2), out_shape) = match pass {
        Pass::Forward => ("depthwise_conv1d_fwd", ("x", x), ("w", w), y),
        Pass::GradInput => ("depthwise_conv1d_grad_input", ("dy", y), ("w", w), x),
        Pass::GradWeight => ("depthwise_conv1d_grad_weight", ("x", x), ("dy", y), w),
    };
    let a = arg_view::<T>(op, n1, s1, l1, &sh1)?;
    let b = arg_view::<T>(op, n2, s2, l2, &sh2)?;
    let dev = &s1.device;
    let n = out_shape.elem_count();
    if n == 0 {
        let out = dev.alloc_zeros::<T>(n)?;
        return Ok((CudaStorage::wrap_cuda_slice(out, dev.clone()), out_shape));
    }
    let name = format!("{kernel}_{}", dtype_suffix(op, s1.dtype())?);
    let func = dev.get_or_load_custom_func(&name, "nemo_asr_depthwise_conv1d", PTX)?;
    // SAFETY: every element is written by the kernel before it is read.
    let out = unsafe { dev.alloc::<T>(n) }?;
    let rows = i64::try_from(geo.batch * geo.channels)
        .map_err(|_| candle_core::Error::Msg(format!("{op}: B·C overflows")))?;
    let batch = as_i32(op, "B", geo.batch)?;
    let channels = as_i32(op, "C", geo.channels)?;
    let t_in = as_i32(op, "T", geo.t_in)?;
    let t_out = as_i32(op, "T_out", geo.t_out)?;
    let taps = as_i32(op, "K", geo.kernel)?;
    let stride = as_i32(op, "stride", geo.stride)?;
    let padding = as_i32(op, "padding", geo.padding)?;
    let dilation = as_i32(op, "dilation", geo.dilation)?;
    let cfg = match pass {
        Pass::GradWeight => {
            let Ok(blocks) = u32::try_from(geo.channels * geo.kernel) else {
                bail!(
                    "{op}: C·K = {} blocks are too many",
                    geo.channels * geo.kernel
                );
            };
            LaunchConfig {
                grid_dim: (blocks, 1, 1),
                block_dim: (GRAD_WEIGHT_BLOCK, 1, 1),
                shared_mem_bytes: 0,
            }
        }
        Pass::Forward | Pass::GradInput => elementwise_launch(op, n)?,
    };
    let mut builder = func.builder();
    builder.arg(&a).arg(&b).arg(&out);
    match pass {
        Pass::GradWeight => builder.arg(&batch),
        Pass::Forward | Pass::GradInput => builder.arg(&rows),
    };
    builder
        .arg(&channels)
        .arg(&t_in)
        .arg(&t_out)
        .arg(&taps)
        .arg(&stride)
        .arg(&padding)
        .arg(&dilation);
    // SAFETY: the arguments match the kernel's signature (pointers to contiguous buffers of the
    // checked shapes, then the sizes), and the launch covers the output as the kernel expects.
    unsafe { builder.launch(cfg) }.w()?;
    Ok((CudaStorage::wrap_cuda_slice(out, dev.clone()), out_shape))
}
