//! Tests of the fused `nemo_core::nn::softmax` with and without an additive mask.
//!
//! References: central finite differences in `f64` for the gradients of `x` and of a learned
//! (variable) mask broadcast over heads and queries (ranks 2, 3 and 4, a transposed
//! non-contiguous input, a strided mask); candle's composed differentiable
//! `candle_nn::ops::softmax` with autograd at attention shapes with NeMo's −10000 mask; proptest
//! over random shapes and broadcast masks; the `f32` kernel for `f16` and `bf16`.

use candle_core::{D, DType, Device, Tensor, Var};
use nemo_core::nn::softmax;
use proptest::prelude::*;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// An op under test on a list of input tensors.
type Op<'a> = &'a dyn Fn(&[Tensor]) -> TestResult<Tensor>;

/// Deterministic pseudo-random values in `[-1, 1)` (a 64-bit LCG).
fn values(n: usize, seed: u64) -> Vec<f64> {
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

fn tensor(shape: &[usize], seed: u64, scale: f64, dtype: DType) -> TestResult<Tensor> {
    let n = shape.iter().product();
    let v: Vec<f64> = values(n, seed).iter().map(|x| x * scale).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)?)
}

fn flat(t: &Tensor) -> TestResult<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

/// Asserts `|a − b| ≤ tol·max(1, max|b|)` element-wise.
fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}: element {i}: {x} vs {y} (tolerance {tol} × {scale})"
        );
    }
}

fn loss(f: Op, inputs: &[Tensor], up: &Tensor) -> TestResult<Tensor> {
    Ok((f(inputs)? * up)?.sum_all()?)
}

/// `∂L/∂input` for every input of `L = Σ up ⊙ f(inputs)`, by candle's autograd.
fn autograd(f: Op, inputs: &[Tensor], up: &Tensor) -> TestResult<Vec<Vec<f64>>> {
    let vars: Vec<Var> = inputs
        .iter()
        .map(Var::from_tensor)
        .collect::<Result<_, _>>()?;
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let grads = loss(f, &tensors, up)?.backward()?;
    vars.iter()
        .map(|v| flat(grads.get(v.as_tensor()).ok_or("an input got no gradient")?))
        .collect()
}

/// The same by central differences with step `h`.
fn finite_differences(f: Op, inputs: &[Tensor], up: &Tensor, h: f64) -> TestResult<Vec<Vec<f64>>> {
    let mut out = Vec::new();
    for k in 0..inputs.len() {
        let base = flat(&inputs[k])?;
        let mut grad = Vec::with_capacity(base.len());
        for i in 0..base.len() {
            let at = |delta: f64| -> TestResult<f64> {
                let mut v = base.clone();
                v[i] += delta;
                let mut moved = inputs.to_vec();
                moved[k] = Tensor::from_vec(v, inputs[k].shape(), &Device::Cpu)?;
                Ok(loss(f, &moved, up)?.to_scalar::<f64>()?)
            };
            grad.push((at(h)? - at(-h)?) / (2.0 * h));
        }
        out.push(grad);
    }
    Ok(out)
}

fn check_gradients(what: &str, f: Op, inputs: &[Tensor], out_shape: &[usize]) -> TestResult {
    let up = tensor(out_shape, 99, 1.0, DType::F64)?;
    let ours = autograd(f, inputs, &up)?;
    let numeric = finite_differences(f, inputs, &up, 1e-6)?;
    for (k, (a, n)) in ours.iter().zip(&numeric).enumerate() {
        assert_close(&format!("{what}, input {k}"), a, n, 1e-7);
    }
    Ok(())
}

#[test]
fn gradients_match_finite_differences_in_f64() -> TestResult {
    let f64_ = DType::F64;
    let plain = |t: &[Tensor]| -> TestResult<Tensor> { Ok(softmax(&t[0], None)?) };
    let masked = |t: &[Tensor]| -> TestResult<Tensor> { Ok(softmax(&t[0], Some(&t[1]))?) };
    for (i, shape) in [vec![3, 5], vec![2, 3, 6], vec![2, 2, 3, 9]]
        .iter()
        .enumerate()
    {
        let seed = 10 * i as u64;
        let x = tensor(shape, seed, 3.0, f64_)?;
        check_gradients(
            &format!("rank {}", shape.len()),
            &plain,
            std::slice::from_ref(&x),
            shape,
        )?;
        // A mask broadcast over every axis but the first and the last, itself differentiated.
        let mut mshape = vec![1; shape.len()];
        mshape[0] = shape[0];
        mshape[shape.len() - 1] = shape[shape.len() - 1];
        let mask = tensor(&mshape, seed + 1, 2.0, f64_)?;
        check_gradients(
            &format!("masked rank {}", shape.len()),
            &masked,
            &[x, mask],
            shape,
        )?;
    }
    // A transposed (non-contiguous) input, and a mask read through strides (its last axis is
    // not contiguous), of lower rank than the input.
    let inputs = [
        tensor(&[7, 2, 3], 40, 3.0, f64_)?,
        tensor(&[7, 3], 41, 2.0, f64_)?,
    ];
    let strided = |t: &[Tensor]| -> TestResult<Tensor> {
        let x = t[0].permute((1, 2, 0))?; // (2, 3, 7)
        let m = t[1].t()?; // (3, 7) with strides (1, 3)
        assert!(!x.is_contiguous() && !m.is_contiguous());
        Ok(softmax(&x, Some(&m))?)
    };
    check_gradients("strided", &strided, &inputs, &[2, 3, 7])?;
    Ok(())
}

