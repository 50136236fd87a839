//! Global L2 gradient-norm clipping, as `torch.nn.utils.clip_grad_norm_` (NeMo 0.x's
//! `grad_norm_clip` optimization parameter).
//!
//! The total norm is the L2 norm of all gradients taken together,
//! `sqrt(sum over tensors of ||g||^2)`; when it exceeds `max_norm`, every gradient is multiplied
//! by `max_norm / (total_norm + 1e-6)`.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

use super::fused::{par_map, sum_squares, with_cpu_f32};
use crate::{Error, Result};

/// Added to the total norm in the clipping coefficient, as PyTorch.
const CLIP_EPS: f64 = 1e-6;

/// The gradients of `vars` that take part: those present in `grads` and not frozen.
fn selected<'a>(
    grads: &'a GradStore,
    vars: &'a [(String, Var)],
    frozen: &'a dyn Fn(&str) -> bool,
) -> impl Iterator<Item = (&'a Var, &'a Tensor)> + 'a {
    vars.iter().filter_map(move |(name, var)| {
        if frozen(name) {
            None
        } else {
            grads.get(var.as_tensor()).map(|g| (var, g))
        }
    })
}

/// The global L2 norm of the gradients of `vars` in `grads`, skipping parameters for which
/// `frozen(name)` is true and those without a gradient; 0 if none has one.
///
/// Squares are summed in f64 for f32 CPU gradients; on other devices per tensor in f32 on the
/// device and across tensors in f64, with a single device-to-host transfer.
///
/// # Errors
/// [`Error::Candle`] if a tensor operation fails.
pub fn grad_norm(
    grads: &GradStore,
    vars: &[(String, Var)],
    frozen: &dyn Fn(&str) -> bool,
) -> Result<f64> {
    let mut host_total = 0f64;
    let mut squares = Vec::new();
    let mut device = None;
    for (_, grad) in selected(grads, vars, frozen) {
        if let Some(sq) = with_cpu_f32(&[grad], |s| {
            Ok(s.iter().map(|g| sum_squares(g)).sum::<f64>())
        })? {
            host_total += sq;
            continue;
        }
        let device = device.get_or_insert_with(|| grad.device().clone());
        let sq = grad
            .detach()
            .to_dtype(DType::F32)?
            .sqr()?
            .sum_all()?
            .to_device(device)?;
        squares.push(sq);
    }
    let device_total = if squares.is_empty() {
        0.0
    } else {
        Tensor::stack(&squares, 0)?
            .to_dtype(DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?
    };
    Ok((host_total + device_total).sqrt())
}

/// Scales the gradients of `vars` in place so that their global L2 norm is at most `max_norm`;
/// returns the total norm before clipping.
///
/// Parameters for which `frozen(name)` is true, and those without a gradient, neither count in
/// the norm nor are scaled. When the total norm is not finite (an overflow in mixed precision,
/// a NaN loss) the gradients are left unchanged and the non-finite norm is returned, so the
/// caller can skip the step; PyTorch would instead fill every gradient with NaN.
///
/// # Errors
/// [`Error::Config`] (key `grad_norm_clip`) if `max_norm` is not finite and positive;
/// [`Error::Candle`] if a tensor operation fails.
pub fn clip_grad_norm(
    grads: &mut GradStore,
    vars: &[(String, Var)],
    max_norm: f64,
    frozen: &dyn Fn(&str) -> bool,
) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::Config {
            key: "grad_norm_clip".to_string(),
            msg: format!("the maximal gradient norm must be finite and > 0, got {max_norm}"),
        });
    }
    let total = grad_norm(grads, vars, frozen)?;
    let coef = max_norm / (total + CLIP_EPS);
    if total.is_finite() && coef < 1.0 {
        let scaled: Vec<(Var, Tensor)> = selected(grads, vars, frozen)
            .map(|(var, grad)| Ok((var.clone(), scale(grad, coef)?)))
            .collect::<Result<_>>()?;
        for (var, grad) in scaled {
            grads.insert(var.as_tensor(), grad);
        }
    }
    Ok(total)
}

/// `grad * coef`, in one parallel pass for f32 CPU data.
fn scale(grad: &Tensor, coef: f64) -> Result<Tensor> {
    let c = coef as f32;
    let fused = with_cpu_f32(&[grad], |s| {
        let [out] = par_map([s.first().copied().unwrap_or_default()], |[g], [o]| {
            for (o, &g) in o.iter_mut().zip(g) {
                *o = g * c;
            }
        })?;
        Ok(Tensor::from_vec(out, grad.shape(), &Device::Cpu)?)
    })?;
    match fused {
        Some(t) => Ok(t),
        None => Ok(grad.affine(coef, 0.0)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::{TestResult, pseudo_random};

    /// f32 CPU gradients take the fused path, f64 ones the tensor-op path used on GPUs.
    #[test]
    fn fused_and_tensor_paths_agree() -> TestResult {
        let sizes = [40_000usize, 7, 1];
        let vars: Vec<(String, Var)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Ok((format!("p{i}"), Var::zeros(n, DType::F32, &Device::Cpu)?)))
            .collect::<candle_core::Result<_>>()?;
        let mut f32_grads = GradStore::default();
        let mut f64_grads = GradStore::default();
        for (i, (_, var)) in vars.iter().enumerate() {
            let g = Tensor::new(pseudo_random(sizes[i], i as u64), &Device::Cpu)?;
            f64_grads.insert(var.as_tensor(), g.to_dtype(DType::F64)?);
            f32_grads.insert(var.as_tensor(), g);
        }
        let none = |_: &str| false;
        let a = clip_grad_norm(&mut f32_grads, &vars, 1.0, &none)?;
        let b = clip_grad_norm(&mut f64_grads, &vars, 1.0, &none)?;
        assert!((a - b).abs() < 1e-6 * a, "norms {a} and {b}");
        for (_, var) in &vars {
            let x = f32_grads.get(var.as_tensor()).ok_or("lost")?;
            let y = f64_grads.get(var.as_tensor()).ok_or("lost")?;
            let diff = (x.to_dtype(DType::F64)? - y)?.abs()?.max_all()?;
            assert!(diff.to_scalar::<f64>()? < 1e-7);
            assert_eq!(y.dtype(), DType::F64);
        }
        Ok(())
    }
}
