//! Tests of the fused batch normalization in `nemo_asr::kernels::batch_norm` against references.
//!
//! The op is checked against four independent references: PyTorch's `BatchNorm1d` (values printed
//! by the snippet above `PT_*` and pasted here), central finite differences in `f64` for all three
//! gradients (with and without the fused ReLU), `candle_nn::BatchNorm` with candle's autograd
//! (fixed shapes and proptest over random small shapes), and hand-computed running statistics.
//! Other dtypes, layouts, data and errors: `batch_norm_edges.rs`.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use common::batch_norm::{assert_grads_close, candle_reference, layer, ours, var};
use common::{TestResult, assert_close, flat, tensor};
use nemo_asr::kernels::{BatchNorm1d, batch_norm_train};
use proptest::prelude::*;

// ----- PyTorch reference ---------------------------------------------------------------------------
//
// Values printed by PyTorch 1.13 (float64) with:
//
// ```python
// import math, torch
// B, C, T = 2, 3, 4
// x = torch.tensor([math.sin(0.7 * i + 0.3) * (1 + i % 3) + (i // (C*T)) for i in range(B*C*T)],
//                  dtype=torch.float64).reshape(B, C, T)
// up = torch.tensor([math.cos(1.3 * i) for i in range(B*C*T)], dtype=torch.float64).reshape(B, C, T)
// for relu in (False, True):
//     bn = torch.nn.BatchNorm1d(C, eps=1e-3, momentum=0.1).double()
//     with torch.no_grad():
//         bn.weight.copy_(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))
//         bn.bias.copy_(torch.tensor([0.1, 0.0, -0.3], dtype=torch.float64))
//     xx = x.clone().requires_grad_(True)
//     y = bn(xx)
//     if relu: y = torch.relu(y)
//     (y * up).sum().backward()
//     print(y, xx.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var)  # → PT_*, RM1, RV1
//     bn(x * 2 + 1); print(bn.running_mean, bn.running_var)                               # → RM2, RV2
//     bn.eval(); ye = bn(x); print(torch.relu(ye) if relu else ye)                        # → PT_EVAL*
// ```

