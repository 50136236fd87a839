//! Helpers the test files of nemo-asr share: deterministic values, tensors from them, closeness
//! checks and finite-difference references (the kernel files); [`attention`] and [`batch_norm`]
//! for those files.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor, Var};
use nemo_asr::Error;

pub mod attention;
pub mod batch_norm;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Deterministic pseudo-random values in `[-1, 1)` (a 64-bit LCG; no RNG state shared between tests).
pub fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

pub fn tensor(shape: &[usize], seed: u64, dtype: DType) -> TestResult<Tensor> {
    let n = shape.iter().product();
    Ok(Tensor::from_vec(values(n, seed), shape, &Device::Cpu)?.to_dtype(dtype)?)
}

pub fn flat(t: &Tensor) -> TestResult<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

/// Asserts `|a − b| ≤ tol·(1 + |b|)` element-wise.
pub fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}: element {i}: {x} vs {y} (tolerance {tol})"
        );
    }
}

/// Central differences of `f` at every element of `at`.
pub fn finite_differences(
    at: &[f64],
    mut f: impl FnMut(&[f64]) -> TestResult<f64>,
) -> TestResult<Vec<f64>> {
    const EPS: f64 = 1e-6;
    let mut probe = at.to_vec();
    let mut out = Vec::with_capacity(at.len());
    for i in 0..at.len() {
        let orig = probe[i];
        probe[i] = orig + EPS;
        let up = f(&probe)?;
        probe[i] = orig - EPS;
        let down = f(&probe)?;
        probe[i] = orig;
        out.push((up - down) / (2.0 * EPS));
    }
    Ok(out)
}

/// `s(x, w) = <∂L/∂x, h₁> + <∂L/∂w, h₂>` for `L = Σ op(x, w) · g`, and its gradient through the
/// backward ops (`create_graph` style: candle keeps the graph of the gradients).
pub fn second_order(
    op: &dyn Fn(&Tensor, &Tensor) -> TestResult<Tensor>,
    x: &Var,
    w: &Var,
    g: &Tensor,
    h1: &Tensor,
    h2: &Tensor,
) -> TestResult<(f64, Vec<f64>, Vec<f64>)> {
    let grads = op(x, w)?.mul(g)?.sum_all()?.backward()?;
    let dx = grads.get(x).ok_or("no gradient for x")?;
    let dw = grads.get(w).ok_or("no gradient for w")?;
    let s = (dx.mul(h1)?.sum_all()? + dw.mul(h2)?.sum_all()?)?;
    let value = s.to_scalar::<f64>()?;
    let grads2 = s.backward()?;
    let zeros_x = x.zeros_like()?;
    let zeros_w = w.zeros_like()?;
    let dsx = grads2.get(x).unwrap_or(&zeros_x);
    let dsw = grads2.get(w).unwrap_or(&zeros_w);
    Ok((value, flat(dsx)?, flat(dsw)?))
}

pub fn is_shape_error<T: std::fmt::Debug>(r: nemo_asr::Result<T>) -> bool {
    matches!(
        r,
        Err(Error::Shape {
            op: "depthwise_conv1d" | "pointwise_conv1d",
            ..
        })
    )
}
