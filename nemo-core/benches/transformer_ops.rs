//! Speed of the fused [`layer_norm`] and [`softmax`] (forward, and forward + backward) against
//! candle's composed differentiable ops, the ones a model must use with candle alone to train.
//!
//! Shapes, `f32`, CPU, rayon's default thread count:
//! * `layer_norm/*`: `x` `(B, T, D) = (32, 64, 512)` with `weight`, `bias` `(D)`; ours against
//!   `candle_nn::ops::layer_norm_slow` (and, forward only, candle's fused
//!   `candle_nn::ops::layer_norm`, which has no backward);
//! * `softmax/*`: the same `x`, softmax over `D`; ours against `candle_nn::ops::softmax` (and,
//!   forward only, the fused `softmax_last_dim` without backward);
//! * `masked_softmax/*`: attention scores `(B, H, T_q, T_k) = (32, 8, 64, 64)` plus a key-padding
//!   mask `(B, 1, 1, T_k)`; ours (mask fused) against `candle_nn::ops::softmax(scores + mask)`.
//!
//! Forward + backward runs `op(x).sum_all().backward()`, with gradients for every input that is
//! a variable (`x`, `weight`, `bias`); `loss_only` times `x.sum_all().backward()` alone, the part
//! of every row that is not the op. After criterion's groups, an interleaved run (30 alternating
//! calls per contender) prints each one's median wall time and its CPU time per call (all
//! threads, from `/proc/self/task/*/schedstat`; steadier than wall time on a shared machine),
//! and the ratios candle / ours. `TRANSFORMER_OPS_SUMMARY_ONLY=1` skips criterion's groups.
//!
//! Run: `cargo bench -p nemo-core --bench transformer_ops`; PyTorch's numbers for the same ops:
//! `/usr/bin/python3 scripts/bench_transformer_ops_torch.py`.
//!
//! Forward + backward of every contender is dominated by candle's autograd around the op:
//! each input's first gradient is `zeros_like` + `add`, every op allocates a fresh 4 MB buffer,
//! and glibc hands freed buffers back to the kernel, so the next one page-faults. With
//! `MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_MMAP_THRESHOLD_=1073741824` in the environment
//! (glibc keeps freed memory) the same run is several times faster; docs/benchmarks.md gives both.

use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use candle_core::{D, Device, Tensor, Var};
use criterion::Criterion;
use nemo_core::nn::{layer_norm, softmax};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// One contender: its name and its op on the inputs.
type Op<'a> = (&'static str, Box<dyn Fn() -> BenchResult<Tensor> + 'a>);

/// A group of contenders timed forward and forward + backward.
struct Case<'a> {
    name: &'static str,
    /// Differentiable contenders, ours first.
    ops: Vec<Op<'a>>,
    /// Forward-only contenders (no backward exists).
    forward_only: Vec<Op<'a>>,
    /// The input whose `sum().backward()` is the loss-only baseline.
    x: &'a Var,
}

fn fwd_bwd(f: &dyn Fn() -> BenchResult<Tensor>) -> BenchResult<()> {
    let y = f()?;
    black_box(y.sum_all()?.backward()?);
    Ok(())
}

/// CPU time of this process so far, in seconds: the sum over its threads of the first field of
/// `/proc/self/task/<tid>/schedstat` (nanoseconds on a CPU). `None` off Linux.
fn cpu_time() -> Option<f64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path().join("schedstat");
        // A thread may end between listing and reading: skip it.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total as f64 * 1e-9)
}

/// Per contender: the median wall seconds of `runs` calls, interleaved call by call with the
/// others, and the mean CPU seconds per call (`NaN` where unknown).
fn interleaved(fs: &[&dyn Fn() -> BenchResult<()>], runs: usize) -> BenchResult<Vec<(f64, f64)>> {
    let mut times = vec![Vec::with_capacity(runs); fs.len()];
    let mut cpu = vec![0.0; fs.len()];
    for f in fs {
        f()?; // warm-up
    }
    for _ in 0..runs {
        for ((f, t), c) in fs.iter().zip(times.iter_mut()).zip(cpu.iter_mut()) {
            let cpu_start = cpu_time();
            let start = Instant::now();
            f()?;
            t.push(start.elapsed().as_secs_f64());
            *c += match (cpu_start, cpu_time()) {
                (Some(a), Some(b)) => b - a,
                _ => f64::NAN,
            };
        }
    }
    Ok(times
        .into_iter()
        .zip(cpu)
        .map(|(mut t, c)| {
            t.sort_by(f64::total_cmp);
            (t[t.len() / 2], c / runs as f64)
        })
        .collect())
}

