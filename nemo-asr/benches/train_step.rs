//! One training step (forward, backward, NovoGrad update) of the small separable QuartzNet
//! (`configs/an4_small.yaml`) at batch 16 × 400 frames × 64 mels — the benchmark shape the CPU
//! and GPU records in docs/benchmarks.md use —
//! plus its parts, so a slow step can be traced to its op.
//!
//! Run: `cargo bench -p nemo-asr --bench train_step`; the PyTorch side of the same model:
//! `/usr/bin/python3 scripts/bench_train_step_torch.py` (prints its time and, given ours, the ratio).
//! The process is tuned as the `nemo-asr` binary tunes it (crate `nemo-host`); set
//! `CANDLE_NUM_THREADS` or the `MALLOC_*_` variables to override.

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group};

#[path = "common/an4_small_batch.rs"]
mod an4_small_batch;
use an4_small_batch::{An4SmallBatch, an4_small_config};

fn bench(c: &mut Criterion) {
    let setup = An4SmallBatch::new(&an4_small_config(), &candle_core::Device::Cpu)
        .and_then(|m| m.novograd().map(|opt| (m, opt)));
    let (m, mut optimizer) = match setup {
        Ok(s) => s,
        Err(e) => {
            eprintln!("setup failed: {e}");
            return;
        }
    };
    let mut g = c.benchmark_group("an4_small_b16_t400");
    g.sample_size(10);
    g.bench_function("encoder_forward", |b| b.iter(|| black_box(m.encode())));
    g.bench_function("forward_loss", |b| b.iter(|| black_box(m.loss())));
    g.bench_function("forward_backward", |b| {
        b.iter(|| black_box(m.loss().and_then(|l| Ok(l.backward()?))))
    });
    g.bench_function("train_step", |b| {
        b.iter(|| black_box(m.train_step(optimizer.as_mut())))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(2));
    targets = bench
}
fn main() {
    // SAFETY: first thing in `main`, before criterion or candle start any thread.
    let tuning = unsafe { nemo_host::tune_for_training(nemo_host::ElementwisePool::CallingThread) };
    eprintln!("host tuning: {tuning}");
    benches();
    Criterion::default().configure_from_args().final_summary();
}
