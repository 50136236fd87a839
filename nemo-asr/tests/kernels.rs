//! Tests of the separable-convolution kernels in `nemo_asr::kernels`.
//!
//! `depthwise_conv1d` is checked against three independent references: candle's own grouped
//! `conv1d` (forward and autograd), a naive `f64` loop written here from the definition, and
//! central finite differences in `f64` (first and second order). `pointwise_conv1d` is checked
//! against `candle_nn`'s `Conv1d` with a 1-wide kernel and finite differences. Shapes cover stride
//! 2 and 3, dilation 2, padding larger than the kernel, rows longer than one accumulator block,
//! and random small shapes (proptest). The Jasper block's `time_mask` and `add_relu` are checked
//! against the candle ops they replace (values and gradients, random shapes and lengths) and
//! against finite differences.

use candle_core::{DType, Device, IndexOp, Tensor, Var};
use candle_nn::{Conv1d, Conv1dConfig, Module};
use nemo_asr::Error;
use nemo_asr::kernels::{add_relu, depthwise_conv1d, pointwise_conv1d, time_mask};
use proptest::prelude::*;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Deterministic pseudo-random values in `[-1, 1)` (a 64-bit LCG; no RNG state shared between tests).
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

fn tensor(shape: &[usize], seed: u64, dtype: DType) -> TestResult<Tensor> {
    let n = shape.iter().product();
    Ok(Tensor::from_vec(values(n, seed), shape, &Device::Cpu)?.to_dtype(dtype)?)
}

fn flat(t: &Tensor) -> TestResult<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

/// Asserts `|a − b| ≤ tol·(1 + |b|)` element-wise.
fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}: element {i}: {x} vs {y} (tolerance {tol})"
        );
    }
}

/// One depthwise configuration.
#[derive(Debug, Clone, Copy)]
struct Cfg {
    b: usize,
    c: usize,
    t: usize,
    k: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
}

impl Cfg {
    fn t_out(&self) -> usize {
        (self.t + 2 * self.padding - self.dilation * (self.k - 1) - 1) / self.stride + 1
    }
}

/// Shapes exercised by the fixed tests: stride 1–3, dilation 1–2, 'same' and 'valid' padding,
/// padding wider than the kernel, even kernels, QuartzNet's first block, rows over 64 steps, and
/// QuartzNet's longest kernels (75, and 87 with dilation 2: more than 64 taps).
const CASES: [Cfg; 14] = [
    Cfg {
        b: 2,
        c: 3,
        t: 37,
        k: 1,
        stride: 1,
        padding: 0,
        dilation: 1,
    },
    Cfg {
        b: 2,
        c: 3,
        t: 37,
        k: 3,
        stride: 1,
        padding: 1,
        dilation: 1,
    },
    Cfg {
        b: 1,
        c: 2,
        t: 20,
        k: 4,
        stride: 1,
        padding: 0,
        dilation: 1,
    },
    Cfg {
        b: 2,
        c: 3,
        t: 37,
        k: 5,
        stride: 2,
        padding: 2,
        dilation: 1,
    },
    Cfg {
        b: 2,
        c: 2,
        t: 31,
        k: 5,
        stride: 1,
        padding: 4,
        dilation: 2,
    },
    Cfg {
        b: 2,
        c: 3,
        t: 40,
        k: 7,
        stride: 2,
        padding: 6,
        dilation: 2,
    },
    Cfg {
        b: 1,
        c: 2,
        t: 29,
        k: 3,
        stride: 3,
        padding: 0,
        dilation: 1,
    },
    Cfg {
        b: 1,
        c: 2,
        t: 12,
        k: 3,
        stride: 1,
        padding: 7,
        dilation: 1,
    },
    Cfg {
        b: 2,
        c: 4,
        t: 150,
        k: 11,
        stride: 1,
        padding: 5,
        dilation: 1,
    },
    Cfg {
        b: 2,
        c: 3,
        t: 141,
        k: 33,
        stride: 2,
        padding: 16,
        dilation: 1,
    },
    Cfg {
        b: 1,
        c: 3,
        t: 133,
        k: 9,
        stride: 1,
        padding: 8,
        dilation: 2,
    },
    Cfg {
        b: 1,
        c: 2,
        t: 71,
        k: 6,
        stride: 3,
        padding: 3,
        dilation: 2,
    },
    Cfg {
        b: 1,
        c: 2,
        t: 100,
        k: 75,
        stride: 1,
        padding: 37,
        dilation: 1,
    },
    Cfg {
        b: 2,
        c: 2,
        t: 90,
        k: 87,
        stride: 1,
        padding: 86,
        dilation: 2,
    },
];