#[test]
fn attention_shapes_match_candles_composed_ops_in_f32() -> TestResult {
    let dev = Device::Cpu;
    let (b, h, t) = (3, 4, 37);
    let scores = tensor(&[b, h, t, t], 1, 4.0, DType::F32)?;
    // Key padding (row i keeps t − 5i keys) plus a causal mask, as a decoder's self-attention.
    let mut m = vec![0f32; b * t * t];
    for i in 0..b {
        for q in 0..t {
            for k in 0..t {
                if k >= t - 5 * i || k > q {
                    m[(i * t + q) * t + k] = -10000.0;
                }
            }
        }
    }
    let mask = Tensor::from_vec(m, (b, 1, t, t), &dev)?;
    let ours = |x: &[Tensor]| -> TestResult<Tensor> { Ok(softmax(&x[0], Some(&mask))?) };
    let composed = |x: &[Tensor]| -> TestResult<Tensor> {
        Ok(candle_nn::ops::softmax(
            &x[0].broadcast_add(&mask)?,
            D::Minus1,
        )?)
    };
    let up = tensor(&[b, h, t, t], 2, 1.0, DType::F32)?;
    let inputs = [scores];
    assert_close(
        "forward",
        &flat(&ours(&inputs)?)?,
        &flat(&composed(&inputs)?)?,
        1e-6,
    );
    let (a, r) = (
        autograd(&ours, &inputs, &up)?,
        autograd(&composed, &inputs, &up)?,
    );
    assert_close("gradient", &a[0], &r[0], 1e-6);
    // Masked entries are exactly 0, as candle's exp(−10000) is.
    let y = flat(&ours(&inputs)?)?;
    assert_eq!(y[t - 1], 0.0);
    Ok(())
}

#[test]
fn half_precision_computes_in_f32() -> TestResult {
    let x32 = tensor(&[3, 4, 50], 5, 4.0, DType::F32)?;
    let m32 = tensor(&[3, 1, 50], 6, 2.0, DType::F32)?;
    for (dtype, tol) in [(DType::F16, 2e-3), (DType::BF16, 1e-2)] {
        let x = x32.to_dtype(dtype)?;
        let expected = flat(&softmax(
            &x.to_dtype(DType::F32)?,
            Some(&m32.to_dtype(dtype)?.to_dtype(DType::F32)?),
        )?)?;
        let xv = Var::from_tensor(&x)?;
        // An f32 mask is cast to the input's dtype.
        let y = softmax(xv.as_tensor(), Some(&m32))?;
        assert_eq!(y.dtype(), dtype);
        assert_close(&format!("{dtype:?}"), &flat(&y)?, &expected, tol);
        let up = tensor(&[3, 4, 50], 7, 1.0, dtype)?;
        let grads = (y * up)?.sum_all()?.backward()?;
        let g = grads.get(xv.as_tensor()).ok_or("no gradient")?;
        assert_eq!(g.dtype(), dtype);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random shapes of rank 1 to 4, random data and a random broadcast mask (each axis of the
    /// input's or 1, possibly of lower rank): the forward equals candle's composed ops in `f64`
    /// and `f32`, and so do the `f64` gradients of input and mask.
    #[test]
    fn random_shapes_match_the_composed_reference(
        dims in prop::collection::vec(1usize..7, 1..=4),
        last in 1usize..40,
        keep in prop::collection::vec(any::<bool>(), 4),
        drop_leading in 0usize..4,
        seed in 0u64..10_000,
        scale in 0.01f64..30.0,
    ) {
        let mut shape = dims;
        if let Some(l) = shape.last_mut() {
            *l = last;
        }
        let mut mshape: Vec<usize> = shape
            .iter()
            .zip(&keep)
            .map(|(&d, &k)| if k { d } else { 1 })
            .collect();
        let cut = drop_leading.min(mshape.len() - 1);
        mshape.drain(..cut);
        let check = || -> TestResult {
            let x = tensor(&shape, seed, scale, DType::F64)?;
            let m = tensor(&mshape, seed + 1, scale, DType::F64)?;
            let up = tensor(&shape, seed + 2, 1.0, DType::F64)?;
            let ours = |t: &[Tensor]| -> TestResult<Tensor> { Ok(softmax(&t[0], Some(&t[1]))?) };
            let composed = |t: &[Tensor]| -> TestResult<Tensor> {
                Ok(candle_nn::ops::softmax(&t[0].broadcast_add(&t[1])?, D::Minus1)?)
            };
            let inputs = [x, m];
            let (a, r) = (autograd(&ours, &inputs, &up)?, autograd(&composed, &inputs, &up)?);
            assert_close("f64 input gradient", &a[0], &r[0], 1e-12);
            assert_close("f64 mask gradient", &a[1], &r[1], 1e-12);
            let reference = flat(&composed(&inputs)?)?;
            assert_close("f64 forward", &flat(&ours(&inputs)?)?, &reference, 1e-14);
            // The f32 kernel against the f64 reference of the same rounded inputs.
            let inputs32: Vec<Tensor> = inputs.iter().map(|t| t.to_dtype(DType::F32)).collect::<Result<_, _>>()?;
            let rounded: Vec<Tensor> = inputs32.iter().map(|t| t.to_dtype(DType::F64)).collect::<Result<_, _>>()?;
            assert_close("f32 forward", &flat(&ours(&inputs32)?)?, &flat(&composed(&rounded)?)?, 1e-6);
            let plain = flat(&softmax(&inputs[0], None)?)?;
            let plain_ref = flat(&candle_nn::ops::softmax(&inputs[0], D::Minus1)?)?;
            assert_close("f64 forward without mask", &plain, &plain_ref, 1e-14);
            Ok(())
        };
        prop_assert!(check().is_ok(), "{:?} / {:?}: {:?}", shape, mshape, check().err());
    }
}
