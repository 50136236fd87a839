//! Speed of QuartzNet's separable-convolution kernels against candle's own convolutions.
//!
//! Input `(B, C, T) = (16, 256, 400)`, `f32`, CPU, rayon's default thread count:
//!
//! * `depthwise_fwd/*`, `depthwise_fwd_bwd/*`: [`depthwise_conv1d`] (`ours`) and candle's
//!   `conv1d(.., groups = C)` (`candle`) for `K` in {13, 21, 33} with "same" padding, and for the
//!   stride-2 `K = 33` first block of QuartzNet (`k33_s2`). candle's grouped forward+backward takes
//!   over a second per call, so it is measured for `K = 13` and `K = 21` only, unless
//!   `NEMO_BENCH_SLOW=1` is set.
//! * `pointwise_fwd/*`, `pointwise_fwd_bwd/*`: [`pointwise_conv1d`] (`ours`, GEMM custom ops),
//!   the same product through `broadcast_matmul` (`matmul`) and `candle_nn`'s `Conv1d` with a
//!   1-wide kernel (`candle_nn`), `256 → 256` channels with bias.
//! * `overhead/dot_loss_bwd`: the fixed cost of the loss below and of candle's gradient
//!   bookkeeping for one `(B, C, T)` variable, without any convolution.
//!
//! forward+backward = `op(x, w)` then `backward()` of `Σ y · g` for a fixed random `g`, through
//! [`DotLoss`], whose backward hands `g` over as the gradient of `y`: the analogue of PyTorch's
//! `y.backward(g)` in `scripts/bench_conv_torch.py`. (A loss built from candle ops,
//! `y.mul(g)?.sum_all()?`, would add about 10 ms of broadcasting in its own backward.)
//!
//! Run: `cargo bench -p nemo-asr --bench conv` (add a filter such as `depthwise_fwd/` to narrow).

use std::error::Error;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, Var};
use candle_nn::{Conv1d, Conv1dConfig, Module};
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use nemo_asr::kernels::{depthwise_conv1d, pointwise_conv1d};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const B: usize = 16;
const C: usize = 256;
const T: usize = 400;

/// The scalar loss `Σ y · g` whose gradient with respect to `y` is `g` itself (scaled by the
/// upstream gradient, 1 at the root of `backward`).
struct DotLoss {
    g: Tensor,
    g_data: Arc<Vec<f32>>,
}

impl DotLoss {
    fn new(g: &Tensor) -> BenchResult<Self> {
        let g_data = Arc::new(g.flatten_all()?.to_vec1::<f32>()?);
        Ok(Self {
            g: g.clone(),
            g_data,
        })
    }

    fn cloned(&self) -> Self {
        Self {
            g: self.g.clone(),
            g_data: Arc::clone(&self.g_data),
        }
    }
}

impl CustomOp1 for DotLoss {
    fn name(&self) -> &'static str {
        "dot-loss"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("dot-loss: y must be contiguous");
        };
        let y = storage.as_slice::<f32>()?.get(start..end).unwrap_or(&[]);
        let dot = y
            .iter()
            .zip(self.g_data.iter())
            .map(|(a, b)| a * b)
            .sum::<f32>();
        Ok((CpuStorage::F32(vec![dot]), Shape::from(())))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let scale = f64::from(grad_res.to_scalar::<f32>()?);
        Ok(Some(if scale == 1.0 {
            self.g.clone()
        } else {
            self.g.affine(scale, 0.)?
        }))
    }
}

/// `y = op(x, w)`, then the gradients of `Σ y · g` for `x` and `w`.
fn fwd_bwd(
    op: impl Fn(&Tensor, &Tensor) -> BenchResult<Tensor>,
    x: &Var,
    w: &Var,
    loss: &DotLoss,
) -> BenchResult<GradStore> {
    let y = op(x.as_tensor(), w.as_tensor())?;
    Ok(y.apply_op1(loss.cloned())?.backward()?)
}

/// Benchmarks `f`; its first run (made only when the filter selects this benchmark) must succeed.
fn bench<R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    f: impl Fn() -> BenchResult<R>,
) -> BenchResult<()> {
    let mut failure = None;
    group.bench_function(id, |b| {
        if failure.is_none()
            && let Err(e) = f()
        {
            failure = Some(format!("{id}: {e}"));
        }
        b.iter(|| black_box(f().is_ok()))
    });
    match failure {
        Some(msg) => Err(msg.into()),
        None => Ok(()),
    }
}

/// A depthwise configuration: name, `K`, stride, padding (dilation 1).
const DW_CASES: [(&str, usize, usize, usize); 4] = [
    ("k13", 13, 1, 6),
    ("k21", 21, 1, 10),
    ("k33", 33, 1, 16),
    ("k33_s2", 33, 2, 16),
];

fn depthwise(c: &mut Criterion, slow: bool) -> BenchResult<()> {
    let dev = Device::Cpu;
    let x = Var::randn(0f32, 1., (B, C, T), &dev)?;
    let mut fwd = c.benchmark_group("depthwise_fwd");
    fwd.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, k, s, p) in DW_CASES {
        let w = Tensor::randn(0f32, 1., (C, 1, k), &dev)?;
        bench(&mut fwd, &format!("ours/{name}"), || {
            Ok(depthwise_conv1d(x.as_tensor(), &w, s, p, 1)?)
        })?;
        bench(&mut fwd, &format!("candle/{name}"), || {
            Ok(x.as_tensor().conv1d(&w, p, s, 1, C)?)
        })?;
    }
    fwd.finish();

    let mut both = c.benchmark_group("depthwise_fwd_bwd");
    both.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, k, s, p) in DW_CASES {
        let w = Var::randn(0f32, 1., (C, 1, k), &dev)?;
        let t_out = (T + 2 * p - (k - 1) - 1) / s + 1;
        let g = DotLoss::new(&Tensor::randn(0f32, 1., (B, C, t_out), &dev)?)?;
        bench(&mut both, &format!("ours/{name}"), || {
            fwd_bwd(|x, w| Ok(depthwise_conv1d(x, w, s, p, 1)?), &x, &w, &g)
        })?;
        if slow || k <= 21 {
            both.sample_size(10);
            bench(&mut both, &format!("candle/{name}"), || {
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
    let g = DotLoss::new(&Tensor::randn(0f32, 1., (B, C, T), &dev)?)?;
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
    type Op<'a> = &'a dyn Fn(&Tensor, &Tensor) -> BenchResult<Tensor>;
    let ops: [(&str, Op); 3] = [("ours", &ours), ("matmul", &matmul), ("candle_nn", &nn)];

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

fn overhead(c: &mut Criterion) -> BenchResult<()> {
    let dev = Device::Cpu;
    let x = Var::randn(0f32, 1., (B, C, T), &dev)?;
    let g = DotLoss::new(&Tensor::randn(0f32, 1., (B, C, T), &dev)?)?;
    let mut group = c.benchmark_group("overhead");
    bench(&mut group, "dot_loss_bwd", || {
        Ok(x.as_tensor().apply_op1(g.cloned())?.backward()?)
    })?;
    group.finish();
    Ok(())
}

fn main() -> BenchResult<()> {
    let slow = std::env::var("NEMO_BENCH_SLOW").is_ok_and(|v| v == "1");
    let mut c = Criterion::default().configure_from_args();
    depthwise(&mut c, slow)?;
    pointwise(&mut c)?;
    overhead(&mut c)?;
    c.final_summary();
    Ok(())
}
