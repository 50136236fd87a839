//! Batch normalization (`nemo_asr::kernels::batch_norm`) beyond the reference checks of
//! `batch_norm.rs`: the `f16`/`bf16` fallback against the `f32` kernel, non-contiguous inputs,
//! constant channels, large offsets, evaluation mode, and shape, dtype and hyper-parameter errors.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use common::batch_norm::{assert_grads_close, layer, ours, var};
use common::{TestResult, assert_close, flat, tensor};
use nemo_asr::Error;
use nemo_asr::kernels::{BatchNorm1d, batch_norm_train};

// ----- Other dtypes, layouts, data ------------------------------------------------------------------

/// `f16` and `bf16` take candle's differentiable fallback; it agrees with the `f32` kernel.
#[test]
fn half_precision_fallback() -> TestResult {
    let (b, c, t) = (2, 4, 30);
    let x = tensor(&[b, c, t], 20, DType::F32)?;
    let gamma = (tensor(&[c], 21, DType::F32)? + 1.0)?;
    let beta = tensor(&[c], 22, DType::F32)?;
    let up = tensor(&[b, c, t], 23, DType::F32)?;
    for relu in [false, true] {
        let reference = ours(&x, &gamma, &beta, &up, relu)?;
        for dtype in [DType::F16, DType::BF16] {
            let to = |t: &Tensor| t.to_dtype(dtype);
            let g = ours(&to(&x)?, &to(&gamma)?, &to(&beta)?, &to(&up)?, relu)?;
            assert_grads_close(&format!("{dtype:?} relu={relu}"), &g, &reference, 5e-2);
        }
    }
    // The layer's running statistics are updated on the fallback path too.
    let (_vm16, bn16) = layer(c, DType::BF16)?;
    let (_vm32, bn32) = layer(c, DType::F32)?;
    bn16.forward_t(&x.to_dtype(DType::BF16)?, true, false)?;
    bn32.forward_t(&x, true, false)?;
    assert_close(
        "running_mean",
        &flat(bn16.running_mean())?,
        &flat(bn32.running_mean())?,
        1e-2,
    );
    assert_close(
        "running_var",
        &flat(bn16.running_var())?,
        &flat(bn32.running_var())?,
        1e-2,
    );
    Ok(())
}

#[test]
fn non_contiguous_input() -> TestResult {
    let (b, c, t) = (3, 4, 9);
    let btc = tensor(&[b, t, c], 30, DType::F32)?;
    let x = btc.transpose(1, 2)?; // (B, C, T), not contiguous
    assert!(!x.is_contiguous());
    let gamma = (tensor(&[c], 31, DType::F32)? + 1.0)?;
    let beta = tensor(&[c], 32, DType::F32)?;
    let up = tensor(&[b, c, t], 33, DType::F32)?;
    let a = ours(&x, &gamma, &beta, &up, true)?;
    let r = ours(&x.contiguous()?, &gamma, &beta, &up, true)?;
    assert_grads_close("strided", &a, &r, 0.0);
    // The gradient flows back through the copy to the strided variable.
    let v = Var::from_tensor(&btc)?;
    let (y, _) = batch_norm_train(&v.as_tensor().transpose(1, 2)?, &gamma, &beta, 1e-3, true)?;
    let grads = (&y * &up)?.sum_all()?.backward()?;
    let dv = grads
        .get(v.as_tensor())
        .ok_or("missing gradient")?
        .transpose(1, 2)?;
    assert_close("dx through transpose", &flat(&dv)?, &a.dx, 0.0);
    Ok(())
}