const PT_Y: [f64; 24] = [
    -0.1882444342,
    0.4364873699,
    1.0182760422,
    -0.0171627445,
    -0.1666228262,
    1.1504338236,
    0.5614562047,
    1.1033012837,
    -3.1026119334,
    -1.3698252796,
    0.3099569195,
    1.8420764613,
    0.4274939939,
    0.1512824042,
    -0.7154046892,
    -0.3127279424,
    0.4058959134,
    -0.0582721153,
    -1.0207433085,
    -1.9754489753,
    3.0417531208,
    0.2487962582,
    -0.5181832709,
    -2.8519622759,
];
const PT_DX: [f64; 24] = [
    0.3109609802,
    0.2937151108,
    0.0785228928,
    -0.3805949234,
    -0.3031487262,
    -0.8430105702,
    -0.1242341692,
    0.4847115291,
    -0.36366516,
    0.9007767377,
    1.0241692706,
    -0.4430025883,
    -0.2788956407,
    -0.1359383855,
    -0.0445043242,
    0.15673429,
    0.1897569186,
    0.6850845602,
    0.2530645578,
    -0.3422241002,
    0.3989122653,
    -0.7451907117,
    -1.124436772,
    0.3524369583,
];
const PT_DGAMMA: [f64; 3] = [-4.4447941383, 1.691158794, 1.5029915452];
const PT_DBETA: [f64; 3] = [-0.0871006779, -0.0667551079, 0.024548916];
const PT_RELU_Y: [f64; 24] = [
    0.0,
    0.4364873699,
    1.0182760422,
    0.0,
    0.0,
    1.1504338236,
    0.5614562047,
    1.1033012837,
    0.0,
    0.0,
    0.3099569195,
    1.8420764613,
    0.4274939939,
    0.1512824042,
    0.0,
    0.0,
    0.4058959134,
    0.0,
    0.0,
    0.0,
    3.0417531208,
    0.2487962582,
    0.0,
    0.0,
];
const PT_RELU_DX: [f64; 24] = [
    0.0423617106,
    0.3092877427,
    -0.0605969223,
    0.0824738959,
    -0.0240874623,
    -0.6992107401,
    -0.0637630072,
    0.6218430383,
    0.0925963741,
    -0.042259777,
    0.92416459,
    -0.488235476,
    -0.2609317499,
    -0.0445322833,
    -0.0812374301,
    0.0131750363,
    0.2282193802,
    -0.0244802662,
    -0.0209910188,
    -0.0175299239,
    0.3965666587,
    -0.8473818268,
    -0.1085398139,
    0.0730892709,
];
const PT_RELU_DGAMMA: [f64; 3] = [-2.082800485, 0.0422517348, 1.0299085762];
const PT_RELU_DBETA: [f64; 3] = [-1.9533358138, -0.2877718817, 0.8305323914];
const PT_RM1: [f64; 3] = [0.0935661462, -0.0159580738, 0.1196383675];
const PT_RV1: [f64; 3] = [1.0408021758, 1.1424422775, 1.212607394];
const PT_RM2: [f64; 3] = [0.3713418239, 0.053721586, 0.4469512659];
const PT_RV2: [f64; 3] = [1.4999306612, 1.9979671596, 2.3417762305];
const PT_EVAL: [f64; 24] = [
    0.0690555525,
    0.6352924844,
    1.1626071347,
    0.2241185258,
    -0.0208224163,
    1.3362785743,
    0.7293934338,
    1.287712997,
    -2.3496118031,
    -0.4769355157,
    1.3384572134,
    2.9942663283,
    0.6271411759,
    0.3767918227,
    -0.408745647,
    -0.0437723191,
    0.5691034224,
    0.090822635,
    -0.9009119346,
    -1.8846448715,
    4.2907941079,
    1.2723589896,
    0.4434604209,
    -2.078726943,
];

/// The PyTorch snippet's `x` `(2, 3, 4)` and upstream gradient.
fn pt_inputs(dtype: DType) -> TestResult<(Tensor, Tensor)> {
    let (b, c, t) = (2, 3, 4);
    let x: Vec<f64> = (0..b * c * t)
        .map(|i| (0.7 * i as f64 + 0.3).sin() * (1 + i % 3) as f64 + (i / (c * t)) as f64)
        .collect();
    let up: Vec<f64> = (0..b * c * t).map(|i| (1.3 * i as f64).cos()).collect();
    let dev = &Device::Cpu;
    Ok((
        Tensor::from_vec(x, (b, c, t), dev)?.to_dtype(dtype)?,
        Tensor::from_vec(up, (b, c, t), dev)?.to_dtype(dtype)?,
    ))
}

