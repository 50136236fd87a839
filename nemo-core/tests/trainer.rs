//! The [`Trainer`] end to end on a small MLP regression task defined here: mixed precision with
//! dynamic loss scaling (f16 on the CPU), overflow handling, gradient accumulation against the
//! large batch, dynamic freezing, exact resume with the scaler, and `curves.png`.
//!
//! The model is `y = b(tanh(a(x)))` with `a: 4 -> 16` and `b: 16 -> 1` (modules `a` and `b`),
//! fitted to a fixed smooth target on 64 samples; micro-batch `micro` of update `step` reads
//! samples `(step * batches_per_step + micro) * micro_batch ..`, so accumulated micro-batches
//! cover exactly the large batch.

use std::collections::BTreeMap;
#[cfg_attr(not(feature = "plot"), allow(unused_imports))]
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use nemo_core::ForwardCtx;
use nemo_core::optim::{AdamWConfig, LrSchedule, Optimizer, OptimizerConfig, SgdConfig};
use nemo_core::params::Parameters;
use nemo_core::testing::{TestResult, uniform_values};
#[cfg(feature = "plot")]
use nemo_core::train::plot::{curves_size, default_font_paths};
use nemo_core::train::{
    Callback, MixedPrecision, PrecisionMode, StepRecord, TrainTask, Trainer, TrainerConfig,
};

const SAMPLES: usize = 64;
const D_IN: usize = 4;
const HIDDEN: usize = 16;

/// Seeded values uniform in `[-1, 1)`.
fn seeded(n: usize, seed: u64) -> Vec<f32> {
    uniform_values(n, seed)
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// The MLP regression task.
struct Mlp {
    params: Parameters,
    a_w: Tensor,
    a_b: Tensor,
    b_w: Tensor,
    b_b: Tensor,
    xs: Tensor,
    ys: Tensor,
    micro_batch: usize,
    batches_per_step: usize,
    dtype: DType,
    /// Steps whose loss is made infinite.
    inf_at: Vec<u64>,
    /// Whether `set_compute_dtype` is implemented (else the trait's default is used).
    mixed: bool,
    /// Whether `evaluate` reports metrics.
    metrics: bool,
}

impl Mlp {
    fn new(seed: u64, micro_batch: usize, batches_per_step: usize) -> TestResult<Self> {
        let dev = Device::Cpu;
        let params = Parameters::new();
        let vb = params.var_builder(DType::F32, &dev);
        let zero = candle_nn::init::ZERO;
        let a_w = vb.pp("a").get_with_hints((HIDDEN, D_IN), "weight", zero)?;
        let a_b = vb.pp("a").get_with_hints(HIDDEN, "bias", zero)?;
        let b_w = vb.pp("b").get_with_hints((1, HIDDEN), "weight", zero)?;
        let b_b = vb.pp("b").get_with_hints(1, "bias", zero)?;
        for (i, (_, var)) in params.named_vars().into_iter().enumerate() {
            let values: Vec<f32> = seeded(var.elem_count(), seed * 100 + i as u64)
                .into_iter()
                .map(|v| v * 0.7)
                .collect();
            var.set(&Tensor::from_vec(values, var.shape(), &dev)?)?;
        }
        let xs = Tensor::from_vec(seeded(SAMPLES * D_IN, 7), (SAMPLES, D_IN), &dev)?;
        // A smooth target: y = sin(x0 + 0.5 x1) - 0.5 x2 x3.
        let cols: Vec<Vec<f32>> = xs.to_vec2()?;
        let ys: Vec<f32> = cols
            .iter()
            .map(|r| match r.as_slice() {
                [a, b, c, d] => (a + 0.5 * b).sin() - 0.5 * c * d,
                _ => 0.0,
            })
            .collect();
        let ys = Tensor::from_vec(ys, (SAMPLES, 1), &dev)?;
        Ok(Mlp {
            params,
            a_w,
            a_b,
            b_w,
            b_b,
            xs,
            ys,
            micro_batch,
            batches_per_step,
            dtype: DType::F32,
            inf_at: Vec::new(),
            mixed: true,
            metrics: false,
        })
    }

    /// `(N, 4) -> (N, 1)`, computed in the compute dtype with the f32 weights cast to it.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dt = self.dtype;
        let h = x
            .to_dtype(dt)?
            .matmul(&self.a_w.to_dtype(dt)?.t()?)?
            .broadcast_add(&self.a_b.to_dtype(dt)?)?
            .tanh()?;
        h.matmul(&self.b_w.to_dtype(dt)?.t()?)?
            .broadcast_add(&self.b_b.to_dtype(dt)?)
    }

    /// Mean squared error, reduced in f32.
    fn mse(&self, x: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
        (self.forward(x)?.to_dtype(DType::F32)? - y)?
            .sqr()?
            .mean_all()
    }

    fn optimizer(&self, config: OptimizerConfig) -> TestResult<Box<dyn Optimizer>> {
        Ok(config.build(self.params.trainable_vars())?)
    }
}

