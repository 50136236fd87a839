//! Speed of the CTC loss on a character-level batch: `(B, T, D) = (16, 200, 29)`, targets of
//! `S = 50` labels, every sample at full length, `f32`, CPU, rayon's default thread count.
//!
//! * `ctc/forward`: [`ctc_loss`] on `log_probs` that do not track gradients (the loss only).
//! * `ctc/forward_backward`: `ctc_loss(log_probs).backward()` with `log_probs` a leaf `Var`,
//!   reduction `mean_batch` — the definition `scripts/bench_ctc_torch.py` times for PyTorch's
//!   `torch.nn.functional.ctc_loss` (2 threads).
//! * `greedy_decode`: [`ctc_greedy_decode`] of the same batch.
//!
//! Run: `cargo bench -p nemo-asr --bench ctc` (on the 2-core machine rayon uses 2 threads).

use std::error::Error;
use std::hint::black_box;
use std::time::Duration;

use candle_core::{D, Device, Tensor, Var};
use criterion::Criterion;
use nemo_asr::decoding::ctc_greedy_decode;
use nemo_asr::losses::{CtcOptions, ctc_loss};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type BenchResult<T> = Result<T, Box<dyn Error>>;

const B: usize = 16;
const T: usize = 200;
const CLASSES: usize = 29;
const S: usize = 50;

fn main() -> BenchResult<()> {
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let logits: Vec<f32> = (0..B * T * CLASSES)
        .map(|_| rng.random_range(-3.0f32..3.0))
        .collect();
    let logits = Tensor::from_vec(logits, (B, T, CLASSES), &dev)?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let targets: Vec<u32> = (0..B * S)
        .map(|_| rng.random_range(0..CLASSES as u32 - 1))
        .collect();
    let targets = Tensor::from_vec(targets, (B, S), &dev)?;
    let input_lengths = Tensor::from_vec(vec![T as u32; B], B, &dev)?;
    let target_lengths = Tensor::from_vec(vec![S as u32; B], B, &dev)?;
    let config = CtcOptions::default();
    let leaf = Var::from_tensor(&log_probs)?;

    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("ctc");
    group.bench_function("forward", |bench| {
        bench.iter(|| {
            let loss = ctc_loss(
                &log_probs,
                &targets,
                &input_lengths,
                &target_lengths,
                &config,
            );
            black_box(loss).ok();
        })
    });
    group.bench_function("forward_backward", |bench| {
        bench.iter(|| {
            let grads = ctc_loss(
                leaf.as_tensor(),
                &targets,
                &input_lengths,
                &target_lengths,
                &config,
            )
            .and_then(|loss| Ok(loss.backward()?));
            black_box(grads).ok();
        })
    });
    group.bench_function("greedy_decode", |bench| {
        bench.iter(|| black_box(ctc_greedy_decode(&log_probs, Some(&input_lengths), None)).ok())
    });
    group.finish();
    c.final_summary();
    Ok(())
}