/// Runs the PyTorch scenario through [`BatchNorm1d`] in `dtype` and compares with `tol`.
fn check_against_pytorch(dtype: DType, relu: bool, tol: f64) -> TestResult {
    let (x, up) = pt_inputs(dtype)?;
    let (varmap, _) = layer(3, dtype)?;
    var(&varmap, "weight")?.set(&Tensor::new(&[0.5, -1.0, 2.0], &Device::Cpu)?.to_dtype(dtype)?)?;
    var(&varmap, "bias")?.set(&Tensor::new(&[0.1, 0.0, -0.3], &Device::Cpu)?.to_dtype(dtype)?)?;
    let bn = BatchNorm1d::new(
        3,
        1e-3,
        0.1,
        VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu),
    )?;
    let xv = Var::from_tensor(&x)?;
    let y = bn.forward_t(xv.as_tensor(), true, relu)?;
    let grads = (&y * &up)?.sum_all()?.backward()?;
    let grad = |name: &str, t: &Tensor| -> TestResult<Vec<f64>> {
        flat(grads.get(t).ok_or(format!("missing gradient of {name}"))?)
    };
    let (py, pdx, pdg, pdb) = if relu {
        (PT_RELU_Y, PT_RELU_DX, PT_RELU_DGAMMA, PT_RELU_DBETA)
    } else {
        (PT_Y, PT_DX, PT_DGAMMA, PT_DBETA)
    };
    assert_close("y", &flat(&y)?, &py, tol);
    assert_close("dx", &grad("x", xv.as_tensor())?, &pdx, tol);
    assert_close("dgamma", &grad("weight", bn.weight())?, &pdg, tol);
    assert_close("dbeta", &grad("bias", bn.bias())?, &pdb, tol);
    // The running statistics are the VarMap's variables, updated in place, outside the graph.
    assert!(grads.get(bn.running_mean()).is_none());
    assert!(grads.get(bn.running_var()).is_none());
    assert_close(
        "running_mean 1",
        &flat(var(&varmap, "running_mean")?.as_tensor())?,
        &PT_RM1,
        tol,
    );
    assert_close(
        "running_var 1",
        &flat(var(&varmap, "running_var")?.as_tensor())?,
        &PT_RV1,
        tol,
    );
    bn.forward_t(&((&x * 2.0)? + 1.0)?, true, relu)?;
    assert_close("running_mean 2", &flat(bn.running_mean())?, &PT_RM2, tol);
    assert_close("running_var 2", &flat(bn.running_var())?, &PT_RV2, tol);
    let y_eval = bn.forward_t(&x, false, relu)?;
    let expected: Vec<f64> = PT_EVAL
        .iter()
        .map(|&v| if relu { v.max(0.0) } else { v })
        .collect();
    assert_close("eval", &flat(&y_eval)?, &expected, tol);
    Ok(())
}

#[test]
fn matches_pytorch_f64() -> TestResult {
    check_against_pytorch(DType::F64, false, 1e-9)
}

#[test]
fn matches_pytorch_f64_relu() -> TestResult {
    check_against_pytorch(DType::F64, true, 1e-9)
}

#[test]
fn matches_pytorch_f32() -> TestResult {
    check_against_pytorch(DType::F32, false, 2e-6)
}

#[test]
fn matches_pytorch_f32_relu() -> TestResult {
    check_against_pytorch(DType::F32, true, 2e-6)
}

// ----- Running statistics ------------------------------------------------------------------------

/// `x` = [[1, 2]], [[3, 4]] `(B, C, T) = (2, 1, 2)`: μ = 2.5, σ² = 1.25 (biased), 5/3 (unbiased).
#[test]
fn running_stats_by_hand() -> TestResult {
    let (_varmap, bn) = layer(1, DType::F32)?;
    let x = Tensor::new(&[[[1f32, 2.]], [[3., 4.]]], &Device::Cpu)?;
    let y = bn.forward_t(&x, true, false)?;
    let s = (1.25f64 + 1e-3).sqrt();
    assert_close(
        "y",
        &flat(&y)?,
        &[-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s],
        1e-6,
    );
    // running_mean = 0.9·0 + 0.1·2.5; running_var = 0.9·1 + 0.1·5/3.
    assert_close("running_mean", &flat(bn.running_mean())?, &[0.25], 1e-7);
    assert_close(
        "running_var",
        &flat(bn.running_var())?,
        &[0.9 + 0.5 / 3.0],
        1e-7,
    );
    // Second step on x + 10: μ = 12.5, same variance.
    bn.forward_t(&(&x + 10.0)?, true, true)?;
    assert_close(
        "running_mean 2",
        &flat(bn.running_mean())?,
        &[0.9 * 0.25 + 1.25],
        1e-6,
    );
    let rv2 = 0.9 * (0.9 + 0.5 / 3.0) + 0.5 / 3.0;
    assert_close("running_var 2", &flat(bn.running_var())?, &[rv2], 1e-6);
    // Evaluation mode leaves them alone.
    bn.forward_t(&x, false, false)?;
    assert_close(
        "running_mean eval",
        &flat(bn.running_mean())?,
        &[0.9 * 0.25 + 1.25],
        1e-6,
    );
    Ok(())
}

