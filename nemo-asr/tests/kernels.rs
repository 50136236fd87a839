//! Tests of the other kernels of QuartzNet's blocks in `nemo_asr::kernels` (the depthwise
//! convolution has `depthwise_conv1d.rs`). `pointwise_conv1d` is checked against `candle_nn`'s
//! `Conv1d` with a 1-wide kernel and finite differences; the Jasper block's `time_mask` and
//! `add_relu` against the candle ops they replace (values and gradients, random shapes and
//! lengths) and against finite differences.

mod common;

use candle_core::{DType, Device, IndexOp, Tensor, Var};
use candle_nn::{Conv1d, Conv1dConfig, Module};
use common::{
    TestResult, assert_close, finite_differences, flat, is_shape_error, second_order, tensor,
};
use nemo_asr::Error;
use nemo_asr::kernels::{add_relu, pointwise_conv1d, time_mask};
use proptest::prelude::*;

/// `(y, dx, dw, db)` of a pointwise op for the loss `Σ y · g`.
fn pointwise_with_grads(
    op: impl Fn(&Tensor, &Tensor, &Tensor) -> TestResult<Tensor>,
    x: &Var,
    w: &Var,
    bias: &Var,
    g: &Tensor,
) -> TestResult<[Vec<f64>; 4]> {
    let y = op(x, w, bias)?;
    let grads = y.mul(g)?.sum_all()?.backward()?;
    let get = |v: &Var| {
        grads
            .get(v)
            .ok_or("missing gradient")
            .map_err(Box::from)
            .and_then(flat)
    };
    Ok([flat(&y)?, get(x)?, get(w)?, get(bias)?])
}

/// The 1×1 convolution through candle's batched matmul, whose autograd is the reference.
fn matmul_pointwise(x: &Tensor, w: &Tensor, bias: &Tensor) -> TestResult<Tensor> {
    let (c_out, c_in, _) = w.dims3()?;
    let y = w.reshape((c_out, c_in))?.broadcast_matmul(x)?;
    Ok(y.broadcast_add(&bias.reshape((1, c_out, 1))?)?)
}

#[test]
fn pointwise_matches_candle_conv1d_and_matmul_autograd() -> TestResult {
    // B = 1 runs parallel GEMMs, B ≥ the worker count runs items in parallel.
    // Gradients are compared with the autograd of candle's matmul, not of its `conv1d`: candle
    // 0.11.1's `conv_transpose1d` (col2im path, taken for padding 0) is wrong for batch items
    // after the first, so `conv1d`'s input gradient is too when B > 1 and C_out > 1.
    for (i, &(b, c_in, c_out, t)) in [(1, 5, 4, 17), (3, 6, 7, 33), (8, 16, 12, 70)]
        .iter()
        .enumerate()
    {
        let seed = 50 * i as u64;
        let x = Var::from_tensor(&tensor(&[b, c_in, t], seed, DType::F32)?)?;
        let w = Var::from_tensor(&tensor(&[c_out, c_in, 1], seed + 1, DType::F32)?)?;
        let bias = Var::from_tensor(&tensor(&[c_out], seed + 2, DType::F32)?)?;
        let g = tensor(&[b, c_out, t], seed + 3, DType::F32)?;
        let what = format!("b{b} {c_in}->{c_out} t{t}");

        let ours = pointwise_with_grads(
            |x, w, b| Ok(pointwise_conv1d(x, w, Some(b))?),
            &x,
            &w,
            &bias,
            &g,
        )?;
        let reference = pointwise_with_grads(matmul_pointwise, &x, &w, &bias, &g)?;
        for (name, (a, r)) in ["y", "dx", "dw", "db"]
            .iter()
            .zip(ours.iter().zip(&reference))
        {
            assert_close(&format!("{name} {what}"), a, r, 1e-4);
        }

        let conv = Conv1d::new(
            w.as_tensor().clone(),
            Some(bias.as_tensor().clone()),
            Conv1dConfig::default(),
        );
        assert_close(
            &format!("candle_nn {what}"),
            &ours[0],
            &flat(&conv.forward(&x)?)?,
            1e-4,
        );

        // Without bias and with a (C_out, C_in) weight.
        let y = pointwise_conv1d(&x, &w.squeeze(2)?, None)?;
        let y_ref = x.conv1d(&w, 0, 1, 1, 1)?;
        assert_close(&format!("no bias {what}"), &flat(&y)?, &flat(&y_ref)?, 1e-4);
    }
    Ok(())
}

