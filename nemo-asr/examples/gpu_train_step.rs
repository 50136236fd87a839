//! The ASR training-step benchmark on a GPU: forward, CTC loss, backward and NovoGrad update of
//! the small separable QuartzNet (`configs/an4_small.yaml`) at batch 16 × 400 frames × 64 mels,
//! f32, on CUDA 0 (or the CPU with `--cpu`), with the same breakdown as the CPU criterion bench
//! (`benches/train_step.rs`); then the forward and backward phases computed in f16 from the f32
//! weights, as mixed precision runs them (the loss scaled by 1024 before the backward, as a loss
//! scaler would). The PyTorch side: `scripts/bench_train_step_torch.py --device cuda` (f16 with
//! `torch.autocast` and `GradScaler.scale`).
//!
//! Built with `--features cuda` by `scripts/gpu_build.sh`; `scripts/gpu_run.sh` runs it on the
//! GPU machine.

use std::time::Instant;

use candle_core::{DType, Device};

#[path = "../benches/common/an4_small_batch.rs"]
mod an4_small_batch;
use an4_small_batch::{An4SmallBatch, BATCH, FRAMES, an4_small_config};

const WARMUP: usize = 5;
const RUNS: usize = 20;

/// The median milliseconds of `f` over `RUNS` calls after `WARMUP`, each synchronized.
fn median_ms(dev: &Device, mut f: impl FnMut() -> nemo_asr::Result<()>) -> anyhow::Result<f64> {
    for _ in 0..WARMUP {
        f()?;
    }
    let mut ms = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        dev.synchronize()?;
        let started = Instant::now();
        f()?;
        dev.synchronize()?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[RUNS / 2])
}

fn main() -> anyhow::Result<()> {
    // SAFETY: first thing in `main`, before any thread starts.
    let tuning = unsafe { nemo_host::tune_for_training(nemo_host::ElementwisePool::CallingThread) };
    eprintln!("host tuning: {tuning}");
    let dev = if std::env::args().any(|a| a == "--cpu") {
        Device::Cpu
    } else {
        Device::new_cuda(0)?
    };
    // The config beside the binary when it runs away from its checkout (scripts/gpu_run.sh).
    let local = std::path::PathBuf::from("configs/an4_small.yaml");
    let config = if local.is_file() {
        local
    } else {
        an4_small_config()
    };
    let m = An4SmallBatch::new(&config, &dev)?;
    let mut optimizer = m.novograd()?;
    let enc = median_ms(&dev, || m.encode().map(drop))?;
    let fwd = median_ms(&dev, || m.loss().map(drop))?;
    let bwd = median_ms(&dev, || {
        m.loss()?.backward()?;
        Ok(())
    })?;
    let step = median_ms(&dev, || m.train_step(optimizer.as_mut()))?;
    println!(
        "nemo-rs an4_small B{BATCH} T{FRAMES} f32 {:?}: encoder forward {enc:.2} ms, forward+CTC \
         {fwd:.2} ms, forward+backward {bwd:.2} ms, train step {step:.2} ms (median of {RUNS})",
        dev.location()
    );
    let enc = median_ms(&dev, || m.encode_in(DType::F16).map(drop))?;
    let fwd = median_ms(&dev, || m.loss_in(DType::F16).map(drop))?;
    let bwd = median_ms(&dev, || {
        (m.loss_in(DType::F16)? * 1024.0)?.backward()?;
        Ok(())
    })?;
    println!(
        "nemo-rs an4_small B{BATCH} T{FRAMES} f16 mixed {:?}: encoder forward {enc:.2} ms, \
         forward+CTC {fwd:.2} ms, forward+backward {bwd:.2} ms (median of {RUNS})",
        dev.location()
    );
    Ok(())
}