impl TrainTask for Mlp {
    fn params(&self) -> &Parameters {
        &self.params
    }

    fn loss(&mut self, step: u64, micro: usize, _ctx: &ForwardCtx) -> nemo_core::Result<Tensor> {
        let first = (step as usize * self.batches_per_step + micro) * self.micro_batch;
        let idx: Vec<u32> = (first..first + self.micro_batch)
            .map(|i| (i % SAMPLES) as u32)
            .collect();
        let idx = Tensor::new(idx.as_slice(), &Device::Cpu)?;
        let loss = self.mse(
            &self.xs.index_select(&idx, 0)?,
            &self.ys.index_select(&idx, 0)?,
        )?;
        if self.inf_at.contains(&step) {
            return Ok(loss.affine(1.0, f64::INFINITY)?);
        }
        Ok(loss)
    }

    fn evaluate(&mut self, _step: u64) -> nemo_core::Result<BTreeMap<String, f64>> {
        if !self.metrics {
            return Ok(BTreeMap::new());
        }
        let mse = self.mse(&self.xs, &self.ys)?.to_scalar::<f32>()? as f64;
        Ok([("mse".to_string(), mse), ("rmse".to_string(), mse.sqrt())].into())
    }

    fn set_compute_dtype(&mut self, dtype: DType) -> nemo_core::Result<()> {
        if !self.mixed && dtype != DType::F32 {
            return Err(nemo_core::Error::Config {
                key: "test".into(),
                msg: "f32 only".into(),
            });
        }
        self.dtype = dtype;
        Ok(())
    }
}

/// A task using the trait's default `set_compute_dtype`.
struct F32Only(Mlp);

impl TrainTask for F32Only {
    fn params(&self) -> &Parameters {
        &self.0.params
    }
    fn loss(&mut self, step: u64, micro: usize, _ctx: &ForwardCtx) -> nemo_core::Result<Tensor> {
        self.0.loss(step, micro, _ctx)
    }
}

