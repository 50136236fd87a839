//! Tests of `nemo_asr::kernels::depthwise_conv1d`, against three independent references:
//! candle's own grouped `conv1d` (forward and autograd), a naive `f64` loop written here from the
//! definition, and central finite differences in `f64` (first and second order). Shapes cover
//! stride 2 and 3, dilation 2, padding larger than the kernel, rows longer than one accumulator
//! block, and random small shapes (proptest).

mod common;

use candle_core::{DType, Device, IndexOp, Tensor, Var};
use common::{
    TestResult, assert_close, finite_differences, flat, is_shape_error, second_order, tensor,
};
use nemo_asr::kernels::depthwise_conv1d;
use proptest::prelude::*;

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
