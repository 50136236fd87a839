//! [`Trainer`]: the step loop, with accumulation, clipping, freezing, evaluation, early stopping,
//! checkpoints, metrics and progress.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use candle_core::backprop::GradStore;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, Checkpoint};
use super::freeze::FreezeConfig;
use crate::optim::{LrSchedule, Optimizer, clip_grad_norm};
use crate::params::Parameters;
use crate::{Error, Result};

/// Stop when a metric has not improved for `patience` evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// The metric's name, as [`TrainTask::evaluate`] reports it (e.g. `wer`).
    pub metric: String,
    /// Evaluations without improvement before stopping.
    pub patience: usize,
    /// `true` if larger is better (accuracy); `false` for losses and error rates.
    #[serde(default)]
    pub maximize: bool,
}

fn one() -> usize {
    1
}
fn ten() -> u64 {
    10
}
fn three() -> usize {
    3
}
fn yes() -> bool {
    true
}

/// The trainer's settings (NeMo's `optimization_params` and callback settings), from YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerConfig {
    /// Optimizer updates to run.
    pub max_steps: u64,
    /// Micro-batches accumulated per update (NeMo's `batches_per_step`). Default 1.
    #[serde(default = "one")]
    pub batches_per_step: usize,
    /// Global L2 norm to clip gradients to, if any.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// Steps between loss log lines. Default 10.
    #[serde(default = "ten")]
    pub log_every: u64,
    /// Steps between checkpoints (none if absent); one is always written at the end.
    #[serde(default)]
    pub checkpoint_every: Option<u64>,
    /// Checkpoints kept. Default 3.
    #[serde(default = "three")]
    pub keep_checkpoints: usize,
    /// Steps between evaluations (none if absent); one always runs at the end.
    #[serde(default)]
    pub eval_every: Option<u64>,
    /// Stop with an error on a NaN or infinite loss (else the step is skipped). Default true.
    #[serde(default = "yes")]
    pub stop_on_nan_loss: bool,
    /// Early stopping on an evaluation metric.
    #[serde(default)]
    pub early_stopping: Option<EarlyStopping>,
    /// Dynamic layer freezing.
    #[serde(default)]
    pub freeze: FreezeConfig,
    /// Wall-clock budget in seconds: the run evaluates, checkpoints and stops after the first
    /// step that ends past it (the schedule still spans `max_steps`).
    #[serde(default)]
    pub max_time_s: Option<f64>,
    /// Show a progress bar on stderr. Default true.
    #[serde(default = "yes")]
    pub progress: bool,
}

impl TrainerConfig {
    /// A config running `max_steps` updates with the defaults above.
    pub fn new(max_steps: u64) -> Self {
        TrainerConfig {
            max_steps,
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
            progress: true,
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
        if self.batches_per_step == 0 {
            return bad("batches_per_step", "must be at least 1");
        }
        if self.log_every == 0 {
            return bad("log_every", "must be at least 1");
        }
        if self.max_time_s.is_some_and(|t| t.is_nan() || t <= 0.0) {
            return bad("max_time_s", "must be positive");
        }
        if self.grad_clip.is_some_and(|c| c.is_nan() || c <= 0.0) {
            return bad("grad_clip", "must be positive");
        }
        if self.checkpoint_every == Some(0) || self.eval_every == Some(0) {
            return bad("checkpoint_every", "intervals must be at least 1");
        }
        self.freeze.validate()
    }
}

/// What is trained: the model's parameters, a loss per micro-batch, and optional evaluation.
pub trait TrainTask {
    /// The model's parameters.
    fn params(&self) -> &Parameters;
    /// The loss of micro-batch `micro` of update `step`; the task owns the data order.
    fn loss(&mut self, step: u64, micro: usize) -> Result<Tensor>;
    /// Metrics on held-out data (e.g. `wer`), run in eval mode.
    fn evaluate(&mut self, _step: u64) -> Result<BTreeMap<String, f64>> {
        Ok(BTreeMap::new())
    }
    /// Prepares to continue at update `step` after a resume (data position, RNG streams).
    fn resume_at(&mut self, _step: u64) -> Result<()> {
        Ok(())
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

/// One line of the metrics JSONL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The update index (0-based).
    pub step: u64,
    /// The mean micro-batch loss of the update.
    pub loss: f64,
    /// The learning rate used.
    pub lr: f64,
    /// The gradient norm before clipping, when clipping is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// Evaluation metrics, on the steps that evaluated.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub eval: BTreeMap<String, f64>,
    /// Whether the update was skipped (non-finite loss).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub skipped: bool,
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

/// Runs the training loop; a run directory receives `metrics.jsonl` and `checkpoints/`.
pub struct Trainer {
    config: TrainerConfig,
    run_dir: PathBuf,
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
        })
    }