#[test]
fn running_stats_match_candle_nn() -> TestResult {
    let (b, c, t) = (3, 5, 11);
    let (_vm, ours) = layer(c, DType::F32)?;
    let vm = VarMap::new();
    let cfg = candle_nn::BatchNormConfig {
        eps: 1e-3,
        remove_mean: true,
        affine: true,
        momentum: 0.1,
    };
    let theirs = candle_nn::batch_norm(
        c,
        cfg,
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )?;
    for step in 0..3u64 {
        let x = ((tensor(&[b, c, t], 40 + step, DType::F32)? * 3.0)? + step as f64)?;
        ours.forward_t(&x, true, step == 1)?;
        theirs.forward_t(&x, true)?;
    }
    assert_close(
        "running_mean",
        &flat(ours.running_mean())?,
        &flat(theirs.running_mean())?,
        1e-6,
    );
    assert_close(
        "running_var",
        &flat(ours.running_var())?,
        &flat(theirs.running_var())?,
        1e-6,
    );
    Ok(())
}

// ----- Finite differences ------------------------------------------------------------------------

/// `L = Σ up·bn(x; γ, β)` in `f64`, no gradient.
fn loss(x: &Tensor, gamma: &Tensor, beta: &Tensor, up: &Tensor, relu: bool) -> TestResult<f64> {
    let (y, _) = batch_norm_train(x, gamma, beta, 1e-3, relu)?;
    Ok((y * up)?.sum_all()?.to_scalar::<f64>()?)
}

/// Central differences of [`loss`] with respect to every element of `which` (0: x, 1: γ, 2: β).
fn finite_diff(args: [&Tensor; 4], which: usize, relu: bool) -> TestResult<Vec<f64>> {
    let h = 1e-6;
    let target = flat(args[which])?;
    let shape = args[which].dims().to_vec();
    let mut out = Vec::with_capacity(target.len());
    for i in 0..target.len() {
        let at = |delta: f64| -> TestResult<f64> {
            let mut v = target.clone();
            v[i] += delta;
            let moved = Tensor::from_vec(v, shape.as_slice(), &Device::Cpu)?;
            let mut a = args;
            a[which] = &moved;
            loss(a[0], a[1], a[2], a[3], relu)
        };
        out.push((at(h)? - at(-h)?) / (2.0 * h));
    }
    Ok(out)
}

fn check_finite_differences(b: usize, c: usize, t: usize, relu: bool, seed: u64) -> TestResult {
    let x = ((tensor(&[b, c, t], seed, DType::F64)? * 2.0)? + 0.5)?;
    let gamma = (tensor(&[c], seed + 1, DType::F64)? + 1.2)?;
    let beta = (tensor(&[c], seed + 2, DType::F64)? * 0.5)?;
    let up = tensor(&[b, c, t], seed + 3, DType::F64)?;
    let g = ours(&x, &gamma, &beta, &up, relu)?;
    let args = [&x, &gamma, &beta, &up];
    assert_close("dx", &g.dx, &finite_diff(args, 0, relu)?, 1e-6);
    assert_close("dgamma", &g.dgamma, &finite_diff(args, 1, relu)?, 1e-6);
    assert_close("dbeta", &g.dbeta, &finite_diff(args, 2, relu)?, 1e-6);
    Ok(())
}

#[test]
fn finite_differences() -> TestResult {
    check_finite_differences(3, 4, 7, false, 1)?;
    check_finite_differences(2, 3, 17, false, 2)?;
    check_finite_differences(1, 2, 2, false, 3)
}

#[test]
fn finite_differences_relu() -> TestResult {
    check_finite_differences(3, 4, 7, true, 4)?;
    check_finite_differences(2, 3, 17, true, 5)?;
    check_finite_differences(4, 1, 3, true, 6)
}