fn main() -> BenchResult<()> {
    let dev = Device::Cpu;
    let (b, t, d, h) = (32, 64, 512, 8);
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, t, d), &dev)?)?;
    let w = Var::from_tensor(&Tensor::randn(1f32, 0.1, d, &dev)?)?;
    let bias = Var::from_tensor(&Tensor::randn(0f32, 0.1, d, &dev)?)?;
    let scores = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, h, t, t), &dev)?)?;
    // Key padding: row i of the batch has 64 − i valid keys.
    let mask: Vec<f32> = (0..b)
        .flat_map(|i| (0..t).map(move |j| if j < t - i { 0.0 } else { -10000.0 }))
        .collect();
    let mask = Tensor::from_vec(mask, (b, 1, 1, t), &dev)?;
    let eps = 1e-5;

    let cases = vec![
        Case {
            name: "layer_norm",
            ops: vec![
                ("ours", Box::new(|| Ok(layer_norm(&x, &w, &bias, eps)?))),
                (
                    "candle_composed",
                    Box::new(|| Ok(candle_nn::ops::layer_norm_slow(&x, &w, &bias, eps as f32)?)),
                ),
            ],
            forward_only: vec![(
                "candle_fused_no_bwd",
                Box::new(|| Ok(candle_nn::ops::layer_norm(&x, &w, &bias, eps as f32)?)),
            )],
            x: &x,
        },
        Case {
            name: "softmax",
            ops: vec![
                ("ours", Box::new(|| Ok(softmax(&x, None)?))),
                (
                    "candle_composed",
                    Box::new(|| Ok(candle_nn::ops::softmax(&x, D::Minus1)?)),
                ),
            ],
            forward_only: vec![(
                "candle_fused_no_bwd",
                Box::new(|| Ok(candle_nn::ops::softmax_last_dim(&x)?)),
            )],
            x: &x,
        },
        Case {
            name: "masked_softmax",
            ops: vec![
                ("ours", Box::new(|| Ok(softmax(&scores, Some(&mask))?))),
                (
                    "candle_composed",
                    Box::new(|| {
                        let z = scores.broadcast_add(&mask)?;
                        Ok(candle_nn::ops::softmax(&z, D::Minus1)?)
                    }),
                ),
            ],
            forward_only: vec![],
            x: &scores,
        },
    ];

    if std::env::var_os("TRANSFORMER_OPS_SUMMARY_ONLY").is_none() {
        let mut c = Criterion::default().configure_from_args();
        for case in &cases {
            let mut fwd = c.benchmark_group(format!("{}/forward", case.name));
            fwd.measurement_time(Duration::from_secs(3));
            for (name, f) in case.ops.iter().chain(&case.forward_only) {
                fwd.bench_function(*name, |bch| bch.iter(|| black_box(f())));
            }
            fwd.finish();
            let mut both = c.benchmark_group(format!("{}/forward_backward", case.name));
            both.measurement_time(Duration::from_secs(3));
            for (name, f) in &case.ops {
                both.bench_function(*name, |bch| bch.iter(|| fwd_bwd(f.as_ref())));
            }
            both.bench_function("loss_only", |bch| {
                bch.iter(|| -> BenchResult<()> {
                    black_box(case.x.as_tensor().sum_all()?.backward()?);
                    Ok(())
                })
            });
            both.finish();
        }
        c.final_summary();
    }

    // Ratios from one interleaved run per case, so that machine load hits both sides alike.
    println!(
        "\nmedian wall ms / CPU ms per call over 30 interleaved calls, and ratios candle composed / ours \
         (wall, CPU); {} rayon threads",
        rayon::current_num_threads()
    );
    for case in &cases {
        let [(_, ours), (_, theirs)] = &case.ops[..] else {
            continue;
        };
        let f1 = || -> BenchResult<()> {
            black_box(ours()?);
            Ok(())
        };
        let f2 = || -> BenchResult<()> {
            black_box(theirs()?);
            Ok(())
        };
        let b1 = || fwd_bwd(ours.as_ref());
        let b2 = || fwd_bwd(theirs.as_ref());
        let loss = || -> BenchResult<()> {
            black_box(case.x.as_tensor().sum_all()?.backward()?);
            Ok(())
        };
        let m = interleaved(&[&f1, &f2, &b1, &b2, &loss], 30)?;
        let ms = |(w, c): (f64, f64)| format!("{:7.3} / {:7.3}", w * 1e3, c * 1e3);
        let ratio =
            |a: (f64, f64), b: (f64, f64)| format!("{:4.1}x, {:4.1}x", b.0 / a.0, b.1 / a.1);
        println!("  {}", case.name);
        println!(
            "    forward           ours {}   candle {}   ratio {}",
            ms(m[0]),
            ms(m[1]),
            ratio(m[0], m[1])
        );
        println!(
            "    forward+backward  ours {}   candle {}   ratio {}   (loss alone {})",
            ms(m[2]),
            ms(m[3]),
            ratio(m[2], m[3]),
            ms(m[4])
        );
    }
    Ok(())
}
