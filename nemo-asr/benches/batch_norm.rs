//! Speed of the fused batch normalization ([`BatchNorm1d`]) against `candle_nn::BatchNorm`.
//!
//! Input `(B, C, T) = (16, 256, 200)`, `f32`, CPU, rayon's default thread count — one sub-block of
//! the small QuartzNet:
//!
//! * `batch_norm_train_fwd/*`: training-mode forward (batch statistics and running-statistics
//!   update) of [`BatchNorm1d`] (`ours`, `ours_relu` with the ReLU fused) and of
//!   `candle_nn::BatchNorm` (`candle_nn`, and `candle_nn_relu` followed by candle's `relu`);
//! * `batch_norm_train_fwd_bwd/*`: the same plus the backward of `op(x).sum()`, gradients for `x`,
//!   `weight` and `bias`. `loss_only` times `x.sum().backward()` alone, the part of every row that
//!   is not the layer. (A loss `(op(x) · g).sum()` with a random `g` would add candle's backward of
//!   a product with a broadcast scalar gradient, 15–30 ms here, swamping the layer; the kernels do
//!   the same work whatever `∂L/∂y` holds.)
//! * `batch_norm_eval/*`: evaluation mode (running statistics), both layers.
//!
//! Run: `cargo bench -p nemo-asr --bench batch_norm`. PyTorch's time for the same op, for
//! comparison (2 threads):
//!
//! ```text
//! /usr/bin/python3 -c "
//! import torch, time; torch.set_num_threads(2)
//! bn = torch.nn.BatchNorm1d(256, eps=1e-3); x = torch.randn(16, 256, 200, requires_grad=True)
//! def step(): torch.relu(bn(x)).sum().backward()
//! for _ in range(20): step()
//! t = time.perf_counter(); [step() for _ in range(200)]; print((time.perf_counter() - t) / 200 * 1e3, 'ms')"
//! ```

use std::error::Error;
use std::hint::black_box;
use std::time::Duration;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use criterion::Criterion;
use nemo_asr::kernels::BatchNorm1d;

type BenchResult<T> = Result<T, Box<dyn Error>>;

const B: usize = 16;
const C: usize = 256;
const T: usize = 200;

/// One contender: its name and its forward (`x`, `train`) → `y`.
type Forward<'a> = Box<dyn Fn(&Tensor, bool) -> BenchResult<Tensor> + 'a>;

fn main() -> BenchResult<()> {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (B, C, T), &dev)?)?;

    let ours_map = VarMap::new();
    let ours = BatchNorm1d::new(
        C,
        1e-3,
        0.1,
        VarBuilder::from_varmap(&ours_map, DType::F32, &dev),
    )?;
    let candle_map = VarMap::new();
    let cfg = candle_nn::BatchNormConfig {
        eps: 1e-3,
        remove_mean: true,
        affine: true,
        momentum: 0.1,
    };
    let theirs = candle_nn::batch_norm(
        C,
        cfg,
        VarBuilder::from_varmap(&candle_map, DType::F32, &dev),
    )?;

    let contenders: Vec<(&str, Forward)> = vec![
        (
            "ours",
            Box::new(|x: &Tensor, train| Ok(ours.forward_t(x, train, false)?)),
        ),
        (
            "ours_relu",
            Box::new(|x: &Tensor, train| Ok(ours.forward_t(x, train, true)?)),
        ),
        (
            "candle_nn",
            Box::new(|x: &Tensor, train| Ok(theirs.forward_t(x, train)?)),
        ),
        (
            "candle_nn_relu",
            Box::new(|x: &Tensor, train| Ok(theirs.forward_t(x, train)?.relu()?)),
        ),
    ];

    let mut c = Criterion::default().configure_from_args();
    let mut fwd = c.benchmark_group("batch_norm_train_fwd");
    fwd.measurement_time(Duration::from_secs(3));
    for (name, f) in &contenders {
        fwd.bench_function(*name, |b| b.iter(|| black_box(f(x.as_tensor(), true))));
    }
    fwd.finish();

    let mut both = c.benchmark_group("batch_norm_train_fwd_bwd");
    both.measurement_time(Duration::from_secs(3));
    for (name, f) in &contenders {
        both.bench_function(*name, |b| {
            b.iter(|| -> BenchResult<()> {
                let y = f(x.as_tensor(), true)?;
                black_box(y.sum_all()?.backward()?);
                Ok(())
            })
        });
    }
    both.bench_function("loss_only", |b| {
        b.iter(|| -> BenchResult<()> {
            black_box(x.as_tensor().sum_all()?.backward()?);
            Ok(())
        })
    });
    both.finish();

    let mut eval = c.benchmark_group("batch_norm_eval");
    eval.measurement_time(Duration::from_secs(3));
    for (name, f) in &contenders {
        eval.bench_function(*name, |b| b.iter(|| black_box(f(x.as_tensor(), false))));
    }
    eval.finish();

    c.final_summary();
    Ok(())
}
