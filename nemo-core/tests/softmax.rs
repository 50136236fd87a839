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

use nemo_core::testing::{
    TestResult, assert_close_scaled, check_gradients, input_gradients, to_f64_vec, uniform_tensor,
};

/// `scale · u` for seeded `u` uniform in `[-1, 1)`, as a tensor of `shape` and `dtype`.
fn tensor(shape: &[usize], seed: u64, scale: f64, dtype: DType) -> TestResult<Tensor> {
    let u = uniform_tensor(shape, seed, DType::F64, &Device::Cpu)?;
    Ok(u.affine(scale, 0.0)?.to_dtype(dtype)?)
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
            1e-7,
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
            1e-7,
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
    check_gradients("strided", &strided, &inputs, &[2, 3, 7], 1e-7)?;
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
    assert_close_scaled(
        "forward",
        &to_f64_vec(&ours(&inputs)?)?,
        &to_f64_vec(&composed(&inputs)?)?,
        1e-6,
    );
    let (a, r) = (
        input_gradients(&ours, &inputs, &up)?,
        input_gradients(&composed, &inputs, &up)?,
    );
    assert_close_scaled("gradient", &a[0], &r[0], 1e-6);
    // Masked entries are exactly 0, as candle's exp(−10000) is.
    let y = to_f64_vec(&ours(&inputs)?)?;
    assert_eq!(y[t - 1], 0.0);
    Ok(())
}

#[test]
fn half_precision_computes_in_f32() -> TestResult {
    let x32 = tensor(&[3, 4, 50], 5, 4.0, DType::F32)?;
    let m32 = tensor(&[3, 1, 50], 6, 2.0, DType::F32)?;
    for (dtype, tol) in [(DType::F16, 2e-3), (DType::BF16, 1e-2)] {
        let x = x32.to_dtype(dtype)?;
        let expected = to_f64_vec(&softmax(
            &x.to_dtype(DType::F32)?,
            Some(&m32.to_dtype(dtype)?.to_dtype(DType::F32)?),
        )?)?;
        let xv = Var::from_tensor(&x)?;
        // An f32 mask is cast to the input's dtype.
        let y = softmax(xv.as_tensor(), Some(&m32))?;
        assert_eq!(y.dtype(), dtype);
        assert_close_scaled(&format!("{dtype:?}"), &to_f64_vec(&y)?, &expected, tol);
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
            let (a, r) = (input_gradients(&ours, &inputs, &up)?, input_gradients(&composed, &inputs, &up)?);
            assert_close_scaled("f64 input gradient", &a[0], &r[0], 1e-12);
            assert_close_scaled("f64 mask gradient", &a[1], &r[1], 1e-12);
            let reference = to_f64_vec(&composed(&inputs)?)?;
            assert_close_scaled("f64 forward", &to_f64_vec(&ours(&inputs)?)?, &reference, 1e-14);
            // The f32 kernel against the f64 reference of the same rounded inputs.
            let inputs32: Vec<Tensor> = inputs.iter().map(|t| t.to_dtype(DType::F32)).collect::<Result<_, _>>()?;
            let rounded: Vec<Tensor> = inputs32.iter().map(|t| t.to_dtype(DType::F64)).collect::<Result<_, _>>()?;
            // `x + m` is rounded to f32 in the kernel: an error of f32's ε·|x + m| in the exponent.
            let tol = 1e-6 + 2.0 * f64::from(f32::EPSILON) * 2.0 * scale;
            assert_close_scaled("f32 forward", &to_f64_vec(&ours(&inputs32)?)?, &to_f64_vec(&composed(&rounded)?)?, tol);
            let plain = to_f64_vec(&softmax(&inputs[0], None)?)?;
            let plain_ref = to_f64_vec(&candle_nn::ops::softmax(&inputs[0], D::Minus1)?)?;
            assert_close_scaled("f64 forward without mask", &plain, &plain_ref, 1e-14);
            Ok(())
        };
        prop_assert!(check().is_ok(), "{:?} / {:?}: {:?}", shape, mshape, check().err());
    }
}
