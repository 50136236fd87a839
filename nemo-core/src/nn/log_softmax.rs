//! `log_softmax` over the last axis, differentiable.
//!
//! candle's fused softmax records no backward op; the composed form (max, subtract, exp, sum,
//! log, subtract) does, but over an NMT output of `(B·T, V)` = 64 × 45 × 8192 each of its six
//! forward and eight backward ops allocates, page-faults and streams a 94 MB tensor. On a
//! contiguous CPU tensor this is one kernel each way instead: per row `y = (x − max) − ln Σ e^(x −
//! max)` and `dx = dy − e^y · Σ dy`, rows split over rayon tasks as the fused softmax does.
//! Other devices and strided inputs take the composed form.

use std::mem::MaybeUninit;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, D, Layout, Shape, Tensor, bail};

use super::cpu_kernel::{
    Acc, Elem, contiguous_slice, dispatch_elem, has_avx2_fma, lane_max2, lane_sum, par_rows2,
    par_uninit, rows_per_task,
};
use crate::Result;

const OP: &str = "log_softmax";

/// `log_softmax(x)` over the last axis, with a backward.
///
/// # Shapes
/// * `x`: `(.., N)`, a float tensor; returns its shape and dtype.
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.is_contiguous() && x.rank() > 0 && x.elem_count() > 0 {
        return Ok(x.apply_op1(LogSoftmax)?);
    }
    log_softmax_composed(x)
}

/// The composed form: candle's differentiable ops, for every device and layout.
fn log_softmax_composed(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&lse)?)
}

struct LogSoftmax;
struct LogSoftmaxGrad;

/// `y` of the rows of one task. Writes every element of `y` when it returns `Ok`.
#[inline(always)]
fn forward_task_body<T: Elem, const FMA: bool>(
    y: &mut [MaybeUninit<T>],
    x: &[T],
    n: usize,
) -> candle_core::Result<()> {
    if n == 0 || !y.len().is_multiple_of(n) || x.len() != y.len() {
        bail!(
            "{OP}: a task of {} outputs is not whole rows of {n}",
            y.len()
        );
    }
    for (yr, xr) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
        let max = lane_max2(xr, xr, |a: T, _: T| a.to_acc());
        let sum = lane_sum(xr, |a: T| (a.to_acc() - max).exp::<FMA>());
        // `(x − max) − ln Σ`, not `x − (max + ln Σ)`: the shift is exact, the sum of a large
        // offset and a small log would round to the offset's ulp.
        let log_sum = T::A::of(sum.wide().ln());
        for (o, &v) in yr.iter_mut().zip(xr) {
            o.write(T::from_acc((v.to_acc() - max) - log_sum));
        }
    }
    Ok(())
}

