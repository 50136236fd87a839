//! Tests of the fused `nemo_core::nn::layer_norm` and `LayerNorm`.
//!
//! Three independent references: central finite differences in `f64` for the gradients of `x`,
//! `weight` and `bias` (ranks 2, 3 and 4, a permuted non-contiguous input, a large offset);
//! candle's composed differentiable `candle_nn::ops::layer_norm_slow` with candle's autograd
//! (`f32`, fixed shapes and proptest over random shapes); and the `f32` kernel for the `f16`
//! and `bf16` paths.

use candle_core::{DType, Device, Tensor, Var};
use nemo_core::nn::{LayerNorm, LayerNormConfig, layer_norm};
use nemo_core::params::Parameters;
use proptest::prelude::*;

use nemo_core::testing::{
    Op, TestResult, assert_close_scaled, check_gradients, input_gradients, to_f64_vec,
    uniform_tensor,
};

/// `scale · u + offset` for seeded `u` uniform in `[-1, 1)`, as a tensor of `shape` and `dtype`.
fn tensor(shape: &[usize], seed: u64, scale: f64, offset: f64, dtype: DType) -> TestResult<Tensor> {
    let u = uniform_tensor(shape, seed, DType::F64, &Device::Cpu)?;
    Ok(u.affine(scale, offset)?.to_dtype(dtype)?)
}

#[test]
fn gradients_match_finite_differences_in_f64() -> TestResult {
    let f64_ = DType::F64;
    for (i, shape) in [vec![3, 5], vec![2, 3, 6], vec![2, 2, 3, 9]]
        .iter()
        .enumerate()
    {
        let d = *shape.last().ok_or("empty shape")?;
        let seed = 10 * i as u64;
        let inputs = [
            tensor(shape, seed, 2.0, 0.5, f64_)?,
            tensor(&[d], seed + 1, 0.5, 1.0, f64_)?,
            tensor(&[d], seed + 2, 0.5, 0.0, f64_)?,
        ];
        let ln =
            |t: &[Tensor]| -> TestResult<Tensor> { Ok(layer_norm(&t[0], &t[1], &t[2], 1e-5)?) };
        check_gradients(&format!("rank {}", shape.len()), &ln, &inputs, shape, 1e-6)?;
    }
    // A permuted, non-contiguous input, far from zero.
    let inputs = [
        tensor(&[7, 2, 3], 40, 3.0, 100.0, f64_)?,
        tensor(&[7], 41, 0.5, 1.0, f64_)?,
        tensor(&[7], 42, 0.5, 0.0, f64_)?,
    ];
    let permuted = |t: &[Tensor]| -> TestResult<Tensor> {
        let x = t[0].permute((1, 2, 0))?; // (2, 3, 7), not contiguous
        assert!(!x.is_contiguous());
        Ok(layer_norm(&x, &t[1], &t[2], 1e-5)?)
    };
    check_gradients("non-contiguous", &permuted, &inputs, &[2, 3, 7], 1e-6)?;
    Ok(())
}

/// Output and gradients of `x`, `weight`, `bias` under `f`, for `L = Σ up ⊙ f`.
fn run_f32(f: Op, x: &Tensor, w: &Tensor, b: &Tensor) -> TestResult<Vec<Vec<f64>>> {
    let up = tensor(x.dims(), 7, 1.0, 0.0, DType::F32)?;
    let inputs = [x.clone(), w.clone(), b.clone()];
    let mut out = vec![to_f64_vec(&f(&inputs)?)?];
    out.extend(input_gradients(f, &inputs, &up)?);
    Ok(out)
}

/// The eps of the comparisons with candle, whose `layer_norm_slow` takes it as `f32` (1e-5 is
/// not one).
const EPS: f32 = 1e-5;

fn ours(t: &[Tensor]) -> TestResult<Tensor> {
    Ok(layer_norm(&t[0], &t[1], &t[2], f64::from(EPS))?)
}

fn candle_composed(t: &[Tensor]) -> TestResult<Tensor> {
    Ok(candle_nn::ops::layer_norm_slow(&t[0], &t[1], &t[2], EPS)?)
}

#[test]
fn forward_and_gradients_match_candles_composed_ops_in_f32() -> TestResult {
    for (shape, offset) in [([4, 16, 512], 0.0), ([3, 5, 37], 20.0), ([2, 1, 3], -3.0)] {
        let d = shape[2];
        let x = tensor(&shape, 1, 2.0, offset, DType::F32)?;
        let w = tensor(&[d], 2, 0.5, 1.0, DType::F32)?;
        let b = tensor(&[d], 3, 0.5, 0.0, DType::F32)?;
        let a = run_f32(&ours, &x, &w, &b)?;
        let r = run_f32(&candle_composed, &x, &w, &b)?;
        for (name, (p, q)) in ["y", "dx", "dweight", "dbias"].iter().zip(a.iter().zip(&r)) {
            assert_close_scaled(&format!("{shape:?} {name}"), p, q, 2e-5);
        }
    }
    Ok(())
}

