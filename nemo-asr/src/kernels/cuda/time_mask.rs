//! Launch of `time_mask.cu` on CUDA, for the custom op of [`crate::kernels::time_mask`].

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, PushKernelArg, ValidAsZeroBits};
use candle_core::cuda_backend::{CudaDType, CudaStorage, WrapErr};
use candle_core::{Layout, Shape, bail};

use super::{arg_view, as_i32, as_i64, dispatch_half, dtype_suffix, elementwise_launch};

/// The kernel's PTX, built by `build.rs`.
const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/time_mask.ptx"));

/// `x` `(B, C, T)` with item `b` cut at `lengths[b]` (each at most `T`).
pub(crate) fn launch(
    op: &str,
    lengths: &[usize],
    x: (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, Shape)> {
    dispatch_half!(op, x.0.dtype(), launch_typed(op, lengths, x))
}

fn launch_typed<T: CudaDType + DeviceRepr + ValidAsZeroBits>(
    op: &str,
    lengths: &[usize],
    (s, l): (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, Shape)> {
    let shape = l.shape().clone();
    let (b, c, t) = shape.dims3()?;
    if lengths.len() != b {
        bail!("{op}: {} lengths for {shape:?}", lengths.len());
    }
    let x = arg_view::<T>(op, "x", s, l, &shape)?;
    let dev = &s.device;
    let n = shape.elem_count();
    if n == 0 {
        let out = dev.alloc_zeros::<T>(0)?;
        return Ok((CudaStorage::wrap_cuda_slice(out, dev.clone()), shape));
    }
    let lengths = lengths
        .iter()
        .map(|&len| as_i32(op, "length", len.min(t)))
        .collect::<candle_core::Result<Vec<i32>>>()?;
    let lengths = dev.clone_htod(lengths.as_slice())?;
    let name = format!("time_mask_{}", dtype_suffix(op, s.dtype())?);
    let func = dev.get_or_load_custom_func(&name, "nemo_asr_time_mask", PTX)?;
    // SAFETY: the kernel writes every element before anything reads it.
    let out = unsafe { dev.alloc::<T>(n) }?;
    let channels = as_i32(op, "C", c)?;
    let time = as_i32(op, "T", t)?;
    let len = as_i64(op, n)?;
    let mut builder = func.builder();
    builder
        .arg(&x)
        .arg(&lengths)
        .arg(&out)
        .arg(&channels)
        .arg(&time)
        .arg(&len);
    // SAFETY: the arguments match the kernel's signature (contiguous x and output of `n` elements,
    // `B` int32 lengths each at most `T`, then the sizes); grid-stride loops cover any launch.
    unsafe { builder.launch(elementwise_launch(op, n)?) }.w()?;
    Ok((CudaStorage::wrap_cuda_slice(out, dev.clone()), shape))
}
