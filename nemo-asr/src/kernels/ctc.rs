//! The CTC loss kernel behind [`crate::losses::ctc_loss`]: validation of targets and lengths
//! into the layout the kernel reads, and the per-sample negative log-likelihood with its exact
//! gradient as a candle `CustomOp1` — the alpha-beta recursion in log space, in `f64`, blank and
//! label states in separate rows so each frame is a few branch-free, vectorized loops (AVX2+FMA
//! when the CPU has them), with polynomial `exp`/`ln` accurate to a few ulp. See the loss's docs
//! for the math. The recursion is in [`ctc_recursion`](super::ctc_recursion), its `exp`/`ln` in
//! [`log_space`](super::log_space).

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::ctc_recursion::{sample_nll, with_scratch};
use crate::{Error, Result};

const OP: &str = "ctc_loss";

pub(crate) fn shape_err(msg: String) -> Error {
    Error::Shape { op: OP, msg }
}

pub(crate) fn to_u32(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| shape_err(format!("{what} {v} does not fit in u32")))
}

/// Reads an integer tensor of any rank into `i64`s (row-major); a float dtype is an
/// [`Error::Shape`] of `op` naming the argument `name`.
pub(crate) fn int_values(t: &Tensor, op: &'static str, name: &str) -> Result<Vec<i64>> {
    let flat = t.flatten_all()?;
    let v = match t.dtype() {
        DType::U8 => flat.to_vec1::<u8>()?.into_iter().map(i64::from).collect(),
        DType::U32 => flat.to_vec1::<u32>()?.into_iter().map(i64::from).collect(),
        DType::I16 => flat.to_vec1::<i16>()?.into_iter().map(i64::from).collect(),
        DType::I32 => flat.to_vec1::<i32>()?.into_iter().map(i64::from).collect(),
        DType::I64 => flat.to_vec1::<i64>()?,
        other => {
            return Err(Error::Shape {
                op,
                msg: format!(
                    "`{name}` must be an integer tensor (u8, u32, i16, i32, i64), got dtype {other:?}"
                ),
            });
        }
    };
    Ok(v)
}

/// Validated targets and lengths of one batch, in the layout the kernel reads.
#[derive(Debug, Clone)]
pub(crate) struct Alignment {
    /// `(B, S)` row-major label ids; only the first `target_lengths[b]` of row `b` are read.
    pub(crate) targets: Vec<u32>,
    /// `S`, the padded target axis.
    pub(crate) max_target: usize,
    pub(crate) input_lengths: Vec<usize>,
    pub(crate) target_lengths: Vec<usize>,
    pub(crate) blank: u32,
    pub(crate) zero_infinity: bool,
}

impl Alignment {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        targets: &Tensor,
        input_lengths: &Tensor,
        target_lengths: &Tensor,
        batch: usize,
        frames: usize,
        classes: usize,
        blank: u32,
        zero_infinity: bool,
    ) -> Result<Self> {
        let max_target = match targets.dims() {
            &[b, s] if b == batch => s,
            dims => {
                return Err(shape_err(format!(
                    "`targets` must be (B, S) with B = {batch}, got shape {dims:?}"
                )));
            }
        };
        let lengths = |t: &Tensor, name: &str, bound: usize, axis: &str| -> Result<Vec<usize>> {
            if t.dims() != [batch] {
                return Err(shape_err(format!(
                    "`{name}` must be (B) with B = {batch}, got shape {:?}",
                    t.dims()
                )));
            }
            int_values(t, OP, name)?
                .into_iter()
                .enumerate()
                .map(|(b, v)| match usize::try_from(v) {
                    Ok(u) if u <= bound => Ok(u),
                    _ => Err(shape_err(format!(
                        "`{name}` of sample {b} is {v}, outside 0..={bound} ({axis})"
                    ))),
                })
                .collect()
        };
        let input_lengths = lengths(input_lengths, "input_lengths", frames, "T of `log_probs`")?;
        let target_lengths = lengths(
            target_lengths,
            "target_lengths",
            max_target,
            "S of `targets`",
        )?;

        let raw = int_values(targets, OP, "targets")?;
        let mut ids = vec![blank; raw.len()];
        for (b, &len) in target_lengths.iter().enumerate() {
            let row = b * max_target;
            for i in 0..len {
                let v = raw.get(row + i).copied().unwrap_or(-1);
                let id = match u32::try_from(v) {
                    Ok(id) if (id as usize) < classes && id != blank => id,
                    _ => {
                        return Err(shape_err(format!(
                            "`targets` of sample {b} at position {i} is {v}: labels must lie in \
                             0..{classes} and differ from the blank {blank}"
                        )));
                    }
                };
                if let Some(slot) = ids.get_mut(row + i) {
                    *slot = id;
                }
            }
        }
        Ok(Self {
            targets: ids,
            max_target,
            input_lengths,
            target_lengths,
            blank,
            zero_infinity,
        })
    }

    fn target(&self, b: usize) -> &[u32] {
        let start = b * self.max_target;
        let len = self.target_lengths.get(b).copied().unwrap_or(0);
        self.targets.get(start..start + len).unwrap_or(&[])
    }
}