#[test]
fn half_precision_computes_in_f32() -> TestResult {
    let x32 = tensor(&[3, 4, 40], 5, 2.0, 1.0, DType::F32)?;
    let w32 = tensor(&[40], 6, 0.5, 1.0, DType::F32)?;
    let b32 = tensor(&[40], 7, 0.5, 0.0, DType::F32)?;
    for (dtype, tol) in [(DType::F16, 4e-3), (DType::BF16, 3e-2)] {
        let x = x32.to_dtype(dtype)?;
        // The reference: the f32 kernel on the same (rounded) input.
        let expected = to_f64_vec(&layer_norm(&x.to_dtype(DType::F32)?, &w32, &b32, 1e-5)?)?;
        // Parameters in f32 (mixed precision) or in the input's dtype.
        for (w, b) in [
            (w32.clone(), b32.clone()),
            (w32.to_dtype(dtype)?, b32.to_dtype(dtype)?),
        ] {
            let xv = Var::from_tensor(&x)?;
            let wv = Var::from_tensor(&w)?;
            let y = layer_norm(xv.as_tensor(), wv.as_tensor(), &b, 1e-5)?;
            assert_eq!(y.dtype(), dtype);
            assert_close_scaled(&format!("{dtype:?}"), &to_f64_vec(&y)?, &expected, tol);
            let grads = y.to_dtype(DType::F32)?.sum_all()?.backward()?;
            let gw = grads.get(wv.as_tensor()).ok_or("no weight gradient")?;
            assert_eq!(gw.dtype(), w.dtype());
            assert!(grads.get(xv.as_tensor()).is_some());
        }
    }
    Ok(())
}

#[test]
fn the_module_builds_from_a_var_builder_and_reads_legacy_names() -> TestResult {
    let params = Parameters::new();
    let vb = params.var_builder(DType::F32, &Device::Cpu);
    let ln = LayerNormConfig::default().init(6, vb.pp("norm"))?;
    assert_eq!(ln.dim(), 6);
    assert_eq!(
        params
            .named_vars()
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        ["norm.bias", "norm.weight"]
    );
    let mut legacy = std::collections::HashMap::new();
    legacy.insert("gamma".to_string(), Tensor::full(2f32, 4, &Device::Cpu)?);
    legacy.insert("beta".to_string(), Tensor::full(-1f32, 4, &Device::Cpu)?);
    let vb = candle_nn::VarBuilder::from_tensors(legacy, DType::F32, &Device::Cpu);
    let ln = LayerNormConfig::from(1e-6).init(4, vb)?;
    let x = Tensor::new(&[[1f32, 2.0, 3.0, 4.0]], &Device::Cpu)?;
    // Through candle's `Module` too.
    let y = candle_core::Module::forward(&ln, &x)?.to_vec2::<f32>()?;
    let expected = [-3.683_281_6f32, -1.894_427_2, -0.105_572_8, 1.683_281_6];
    for (a, b) in y[0].iter().zip(expected) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    assert!(
        LayerNorm::new(
            Tensor::ones(3, DType::F32, &Device::Cpu)?,
            Tensor::ones(4, DType::F32, &Device::Cpu)?,
            1e-5
        )
        .is_err()
    );
    assert!(
        LayerNormConfig::default()
            .init(0, params.var_builder(DType::F32, &Device::Cpu))
            .is_err()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random shapes of rank 1 to 4 and random data: the forward equals candle's composed ops,
    /// in `f64` to rounding and in `f32` to its precision, and the `f64` gradients agree too.
    #[test]
    fn random_shapes_match_the_composed_reference(
        dims in prop::collection::vec(1usize..7, 1..=4),
        last in 1usize..40,
        seed in 0u64..10_000,
        scale in 0.01f64..30.0,
        offset in -50.0f64..50.0,
    ) {
        let mut shape = dims;
        if let Some(l) = shape.last_mut() {
            *l = last;
        }
        let check = || -> TestResult {
            let x = tensor(&shape, seed, scale, offset, DType::F64)?;
            let w = tensor(&[last], seed + 1, 1.0, 0.5, DType::F64)?;
            let b = tensor(&[last], seed + 2, 1.0, 0.0, DType::F64)?;
            let up = tensor(&shape, seed + 3, 1.0, 0.0, DType::F64)?;
            let inputs = [x.clone(), w.clone(), b.clone()];
            let a = input_gradients(&ours, &inputs, &up)?;
            let r = input_gradients(&candle_composed, &inputs, &up)?;
            for (p, q) in a.iter().zip(&r) {
                assert_close_scaled("f64 gradient", p, q, 1e-9);
            }
            assert_close_scaled("f64 forward", &to_f64_vec(&ours(&inputs)?)?, &to_f64_vec(&candle_composed(&inputs)?)?, 1e-10);
            // The f32 kernel against the f64 reference of the same rounded inputs.
            let inputs32: Vec<Tensor> = inputs.iter().map(|t| t.to_dtype(DType::F32)).collect::<Result<_, _>>()?;
            let rounded: Vec<Tensor> = inputs32.iter().map(|t| t.to_dtype(DType::F64)).collect::<Result<_, _>>()?;
            assert_close_scaled("f32 forward", &to_f64_vec(&ours(&inputs32)?)?, &to_f64_vec(&candle_composed(&rounded)?)?, 2e-5);
            Ok(())
        };
        prop_assert!(check().is_ok(), "{:?}", check().err());
    }
}
