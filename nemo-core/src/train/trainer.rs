//! [`Trainer`]: the step loop, with accumulation, mixed precision and loss scaling, gradient
//! synchronization, clipping, freezing, evaluation, early stopping, checkpoints, metrics, curves
//! and progress.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, Checkpoint};
use super::freeze::{DynamicFreezer, FreezeConfig};
use super::precision::{GradScaler, GradScalerState, MixedPrecision, ScaleUpdate};
use super::step_record::StepRecord;
use super::sync::{GradientSync, SingleProcess};
use crate::optim::{LrSchedule, Optimizer, clip_grad_norm};
use crate::params::Parameters;
use crate::{Error, ForwardCtx, Result};

/// Where the curves' font is looked for unless [`Trainer::with_font_paths`] says otherwise.
fn default_font_paths() -> Vec<PathBuf> {
    #[cfg(feature = "plot")]
    {
        super::plot::default_font_paths()
    }
    #[cfg(not(feature = "plot"))]
    {
        Vec::new()
    }
}

/// The [`ForwardCtx`] seed of global micro-batch `g` of a run seeded with `seed` (SplitMix64 of
/// both), so neighbouring steps draw unrelated streams.
pub fn micro_batch_seed(seed: u64, g: u64) -> u64 {
    let mut z = seed ^ g.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Stop when a metric has not improved for `patience` evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// The metric's name, as [`TrainTask::evaluate`] reports it (e.g. `wer`).
    pub metric: String,
    /// Evaluations without improvement before stopping.
    pub patience: usize,
    /// `true` if larger is better (accuracy); `false` for losses and error rates.
    pub maximize: bool,
}

/// The trainer's settings (NeMo's `optimization_params` and callback settings), from YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainerConfig {
    /// Optimizer updates to run (required: at least 1).
    pub max_steps: u64,
    /// Micro-batches accumulated per update (NeMo's `batches_per_step`). Default 1.
    pub batches_per_step: usize,
    /// Global L2 norm to clip gradients to, if any.
    pub grad_clip: Option<f64>,
    /// Steps between loss log lines. Default 10.
    pub log_every: u64,
    /// Steps between checkpoints (none if absent); one is always written at the end.
    pub checkpoint_every: Option<u64>,
    /// Checkpoints kept. Default 3.
    pub keep_checkpoints: usize,
    /// Steps between evaluations (none if absent); one always runs at the end.
    pub eval_every: Option<u64>,
    /// Stop with an error on a NaN or infinite loss (else the step is skipped). Default true.
    pub stop_on_nan_loss: bool,
    /// Early stopping on an evaluation metric.
    pub early_stopping: Option<EarlyStopping>,
    /// Dynamic layer freezing.
    pub freeze: FreezeConfig,
    /// Wall-clock budget in seconds: the run evaluates, checkpoints and stops after the first
    /// step that ends past it (the schedule still spans `max_steps`).
    pub max_time_s: Option<f64>,
    /// With `max_time_s`: the learning-rate schedule's position is the larger of the step and the
    /// elapsed share of the budget times `max_steps`, so a time-budgeted run ends annealed however
    /// fast the machine is (`max_steps` is then an upper bound). Such a run is not step-for-step
    /// reproducible, and a resumed run's budget starts again. Default false.
    pub schedule_by_time: bool,
    /// Show a progress bar on stderr. Default true.
    pub progress: bool,
    /// Mixed precision and dynamic loss scaling. Default f32.
    pub precision: MixedPrecision,
    /// Draw `curves.png` (loss and metrics against the step) in the run directory at the end.
    /// Default true.
    pub plot: bool,
    /// Seeds the random draws of the forward passes (dither, augmentation, dropout): micro-batch
    /// `g` of the run gets the [`ForwardCtx`] seed `mix(seed, g)`, so a resumed run replays the
    /// draws of an uninterrupted one. Default 0.
    pub seed: u64,
}

