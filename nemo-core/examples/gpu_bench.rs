//! Training-step speed of an MLP regression (`x (B, 1024) → 4096 → 4096 → 1`, batch 4096) through
//! the [`Trainer`], in f32 and in f16 mixed precision (f32 master weights, dynamic loss
//! scaling), on the device given by `--cpu` / CUDA 0. Prints milliseconds per step, then where a
//! step's time goes (one matrix product, forward, forward + backward, + the AdamW update) so a gap
//! to PyTorch can be placed; the PyTorch side (plain f32 and `torch.autocast` + `GradScaler`, the
//! same breakdown) is `scripts/bench_gpu_torch.py`.
//!
//! Run on a GPU machine: `scripts/gpu_build.sh` builds it with `--features cuda`,
//! `scripts/gpu_run.sh` runs it there with the tests.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use nemo_core::ForwardCtx;
use nemo_core::optim::{LrSchedule, OptimizerConfig};
use nemo_core::params::Parameters;
use nemo_core::train::{
    Callback, MixedPrecision, PrecisionMode, StepRecord, TrainTask, Trainer, TrainerConfig,
};

const BATCH: usize = 4096;
const D_IN: usize = 1024;
const HIDDEN: usize = 4096;
const STEPS: u64 = 60;
const WARMUP: u64 = 10;

struct Mlp {
    params: Parameters,
    w: Vec<Tensor>,
    x: Tensor,
    y: Tensor,
    dtype: DType,
}

/// Times the trainer's steps `WARMUP..STEPS` from the end of step `WARMUP - 1` to the end of the
/// last (device synchronized at both), leaving out the checkpoint `fit` writes after the last step.
struct StepClock {
    dev: Device,
    started: Option<Instant>,
    ms_per_step: Option<f64>,
}

impl Callback for StepClock {
    fn on_step_end(&mut self, record: &StepRecord) -> nemo_core::Result<()> {
        if record.step + 1 == WARMUP {
            self.dev.synchronize()?;
            self.started = Some(Instant::now());
        } else if record.step + 1 == STEPS
            && let Some(started) = self.started
        {
            self.dev.synchronize()?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            self.ms_per_step = Some(ms / (STEPS - WARMUP) as f64);
        }
        Ok(())
    }
}

impl TrainTask for Mlp {
    fn params(&self) -> &Parameters {
        &self.params
    }
    fn loss(&mut self, _step: u64, _micro: usize, _ctx: &ForwardCtx) -> nemo_core::Result<Tensor> {
        let dt = self.dtype;
        let mut h = self.x.to_dtype(dt)?;
        let last = self.w.len() - 1;
        for (i, w) in self.w.iter().enumerate() {
            h = h.matmul(&w.to_dtype(dt)?.t()?)?;
            if i < last {
                h = h.relu()?;
            }
        }
        Ok((h.to_dtype(DType::F32)? - &self.y)?.sqr()?.mean_all()?)
    }
    fn set_compute_dtype(&mut self, dtype: DType) -> nemo_core::Result<()> {
        self.dtype = dtype;
        Ok(())
    }
}

/// Milliseconds per call of `f` (after a warm-up), with the device synchronized around the timing.
fn time_ms(dev: &Device, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    for _ in 0..WARMUP {
        f()?;
    }
    dev.synchronize()?;
    let started = Instant::now();
    for _ in WARMUP..STEPS {
        f()?;
    }
    dev.synchronize()?;
    Ok(started.elapsed().as_secs_f64() * 1000.0 / (STEPS - WARMUP) as f64)
}

/// The phases of a step in `dtype`, outside the trainer: `x W1ᵀ` alone, the forward pass, forward
/// and backward, and those plus the AdamW update (in f32 on the master weights).
fn breakdown(dev: &Device, dtype: DType) -> anyhow::Result<()> {
    let mut task = mlp(dev)?;
    task.dtype = dtype;
    let x = task.x.to_dtype(dtype)?;
    let w1 = task.w[0].to_dtype(dtype)?;
    let mm = time_ms(dev, || {
        x.matmul(&w1.t()?)?;
        Ok(())
    })?;
    let fwd = time_ms(dev, || {
        task.loss(0, 0, &ForwardCtx::train(0))?;
        Ok(())
    })?;
    let bwd = time_ms(dev, || {
        task.loss(0, 0, &ForwardCtx::train(0))?.backward()?;
        Ok(())
    })?;
    let optim: OptimizerConfig = serde_json::from_str(r#"{"name": "adamw"}"#)?;
    let mut opt = optim.build(task.params.trainable_vars())?;
    let all = time_ms(dev, || {
        let grads = task.loss(0, 0, &ForwardCtx::train(0))?.backward()?;
        Ok(opt.step(&grads, 1e-4, &|_| false)?)
    })?;
    println!(
        "nemo-rs {dtype:?}: matmul {BATCH}x{D_IN}x{HIDDEN} {mm:.2} ms, forward {fwd:.2} ms, \
         forward+backward {bwd:.2} ms, + AdamW {all:.2} ms"
    );
    Ok(())
}

fn mlp(dev: &Device) -> anyhow::Result<Mlp> {
    let params = Parameters::new();
    let vb = params.var_builder(DType::F32, dev);
    let dims = [D_IN, HIDDEN, HIDDEN, 1];
    let mut w = Vec::new();
    for (i, pair) in dims.windows(2).enumerate() {
        let stdev = (2.0 / pair[0] as f64).sqrt();
        let init = candle_nn::init::Init::Randn { mean: 0.0, stdev };
        w.push(vb.get_with_hints((pair[1], pair[0]), &format!("w{i}"), init)?);
    }
    let x = Tensor::randn(0f32, 1.0, (BATCH, D_IN), dev)?;
    let y = x.narrow(1, 0, 1)?.sin()?;
    Ok(Mlp {
        params,
        w,
        x,
        y,
        dtype: DType::F32,
    })
}

fn run(dev: &Device, mode: PrecisionMode) -> anyhow::Result<f64> {
    let mut task = mlp(dev)?;
    let optim: OptimizerConfig = serde_json::from_str(r#"{"name": "adamw"}"#)?;
    let mut opt = optim.build(task.params.trainable_vars())?;
    let mut cfg = TrainerConfig::new(STEPS);
    cfg.progress = false;
    cfg.plot = false;
    cfg.precision = MixedPrecision {
        mode,
        ..MixedPrecision::default()
    };
    let dir = tempfile::tempdir()?;
    let mut clock = StepClock {
        dev: dev.clone(),
        started: None,
        ms_per_step: None,
    };
    let schedule = LrSchedule::constant(1e-4);
    Trainer::new(cfg, dir.path())?.fit_with(
        &mut task,
        opt.as_mut(),
        &schedule,
        0,
        &mut [&mut clock],
    )?;
    clock
        .ms_per_step
        .ok_or_else(|| anyhow::anyhow!("the run ended before step {STEPS}"))
}

fn main() -> anyhow::Result<()> {
    let dev = if std::env::args().any(|a| a == "--cpu") {
        Device::Cpu
    } else {
        Device::new_cuda(0)?
    };
    println!("MLP {D_IN}-{HIDDEN}-{HIDDEN}-1, batch {BATCH}, AdamW, {dev:?}");
    for mode in [PrecisionMode::F32, PrecisionMode::F16] {
        let ms = run(&dev, mode)?;
        println!("nemo-rs train step {mode:?}: {ms:.2} ms");
    }
    for dtype in [DType::F32, DType::F16] {
        breakdown(&dev, dtype)?;
    }
    Ok(())
}
