//! Fused CPU kernels of the optimizers: one pass over parameter, gradient and state instead of
//! a dozen tensor ops, run in place on the tensors' own storage.
//!
//! [`update_cpu_in_place`] hands an [`UpdateRule`](super::UpdateRule) the writable f32 data of a
//! parameter and its state buffers; [`par_update`], [`par_map`] and [`sum_squares`] split a pass
//! into chunks run in parallel by rayon. Every entry point returns "not applicable" for tensors
//! that are not contiguous f32 on the CPU, and the caller falls back to tensor ops.

use candle_core::{DType, Tensor};

use crate::{Error, Result};

/// Elements per parallel work item of the fused CPU kernels.
const CHUNK: usize = 1 << 14;

/// Runs `f` on the data of `tensors` when every one is a contiguous f32 tensor on the CPU;
/// `Ok(None)` (without calling `f`) otherwise, for the caller to fall back to tensor ops.
pub(crate) fn with_cpu_f32<R>(
    tensors: &[&Tensor],
    f: impl FnOnce(&[&[f32]]) -> Result<R>,
) -> Result<Option<R>> {
    if tensors
        .iter()
        .any(|t| !t.device().is_cpu() || t.dtype() != DType::F32)
    {
        return Ok(None);
    }
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let (candle_core::Storage::Cpu(candle_core::CpuStorage::F32(data)), Some((start, end))) =
            (&**storage, layout.contiguous_offsets())
        else {
            return Ok(None);
        };
        match data.get(start..end) {
            Some(slice) => slices.push(slice),
            None => return Ok(None),
        }
    }
    f(&slices).map(Some)
}

/// An in-place kernel body: the destination's f32 data and, for the innermost call, the source's.
type Body<'b> = Box<dyn FnOnce(&mut [f32], Option<&[f32]>) -> Result<()> + 'b>;

/// A candle in-place op running a [`Body`] on contiguous f32 CPU data.
struct SliceOp<'b> {
    body: std::cell::RefCell<Option<Body<'b>>>,
    failure: std::cell::RefCell<Option<Error>>,
}

/// The contiguous f32 data of a CPU storage.
fn f32_data<'s>(
    storage: &'s candle_core::CpuStorage,
    layout: &candle_core::Layout,
) -> candle_core::Result<&'s [f32]> {
    let data = storage.as_slice::<f32>()?;
    layout
        .contiguous_offsets()
        .and_then(|(start, end)| data.get(start..end))
        .ok_or_else(|| candle_core::Error::Msg("optimizer kernel: data not contiguous".into()))
}

impl SliceOp<'_> {
    fn run(
        &self,
        dst: &mut candle_core::CpuStorage,
        dst_layout: &candle_core::Layout,
        src: Option<(&candle_core::CpuStorage, &candle_core::Layout)>,
    ) -> candle_core::Result<()> {
        let not_f32 =
            || candle_core::Error::Msg("optimizer kernel: data not contiguous f32".into());
        let candle_core::CpuStorage::F32(data) = dst else {
            return Err(not_f32());
        };
        let dst = dst_layout
            .contiguous_offsets()
            .and_then(|(start, end)| data.get_mut(start..end))
            .ok_or_else(not_f32)?;
        let src = src.map(|(s, l)| f32_data(s, l)).transpose()?;
        let body = self
            .body
            .borrow_mut()
            .take()
            .ok_or_else(|| candle_core::Error::Msg("optimizer kernel ran twice".into()))?;
        body(dst, src).map_err(|e| {
            let msg = e.to_string();
            *self.failure.borrow_mut() = Some(e);
            candle_core::Error::Msg(msg)
        })
    }

    /// Runs `body` on `dst`'s data (and `src`'s, read-only), returning the body's own error.
    fn apply(dst: &Tensor, src: Option<&Tensor>, body: Body<'_>) -> Result<()> {
        let op = SliceOp {
            body: std::cell::RefCell::new(Some(body)),
            failure: std::cell::RefCell::new(None),
        };
        let ran = match src {
            // inplace_op2 locks both storages and rejects a source aliasing the destination.
            Some(src) => dst.inplace_op2(src, &op),
            None => dst.inplace_op1(&op),
        };
        if let Some(e) = op.failure.borrow_mut().take() {
            return Err(e);
        }
        Ok(ran?)
    }
}

impl candle_core::InplaceOp1 for SliceOp<'_> {
    fn name(&self) -> &'static str {
        "nemo-optimizer-update"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        self.run(storage, layout, None)
    }
}

impl candle_core::InplaceOp2 for SliceOp<'_> {
    fn name(&self) -> &'static str {
        "nemo-optimizer-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        self.run(s1, l1, Some((s2, l2)))
    }
}

/// The signature of a fused in-place update: `(param, grad, state buffers)`.
pub(crate) type InPlace<'f> = dyn FnMut(&mut [f32], &[f32], &mut [&mut [f32]]) -> Result<()> + 'f;