/// Every parameter's values, by name.
fn weights(params: &Parameters) -> TestResult<BTreeMap<String, Vec<f32>>> {
    let mut out = BTreeMap::new();
    for (name, var) in params.named_vars() {
        out.insert(name, var.as_tensor().flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

fn under(map: &BTreeMap<String, Vec<f32>>, prefix: &str) -> Vec<Vec<f32>> {
    map.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.clone())
        .collect()
}

/// Records the weights after every step.
struct Snapshots {
    params: Parameters,
    after: Vec<BTreeMap<String, Vec<f32>>>,
}

impl Callback for Snapshots {
    fn on_step_end(&mut self, _record: &StepRecord) -> nemo_core::Result<()> {
        let w = weights(&self.params)
            .map_err(|e| nemo_core::Error::Optimizer { msg: e.to_string() })?;
        self.after.push(w);
        Ok(())
    }
}

fn config(max_steps: u64, mode: PrecisionMode) -> TrainerConfig {
    let mut cfg = TrainerConfig::new(max_steps);
    cfg.progress = false;
    cfg.plot = false;
    cfg.precision = MixedPrecision::from(mode);
    cfg
}

fn adamw(lr_decay: f64) -> OptimizerConfig {
    OptimizerConfig::AdamW(AdamWConfig {
        weight_decay: lr_decay,
        ..Default::default()
    })
}

#[test]
fn f16_trains_a_small_mlp_with_f32_master_weights() -> TestResult {
    let run = tempfile::tempdir()?;
    let mut task = Mlp::new(1, 16, 1)?;
    let mut opt = task.optimizer(adamw(0.0))?;
    let trainer = Trainer::new(config(300, PrecisionMode::F16), run.path())?;
    let summary = trainer.fit(&mut task, opt.as_mut(), &LrSchedule::constant(0.01), 0)?;
    let first = summary.history.first().map(|r| r.loss).ok_or("empty")?;
    let last: f64 = summary
        .history
        .iter()
        .rev()
        .take(10)
        .map(|r| r.loss)
        .sum::<f64>()
        / 10.0;
    assert!(
        last < 0.01 && last < first * 0.05,
        "f16 loss {first} -> {last}"
    );
    for (name, var) in task.params.named_vars() {
        assert_eq!(var.dtype(), DType::F32, "master weight {name}");
    }
    assert!(summary.history.iter().all(|r| r.loss_scale.is_some()));
    let applied = summary.history.iter().filter(|r| !r.skipped).count();
    assert!(applied >= 290, "only {applied} updates applied");
    assert_eq!(opt.step_count(), applied as u64);

    // bf16 trains without loss scaling.
    let mut bf16 = Mlp::new(1, 16, 1)?;
    let mut opt = bf16.optimizer(adamw(0.0))?;
    let trainer = Trainer::new(config(150, PrecisionMode::Bf16), run.path().join("bf16"))?;
    let summary = trainer.fit(&mut bf16, opt.as_mut(), &LrSchedule::constant(0.01), 0)?;
    let last: f64 = summary
        .history
        .iter()
        .rev()
        .take(10)
        .map(|r| r.loss)
        .sum::<f64>()
        / 10.0;
    assert!(last < first * 0.2, "bf16 loss {first} -> {last}");
    assert!(
        summary
            .history
            .iter()
            .all(|r| r.loss_scale.is_none() && !r.skipped)
    );

    // The same task computes in f32 without a scale, and a task without mixed-precision support
    // refuses f16 instead of silently training in f32.
    let mut plain = Mlp::new(1, 16, 1)?;
    let mut opt = plain.optimizer(adamw(0.0))?;
    let trainer = Trainer::new(config(3, PrecisionMode::F32), run.path().join("f32"))?;
    let summary = trainer.fit(&mut plain, opt.as_mut(), &LrSchedule::constant(0.01), 0)?;
    assert!(summary.history.iter().all(|r| r.loss_scale.is_none()));
    let mut f32_only = F32Only(Mlp::new(1, 16, 1)?);
    let mut opt = f32_only.0.optimizer(adamw(0.0))?;
    let trainer = Trainer::new(config(3, PrecisionMode::F16), run.path().join("refused"))?;
    let err = trainer
        .fit(&mut f32_only, opt.as_mut(), &LrSchedule::constant(0.01), 0)
        .err()
        .ok_or("f16 accepted by an f32-only task")?;
    assert!(err.to_string().contains("set_compute_dtype"), "{err}");
    Ok(())
}

#[test]
fn overflows_skip_the_update_back_off_and_grow_after_the_interval() -> TestResult {
    let run = tempfile::tempdir()?;
    let mut task = Mlp::new(2, 8, 1)?;
    task.inf_at = vec![3, 4];
    let mut opt = task.optimizer(adamw(0.01))?;
    let mut cfg = config(9, PrecisionMode::F16);
    cfg.precision.init_scale = 1024.0;
    cfg.precision.growth_interval = 3;
    let trainer = Trainer::new(cfg, run.path())?;
    let before = weights(&task.params)?;
    let mut snaps = Snapshots {
        params: task.params.clone(),
        after: Vec::new(),
    };
    let summary = trainer.fit_with(
        &mut task,
        opt.as_mut(),
        &LrSchedule::constant(0.01),
        0,
        &mut [&mut snaps],
    )?;
    let scales: Vec<Option<f64>> = summary.history.iter().map(|r| r.loss_scale).collect();
    let skipped: Vec<bool> = summary.history.iter().map(|r| r.skipped).collect();
    // 3 clean steps at 1024 grow it to 2048; two overflows halve it twice; 3 clean steps at 512
    // grow it back to 1024.
    let expected = [1024., 1024., 1024., 2048., 1024., 512., 512., 512., 1024.];
    assert_eq!(scales, expected.map(Some));
    assert_eq!(
        skipped,
        [false, false, false, true, true, false, false, false, false]
    );
    let after = &snaps.after;
    assert_ne!(after.first(), Some(&before));
    assert_eq!(
        after.get(2),
        after.get(3),
        "weights changed on skipped step 3"
    );
    assert_eq!(
        after.get(3),
        after.get(4),
        "weights changed on skipped step 4"
    );
    assert_ne!(after.get(4), after.get(5), "step 5 did not train");
    assert_eq!(opt.step_count(), 7);
    Ok(())
}

#[test]
fn a_huge_initial_scale_backs_off_until_the_gradients_fit_in_f16() -> TestResult {
    let run = tempfile::tempdir()?;
    let mut task = Mlp::new(3, 8, 1)?;
    let mut opt = task.optimizer(OptimizerConfig::Sgd(SgdConfig::default()))?;
    let mut cfg = config(40, PrecisionMode::F16);
    cfg.precision.init_scale = 2f64.powi(40);
    cfg.precision.max_consecutive_skips = 40;
    let trainer = Trainer::new(cfg, run.path())?;
    let before = weights(&task.params)?;
    let mut snaps = Snapshots {
        params: task.params.clone(),
        after: Vec::new(),
    };
    let summary = trainer.fit_with(
        &mut task,
        opt.as_mut(),
        &LrSchedule::constant(0.05),
        0,
        &mut [&mut snaps],
    )?;
    let k = summary.history.iter().take_while(|r| r.skipped).count();
    assert!((1..40).contains(&k), "{k} skipped steps");
    for (i, r) in summary.history.iter().take(k + 1).enumerate() {
        assert_eq!(r.loss_scale, Some(2f64.powi(40 - i as i32)), "step {i}");
    }
    for (i, w) in snaps.after.iter().take(k).enumerate() {
        assert_eq!(w, &before, "weights changed on skipped step {i}");
    }
    assert_ne!(
        snaps.after.get(k),
        Some(&before),
        "first clean step {k} did not train"
    );
    Ok(())
}

#[test]
fn too_many_consecutive_overflows_stop_the_run() -> TestResult {
    let run = tempfile::tempdir()?;
    let mut task = Mlp::new(4, 8, 1)?;
    task.inf_at = (2..100).collect();
    let mut opt = task.optimizer(adamw(0.0))?;
    let mut cfg = config(50, PrecisionMode::F16);
    cfg.precision.max_consecutive_skips = 3;
    cfg.precision.init_scale = 256.0;
    let trainer = Trainer::new(cfg, run.path().join("f16"))?;
    let err = trainer
        .fit(&mut task, opt.as_mut(), &LrSchedule::constant(0.01), 0)
        .err()
        .ok_or("ran on through overflows")?
        .to_string();
    assert!(
        err.contains("4 consecutive f16 overflows") && err.contains("at step 5"),
        "{err}"
    );
    assert_eq!(opt.step_count(), 2);

    // In f32 a non-finite loss stops at once under stop_on_nan_loss ...
    let mut task = Mlp::new(4, 8, 1)?;
    task.inf_at = vec![2];
    let mut opt = task.optimizer(adamw(0.0))?;
    let trainer = Trainer::new(config(5, PrecisionMode::F32), run.path().join("f32"))?;
    let err = trainer
        .fit(&mut task, opt.as_mut(), &LrSchedule::constant(0.01), 0)
        .err()
        .ok_or("non-finite f32 loss accepted")?
        .to_string();
    assert!(
        err.contains("non-finite loss at step 2 (stop_on_nan_loss)"),
        "{err}"
    );
    // ... and is skipped without it.
    let mut task = Mlp::new(4, 8, 1)?;
    task.inf_at = vec![2];
    let mut opt = task.optimizer(adamw(0.0))?;
    let mut cfg = config(5, PrecisionMode::F32);
    cfg.stop_on_nan_loss = false;
    let trainer = Trainer::new(cfg, run.path().join("f32-skip"))?;
    let summary = trainer.fit(&mut task, opt.as_mut(), &LrSchedule::constant(0.01), 0)?;
    let skipped: Vec<bool> = summary.history.iter().map(|r| r.skipped).collect();
    assert_eq!(skipped, [false, false, true, false, false]);
    Ok(())
}

fn assert_close(
    a: &BTreeMap<String, Vec<f32>>,
    b: &BTreeMap<String, Vec<f32>>,
    what: &str,
) -> TestResult {
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(b) {
        for (i, (p, q)) in x.iter().zip(y).enumerate() {
            let tol = 1e-6 * p.abs().max(q.abs()).max(1e-2);
            assert!((p - q).abs() <= tol, "{what}: {name}[{i}] {p} vs {q}");
        }
    }
    Ok(())
}

#[test]
fn accumulated_micro_batches_equal_the_large_batch() -> TestResult {
    let run = tempfile::tempdir()?;
    let sgd = OptimizerConfig::Sgd(SgdConfig {
        momentum: 0.9,
        weight_decay: 0.01,
        ..Default::default()
    });
    for (name, optim) in [("sgd", sgd), ("adamw", adamw(0.01))] {
        let mut large = Mlp::new(5, 8, 1)?;
        let mut opt = large.optimizer(optim.clone())?;
        let trainer = Trainer::new(config(3, PrecisionMode::F32), run.path().join(name))?;
        trainer.fit(&mut large, opt.as_mut(), &LrSchedule::constant(0.05), 0)?;

        let mut micro = Mlp::new(5, 2, 4)?;
        let mut opt = micro.optimizer(optim)?;
        let mut cfg = config(3, PrecisionMode::F32);
        cfg.batches_per_step = 4;
        let trainer = Trainer::new(cfg, run.path().join(format!("{name}-acc")))?;
        trainer.fit(&mut micro, opt.as_mut(), &LrSchedule::constant(0.05), 0)?;

        let (a, b) = (weights(&large.params)?, weights(&micro.params)?);
        assert_ne!(
            a,
            weights(&Mlp::new(5, 2, 4)?.params)?,
            "{name}: did not train"
        );
        assert_close(&a, &b, name)?;
    }
    Ok(())
}

#[test]
fn a_frozen_module_keeps_its_weights_and_optimizer_state() -> TestResult {
    let run = tempfile::tempdir()?;
    let yaml = "max_steps: 7\nprogress: false\nplot: false\n\
                freeze: {enabled: true, modules: {a: [2, 4]}}\n";
    let base: TrainerConfig = serde_norway::from_str(yaml)?;
    let mut task = Mlp::new(6, 8, 1)?;
    let mut opt = task.optimizer(adamw(0.01))?;
    let state = |opt: &dyn Optimizer, prefix: &str| -> TestResult<Vec<(String, Vec<f32>)>> {
        let mut out = Vec::new();
        for (k, t) in opt.state_dict()? {
            if k.starts_with(prefix) {
                let v = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                out.push((k, v));
            }
        }
        Ok(out)
    };
    // One update per fit, so the optimizer state can be read between steps.
    let mut w = vec![weights(&task.params)?];
    let mut st = vec![state(opt.as_ref(), "a.")?];
    for step in 0..base.max_steps {
        let mut cfg = base.clone();
        cfg.max_steps = step + 1;
        let trainer = Trainer::new(cfg, run.path())?;
        trainer.fit(&mut task, opt.as_mut(), &LrSchedule::constant(0.01), step)?;
        w.push(weights(&task.params)?);
        st.push(state(opt.as_ref(), "a.")?);
    }
    // w[i] / st[i]: after i updates, i.e. before update i. Updates 2, 3, 4 freeze `a`.
    let a = |i: usize| w.get(i).map(|m| under(m, "a."));
    let b = |i: usize| w.get(i).map(|m| under(m, "b."));
    assert_ne!(a(1), a(2), "a did not train at step 1");
    for i in 3..=5 {
        assert_eq!(
            a(2),
            a(i),
            "a changed while frozen (after update {})",
            i - 1
        );
        assert_eq!(
            st.get(2),
            st.get(i),
            "a's optimizer state changed while frozen"
        );
    }
    assert_ne!(a(5), a(6), "a did not train again at step 5");
    assert_ne!(st.get(5), st.get(6));
    let step_of_a = |i: usize| -> Option<f32> {
        st.get(i)?
            .iter()
            .find(|(k, _)| k == "a.weight.step")
            .and_then(|(_, v)| v.first().copied())
    };
    assert_eq!(step_of_a(5), Some(2.0));
    assert_eq!(step_of_a(6), Some(3.0));
    for i in 0..7 {
        assert_ne!(b(i), b(i + 1), "b did not train at step {i}");
    }
    Ok(())
}

#[test]
fn f16_resume_continues_exactly_with_the_scaler_state() -> TestResult {
    let run = tempfile::tempdir()?;
    let mut cfg = config(12, PrecisionMode::F16);
    cfg.checkpoint_every = Some(6);
    cfg.precision.init_scale = 2f64.powi(20);
    cfg.precision.growth_interval = 2;
    let schedule = LrSchedule::constant(0.02);

    let mut task = Mlp::new(7, 8, 1)?;
    let mut opt = task.optimizer(adamw(0.01))?;
    let trainer = Trainer::new(cfg.clone(), run.path().join("full"))?;
    let full = trainer.fit(&mut task, opt.as_mut(), &schedule, 0)?;
    assert!(
        full.history.iter().any(|r| r.skipped),
        "no overflow to test"
    );

    let mut task2 = Mlp::new(99, 8, 1)?;
    let mut opt2 = task2.optimizer(adamw(0.01))?;
    let resumed_trainer = Trainer::new(cfg, run.path().join("resumed"))?;
    let ckpt = trainer.checkpoint_dir().join("step-00000006");
    let start = resumed_trainer.resume(&ckpt, &mut task2, opt2.as_mut())?;
    assert_eq!(start, 6);
    let resumed = resumed_trainer.fit(&mut task2, opt2.as_mut(), &schedule, start)?;
    let tail = full.history.get(6..).ok_or("short history")?;
    assert_eq!(tail.len(), resumed.history.len());
    for (a, b) in tail.iter().zip(&resumed.history) {
        assert_eq!(
            (a.step, a.loss.to_bits(), a.loss_scale, a.skipped),
            (b.step, b.loss.to_bits(), b.loss_scale, b.skipped),
            "step {}",
            a.step
        );
    }
    assert_eq!(weights(&task.params)?, weights(&task2.params)?);
    Ok(())
}

/// Width and height from a PNG's signature and IHDR chunk; checks the IEND trailer.
#[cfg(feature = "plot")]
fn png_size(path: &Path) -> TestResult<(u32, u32)> {
    let bytes = std::fs::read(path)?;
    let sig: &[u8] = b"\x89PNG\r\n\x1a\n";
    assert_eq!(bytes.get(..8), Some(sig), "not a PNG");
    assert_eq!(bytes.get(12..16), Some(&b"IHDR"[..]));
    let be = |r: std::ops::Range<usize>| -> TestResult<u32> {
        let b: [u8; 4] = bytes.get(r).ok_or("short")?.try_into()?;
        Ok(u32::from_be_bytes(b))
    };
    let n = bytes.len();
    assert_eq!(bytes.get(n - 8..n - 4), Some(&b"IEND"[..]), "truncated PNG");
    Ok((be(16..20)?, be(20..24)?))
}

#[cfg(feature = "plot")]
fn run_with_plot(dir: &Path, fonts: Option<Vec<PathBuf>>) -> TestResult<PathBuf> {
    let mut task = Mlp::new(8, 8, 1)?;
    task.metrics = true;
    let mut opt = task.optimizer(adamw(0.0))?;
    let mut cfg = config(20, PrecisionMode::F32);
    cfg.plot = true;
    cfg.eval_every = Some(5);
    let mut trainer = Trainer::new(cfg, dir)?;
    if let Some(fonts) = fonts {
        trainer = trainer.with_font_paths(fonts);
    }
    trainer.fit(&mut task, opt.as_mut(), &LrSchedule::constant(0.01), 0)?;
    Ok(trainer.curves_path())
}

#[cfg(feature = "plot")]
#[test]
fn curves_png_is_written_with_and_without_a_font() -> TestResult {
    let run = tempfile::tempdir()?;
    let expected = curves_size(2);
    // Whatever fonts this machine has (Debian's fonts-dejavu-core gives text).
    let png = run_with_plot(&run.path().join("fonts"), None)?;
    assert_eq!(png_size(&png)?, expected);
    // No font at all, and a file that is not a font: curves without text.
    let png = run_with_plot(&run.path().join("none"), Some(Vec::new()))?;
    assert_eq!(png_size(&png)?, expected);
    let not_a_font = run.path().join("bogus.ttf");
    std::fs::write(&not_a_font, b"not a font")?;
    let png = run_with_plot(&run.path().join("bogus"), Some(vec![not_a_font.clone()]))?;
    assert_eq!(png_size(&png)?, expected);

    // Direct calls report whether text was drawn.
    let curves = nemo_core::train::plot::Curves::from_metrics_file(
        &run.path().join("none").join("metrics.jsonl"),
    )?;
    assert_eq!(curves.metrics.len(), 2);
    assert_eq!(curves.loss.len(), 20);
    let out = run.path().join("direct.png");
    assert!(!nemo_core::train::plot::write_curves(
        &out,
        &curves,
        &[not_a_font]
    )?);
    let has_font = default_font_paths().iter().any(|p| p.is_file());
    assert_eq!(
        nemo_core::train::plot::write_curves(&out, &curves, &default_font_paths())?,
        has_font
    );
    assert_eq!(png_size(&out)?, expected);
    Ok(())
}

#[cfg(feature = "plot")]
#[test]
fn a_failing_plot_does_not_fail_the_run() -> TestResult {
    let run = tempfile::tempdir()?;
    // A directory where the PNG should go: the rename fails, the run still succeeds.
    std::fs::create_dir_all(run.path().join("curves.png").join("blocker"))?;
    let png = run_with_plot(run.path(), Some(Vec::new()))?;
    assert!(png.is_dir());
    Ok(())
}

#[test]
fn invalid_trainer_settings_name_their_key() -> TestResult {
    type Edit = fn(&mut TrainerConfig);
    let cases: [(&str, Edit); 6] = [
        ("trainer.batches_per_step", |c| c.batches_per_step = 0),
        ("trainer.log_every", |c| c.log_every = 0),
        ("trainer.max_time_s", |c| c.max_time_s = Some(0.0)),
        ("trainer.max_time_s", |c| c.max_time_s = Some(f64::NAN)),
        ("trainer.max_time_s", |c| c.max_time_s = Some(f64::INFINITY)),
        ("trainer.grad_clip", |c| c.grad_clip = Some(-1.0)),
    ];
    TrainerConfig::new(10).validate()?;
    for (key, edit) in cases {
        let mut cfg = TrainerConfig::new(10);
        edit(&mut cfg);
        match cfg.validate() {
            Err(nemo_core::Error::Config { key: k, .. }) => assert_eq!(k, key),
            other => return Err(format!("{key}: expected a config error, got {other:?}").into()),
        }
    }
    Ok(())
}