/// The definition, in `f64`: `y[b,c,t] = Σ_k w[c,k] · x[b,c,t·s + k·d − p]`.
fn naive_depthwise(cfg: &Cfg, x: &[f64], w: &[f64]) -> Vec<f64> {
    let t_out = cfg.t_out();
    let mut y = vec![0.0; cfg.b * cfg.c * t_out];
    for b in 0..cfg.b {
        for c in 0..cfg.c {
            for t in 0..t_out {
                let mut acc = 0.0;
                for k in 0..cfg.k {
                    let pos = (t * cfg.stride + k * cfg.dilation) as isize - cfg.padding as isize;
                    if pos >= 0 && (pos as usize) < cfg.t {
                        acc += w[c * cfg.k + k] * x[(b * cfg.c + c) * cfg.t + pos as usize];
                    }
                }
                y[(b * cfg.c + c) * t_out + t] = acc;
            }
        }
    }
    y
}

/// Gradients of `Σ y · g` for the naive definition: `(dx, dw)`.
fn naive_depthwise_grads(cfg: &Cfg, x: &[f64], w: &[f64], g: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let t_out = cfg.t_out();
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    for b in 0..cfg.b {
        for c in 0..cfg.c {
            for t in 0..t_out {
                let gy = g[(b * cfg.c + c) * t_out + t];
                for k in 0..cfg.k {
                    let pos = (t * cfg.stride + k * cfg.dilation) as isize - cfg.padding as isize;
                    if pos >= 0 && (pos as usize) < cfg.t {
                        let xi = (b * cfg.c + c) * cfg.t + pos as usize;
                        dx[xi] += w[c * cfg.k + k] * gy;
                        dw[c * cfg.k + k] += x[xi] * gy;
                    }
                }
            }
        }
    }
    (dx, dw)
}

/// `(y, dx, dw)` of `depthwise_conv1d` for the loss `Σ y · g`.
fn ours_with_grads(cfg: &Cfg, x: &Var, w: &Var, g: &Tensor) -> TestResult<[Vec<f64>; 3]> {
    let y = depthwise_conv1d(x, w, cfg.stride, cfg.padding, cfg.dilation)?;
    let grads = y.mul(g)?.sum_all()?.backward()?;
    let dx = grads.get(x).ok_or("no gradient for x")?;
    let dw = grads.get(w).ok_or("no gradient for w")?;
    Ok([flat(&y)?, flat(dx)?, flat(dw)?])
}

/// Inputs of one configuration: `(x, w, g)`.
fn inputs(cfg: &Cfg, seed: u64, dtype: DType) -> TestResult<(Var, Var, Tensor)> {
    let x = Var::from_tensor(&tensor(&[cfg.b, cfg.c, cfg.t], seed, dtype)?)?;
    let w = Var::from_tensor(&tensor(&[cfg.c, 1, cfg.k], seed + 1, dtype)?)?;
    let g = tensor(&[cfg.b, cfg.c, cfg.t_out()], seed + 2, dtype)?;
    Ok((x, w, g))
}

#[test]
fn depthwise_matches_candle_grouped_conv1d_and_its_autograd() -> TestResult {
    for (i, cfg) in CASES.iter().enumerate() {
        let (x, w, g) = inputs(cfg, 10 * i as u64, DType::F32)?;
        let [y, dx, dw] = ours_with_grads(cfg, &x, &w, &g)?;

        let y_ref = x.conv1d(&w, cfg.padding, cfg.stride, cfg.dilation, cfg.c)?;
        assert_eq!(y_ref.dims(), [cfg.b, cfg.c, cfg.t_out()], "{cfg:?}");
        assert_close(&format!("y {cfg:?}"), &y, &flat(&y_ref)?, 1e-5);

        // candle's conv1d backward computes `(T_out − 1)·stride − 2·padding` in `usize` (in
        // `conv_transpose1d`): it overflows, and panics in debug builds, when the padding is
        // wider than that. Those cases are checked against the definition in f64 instead.
        if 2 * cfg.padding > (cfg.t_out() - 1) * cfg.stride {
            continue;
        }
        let grads = y_ref.mul(&g)?.sum_all()?.backward()?;
        let dx_ref = grads.get(&x).ok_or("candle: no gradient for x")?;
        let dw_ref = grads.get(&w).ok_or("candle: no gradient for w")?;
        assert_close(&format!("dx {cfg:?}"), &dx, &flat(dx_ref)?, 1e-5);
        assert_close(&format!("dw {cfg:?}"), &dw, &flat(dw_ref)?, 1e-4);
    }
    Ok(())
}

