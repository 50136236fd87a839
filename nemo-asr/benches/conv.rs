//! Speed of QuartzNet's separable-convolution kernels against candle's own convolutions.
//!
//! Input `(B, C, T) = (16, 256, 400)`, `f32`, CPU, rayon's default thread count:
//!
//! * `depthwise_fwd/*`, `depthwise_fwd_bwd/*`: [`depthwise_conv1d`] (`ours`) and candle's
//!   `conv1d(.., groups = C)` (`candle`) for `K` in {13, 21, 33} with "same" padding, and for the
//!   stride-2 `K = 33` first block of QuartzNet (`k33_s2`). candle's grouped forward+backward takes
//!   about a second per call, so it is only measured for `K = 13` and `K = 21` (and only when
//!   `NEMO_BENCH_SLOW=1` is set, it runs for the others too).
//! * `pointwise_fwd/*`, `pointwise_fwd_bwd/*`: [`pointwise_conv1d`] (`ours`, GEMM custom ops),
//!   the same product through `broadcast_matmul` (`matmul`) and `candle_nn`'s `Conv1d` with a
//!   1-wide kernel (`candle_nn`), `256 → 256` channels with bias.
//!
//! forward+backward = `(op(x, w) · g).sum().backward()` with a fixed random `g`, the same
//! definition as `scripts/bench_conv_torch.py` uses for PyTorch.
//!
//! Run: `cargo bench -p nemo-asr --bench conv` (add a filter such as `depthwise_fwd/` to narrow).

use std::error::Error;
use std::hint::black_box;
use std::time::Duration;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Conv1d, Conv1dConfig, Module};
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use nemo_asr::kernels::{depthwise_conv1d, pointwise_conv1d};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const B: usize = 16;
const C: usize = 256;
const T: usize = 400;

/// A depthwise configuration: name, K, stride, padding, dilation.
struct DwCase {
    name: &'static str,
    k: usize,
    stride: usize,
    padding: usize,
}

const DW_CASES: [DwCase; 4] = [
    DwCase {
        name: "k13",
        k: 13,
        stride: 1,
        padding: 6,
    },
    DwCase {
        name: "k21",
        k: 21,
        stride: 1,
        padding: 10,
    },
    DwCase {
        name: "k33",
        k: 33,
        stride: 1,
        padding: 16,
    },
    DwCase {
        name: "k33_s2",
        k: 33,
        stride: 2,
        padding: 16,
    },
];

/// `(op(x, w) · g).sum().backward()`: the forward+backward measured everywhere.
fn fwd_bwd(
    op: impl Fn(&Tensor, &Tensor) -> BenchResult<Tensor>,
    x: &Var,
    w: &Var,
    g: &Tensor,
) -> BenchResult<candle_core::backprop::GradStore> {
    let y = op(x.as_tensor(), w.as_tensor())?;
    Ok(y.mul(g)?.sum_all()?.backward()?)
}

/// Benchmarks `f` after checking once that it succeeds.
fn bench<R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    f: impl Fn() -> BenchResult<R>,
) -> BenchResult<()> {
    black_box(f()?);
    group.bench_function(id, |b| b.iter(|| black_box(f().is_ok())));
    Ok(())
}

fn depthwise(c: &mut Criterion, slow: bool) -> BenchResult<()> {
    let dev = Device::Cpu;
    let x = Var::randn(0f32, 1., (B, C, T), &dev)?;
    let mut fwd = c.benchmark_group("depthwise_fwd");
    fwd.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for case in &DW_CASES {
        let w = Tensor::randn(0f32, 1., (C, 1, case.k), &dev)?;
        let (s, p) = (case.stride, case.padding);
        bench(&mut fwd, &format!("ours/{}", case.name), || {
            Ok(depthwise_conv1d(x.as_tensor(), &w, s, p, 1)?)
        })?;
        bench(&mut fwd, &format!("candle/{}", case.name), || {
            Ok(x.as_tensor().conv1d(&w, p, s, 1, C)?)
        })?;
    }
    fwd.finish();

    let mut both = c.benchmark_group("depthwise_fwd_bwd");
    both.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for case in &DW_CASES {
        let w = Var::randn(0f32, 1., (C, 1, case.k), &dev)?;
        let (s, p) = (case.stride, case.padding);
        let t_out = (T + 2 * p - (case.k - 1) - 1) / s + 1;
        let g = Tensor::randn(0f32, 1., (B, C, t_out), &dev)?;
        bench(&mut both, &format!("ours/{}", case.name), || {
            fwd_bwd(|x, w| Ok(depthwise_conv1d(x, w, s, p, 1)?), &x, &w, &g)
        })?;
        if slow || case.k <= 21 {
            both.sample_size(10);
            bench(&mut both, &format!("candle/{}", case.name), || {
                fwd_bwd(|x, w| Ok(x.conv1d(w, p, s, 1, C)?), &x, &w, &g)
            })?;
            both.sample_size(100);
        }
    }
    both.finish();
    Ok(())
}

fn pointwise(c: &mut Criterion) -> BenchResult<()> {
    let dev = Device::Cpu;
    let x = Var::randn(0f32, 1., (B, C, T), &dev)?;
    let w = Var::randn(0f32, 0.06, (C, C, 1), &dev)?;
    let bias = Var::zeros(C, DType::F32, &dev)?;
    let g = Tensor::randn(0f32, 1., (B, C, T), &dev)?;
    let ours = |x: &Tensor, w: &Tensor| Ok(pointwise_conv1d(x, w, Some(bias.as_tensor()))?);
    let matmul = |x: &Tensor, w: &Tensor| {
        let y = w.reshape((C, C))?.broadcast_matmul(x)?;
        Ok(y.broadcast_add(&bias.as_tensor().reshape((1, C, 1))?)?)
    };
    let nn = |x: &Tensor, w: &Tensor| {
        let conv = Conv1d::new(
            w.clone(),
            Some(bias.as_tensor().clone()),
            Conv1dConfig::default(),
        );
        Ok(conv.forward(x)?)
    };
    let ops: [(&str, &dyn Fn(&Tensor, &Tensor) -> BenchResult<Tensor>); 3] =
        [("ours", &ours), ("matmul", &matmul), ("candle_nn", &nn)];

    let mut fwd = c.benchmark_group("pointwise_fwd");
    fwd.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, op) in ops {
        bench(&mut fwd, &format!("{name}/c256_t400"), || {
            op(x.as_tensor(), w.as_tensor())
        })?;
    }
    fwd.finish();

    let mut both = c.benchmark_group("pointwise_fwd_bwd");
    both.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, op) in ops {
        bench(&mut both, &format!("{name}/c256_t400"), || {
            fwd_bwd(op, &x, &w, &g)
        })?;
    }
    both.finish();
    Ok(())
}

fn main() -> BenchResult<()> {
    let slow = std::env::var("NEMO_BENCH_SLOW").is_ok_and(|v| v == "1");
    let mut c = Criterion::default().configure_from_args();
    depthwise(&mut c, slow)?;
    pointwise(&mut c)?;
    c.final_summary();
    Ok(())
}
