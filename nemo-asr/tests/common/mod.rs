//! Helpers the test files of nemo-asr share, over `nemo_core::testing` (seeded values, closeness
//! checks, finite differences): seeded tensors and second-order references (the kernel files); [`attention`] and [`batch_norm`]
//! for those files.

// Each test binary uses a part of this module.
#![allow(dead_code, unused_imports)]

use candle_core::{DType, Device, Tensor, Var};
use nemo_asr::Error;

pub mod attention;
pub mod batch_norm;

pub use nemo_core::testing::{
    TestResult, assert_close, finite_differences, to_f64_vec, uniform_values,
};

/// A seeded tensor of `shape` in `dtype` on the CPU ([`nemo_core::testing::uniform_tensor`]).
pub fn tensor(shape: &[usize], seed: u64, dtype: DType) -> TestResult<Tensor> {
    Ok(nemo_core::testing::uniform_tensor(
        shape,
        seed,
        dtype,
        &Device::Cpu,
    )?)
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
    Ok((value, to_f64_vec(dsx)?, to_f64_vec(dsw)?))
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