#[test]
fn depthwise_f64_matches_the_definition() -> TestResult {
    for (i, cfg) in CASES.iter().enumerate() {
        let (x, w, g) = inputs(cfg, 100 + 10 * i as u64, DType::F64)?;
        let [y, dx, dw] = ours_with_grads(cfg, &x, &w, &g)?;
        let (xv, wv, gv) = (flat(&x)?, flat(&w)?, flat(&g)?);
        let (dx_ref, dw_ref) = naive_depthwise_grads(cfg, &xv, &wv, &gv);
        assert_close(
            &format!("y {cfg:?}"),
            &y,
            &naive_depthwise(cfg, &xv, &wv),
            1e-12,
        );
        assert_close(&format!("dx {cfg:?}"), &dx, &dx_ref, 1e-12);
        assert_close(&format!("dw {cfg:?}"), &dw, &dw_ref, 1e-12);
    }
    Ok(())
}

/// Central differences of `f` at every element of `at`.
fn finite_differences(
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

#[test]
fn depthwise_gradients_match_finite_differences() -> TestResult {
    let cfgs = [
        Cfg {
            b: 2,
            c: 2,
            t: 9,
            k: 3,
            stride: 1,
            padding: 1,
            dilation: 1,
        },
        Cfg {
            b: 1,
            c: 2,
            t: 11,
            k: 4,
            stride: 2,
            padding: 2,
            dilation: 1,
        },
        Cfg {
            b: 2,
            c: 1,
            t: 13,
            k: 3,
            stride: 1,
            padding: 2,
            dilation: 2,
        },
        Cfg {
            b: 1,
            c: 2,
            t: 14,
            k: 5,
            stride: 2,
            padding: 4,
            dilation: 2,
        },
        Cfg {
            b: 1,
            c: 1,
            t: 10,
            k: 2,
            stride: 3,
            padding: 1,
            dilation: 1,
        },
    ];
    for (i, cfg) in cfgs.iter().enumerate() {
        let (x, w, g) = inputs(cfg, 1000 + 10 * i as u64, DType::F64)?;
        let [_, dx, dw] = ours_with_grads(cfg, &x, &w, &g)?;
        let (xv, wv) = (flat(&x)?, flat(&w)?);
        let loss = |xv: &[f64], wv: &[f64]| -> TestResult<f64> {
            let x = Tensor::from_slice(xv, x.dims(), &Device::Cpu)?;
            let w = Tensor::from_slice(wv, w.dims(), &Device::Cpu)?;
            let y = depthwise_conv1d(&x, &w, cfg.stride, cfg.padding, cfg.dilation)?;
            Ok(y.mul(&g)?.sum_all()?.to_scalar::<f64>()?)
        };
        let dx_fd = finite_differences(&xv, |xp| loss(xp, &wv))?;
        let dw_fd = finite_differences(&wv, |wp| loss(&xv, wp))?;
        assert_close(&format!("dx {cfg:?}"), &dx, &dx_fd, 1e-7);
        assert_close(&format!("dw {cfg:?}"), &dw, &dw_fd, 1e-7);
    }
    Ok(())
}

/// `s(x, w) = <∂L/∂x, h₁> + <∂L/∂w, h₂>` for `L = Σ op(x, w) · g`, and its gradient through the
/// backward ops (`create_graph` style: candle keeps the graph of the gradients).
fn second_order(
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

#[test]
fn depthwise_second_order_gradients_match_finite_differences() -> TestResult {
    let cfg = Cfg {
        b: 2,
        c: 2,
        t: 11,
        k: 3,
        stride: 2,
        padding: 2,
        dilation: 2,
    };
    let (x, w, g) = inputs(&cfg, 7, DType::F64)?;
    let h1 = tensor(x.dims(), 8, DType::F64)?;
    let h2 = tensor(w.dims(), 9, DType::F64)?;
    let op = |x: &Tensor, w: &Tensor| -> TestResult<Tensor> {
        Ok(depthwise_conv1d(
            x,
            w,
            cfg.stride,
            cfg.padding,
            cfg.dilation,
        )?)
    };
    let (_, dsx, dsw) = second_order(&op, &x, &w, &g, &h1, &h2)?;
    let (xv, wv) = (flat(&x)?, flat(&w)?);
    let s = |xv: &[f64], wv: &[f64]| -> TestResult<f64> {
        let x = Var::from_slice(xv, x.dims(), &Device::Cpu)?;
        let w = Var::from_slice(wv, w.dims(), &Device::Cpu)?;
        Ok(second_order(&op, &x, &w, &g, &h1, &h2)?.0)
    };
    let dsx_fd = finite_differences(&xv, |xp| s(xp, &wv))?;
    let dsw_fd = finite_differences(&wv, |wp| s(&xv, wp))?;
    assert_close("d²/dx", &dsx, &dsx_fd, 1e-7);
    assert_close("d²/dw", &dsw, &dsw_fd, 1e-7);
    Ok(())
}

#[test]
fn depthwise_accepts_non_contiguous_inputs() -> TestResult {
    let cfg = Cfg {
        b: 2,
        c: 5,
        t: 70,
        k: 7,
        stride: 2,
        padding: 3,
        dilation: 1,
    };
    // (B, T, C) transposed to (B, C, T), and a weight sliced out of a wider one.
    let x = tensor(&[cfg.b, cfg.t, cfg.c], 1, DType::F32)?.transpose(1, 2)?;
    let w_wide = tensor(&[cfg.c, 1, cfg.k + 2], 2, DType::F32)?;
    let w = w_wide.narrow(2, 1, cfg.k)?;
    assert!(!x.is_contiguous() && !w.is_contiguous());
    let y = depthwise_conv1d(&x, &w, cfg.stride, cfg.padding, cfg.dilation)?;
    let y_ref = depthwise_conv1d(&x.contiguous()?, &w.contiguous()?, 2, 3, 1)?;
    assert_eq!(flat(&y)?, flat(&y_ref)?);

    // Gradients flow back through the implicit copies.
    let xv = Var::from_tensor(&tensor(&[cfg.b, cfg.t, cfg.c], 1, DType::F32)?)?;
    let y = depthwise_conv1d(&xv.transpose(1, 2)?, &w, 2, 3, 1)?;
    let grads = y.sum_all()?.backward()?;
    assert_eq!(
        grads.get(&xv).ok_or("no gradient")?.dims(),
        [cfg.b, cfg.t, cfg.c]
    );
    Ok(())
}

#[test]
fn depthwise_half_precision_uses_the_candle_fallback() -> TestResult {
    let cfg = Cfg {
        b: 2,
        c: 3,
        t: 30,
        k: 5,
        stride: 2,
        padding: 2,
        dilation: 1,
    };
    let (x, w, _) = inputs(&cfg, 3, DType::F32)?;
    let y32 = flat(&depthwise_conv1d(&x, &w, 2, 2, 1)?)?;
    for dtype in [DType::F16, DType::BF16] {
        let y = depthwise_conv1d(&x.to_dtype(dtype)?, &w.to_dtype(dtype)?, 2, 2, 1)?;
        assert_eq!(y.dtype(), dtype);
        assert_close(&format!("{dtype:?}"), &flat(&y)?, &y32, 3e-2);
    }
    Ok(())
}

#[test]
fn depthwise_output_length_follows_pytorch() -> TestResult {
    // T_out = floor((T + 2p − d(K − 1) − 1) / s) + 1, e.g. QuartzNet's first block halves T.
    let x = Tensor::zeros((1, 2, 401), DType::F32, &Device::Cpu)?;
    let w = Tensor::zeros((2, 1, 33), DType::F32, &Device::Cpu)?;
    assert_eq!(depthwise_conv1d(&x, &w, 2, 16, 1)?.dims(), [1, 2, 201]);
    let w = Tensor::zeros((2, 1, 87), DType::F32, &Device::Cpu)?;
    assert_eq!(depthwise_conv1d(&x, &w, 1, 86, 2)?.dims(), [1, 2, 401]);
    // The kernel may be exactly as long as the padded input.
    let x = Tensor::ones((1, 1, 3), DType::F32, &Device::Cpu)?;
    let w = Tensor::ones((1, 1, 5), DType::F32, &Device::Cpu)?;
    let y = depthwise_conv1d(&x, &w, 1, 1, 1)?;
    assert_eq!(flat(&y)?, [3.0]);
    // An empty batch gives an empty result.
    let x = Tensor::zeros((0, 2, 10), DType::F32, &Device::Cpu)?;
    let w = Tensor::zeros((2, 1, 3), DType::F32, &Device::Cpu)?;
    assert_eq!(depthwise_conv1d(&x, &w, 1, 1, 1)?.dims(), [0, 2, 10]);
    Ok(())
}

fn is_shape_error<T: std::fmt::Debug>(r: nemo_asr::Result<T>) -> bool {
    matches!(
        r,
        Err(Error::Shape {
            op: "depthwise_conv1d" | "pointwise_conv1d",
            ..
        })
    )
}

#[test]
fn depthwise_rejects_bad_arguments() -> TestResult {
    let dev = Device::Cpu;
    let x = Tensor::zeros((2, 4, 10), DType::F32, &dev)?;
    let w = Tensor::zeros((4, 1, 3), DType::F32, &dev)?;
    assert!(is_shape_error(depthwise_conv1d(&x.i(0)?, &w, 1, 1, 1)));
    assert!(is_shape_error(depthwise_conv1d(&x, &w.i(0..3)?, 1, 1, 1)));
    let w_groups = Tensor::zeros((4, 2, 3), DType::F32, &dev)?;
    assert!(is_shape_error(depthwise_conv1d(&x, &w_groups, 1, 1, 1)));
    assert!(is_shape_error(depthwise_conv1d(&x, &w, 0, 1, 1)));
    assert!(is_shape_error(depthwise_conv1d(&x, &w, 1, 1, 0)));
    assert!(is_shape_error(depthwise_conv1d(&x, &w, 1, 0, 5)));
    assert!(is_shape_error(depthwise_conv1d(&x, &w, 1, usize::MAX, 1)));
    assert!(is_shape_error(depthwise_conv1d(
        &x,
        &w.to_dtype(DType::F64)?,
        1,
        1,
        1
    )));
    let w0 = Tensor::zeros((4, 1, 0), DType::F32, &dev)?;
    assert!(is_shape_error(depthwise_conv1d(&x, &w0, 1, 1, 1)));
    let err = depthwise_conv1d(&x, &w, 1, 0, 5)
        .err()
        .ok_or("expected an error")?;
    assert!(err.to_string().contains("spans 11 steps"), "{err}");
    Ok(())
}

fn check_random_case(cfg: Cfg, seed: u64) -> TestResult {
    // f64: exact agreement with the definition, gradients included.
    let (x, w, g) = inputs(&cfg, seed, DType::F64)?;
    let [y, dx, dw] = ours_with_grads(&cfg, &x, &w, &g)?;
    let (xv, wv, gv) = (flat(&x)?, flat(&w)?, flat(&g)?);
    let (dx_ref, dw_ref) = naive_depthwise_grads(&cfg, &xv, &wv, &gv);
    assert_close("y", &y, &naive_depthwise(&cfg, &xv, &wv), 1e-12);
    assert_close("dx", &dx, &dx_ref, 1e-12);
    assert_close("dw", &dw, &dw_ref, 1e-12);
    // f32: agreement with candle's grouped convolution.
    let (x, w, _) = inputs(&cfg, seed, DType::F32)?;
    let y = depthwise_conv1d(&x, &w, cfg.stride, cfg.padding, cfg.dilation)?;
    let y_ref = x.conv1d(&w, cfg.padding, cfg.stride, cfg.dilation, cfg.c)?;
    assert_close("y f32", &flat(&y)?, &flat(&y_ref)?, 1e-5);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random shapes; short kernels with any stride, dilation and padding.
    #[test]
    fn depthwise_random_shapes(
        b in 1usize..3, c in 1usize..4, t in 1usize..90, k in 1usize..10,
        stride in 1usize..4, padding in 0usize..8, dilation in 1usize..4, seed in 0u64..1000,
    ) {
        prop_assume!(dilation * (k - 1) < t + 2 * padding);
        let cfg = Cfg { b, c, t, k, stride, padding, dilation };
        check_random_case(cfg, seed).map_err(|e| TestCaseError::fail(format!("{cfg:?}: {e}")))?;
    }

    /// Random shapes with long kernels (up to 90 taps, every weight-gradient block size); the
    /// padding is raised where needed so that every case is valid.
    #[test]
    fn depthwise_random_long_kernels(
        t in 1usize..160, k in 1usize..90, stride in 1usize..3, dilation in 1usize..3,
        extra_padding in 0usize..20, seed in 0u64..1000,
    ) {
        let span = dilation * (k - 1) + 1;
        let padding = span.saturating_sub(t).div_ceil(2) + extra_padding;
        let cfg = Cfg { b: 2, c: 2, t, k, stride, padding, dilation };
        check_random_case(cfg, seed).map_err(|e| TestCaseError::fail(format!("{cfg:?}: {e}")))?;
    }
}

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