/// `Σ y` as the loss: `∂L/∂y` arrives as candle's broadcast of a scalar. Without the ReLU, the
/// normalized output sums to `N·β` whatever `x` and `γ`, so `∂L/∂x = 0`, `∂L/∂γ = 0`, `∂L/∂β = N`.
#[test]
fn sum_loss_gradients() -> TestResult {
    let (b, c, t) = (3, 4, 21);
    let x = Var::from_tensor(&tensor(&[b, c, t], 37, DType::F32)?)?;
    let gamma = Var::from_tensor(&(tensor(&[c], 38, DType::F32)? + 1.5)?)?;
    let beta = Var::from_tensor(&tensor(&[c], 39, DType::F32)?)?;
    let (y, _) = batch_norm_train(
        x.as_tensor(),
        gamma.as_tensor(),
        beta.as_tensor(),
        1e-3,
        false,
    )?;
    let grads = y.sum_all()?.backward()?;
    let grad = |v: &Var| -> TestResult<Vec<f64>> {
        flat(grads.get(v.as_tensor()).ok_or("missing gradient")?)
    };
    assert_close("dx", &grad(&x)?, &vec![0.0; b * c * t], 1e-5);
    assert_close("dgamma", &grad(&gamma)?, &[0.0; 4], 1e-4);
    assert_close("dbeta", &grad(&beta)?, &[(b * t) as f64; 4], 1e-6);
    Ok(())
}

/// A channel with one repeated value normalizes to `β`, with finite gradients.
#[test]
fn constant_channel() -> TestResult {
    let x = Tensor::from_vec(vec![2.5f32; 2 * 3 * 5], (2, 3, 5), &Device::Cpu)?;
    let gamma = Tensor::new(&[1f32, 2., 3.], &Device::Cpu)?;
    let beta = Tensor::new(&[0.5f32, -0.5, 0.0], &Device::Cpu)?;
    let up = tensor(&[2, 3, 5], 34, DType::F32)?;
    let g = ours(&x, &gamma, &beta, &up, false)?;
    let expected: Vec<f64> = (0..30).map(|i| [0.5, -0.5, 0.0][(i / 5) % 3]).collect();
    assert_close("y", &g.y, &expected, 0.0);
    assert!(
        g.dx.iter()
            .chain(&g.dgamma)
            .chain(&g.dbeta)
            .all(|v| v.is_finite())
    );
    assert_close("dgamma", &g.dgamma, &[0.0; 3], 0.0);
    Ok(())
}

/// A large offset (1e4) with unit spread: the `f32` kernel matches the `f64` one on the same data.
#[test]
fn large_offset_statistics() -> TestResult {
    let (b, c, t) = (8, 3, 250);
    let x = (tensor(&[b, c, t], 35, DType::F32)? + 1e4)?;
    let up = tensor(&[b, c, t], 36, DType::F32)?;
    let gamma = Tensor::ones(c, DType::F32, &Device::Cpu)?;
    let beta = Tensor::zeros(c, DType::F32, &Device::Cpu)?;
    let (_, s32) = batch_norm_train(&x, &gamma, &beta, 1e-3, false)?;
    let to64 = |t: &Tensor| t.to_dtype(DType::F64);
    let (_, s64) = batch_norm_train(&to64(&x)?, &to64(&gamma)?, &to64(&beta)?, 1e-3, false)?;
    assert_close("mean", &flat(&s32.mean)?, &flat(&s64.mean)?, 1e-7);
    assert_close("var", &flat(&s32.var)?, &flat(&s64.var)?, 1e-6);
    // Uniform on [-1, 1): variance about 1/3.
    assert!(flat(&s64.var)?.iter().all(|v| (v - 1.0 / 3.0).abs() < 0.05));
    // The normalized values and gradients keep f32 precision although μ ≈ 1e4 is not an f32
    // (rounding μ alone to f32 would shift every x̂ by up to 4.9e-4/σ ≈ 8e-4).
    let g32 = ours(&x, &gamma, &beta, &up, false)?;
    let g64 = ours(
        &to64(&x)?,
        &to64(&gamma)?,
        &to64(&beta)?,
        &to64(&up)?,
        false,
    )?;
    assert_grads_close("offset 1e4", &g32, &g64, 2e-6);
    Ok(())
}