    /// The settings.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Where checkpoints go.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.run_dir.join("checkpoints")
    }

    /// Restores weights and optimizer state from `dir` and positions the task after its step.
    /// Returns the step to continue from.
    pub fn resume(
        &self,
        dir: &Path,
        task: &mut dyn TrainTask,
        optimizer: &mut dyn Optimizer,
    ) -> Result<u64> {
        let ckpt = checkpoint::load(dir, task.params(), optimizer)?;
        task.resume_at(ckpt.step)?;
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
    pub fn fit_with(
        &self,
        task: &mut dyn TrainTask,
        optimizer: &mut dyn Optimizer,
        schedule: &LrSchedule,
        start: u64,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<TrainSummary> {
        let cfg = &self.config;
        std::fs::create_dir_all(&self.run_dir).map_err(|source| Error::Io {
            path: self.run_dir.clone(),
            source,
        })?;
        let metrics_path = self.run_dir.join("metrics.jsonl");
        let mut metrics = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(|source| Error::Io {
                path: metrics_path.clone(),
                source,
            })?;
        let bar = if cfg.progress {
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
        task.params().train();
        for step in start..cfg.max_steps {
            let lr = schedule.lr_at(step, cfg.max_steps);
            let frozen_modules: Vec<String> = cfg
                .freeze
                .frozen_at(step)
                .into_iter()
                .map(String::from)
                .collect();
            let mut grads: Option<GradStore> = None;
            let mut loss_sum = 0.0;
            let mut finite = true;
            for micro in 0..cfg.batches_per_step {
                let loss = task.loss(step, micro)?;
                let value = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
                if !value.is_finite() {
                    finite = false;
                    break;
                }
                loss_sum += value;
                let scaled = (loss / cfg.batches_per_step as f64)?;
                let g = scaled.backward()?;
                match grads.as_mut() {
                    Some(acc) => accumulate(acc, g, &vars)?,
                    None => grads = Some(g),
                }
            }
            let mean_loss = loss_sum / cfg.batches_per_step as f64;
            let mut record = StepRecord {
                step,
                loss: mean_loss,
                lr,
                grad_norm: None,
                eval: BTreeMap::new(),
                skipped: false,
            };
            match (finite, grads) {
                (true, Some(mut grads)) => {
                    let params = task.params().clone();
                    let frozen = |name: &str| {
                        !params.is_trainable(name) || frozen_modules.iter().any(|m| under(name, m))
                    };
                    if let Some(max) = cfg.grad_clip {
                        record.grad_norm = Some(clip_grad_norm(&mut grads, &vars, max, &frozen)?);
                    }
                    optimizer.step(&grads, lr, &frozen)?;
                    last_loss = mean_loss;
                }
                _ => {
                    if cfg.stop_on_nan_loss {
                        bar.abandon_with_message("stopped: non-finite loss");
                        return Err(Error::Optimizer {
                            msg: format!("non-finite loss at step {step} (stop_on_nan_loss)"),
                        });
                    }
                    tracing::warn!(step, "non-finite loss: update skipped");
                    record.skipped = true;
                }
            }
            let done = step + 1;
            let out_of_time = cfg
                .max_time_s
                .is_some_and(|t| started.elapsed().as_secs_f64() >= t);
            let evaluate = cfg.eval_every.is_some_and(|n| done % n == 0)
                || done == cfg.max_steps
                || out_of_time;
            if evaluate {
                task.params().eval();
                let result = task.evaluate(step);
                task.params().train();
                record.eval = result?;
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
            }
            writeln!(
                metrics,
                "{}",
                serde_json::to_string(&record).map_err(|e| Error::Checkpoint {
                    path: metrics_path.clone(),
                    msg: e.to_string()
                })?
            )
            .map_err(|source| Error::Io {
                path: metrics_path.clone(),
                source,
            })?;
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
            if ckpt_due {
                let ckpt = Checkpoint {
                    step: done,
                    optimizer: optimizer.name().to_string(),
                    loss: last_loss,
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
        task.params().eval();
        for cb in callbacks.iter_mut() {
            cb.on_train_end(&summary)?;
        }
        Ok(summary)
    }
}