/// `dx = g − e^y · Σ g` of the rows of one task. Writes every element of `dx` when it returns
/// `Ok`.
#[inline(always)]
fn backward_task_body<T: Elem, const FMA: bool>(
    dx: &mut [MaybeUninit<T>],
    g: &[T],
    y: &[T],
    n: usize,
) -> candle_core::Result<()> {
    if n == 0 || !dx.len().is_multiple_of(n) || g.len() != dx.len() || y.len() != dx.len() {
        bail!(
            "{OP} backward: a task of {} outputs is not whole rows of {n} alike",
            dx.len()
        );
    }
    for ((dxr, gr), yr) in dx
        .chunks_exact_mut(n)
        .zip(g.chunks_exact(n))
        .zip(y.chunks_exact(n))
    {
        let sum = lane_sum(gr, |a: T| a.to_acc());
        for ((o, &gv), &yv) in dxr.iter_mut().zip(gr).zip(yr) {
            o.write(T::from_acc(gv.to_acc() - yv.to_acc().exp::<FMA>() * sum));
        }
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_task_avx2<T: Elem>(
    y: &mut [MaybeUninit<T>],
    x: &[T],
    n: usize,
) -> candle_core::Result<()> {
    forward_task_body::<T, true>(y, x, n)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_task_avx2<T: Elem>(
    dx: &mut [MaybeUninit<T>],
    g: &[T],
    y: &[T],
    n: usize,
) -> candle_core::Result<()> {
    backward_task_body::<T, true>(dx, g, y, n)
}

fn forward_storage<T: Elem>(s: &CpuStorage, l: &Layout) -> candle_core::Result<CpuStorage> {
    let x = contiguous_slice::<T>(OP, "x", s, l, l.shape())?;
    let Some(&n) = l.dims().last() else {
        bail!("{OP}: x has no axes");
    };
    let task = rows_per_task(n) * n;
    let avx = has_avx2_fma();
    let fill = |i: usize, y: &mut [MaybeUninit<T>]| -> candle_core::Result<()> {
        let Some(x) = x.get(i * task..i * task + y.len()) else {
            bail!("{OP}: chunk {i} is outside x");
        };
        #[cfg(target_arch = "x86_64")]
        if avx {
            // SAFETY: `avx` comes from `has_avx2_fma()`: this CPU runs AVX2 and FMA.
            return unsafe { forward_task_avx2(y, x, n) };
        }
        let _ = avx;
        forward_task_body::<T, false>(y, x, n)
    };
    // SAFETY: the task bodies return `Ok` only after writing every element of their chunk.
    let (y, _) = unsafe { par_uninit(x.len(), task, fill) }?;
    Ok(T::to_cpu_storage_owned(y))
}

fn backward_storage<T: Elem>(
    dy: (&CpuStorage, &Layout),
    y: (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let avx = has_avx2_fma();
    let task = |dx: &mut [MaybeUninit<T>], g: &[T], y: &[T], n: usize| {
        #[cfg(target_arch = "x86_64")]
        if avx {
            // SAFETY: `avx` comes from `has_avx2_fma()`: this CPU runs AVX2 and FMA.
            return unsafe { backward_task_avx2(dx, g, y, n) };
        }
        let _ = avx;
        backward_task_body::<T, false>(dx, g, y, n)
    };
    // SAFETY: the task bodies return `Ok` only after writing every element of their chunk.
    let dx = unsafe { par_rows2("log_softmax backward", (["dy", "y"], dy, y), task) }?;
    Ok(T::to_cpu_storage_owned(dx))
}

impl CustomOp1 for LogSoftmax {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_elem!(OP, s.dtype(), forward_storage(s, l))?;
        Ok((storage, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // Only CPU tensors reach the kernel, so its gradient is a CPU kernel too.
        Ok(Some(dy.contiguous()?.apply_op2_no_bwd(y, &LogSoftmaxGrad)?))
    }
}

impl CustomOp2 for LogSoftmaxGrad {
    fn name(&self) -> &'static str {
        "log_softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_elem!(OP, s1.dtype(), backward_storage((s1, l1), (s2, l2)))?;
        Ok((storage, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;
    use crate::testing::{
        TestResult, assert_close_scaled, check_gradients, input_gradients, to_f64_vec,
        uniform_tensor,
    };

    #[test]
    fn rows_normalise_and_gradients_flow() -> Result<()> {
        let x = Var::new(&[[1f32, 2.0, 3.0], [1000.0, 1000.0, 1000.0]], &Device::Cpu)?;
        let y = log_softmax(x.as_tensor())?;
        let sums: Vec<f32> = y.exp()?.sum(1)?.to_vec1()?;
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6), "{sums:?}");
        let g = y.narrow(1, 0, 1)?.sum_all()?.backward()?;
        assert!(g.get(x.as_tensor()).is_some());
        Ok(())
    }

    #[test]
    fn the_kernel_matches_finite_differences_in_f64() -> TestResult {
        for (seed, shape) in [(1, vec![3, 7]), (2, vec![2, 3, 40]), (3, vec![1, 1])] {
            let x = uniform_tensor(&shape, seed, DType::F64, &Device::Cpu)?.affine(4.0, 1.0)?;
            let op = |t: &[Tensor]| -> TestResult<Tensor> { Ok(log_softmax(&t[0])?) };
            check_gradients(&format!("{shape:?}"), &op, &[x], &shape, 1e-7)?;
        }
        Ok(())
    }

    #[test]
    fn the_kernel_matches_the_composed_form_in_f32() -> TestResult {
        // A long row (the NMT vocabulary) with a large offset, a row of one, a strided input
        // (which takes the composed form itself), and half precision against f32.
        let x = uniform_tensor(&[6, 8192], 4, DType::F32, &Device::Cpu)?.affine(8.0, 30.0)?;
        let up = uniform_tensor(&[6, 8192], 5, DType::F32, &Device::Cpu)?;
        let ours = |t: &[Tensor]| -> TestResult<Tensor> { Ok(log_softmax(&t[0])?) };
        let composed = |t: &[Tensor]| -> TestResult<Tensor> { Ok(log_softmax_composed(&t[0])?) };
        let inputs = [x.clone()];
        assert_close_scaled(
            "y",
            &to_f64_vec(&ours(&inputs)?)?,
            &to_f64_vec(&composed(&inputs)?)?,
            2e-6,
        );
        assert_close_scaled(
            "dx",
            &input_gradients(&ours, &inputs, &up)?[0],
            &input_gradients(&composed, &inputs, &up)?[0],
            2e-6,
        );
        let strided = x.t()?;
        assert!(!strided.is_contiguous());
        assert_close_scaled(
            "strided",
            &to_f64_vec(&log_softmax(&strided)?)?,
            &to_f64_vec(&log_softmax_composed(&strided)?)?,
            0.0,
        );
        let half = x.to_dtype(DType::BF16)?;
        let y = log_softmax(&half)?;
        assert_eq!(y.dtype(), DType::BF16);
        let reference = log_softmax(&half.to_dtype(DType::F32)?)?;
        assert_close_scaled("bf16", &to_f64_vec(&y)?, &to_f64_vec(&reference)?, 1e-2);
        Ok(())
    }
}