impl Default for TrainerConfig {
    /// The defaults above, with `max_steps` 0 (which [`TrainerConfig::validate`] refuses: a run
    /// config must say how long to train).
    fn default() -> Self {
        TrainerConfig {
            max_steps: 0,
            batches_per_step: 1,
            grad_clip: None,
            log_every: 10,
            checkpoint_every: None,
            keep_checkpoints: 3,
            eval_every: None,
            stop_on_nan_loss: true,
            early_stopping: None,
            freeze: FreezeConfig::default(),
            max_time_s: None,
            schedule_by_time: false,
            progress: true,
            precision: MixedPrecision::default(),
            plot: true,
            seed: 0,
        }
    }
}

impl TrainerConfig {
    /// A config running `max_steps` updates with the defaults above.
    pub fn new(max_steps: u64) -> Self {
        TrainerConfig {
            max_steps,
            ..TrainerConfig::default()
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: &str| {
            Err(Error::Config {
                key: format!("trainer.{key}"),
                msg: msg.into(),
            })
        };
        if self.max_steps == 0 {
            return bad(
                "max_steps",
                "required: the number of optimizer updates (at least 1)",
            );
        }
        if self.batches_per_step == 0 {
            return bad("batches_per_step", "must be at least 1");
        }
        if self.log_every == 0 {
            return bad("log_every", "must be at least 1");
        }
        if self.max_time_s.is_some_and(|t| !t.is_finite() || t <= 0.0) {
            return bad("max_time_s", "must be positive and finite");
        }
        if self.grad_clip.is_some_and(|c| c.is_nan() || c <= 0.0) {
            return bad("grad_clip", "must be positive");
        }
        if self.checkpoint_every == Some(0) || self.eval_every == Some(0) {
            return bad("checkpoint_every", "intervals must be at least 1");
        }
        self.precision.validate()?;
        self.freeze.validate()
    }
}

/// What is trained: the model's parameters, a loss per micro-batch, and optional evaluation.
pub trait TrainTask {
    /// The model's parameters.
    fn params(&self) -> &Parameters;
    /// The loss of micro-batch `micro` of update `step`, computed in the mode and with the random
    /// draws of `ctx` (training; frozen modules in eval mode); the task owns the data order.
    fn loss(&mut self, step: u64, micro: usize, ctx: &ForwardCtx) -> Result<Tensor>;
    /// Metrics on held-out data (e.g. `wer`), computed in eval mode (`ForwardCtx::eval()`).
    fn evaluate(&mut self, _step: u64) -> Result<BTreeMap<String, f64>> {
        Ok(BTreeMap::new())
    }
    /// Prepares to continue at update `step` after a resume (data position, RNG streams).
    fn resume_at(&mut self, _step: u64) -> Result<()> {
        Ok(())
    }
    /// Called once before the first step of [`Trainer::fit_with`] with the dtype of the
    /// configured precision mode (`trainer.precision.mode`): F32, F16 or BF16.
    ///
    /// A task supporting mixed precision remembers it and, in [`loss`](Self::loss), casts its
    /// weights and activations to it (`var.as_tensor().to_dtype(dtype)`: the f32 `Var`s stay the
    /// master weights and candle's `to_dtype` sends their gradients back in f32), preferably
    /// computing reductions such as the loss in f32. The default accepts only F32, so a task
    /// that does not cast is never silently run in f32 under an f16 config.
    ///
    /// # Errors
    /// [`Error::Config`] (key `trainer.precision.mode`) from the default for F16 and BF16.
    fn set_compute_dtype(&mut self, dtype: DType) -> Result<()> {
        if dtype == DType::F32 {
            Ok(())
        } else {
            Err(Error::Config {
                key: "trainer.precision.mode".into(),
                msg: format!(
                    "this task computes in f32 only (it does not implement \
                     `TrainTask::set_compute_dtype`), {dtype:?} was asked"
                ),
            })
        }
    }
}

/// User hooks into [`Trainer::fit_with`], called after the built-in logging, evaluation and
/// checkpointing of each step (NeMo's callbacks).
pub trait Callback {
    /// After update `record.step` (its evaluation metrics, if it evaluated, are in `record.eval`).
    fn on_step_end(&mut self, _record: &StepRecord) -> Result<()> {
        Ok(())
    }
    /// Once, when the run ends normally (not on error).
    fn on_train_end(&mut self, _summary: &TrainSummary) -> Result<()> {
        Ok(())
    }
}

/// The outcome of [`Trainer::fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// Updates completed (counting those before a resume).
    pub steps: u64,
    /// Every step's record of this run.
    pub history: Vec<StepRecord>,
    /// The last evaluation's metrics.
    pub last_eval: BTreeMap<String, f64>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
}