/// Evaluation mode is differentiable in `x`, `weight` and `bias`.
#[test]
fn eval_mode_gradients() -> TestResult {
    let (_vm, bn) = layer(3, DType::F32)?;
    let x = Var::from_tensor(&tensor(&[2, 3, 4], 36, DType::F32)?)?;
    let y = bn.forward_t(x.as_tensor(), false, false)?;
    let grads = y.sum_all()?.backward()?;
    // γ = 1, running stats (0, 1): y = x/√(1 + eps), ∂y/∂x = 1/√(1 + eps).
    let dx = flat(grads.get(x.as_tensor()).ok_or("no dx")?)?;
    assert_close("dx", &dx, &[1.0 / (1.0f64 + 1e-3).sqrt(); 24], 1e-6);
    assert_close(
        "dbeta",
        &flat(grads.get(bn.bias()).ok_or("no dbeta")?)?,
        &[8.0; 3],
        1e-6,
    );
    assert!(grads.get(bn.weight()).is_some());
    Ok(())
}

// ----- Errors ----------------------------------------------------------------------------------------

fn is_shape_error<T>(r: nemo_asr::Result<T>) -> bool {
    matches!(
        r,
        Err(Error::Shape {
            op: "batch_norm",
            ..
        })
    )
}

#[test]
fn rejects_bad_inputs() -> TestResult {
    let dev = &Device::Cpu;
    let (_vm, bn) = layer(4, DType::F32)?;
    // Not (B, C, T).
    assert!(is_shape_error(bn.forward_t(
        &Tensor::zeros((2, 4), DType::F32, dev)?,
        true,
        false
    )));
    // Wrong C.
    assert!(is_shape_error(bn.forward_t(
        &Tensor::zeros((2, 3, 5), DType::F32, dev)?,
        true,
        false
    )));
    assert!(is_shape_error(bn.forward_t(
        &Tensor::zeros((2, 3, 5), DType::F32, dev)?,
        false,
        false
    )));
    // One value per channel in training (PyTorch refuses too); fine in evaluation.
    let single = Tensor::zeros((1, 4, 1), DType::F32, dev)?;
    assert!(is_shape_error(bn.forward_t(&single, true, false)));
    assert!(bn.forward_t(&single, false, false).is_ok());
    assert!(is_shape_error(bn.forward_t(
        &Tensor::zeros((0, 4, 7), DType::F32, dev)?,
        true,
        false
    )));
    // dtype mismatch between x and the parameters.
    assert!(is_shape_error(bn.forward_t(
        &Tensor::zeros((2, 4, 5), DType::F64, dev)?,
        true,
        false
    )));
    // Hyper-parameters.
    let vm = VarMap::new();
    let vb = || VarBuilder::from_varmap(&vm, DType::F32, dev);
    assert!(is_shape_error(BatchNorm1d::new(4, -1e-3, 0.1, vb())));
    assert!(is_shape_error(BatchNorm1d::new(4, f64::NAN, 0.1, vb())));
    assert!(is_shape_error(BatchNorm1d::new(4, 1e-3, 1.5, vb())));
    // Parts of different sizes.
    let v = |n: usize| Tensor::zeros(n, DType::F32, dev);
    assert!(is_shape_error(BatchNorm1d::from_tensors(
        v(4)?,
        v(3)?,
        v(4)?,
        v(4)?,
        1e-3,
        0.1
    )));
    assert!(is_shape_error(BatchNorm1d::from_tensors(
        Tensor::zeros((4, 1), DType::F32, dev)?,
        v(4)?,
        v(4)?,
        v(4)?,
        1e-3,
        0.1
    )));
    Ok(())
}

/// `new` takes PyTorch's names and initial values from the `VarBuilder`.
#[test]
fn initial_values() -> TestResult {
    let (vm, bn) = layer(5, DType::F32)?;
    assert_eq!(flat(var(&vm, "weight")?.as_tensor())?, vec![1.0; 5]);
    assert_eq!(flat(var(&vm, "bias")?.as_tensor())?, vec![0.0; 5]);
    assert_eq!(flat(var(&vm, "running_mean")?.as_tensor())?, vec![0.0; 5]);
    assert_eq!(flat(var(&vm, "running_var")?.as_tensor())?, vec![1.0; 5]);
    assert_eq!((bn.channels(), bn.eps(), bn.momentum()), (5, 1e-3, 0.1));
    Ok(())
}