/// Locks `buffers` one after the other (outermost first), then `param` with `grad`.
fn nest(
    buffers: &[&Tensor],
    mut acc: Vec<&mut [f32]>,
    param: &Tensor,
    grad: &Tensor,
    f: &mut InPlace<'_>,
) -> Result<()> {
    match buffers.split_first() {
        Some((buffer, rest)) => SliceOp::apply(
            buffer,
            None,
            Box::new(move |data, _| {
                let mut acc: Vec<&mut [f32]> = acc;
                acc.push(data);
                nest(rest, acc, param, grad, f)
            }),
        ),
        None => SliceOp::apply(
            param,
            Some(grad),
            Box::new(move |p, g| f(p, g.unwrap_or_default(), &mut acc)),
        ),
    }
}

/// Runs `f(param, grad, buffers)` with `param` and the state `buffers` writable in place, when
/// every tensor is contiguous f32 on the CPU; `Ok(false)` (without calling `f`) otherwise.
///
/// The buffers must be owned by the optimizer (no other tensor shares their storage): they are
/// created by it, and copied on the way in and out of state dicts.
pub(crate) fn update_cpu_in_place(
    param: &Tensor,
    grad: &Tensor,
    buffers: &[Tensor],
    mut f: impl FnMut(&mut [f32], &[f32], &mut [&mut [f32]]) -> Result<()>,
) -> Result<bool> {
    let all = [param, grad].into_iter().chain(buffers);
    let usable = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous();
    if !all.clone().all(usable) {
        return Ok(false);
    }
    let n = param.elem_count();
    if grad.elem_count() != n {
        return Err(Error::Optimizer {
            msg: format!("gradient has {} elements, parameter {n}", grad.elem_count()),
        });
    }
    let buffers: Vec<&Tensor> = buffers.iter().collect();
    nest(
        &buffers,
        Vec::with_capacity(buffers.len()),
        param,
        grad,
        &mut f,
    )?;
    Ok(true)
}

/// In-place element-wise kernel: splits the `M` written slices and `R` read slices (all of one
/// length) into aligned chunks and runs `f(written chunks, read chunks)` on them in parallel.
pub(crate) fn par_update<const M: usize, const R: usize>(
    written: [&mut [f32]; M],
    read: [&[f32]; R],
    f: impl Fn([&mut [f32]; M], [&[f32]; R]) + Sync,
) -> Result<()> {
    use rayon::prelude::*;
    let n = written.first().map_or(0, |s| s.len());
    if written.iter().any(|s| s.len() != n) || read.iter().any(|s| s.len() != n) {
        return Err(Error::Optimizer {
            msg: "fused update: parameter, gradient and state lengths differ".to_string(),
        });
    }
    let mut chunked: Vec<std::slice::ChunksMut<'_, f32>> =
        written.into_iter().map(|s| s.chunks_mut(CHUNK)).collect();
    let mut work = Vec::with_capacity(n.div_ceil(CHUNK));
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let reads = read.map(|s| s.get(start..end).unwrap_or_default());
        let writes: [&mut [f32]; M] = std::array::from_fn(|o| {
            chunked
                .get_mut(o)
                .and_then(|chunks| chunks.next())
                .unwrap_or_default()
        });
        work.push((writes, reads));
    }
    work.into_par_iter().for_each(|(w, r)| f(w, r));
    Ok(())
}

/// `sum(x^2)` accumulated in f64, in parallel chunks.
pub(crate) fn sum_squares(x: &[f32]) -> f64 {
    use rayon::prelude::*;
    x.par_chunks(CHUNK)
        .map(|c| c.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
        .sum()
}

/// Element-wise kernel: splits `inputs` (all of length `n`) and `O` new outputs of length `n`
/// into aligned chunks and runs `f(input chunks, output chunks)` on them in parallel.
pub(crate) fn par_map<const I: usize, const O: usize>(
    inputs: [&[f32]; I],
    f: impl Fn([&[f32]; I], [&mut [f32]; O]) + Sync,
) -> Result<[Vec<f32>; O]> {
    use rayon::prelude::*;
    let n = inputs.first().map_or(0, |s| s.len());
    if inputs.iter().any(|s| s.len() != n) {
        return Err(Error::Optimizer {
            msg: "fused update: parameter, gradient and state lengths differ".to_string(),
        });
    }
    let mut outputs: [Vec<f32>; O] = std::array::from_fn(|_| vec![0f32; n]);
    let mut per_output: Vec<std::slice::ChunksMut<'_, f32>> =
        outputs.iter_mut().map(|v| v.chunks_mut(CHUNK)).collect();
    let mut work = Vec::with_capacity(n.div_ceil(CHUNK));
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let ins = inputs.map(|s| s.get(start..end).unwrap_or_default());
        let outs: [&mut [f32]; O] = std::array::from_fn(|o| {
            per_output
                .get_mut(o)
                .and_then(|chunks| chunks.next())
                .unwrap_or_default()
        });
        work.push((ins, outs));
    }
    work.into_par_iter().for_each(|(ins, outs)| f(ins, outs));
    Ok(outputs)
}