/// Runs the training loop; a run directory receives `metrics.jsonl`, `curves.png` and
/// `checkpoints/`.
pub struct Trainer {
    config: TrainerConfig,
    run_dir: PathBuf,
    /// The scaler state read by [`Trainer::resume`], taken by the next fit.
    resumed_scaler: Mutex<Option<GradScalerState>>,
    sync: Mutex<Box<dyn GradientSync>>,
    font_paths: Vec<PathBuf>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.config)
            .field("run_dir", &self.run_dir)
            .finish_non_exhaustive()
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere mid-fit; the value is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn under(name: &str, prefix: &str) -> bool {
    name == prefix || (name.starts_with(prefix) && name.as_bytes().get(prefix.len()) == Some(&b'.'))
}

/// Adds `new`'s gradients of `vars` into `acc`.
fn accumulate(
    acc: &mut GradStore,
    new: GradStore,
    vars: &[(String, candle_core::Var)],
) -> Result<()> {
    let mut new = new;
    for (_, v) in vars {
        if let Some(g) = new.remove(v.as_tensor()) {
            let sum = match acc.remove(v.as_tensor()) {
                Some(a) => (a + g)?,
                None => g,
            };
            acc.insert(v.as_tensor(), sum);
        }
    }
    Ok(())
}

impl Trainer {
    /// A trainer writing into `run_dir`.
    pub fn new(config: TrainerConfig, run_dir: impl Into<PathBuf>) -> Result<Self> {
        config.validate()?;
        Ok(Trainer {
            config,
            run_dir: run_dir.into(),
            resumed_scaler: Mutex::new(None),
            sync: Mutex::new(Box::new(SingleProcess)),
            font_paths: default_font_paths(),
        })
    }

    /// Uses `sync` to combine gradients across data-parallel replicas (default:
    /// [`SingleProcess`]); only its rank 0 writes metrics, curves and checkpoints.
    pub fn with_gradient_sync(mut self, sync: impl GradientSync + 'static) -> Self {
        self.sync = Mutex::new(Box::new(sync));
        self
    }

    /// Looks for the curves' font in `paths` instead of the standard places (none: curves
    /// without text).
    pub fn with_font_paths(mut self, paths: Vec<PathBuf>) -> Self {
        self.font_paths = paths;
        self
    }

    /// Where the curves are drawn at the end of a run.
    pub fn curves_path(&self) -> PathBuf {
        self.run_dir.join("curves.png")
    }