/// The `f32` kernel against the `f64` one (checked by finite differences above).
#[test]
fn f32_matches_f64() -> TestResult {
    let (b, c, t) = (4, 6, 37);
    for relu in [false, true] {
        let x = tensor(&[b, c, t], 7, DType::F64)?;
        let gamma = (tensor(&[c], 8, DType::F64)? + 1.0)?;
        let beta = tensor(&[c], 9, DType::F64)?;
        let up = tensor(&[b, c, t], 10, DType::F64)?;
        let g64 = ours(&x, &gamma, &beta, &up, relu)?;
        let to32 = |t: &Tensor| t.to_dtype(DType::F32);
        let g32 = ours(&to32(&x)?, &to32(&gamma)?, &to32(&beta)?, &to32(&up)?, relu)?;
        assert_grads_close("f32 vs f64", &g32, &g64, 1e-5);
    }
    Ok(())
}

// ----- candle_nn -----------------------------------------------------------------------------------

#[test]
fn matches_candle_nn() -> TestResult {
    // T = 200 spans many accumulator lanes; T = 13 leaves a tail.
    for &(b, c, t) in &[(4, 16, 200), (3, 5, 13)] {
        for relu in [false, true] {
            for dtype in [DType::F32, DType::F64] {
                let x = ((tensor(&[b, c, t], 11, dtype)? * 3.0)? - 1.0)?;
                let gamma = (tensor(&[c], 12, dtype)? + 1.0)?;
                let beta = tensor(&[c], 13, dtype)?;
                let up = tensor(&[b, c, t], 14, dtype)?;
                let tol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
                let a = ours(&x, &gamma, &beta, &up, relu)?;
                let r = candle_reference(&x, &gamma, &beta, &up, relu)?;
                assert_grads_close(
                    &format!("{dtype:?} relu={relu} ({b}, {c}, {t})"),
                    &a,
                    &r,
                    tol,
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random small shapes and data against `candle_nn` in `f64` (our `f64` and `f32` kernels).
    #[test]
    fn random_shapes_match_candle_nn(
        b in 1usize..5,
        c in 1usize..6,
        t in 1usize..24,
        seed in 0u64..1000,
        scale in 0.1f64..10.0,
        offset in -100.0f64..100.0,
        relu: bool,
    ) {
        prop_assume!(b * t >= 2);
        let run = || -> TestResult {
            let x = ((tensor(&[b, c, t], seed, DType::F64)? * scale)? + offset)?;
            let xs = flat(&x)?;
            // Channels whose values nearly coincide make the gradients ill-conditioned in f32.
            for ch in 0..c {
                let vals: Vec<f64> = (0..b).flat_map(|bi| (0..t).map(move |ti| (bi, ti)))
                    .map(|(bi, ti)| xs[(bi * c + ch) * t + ti]).collect();
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
                if var < 1e-2 * scale * scale {
                    return Ok(());
                }
            }
            let gamma = (tensor(&[c], seed + 1, DType::F64)? * 2.0)?;
            let beta = tensor(&[c], seed + 2, DType::F64)?;
            let up = tensor(&[b, c, t], seed + 3, DType::F64)?;
            // Values representable in f32, so the f32 run sees the same data as the references.
            let round = |t: &Tensor| t.to_dtype(DType::F32)?.to_dtype(DType::F64);
            let (x, gamma, beta, up) = (round(&x)?, round(&gamma)?, round(&beta)?, round(&up)?);
            let reference = candle_reference(&x, &gamma, &beta, &up, relu)?;
            let g64 = ours(&x, &gamma, &beta, &up, relu)?;
            assert_grads_close("f64", &g64, &reference, 1e-9);
            let to32 = |t: &Tensor| t.to_dtype(DType::F32);
            let g32 = ours(&to32(&x)?, &to32(&gamma)?, &to32(&beta)?, &to32(&up)?, relu)?;
            assert_grads_close("f32", &g32, &reference, 1e-4);
            Ok(())
        };
        if let Err(e) = run() {
            return Err(TestCaseError::fail(e.to_string()));
        }
    }
}