#[test]
fn pointwise_gradients_match_finite_differences() -> TestResult {
    let (b, c_in, c_out, t) = (3, 3, 2, 5);
    let x = Var::from_tensor(&tensor(&[b, c_in, t], 1, DType::F64)?)?;
    let w = Var::from_tensor(&tensor(&[c_out, c_in, 1], 2, DType::F64)?)?;
    let bias = Var::from_tensor(&tensor(&[c_out], 3, DType::F64)?)?;
    let g = tensor(&[b, c_out, t], 4, DType::F64)?;
    let [_, dx, dw, db] = pointwise_with_grads(
        |x, w, b| Ok(pointwise_conv1d(x, w, Some(b))?),
        &x,
        &w,
        &bias,
        &g,
    )?;
    let (xv, wv, bv) = (flat(&x)?, flat(&w)?, flat(&bias)?);
    let loss = |xv: &[f64], wv: &[f64], bv: &[f64]| -> TestResult<f64> {
        let dev = Device::Cpu;
        let y = pointwise_conv1d(
            &Tensor::from_slice(xv, x.dims(), &dev)?,
            &Tensor::from_slice(wv, w.dims(), &dev)?,
            Some(&Tensor::from_slice(bv, bias.dims(), &dev)?),
        )?;
        Ok(y.mul(&g)?.sum_all()?.to_scalar::<f64>()?)
    };
    assert_close(
        "dx",
        &dx,
        &finite_differences(&xv, |p| loss(p, &wv, &bv))?,
        1e-7,
    );
    assert_close(
        "dw",
        &dw,
        &finite_differences(&wv, |p| loss(&xv, p, &bv))?,
        1e-7,
    );
    assert_close(
        "db",
        &db,
        &finite_differences(&bv, |p| loss(&xv, &wv, p))?,
        1e-7,
    );

    // Second order, through the gradient ops. The weight is a (C_out, C_in) variable: candle
    // detaches the gradient at every intermediate node (such as a reshape) unless
    // `CANDLE_GRAD_DO_NOT_DETACH=1`, so only direct arguments of the op keep their graph.
    let w = Var::from_tensor(&w.squeeze(2)?)?;
    let h1 = tensor(x.dims(), 5, DType::F64)?;
    let h2 = tensor(w.dims(), 6, DType::F64)?;
    let op = |x: &Tensor, w: &Tensor| -> TestResult<Tensor> { Ok(pointwise_conv1d(x, w, None)?) };
    let (_, dsx, dsw) = second_order(&op, &x, &w, &g, &h1, &h2)?;
    let wv = flat(&w)?;
    let s = |xv: &[f64], wv: &[f64]| -> TestResult<f64> {
        let x = Var::from_slice(xv, x.dims(), &Device::Cpu)?;
        let w = Var::from_slice(wv, w.dims(), &Device::Cpu)?;
        Ok(second_order(&op, &x, &w, &g, &h1, &h2)?.0)
    };
    assert_close(
        "d²/dx",
        &dsx,
        &finite_differences(&xv, |p| s(p, &wv))?,
        1e-7,
    );
    assert_close(
        "d²/dw",
        &dsw,
        &finite_differences(&wv, |p| s(&xv, p))?,
        1e-7,
    );
    Ok(())
}

#[test]
fn pointwise_half_precision_and_non_contiguous_inputs() -> TestResult {
    let x = tensor(&[2, 9, 6], 1, DType::F32)?.transpose(1, 2)?; // (2, 6, 9), non-contiguous
    let w = tensor(&[4, 6, 1], 2, DType::F32)?;
    let bias = tensor(&[4], 3, DType::F32)?;
    let y = pointwise_conv1d(&x, &w, Some(&bias))?;
    let y_ref = Conv1d::new(w.clone(), Some(bias.clone()), Conv1dConfig::default())
        .forward(&x.contiguous()?)?;
    assert_close("non-contiguous", &flat(&y)?, &flat(&y_ref)?, 1e-5);
    for dtype in [DType::F16, DType::BF16] {
        let y = pointwise_conv1d(
            &x.to_dtype(dtype)?,
            &w.to_dtype(dtype)?,
            Some(&bias.to_dtype(dtype)?),
        )?;
        assert_eq!(y.dtype(), dtype);
        assert_close(&format!("{dtype:?}"), &flat(&y)?, &flat(&y_ref)?, 3e-2);
    }
    Ok(())
}