    /// The settings.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Where checkpoints go.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.run_dir.join("checkpoints")
    }

    /// Restores weights, optimizer state and the loss scaler's state from `dir` and positions the
    /// task after its step. Returns the step to continue from.
    pub fn resume(
        &self,
        dir: &Path,
        task: &mut dyn TrainTask,
        optimizer: &mut dyn Optimizer,
    ) -> Result<u64> {
        let ckpt = checkpoint::load(dir, task.params(), optimizer)?;
        task.resume_at(ckpt.step)?;
        *lock(&self.resumed_scaler) = ckpt.scaler;
        tracing::info!(step = ckpt.step, dir = %dir.display(), "resumed");
        Ok(ckpt.step)
    }

    /// Trains from update `start` to `max_steps`.
    pub fn fit(
        &self,
        task: &mut dyn TrainTask,
        optimizer: &mut dyn Optimizer,
        schedule: &LrSchedule,
        start: u64,
    ) -> Result<TrainSummary> {
        self.fit_with(task, optimizer, schedule, start, &mut [])
    }

    /// [`fit`](Self::fit) with user callbacks, called in order after each step and at the end.
    ///
    /// Each update: the task's compute dtype is set once ([`TrainTask::set_compute_dtype`]);
    /// `batches_per_step` micro-batch losses are scaled (by the loss scale in f16 mode and by
    /// `1 / batches_per_step`) and their gradients accumulated; the [`GradientSync`] combines
    /// them across replicas; they are unscaled and checked for inf/NaN (the update is skipped on
    /// an overflow, see [`GradScaler`]); then clipped and applied, skipping frozen parameters.
    pub fn fit_with(
        &self,
        task: &mut dyn TrainTask,
        optimizer: &mut dyn Optimizer,
        schedule: &LrSchedule,
        start: u64,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<TrainSummary> {
        let cfg = &self.config;
        let mut sync = lock(&self.sync);
        let main = sync.rank() == 0;
        let mut scaler = match lock(&self.resumed_scaler).take() {
            Some(state) => GradScaler::with_state(&cfg.precision, state)?,
            None => GradScaler::new(&cfg.precision),
        };
        task.set_compute_dtype(cfg.precision.mode.compute_dtype())?;
        if !cfg.freeze.enabled && !cfg.freeze.modules.is_empty() {
            tracing::warn!(
                "`freeze.modules` is set but `freeze.enabled` is false: nothing freezes"
            );
        }
        std::fs::create_dir_all(&self.run_dir).map_err(|source| Error::Io {
            path: self.run_dir.clone(),
            source,
        })?;
        let metrics_path = self.run_dir.join("metrics.jsonl");
        let mut metrics = if main {
            Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&metrics_path)
                    .map_err(|source| Error::Io {
                        path: metrics_path.clone(),
                        source,
                    })?,
            )
        } else {
            None
        };
        let bar = if cfg.progress && main {
            ProgressBar::new(cfg.max_steps)
        } else {
            ProgressBar::with_draw_target(Some(cfg.max_steps), ProgressDrawTarget::hidden())
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_position(start);
        let vars = optimizer.params().to_vec();
        let mut summary = TrainSummary {
            steps: start,
            history: Vec::new(),
            last_eval: BTreeMap::new(),
            stopped_early: false,
            checkpoint: None,
        };
        let mut best: Option<f64> = None;
        let mut bad_evals = 0usize;
        let mut last_loss = f64::NAN;
        let started = std::time::Instant::now();
        let mut freezer = DynamicFreezer::new(task.params().clone());
        for step in start..cfg.max_steps {
            let sched_step = match cfg.max_time_s {
                Some(budget) if cfg.schedule_by_time => {
                    let share = (started.elapsed().as_secs_f64() / budget).min(1.0);
                    step.max((share * cfg.max_steps as f64) as u64)
                }
                _ => step,
            };
            let lr = schedule.lr_at(sched_step, cfg.max_steps);
            let frozen_modules: Vec<String> = cfg
                .freeze
                .frozen_at(step)
                .into_iter()
                .map(String::from)
                .collect();
            freezer.apply(&cfg.freeze.frozen_at(step));
            let scale = scaler.scale();
            let mut grads: Option<GradStore> = None;
            let mut loss_sum = 0.0;
            let mut bad_loss = None;
            let frozen_now = task.params().frozen_modules();
            for micro in 0..cfg.batches_per_step {
                let g = step * cfg.batches_per_step as u64 + micro as u64;
                let ctx = ForwardCtx::train(micro_batch_seed(cfg.seed, g))
                    .with_frozen(frozen_now.iter().cloned());
                let loss = task.loss(step, micro, &ctx)?;
                // Backward even from a non-finite loss (as PyTorch): every micro-batch is read,
                // and with data parallelism every replica joins the all-reduce, whose inf/NaN
                // then makes all replicas skip the step together.
                let scaled = scaler.scale_loss(&loss, cfg.batches_per_step as f64)?;
                let g = scaled.backward()?;
                // Read the value only now: on a GPU the read waits for the device, and the
                // backward's kernels are already queued behind the forward's by then.
                let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                if value.is_finite() {
                    loss_sum += value;
                } else {
                    bad_loss.get_or_insert(value);
                }
                match grads.as_mut() {
                    Some(acc) => accumulate(acc, g, &vars)?,
                    None => grads = Some(g),
                }
            }
            let mean_loss = bad_loss.unwrap_or(loss_sum / cfg.batches_per_step as f64);
            let mut record = StepRecord {
                step,
                loss: mean_loss,
                lr,
                grad_norm: None,
                eval: BTreeMap::new(),
                skipped: false,
                loss_scale: scaler.is_enabled().then_some(scale),
            };
            let params = task.params().clone();
            let frozen = |name: &str| {
                !params.is_trainable(name) || frozen_modules.iter().any(|m| under(name, m))
            };
            // What was not finite, if anything: the update is then skipped.
            let mut overflow = bad_loss.map(|_| "loss");
            if let Some(mut grads) = grads {
                sync.all_reduce(&mut grads, &vars)?;
                if overflow.is_none() {
                    if scaler.unscale(&mut grads, &vars, &|n: &str| !frozen(n))? {
                        if let Some(max) = cfg.grad_clip {
                            record.grad_norm =
                                Some(clip_grad_norm(&mut grads, &vars, max, &frozen)?);
                        }
                        optimizer.step(&grads, lr, &frozen)?;
                        last_loss = mean_loss;
                    } else {
                        overflow = Some("gradient");
                    }
                }
            }
            let update = scaler.update(overflow.is_some());
            if let Some(what) = overflow {
                record.skipped = true;
                let stop = if scaler.is_enabled() {
                    tracing::warn!(
                        step,
                        scale = scaler.scale(),
                        "f16 overflow (non-finite {what}): update skipped, loss scale backed off"
                    );
                    scaler.too_many_skips().then(|| {
                        format!(
                            "{} consecutive f16 overflows (non-finite {what} at step {step}); the \
                             loss scale is down to {:e}: the model diverges (try a lower learning \
                             rate, gradient clipping, or bf16/f32)",
                            scaler.state().consecutive_skips,
                            scaler.scale()
                        )
                    })
                } else if cfg.stop_on_nan_loss {
                    Some(format!(
                        "non-finite {what} at step {step} (stop_on_nan_loss)"
                    ))
                } else {
                    tracing::warn!(step, "non-finite {what}: update skipped");
                    scaler.too_many_skips().then(|| {
                        format!(
                            "{} consecutive steps with a non-finite {what} (the last at step {step})",
                            scaler.state().consecutive_skips
                        )
                    })
                };
                if let Some(msg) = stop {
                    bar.abandon_with_message(format!("stopped: non-finite {what}"));
                    return Err(Error::Optimizer { msg });
                }
            } else if update == ScaleUpdate::Grew {
                tracing::debug!(step, scale = scaler.scale(), "loss scale grew");
            }
            let done = step + 1;
            let out_of_time = cfg
                .max_time_s
                .is_some_and(|t| started.elapsed().as_secs_f64() >= t);
            let evaluate = cfg.eval_every.is_some_and(|n| done % n == 0)
                || done == cfg.max_steps
                || out_of_time;
            if evaluate {
                record.eval = task.evaluate(step)?;
                if !record.eval.is_empty() {
                    let shown: Vec<String> = record
                        .eval
                        .iter()
                        .map(|(k, v)| format!("{k}={v:.4}"))
                        .collect();
                    bar.println(format!("step {done}: {}", shown.join(" ")));
                    tracing::info!(step = done, metrics = %shown.join(" "), "evaluation");
                }
                summary.last_eval = record.eval.clone();
                if let Some(es) = &cfg.early_stopping
                    && let Some(&v) = record.eval.get(&es.metric)
                {
                    let better = best.is_none_or(|b| if es.maximize { v > b } else { v < b });
                    if better {
                        best = Some(v);
                        bad_evals = 0;
                    } else {
                        bad_evals += 1;
                    }
                }
            }
            if let Some(metrics) = metrics.as_mut() {
                let line = serde_json::to_string(&record).map_err(|e| Error::Checkpoint {
                    path: metrics_path.clone(),
                    msg: e.to_string(),
                })?;
                writeln!(metrics, "{line}").map_err(|source| Error::Io {
                    path: metrics_path.clone(),
                    source,
                })?;
            }
            if done % cfg.log_every == 0 || done == cfg.max_steps {
                bar.set_message(format!("loss {mean_loss:.4} lr {lr:.2e}"));
                tracing::debug!(step = done, loss = mean_loss, lr, "train");
            }
            bar.inc(1);
            for cb in callbacks.iter_mut() {
                cb.on_step_end(&record)?;
            }
            summary.history.push(record);
            summary.steps = done;
            let stop = out_of_time
                || cfg
                    .early_stopping
                    .as_ref()
                    .is_some_and(|es| bad_evals >= es.patience);
            let ckpt_due = cfg.checkpoint_every.is_some_and(|n| done % n == 0)
                || done == cfg.max_steps
                || stop;
            if ckpt_due && main {
                let ckpt = Checkpoint {
                    step: done,
                    optimizer: optimizer.name().to_string(),
                    loss: last_loss,
                    scaler: Some(scaler.state()),
                };
                summary.checkpoint = Some(checkpoint::save(
                    &self.checkpoint_dir(),
                    &ckpt,
                    task.params(),
                    optimizer,
                    cfg.keep_checkpoints,
                )?);
            }
            if stop {
                summary.stopped_early = true;
                let why = if out_of_time {
                    "time budget reached"
                } else {
                    "early stopping"
                };
                bar.println(format!("{why} at step {done}"));
                tracing::info!(step = done, "{why}");
                break;
            }
        }
        bar.finish_with_message(format!("loss {last_loss:.4}"));
        if cfg.plot && main {
            self.plot(&metrics_path, &summary);
        }
        for cb in callbacks.iter_mut() {
            cb.on_train_end(&summary)?;
        }
        Ok(summary)
    }

    /// Draws `curves.png` from the run's metrics file (all its runs, resumed ones included), or
    /// from this run's history if the file cannot be read. Never fails the run: a problem is
    /// logged as a warning.
    #[cfg(feature = "plot")]
    fn plot(&self, metrics_path: &Path, summary: &TrainSummary) {
        use super::plot::{Curves, write_curves};
        let curves = Curves::from_metrics_file(metrics_path)
            .unwrap_or_else(|_| Curves::from_records(&summary.history));
        let path = self.curves_path();
        if let Err(e) = write_curves(&path, &curves, &self.font_paths) {
            tracing::warn!(error = %e, "could not draw the training curves");
        }
    }

    /// Without the `plot` feature there are no curves; the metrics file has the same numbers.
    #[cfg(not(feature = "plot"))]
    fn plot(&self, metrics_path: &Path, _summary: &TrainSummary) {
        tracing::warn!(
            metrics = %metrics_path.display(),
            "curves.png not drawn: nemo-core was built without its `plot` feature"
        );
    }
}