/// The candle op: per-sample negative log-likelihood `(B)` from `log_probs (B, T, D)`.
pub(crate) struct CtcOp {
    pub(crate) alignment: Alignment,
    /// Compute the gradient during the forward pass (the input tracks gradients).
    pub(crate) want_grad: bool,
    /// `d nll_b / d log_probs`, `(B, T, D)`, kept for `bwd`.
    pub(crate) grad: Mutex<Option<Tensor>>,
}

impl CtcOp {
    /// Runs the kernel over a contiguous `(B, T, D)` slice; returns the losses `(B)` and, when
    /// `with_grad`, the gradient `(B, T, D)`.
    fn run<F: WithDType>(
        &self,
        data: &[F],
        shape: &Shape,
        with_grad: bool,
    ) -> candle_core::Result<(Vec<F>, Option<Vec<F>>)> {
        let (batch, frames, classes) = shape.dims3()?;
        let a = &self.alignment;
        if a.input_lengths.len() != batch || data.len() != batch * frames * classes {
            candle_core::bail!(
                "ctc_loss: log_probs shape {shape:?} does not match the validated batch"
            );
        }
        let block = frames * classes;
        let mut nll = vec![F::from_f64(0.0); batch];
        let run_one = |b: usize, grad: Option<&mut [F]>| -> F {
            let lp = data.get(b * block..(b + 1) * block).unwrap_or(&[]);
            let t_len = a.input_lengths.get(b).copied().unwrap_or(0);
            let v = with_scratch(|scratch| {
                sample_nll(
                    lp,
                    classes,
                    t_len,
                    a.target(b),
                    a.blank,
                    a.zero_infinity,
                    grad,
                    scratch,
                )
            });
            F::from_f64(v)
        };
        if with_grad && block > 0 {
            let mut grad = vec![F::from_f64(0.0); batch * block];
            nll.par_iter_mut()
                .zip(grad.par_chunks_mut(block))
                .enumerate()
                .for_each(|(b, (n, g))| *n = run_one(b, Some(g)));
            Ok((nll, Some(grad)))
        } else {
            nll.par_iter_mut()
                .enumerate()
                .for_each(|(b, n)| *n = run_one(b, None));
            let grad = with_grad.then(|| vec![F::from_f64(0.0); batch * block]);
            Ok((nll, grad))
        }
    }

    fn fwd_typed<F: WithDType>(
        &self,
        data: &[F],
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("ctc_loss: log_probs must be contiguous");
        };
        let data = data.get(start..end).unwrap_or(&[]);
        let shape = layout.shape();
        let (nll, grad) = self.run(data, shape, self.want_grad)?;
        if let Some(grad) = grad {
            let g = Tensor::from_vec(grad, shape.clone(), &Device::Cpu)?;
            if let Ok(mut slot) = self.grad.lock() {
                *slot = Some(g);
            }
        }
        let batch = nll.len();
        Ok((F::to_cpu_storage_owned(nll), Shape::from(batch)))
    }

    /// The per-sample gradient `(B, T, D)`, from the forward pass or recomputed from `arg`.
    fn sample_grad(&self, arg: &Tensor) -> candle_core::Result<Tensor> {
        if let Ok(slot) = self.grad.lock()
            && let Some(g) = slot.as_ref()
        {
            return Ok(g.clone());
        }
        let arg = arg.to_device(&Device::Cpu)?.contiguous()?;
        let shape = arg.shape().clone();
        let grad = match arg.dtype() {
            DType::F32 => {
                let v = arg.flatten_all()?.to_vec1::<f32>()?;
                let (_, g) = self.run(&v, &shape, true)?;
                Tensor::from_vec(g.unwrap_or_default(), shape, &Device::Cpu)?
            }
            DType::F64 => {
                let v = arg.flatten_all()?.to_vec1::<f64>()?;
                let (_, g) = self.run(&v, &shape, true)?;
                Tensor::from_vec(g.unwrap_or_default(), shape, &Device::Cpu)?
            }
            other => candle_core::bail!("ctc_loss: unsupported dtype {other:?}"),
        };
        Ok(grad)
    }
}

impl CustomOp1 for CtcOp {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        match storage {
            CpuStorage::F32(v) => self.fwd_typed(v, layout),
            CpuStorage::F64(v) => self.fwd_typed(v, layout),
            other => candle_core::bail!("ctc_loss: unsupported dtype {:?}", other.dtype()),
        }
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = self.sample_grad(arg)?;
        let batch = grad_res.elem_count();
        let scale = grad_res
            .to_device(&Device::Cpu)?
            .to_dtype(grad.dtype())?
            .reshape((batch, 1, 1))?;
        Ok(Some(grad.broadcast_mul(&scale)?.to_device(arg.device())?))
    }
}
