//! Gradient checks: candle's autograd against central differences, in f64.

use candle_core::{DType, Device, Tensor, Var};

use super::values::{TestResult, to_f64_vec, uniform_tensor};

/// Asserts `|a − b| ≤ tol · (1 + |b|)` element by element, naming the first element that is not.
pub fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}: element {i}: {x} vs {y} (tolerance {tol})"
        );
    }
}

/// Asserts `|a − b| ≤ tol · max(1, max |b|)` element by element: one tolerance for the whole
/// array, for values whose small elements carry only the large ones' rounding.
pub fn assert_close_scaled(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}: element {i}: {x} vs {y} (tolerance {tol} × {scale})"
        );
    }
}

/// The central differences `(f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h` of a scalar function at every
/// element of `at`.
pub fn finite_differences(
    at: &[f64],
    h: f64,
    mut f: impl FnMut(&[f64]) -> TestResult<f64>,
) -> TestResult<Vec<f64>> {
    let mut probe = at.to_vec();
    let mut out = Vec::with_capacity(at.len());
    for i in 0..at.len() {
        let orig = probe[i];
        probe[i] = orig + h;
        let up = f(&probe)?;
        probe[i] = orig - h;
        let down = f(&probe)?;
        probe[i] = orig;
        out.push((up - down) / (2.0 * h));
    }
    Ok(out)
}

/// Checks the gradients of `op` at `inputs` (f64 CPU tensors): for `L = Σ up ⊙ op(inputs)`
/// with a seeded `up` of `out_shape`, candle's autograd of every input against central
/// differences with step 1e-6, to `tol` ([`assert_close_scaled`]). Panics naming `what`, the
/// input and the element that differs.
pub fn check_gradients(
    what: &str,
    op: &dyn Fn(&[Tensor]) -> TestResult<Tensor>,
    inputs: &[Tensor],
    out_shape: &[usize],
    tol: f64,
) -> TestResult {
    let up = uniform_tensor(out_shape, 99, DType::F64, &Device::Cpu)?;
    let loss = |xs: &[Tensor]| -> TestResult<Tensor> { Ok((op(xs)? * &up)?.sum_all()?) };
    let vars: Vec<Var> = inputs
        .iter()
        .map(Var::from_tensor)
        .collect::<Result<_, _>>()?;
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let grads = loss(&tensors)?.backward()?;
    for (k, var) in vars.iter().enumerate() {
        let ours = to_f64_vec(
            grads
                .get(var.as_tensor())
                .ok_or_else(|| format!("{what}: input {k} got no gradient"))?,
        )?;
        let numeric = finite_differences(&to_f64_vec(&inputs[k])?, 1e-6, |v| {
            let mut moved = inputs.to_vec();
            moved[k] = Tensor::from_vec(v.to_vec(), inputs[k].shape(), &Device::Cpu)?;
            Ok(loss(&moved)?.to_scalar::<f64>()?)
        })?;
        assert_close_scaled(&format!("{what}, input {k}"), &ours, &numeric, tol);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correct_backward_passes_the_check() -> TestResult {
        let x = uniform_tensor(&[3, 4], 1, DType::F64, &Device::Cpu)?;
        let w = uniform_tensor(&[4, 2], 2, DType::F64, &Device::Cpu)?;
        check_gradients(
            "tanh(x w)",
            &|t: &[Tensor]| Ok(t[0].matmul(&t[1])?.tanh()?),
            &[x, w],
            &[3, 2],
            1e-7,
        )
    }

    #[test]
    fn finite_differences_of_a_polynomial() -> TestResult {
        let d = finite_differences(&[1.0, -2.0], 1e-5, |v| Ok(v[0] * v[0] * v[1]))?;
        assert_close("d(x²y)", &d, &[-4.0, 1.0], 1e-8);
        Ok(())
    }
}