#[test]
fn pointwise_rejects_bad_arguments() -> TestResult {
    let dev = Device::Cpu;
    let x = Tensor::zeros((2, 4, 10), DType::F32, &dev)?;
    let w = Tensor::zeros((3, 4, 1), DType::F32, &dev)?;
    let b = Tensor::zeros(3, DType::F32, &dev)?;
    assert!(pointwise_conv1d(&x, &w, Some(&b)).is_ok());
    assert!(is_shape_error(pointwise_conv1d(&x.i(0)?, &w, None)));
    assert!(is_shape_error(pointwise_conv1d(
        &x,
        &w.i((.., 0..3))?,
        None
    )));
    assert!(is_shape_error(pointwise_conv1d(
        &x,
        &Tensor::zeros((3, 4, 2), DType::F32, &dev)?,
        None
    )));
    assert!(is_shape_error(pointwise_conv1d(&x, &w, Some(&b.i(0..2)?))));
    assert!(is_shape_error(pointwise_conv1d(
        &x,
        &w,
        Some(&b.to_dtype(DType::F64)?)
    )));
    assert!(is_shape_error(pointwise_conv1d(
        &x,
        &w.to_dtype(DType::F64)?,
        None
    )));
    Ok(())
}

/// `x · mask` with a `(B, 1, T)` mask of ones inside each row's length: what `time_mask` replaces.
fn mask_product(x: &Tensor, lengths: &[usize]) -> TestResult<Tensor> {
    let (b, _, t) = x.dims3()?;
    let mask: Vec<f64> = lengths
        .iter()
        .flat_map(|&l| (0..t).map(move |i| if i < l { 1.0 } else { 0.0 }))
        .collect();
    let mask = Tensor::from_vec(mask, (b, 1, t), x.device())?.to_dtype(x.dtype())?;
    Ok(x.broadcast_mul(&mask)?)
}

/// `time_mask` and `add_relu` against candle's composite ops: values and the gradients of
/// `Σ op(…) · g`, in `f32` and `f64`.
fn check_block_ops(b: usize, c: usize, t: usize, lengths: &[usize], seed: u64) -> TestResult {
    for dtype in [DType::F32, DType::F64] {
        let tol = if dtype == DType::F32 { 1e-6 } else { 1e-12 };
        let x = Var::from_tensor(&tensor(&[b, c, t], seed, dtype)?)?;
        let r = Var::from_tensor(&tensor(&[b, c, t], seed + 1, dtype)?)?;
        let g = tensor(&[b, c, t], seed + 2, dtype)?;

        let ours = time_mask(&x, lengths)?;
        let theirs = mask_product(&x, lengths)?;
        assert_close("time_mask y", &flat(&ours)?, &flat(&theirs)?, tol);
        let dx = ours.mul(&g)?.sum_all()?.backward()?;
        let dx_ref = theirs.mul(&g)?.sum_all()?.backward()?;
        let (dx, dx_ref) = (
            dx.get(&x).ok_or("no dx")?,
            dx_ref.get(&x).ok_or("no ref dx")?,
        );
        assert_close("time_mask dx", &flat(dx)?, &flat(dx_ref)?, tol);

        let ours = add_relu(&x, &r)?;
        let theirs = (x.as_tensor() + r.as_tensor())?.relu()?;
        assert_close("add_relu y", &flat(&ours)?, &flat(&theirs)?, tol);
        let grads = ours.mul(&g)?.sum_all()?.backward()?;
        let grads_ref = theirs.mul(&g)?.sum_all()?.backward()?;
        for (name, v) in [("dx", &x), ("dr", &r)] {
            let got = grads.get(v).ok_or(format!("add_relu: no {name}"))?;
            let want = grads_ref.get(v).ok_or(format!("reference: no {name}"))?;
            assert_close(&format!("add_relu {name}"), &flat(got)?, &flat(want)?, tol);
        }
    }
    Ok(())
}

