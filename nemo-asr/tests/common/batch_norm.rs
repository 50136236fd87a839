//! Helpers of the batch-normalization test files: a fresh layer, its variables, and the output
//! and gradients of `L = Σ up·bn(x)` through the kernel and through `candle_nn`.

use candle_core::{Device, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use nemo_asr::kernels::{BatchNorm1d, batch_norm_train};

use super::{TestResult, flat};

/// Asserts `|a − b| ≤ tol·max(1, max|b|)` element-wise: an error relative to the scale of `b`.
pub fn assert_close_scaled(what: &str, a: &[f64], b: &[f64], tol: f64) {
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}: element {i}: {x} vs {y} (tolerance {tol} × {scale})"
        );
    }
}

/// A fresh layer of `c` channels (weight 1, bias 0, stats 0/1) over a new `VarMap`.
pub fn layer(c: usize, dtype: candle_core::DType) -> TestResult<(VarMap, BatchNorm1d)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
    let bn = BatchNorm1d::new(c, 1e-3, 0.1, vb)?;
    Ok((varmap, bn))
}

/// The variable named `name` in `varmap`.
pub fn var(varmap: &VarMap, name: &str) -> TestResult<Var> {
    let data = varmap.data().lock().map_err(|e| e.to_string())?;
    Ok(data.get(name).ok_or(format!("no variable {name}"))?.clone())
}

/// Output, `∂L/∂x`, `∂L/∂γ`, `∂L/∂β` of `L = Σ up·bn(x)` through `batch_norm_train`.
pub struct Grads {
    pub y: Vec<f64>,
    pub dx: Vec<f64>,
    pub dgamma: Vec<f64>,
    pub dbeta: Vec<f64>,
}

pub fn ours(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    up: &Tensor,
    relu: bool,
) -> TestResult<Grads> {
    let (x, gamma, beta) = (
        Var::from_tensor(x)?,
        Var::from_tensor(gamma)?,
        Var::from_tensor(beta)?,
    );
    let (y, _) = batch_norm_train(
        x.as_tensor(),
        gamma.as_tensor(),
        beta.as_tensor(),
        1e-3,
        relu,
    )?;
    let grads = (&y * up)?.sum_all()?.backward()?;
    let grad = |v: &Var| -> TestResult<Vec<f64>> {
        flat(grads.get(v.as_tensor()).ok_or("missing gradient")?)
    };
    Ok(Grads {
        y: flat(&y)?,
        dx: grad(&x)?,
        dgamma: grad(&gamma)?,
        dbeta: grad(&beta)?,
    })
}

/// The same through `candle_nn::BatchNorm` (training mode) and candle's ReLU, with autograd.
pub fn candle_reference(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    up: &Tensor,
    relu: bool,
) -> TestResult<Grads> {
    let c = gamma.elem_count();
    let (x, gamma, beta) = (
        Var::from_tensor(x)?,
        Var::from_tensor(gamma)?,
        Var::from_tensor(beta)?,
    );
    let zeros = Tensor::zeros(c, x.dtype(), &Device::Cpu)?;
    let ones = Tensor::ones(c, x.dtype(), &Device::Cpu)?;
    let bn = candle_nn::BatchNorm::new(
        c,
        zeros,
        ones,
        gamma.as_tensor().clone(),
        beta.as_tensor().clone(),
        1e-3,
    )?;
    let y = bn.forward_t(x.as_tensor(), true)?;
    let y = if relu { y.relu()? } else { y };
    let grads = (&y * up)?.sum_all()?.backward()?;
    let grad = |v: &Var| -> TestResult<Vec<f64>> {
        flat(grads.get(v.as_tensor()).ok_or("missing gradient")?)
    };
    Ok(Grads {
        y: flat(&y)?,
        dx: grad(&x)?,
        dgamma: grad(&gamma)?,
        dbeta: grad(&beta)?,
    })
}

pub fn assert_grads_close(what: &str, a: &Grads, b: &Grads, tol: f64) {
    assert_close_scaled(&format!("{what} y"), &a.y, &b.y, tol);
    assert_close_scaled(&format!("{what} dx"), &a.dx, &b.dx, tol);
    assert_close_scaled(&format!("{what} dgamma"), &a.dgamma, &b.dgamma, tol);
    assert_close_scaled(&format!("{what} dbeta"), &a.dbeta, &b.dbeta, tol);
}
