//! Training-step speed of an MLP regression (`x (B, 1024) → 4096 → 4096 → 1`, batch 4096) through
//! the [`Trainer`], in f32 and in f16 mixed precision (f32 master weights, dynamic loss
//! scaling), on the device given by `--cpu` / CUDA 0. Prints milliseconds per step; the PyTorch
//! side (plain f32 and `torch.autocast` + `GradScaler`) is `scripts/bench_gpu_torch.py`.
//!
//! Run on a GPU machine: `scripts/gpu_build.sh` builds it with `--features cuda`,
//! `scripts/gpu_run.sh` runs it there with the tests.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use nemo_core::optim::{LrSchedule, OptimizerConfig};
use nemo_core::params::Parameters;
use nemo_core::train::{MixedPrecision, PrecisionMode, TrainTask, Trainer, TrainerConfig};

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
    started: Option<Instant>,
}

impl TrainTask for Mlp {
    fn params(&self) -> &Parameters {
        &self.params
    }
    fn loss(&mut self, step: u64, _micro: usize) -> nemo_core::Result<Tensor> {
        if step == WARMUP {
            self.x.device().synchronize()?;
            self.started = Some(Instant::now());
        }
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

fn run(dev: &Device, mode: PrecisionMode) -> anyhow::Result<f64> {
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
    let mut task = Mlp {
        params,
        w,
        x,
        y,
        dtype: DType::F32,
        started: None,
    };
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
    Trainer::new(cfg, dir.path())?.fit(&mut task, opt.as_mut(), &LrSchedule::constant(1e-4), 0)?;
    dev.synchronize()?;
    let started = task
        .started
        .ok_or_else(|| anyhow::anyhow!("warm-up did not finish"))?;
    Ok(started.elapsed().as_secs_f64() * 1000.0 / (STEPS - WARMUP) as f64)
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
    Ok(())
}