#[test]
fn time_mask_and_add_relu_match_candle_ops() -> TestResult {
    check_block_ops(3, 4, 9, &[9, 4, 0], 11)?;
    // Lengths past T keep the row; all rows whole returns the input itself.
    check_block_ops(2, 3, 5, &[7, 5], 12)?;
    let x = tensor(&[2, 3, 5], 13, DType::F32)?;
    let same = time_mask(&x, &[5, 6])?;
    assert_eq!(same.id(), x.id(), "an uncut batch must not be copied");
    Ok(())
}

#[test]
fn time_mask_and_add_relu_gradients_match_finite_differences() -> TestResult {
    let (b, c, t) = (2, 3, 6);
    let lengths = [6, 2];
    let x = Var::from_tensor(&tensor(&[b, c, t], 21, DType::F64)?)?;
    let r = Var::from_tensor(&tensor(&[b, c, t], 22, DType::F64)?)?;
    let g = tensor(&[b, c, t], 23, DType::F64)?;
    let loss = |xv: &[f64], rv: &[f64]| -> TestResult<f64> {
        let x = Tensor::from_slice(xv, (b, c, t), &Device::Cpu)?;
        let r = Tensor::from_slice(rv, (b, c, t), &Device::Cpu)?;
        let y = add_relu(&time_mask(&x, &lengths)?, &r)?;
        Ok(y.mul(&g)?.sum_all()?.to_scalar::<f64>()?)
    };
    let (xv, rv) = (flat(&x)?, flat(&r)?);
    // Away from the ReLU's kink, where finite differences are defined.
    let y = add_relu(&time_mask(&x, &lengths)?, &r)?;
    assert!(
        flat(&y)?
            .iter()
            .zip(flat(&(time_mask(&x, &lengths)? + r.as_tensor())?)?)
            .all(|(_, s)| s.abs() > 1e-4)
    );
    let grads = y.mul(&g)?.sum_all()?.backward()?;
    let dx_fd = finite_differences(&xv, |xp| loss(xp, &rv))?;
    let dr_fd = finite_differences(&rv, |rp| loss(&xv, rp))?;
    assert_close("dx", &flat(grads.get(&x).ok_or("no dx")?)?, &dx_fd, 1e-7);
    assert_close("dr", &flat(grads.get(&r).ok_or("no dr")?)?, &dr_fd, 1e-7);

    Ok(())
}

#[test]
fn time_mask_and_add_relu_refuse_bad_shapes() -> TestResult {
    let x = tensor(&[2, 3, 5], 31, DType::F32)?;
    let err = time_mask(&x, &[5])
        .err()
        .ok_or("one length for two items accepted")?;
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert!(
        err.to_string().contains("1 lengths for a batch of 2"),
        "{err}"
    );
    let err = time_mask(&x.flatten_all()?, &[1])
        .err()
        .ok_or("1-D input accepted")?;
    assert!(err.to_string().contains("(B, C, T)"), "{err}");
    let r = tensor(&[2, 3, 4], 32, DType::F32)?;
    let err = add_relu(&x, &r).err().ok_or("mismatched shapes accepted")?;
    assert!(err.to_string().contains("same shape"), "{err}");
    let err = add_relu(&x, &x.to_dtype(DType::F64)?)
        .err()
        .ok_or("mismatched dtypes accepted")?;
    assert!(err.to_string().contains("dtype"), "{err}");
    // Other dtypes take candle's ops.
    let h = add_relu(&x.to_dtype(DType::F16)?, &x.to_dtype(DType::F16)?)?;
    assert_close("f16", &flat(&h)?, &flat(&(&x + &x)?.relu()?)?, 1e-3);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// Random shapes and lengths, including empty rows and lengths past `T`.
    #[test]
    fn block_ops_random_shapes(
        b in 1usize..4, c in 1usize..5, t in 1usize..40, seed in 0u64..1000,
        raw_lengths in proptest::collection::vec(0usize..45, 4),
    ) {
        let lengths = &raw_lengths[..b];
        check_block_ops(b, c, t, lengths, seed)
            .map_err(|e| TestCaseError::fail(format!("{b}×{c}×{t} {lengths:?}: {e}")))?;
    }
}
