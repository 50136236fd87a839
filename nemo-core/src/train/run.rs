//! One training run, whatever the model: a [`RunConfig`] (`model:`, `train_ds:`, `train:`), the
//! command line's [`RunOptions`], and [`run`], which builds the optimizer over the trainable
//! weights, resumes from the newest checkpoint when asked, and fits a [`TrainTask`]. Every
//! collection's `train` command goes through it; only the task (data, loss, evaluation) differs.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::checkpoint::latest_checkpoint;
use super::freeze::FreezeSpec;
use super::trainer::{Callback, TrainSummary, TrainTask, Trainer, TrainerConfig};
use crate::optim::{LrSchedule, OptimizerConfig};
use crate::{Error, Result};

/// The `train:` section of a run config: the loop, the optimizer and the schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Steps, accumulation, clipping, checkpoints, evaluation, freezing, precision, and the run's
    /// seed (`trainer.seed`: weights, data order and the forward passes' draws).
    pub trainer: TrainerConfig,
    /// The optimizer.
    pub optim: OptimizerConfig,
    /// The learning-rate schedule.
    pub sched: LrSchedule,
}

impl TrainSection {
    /// Checks the trainer, optimizer and schedule settings.
    pub fn validate(&self) -> Result<()> {
        self.trainer.validate()?;
        self.optim.validate()?;
        self.sched.validate()
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.trainer.seed
    }
}

/// A whole run: the model `M`, the collection's training-data settings `D` (batch size,
/// duration or token limits, ...) and how to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig<M, D> {
    /// The model's config.
    pub model: M,
    /// How training batches are made.
    pub train_ds: D,
    /// How the model is trained.
    pub train: TrainSection,
}

impl<M: DeserializeOwned, D: DeserializeOwned> RunConfig<M, D> {
    /// Reads a run config; errors name the file, line and key. The `train:` section is
    /// validated here; the model's and data's own checks are their collection's.
    pub fn from_yaml_file(path: &Path) -> Result<Self> {
        let cfg: Self = crate::yaml::read_yaml_file(path)?;
        cfg.train.validate().map_err(|e| match e {
            Error::Config { key, msg } => Error::Config {
                key: format!("{}: train.{key}", path.display()),
                msg,
            },
            e => e,
        })?;
        Ok(cfg)
    }
}

/// What a command line adds to a run config: where the run goes, and overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// The model directory the collection writes at the end; the run's `metrics.jsonl`,
    /// `curves.png` and `checkpoints/` go to `<out>/run`.
    pub out: PathBuf,
    /// Overrides `trainer.max_steps`.
    pub max_steps: Option<u64>,
    /// A wall-clock budget in minutes: sets `trainer.max_time_s` and `schedule_by_time`, so the
    /// learning rate anneals with the clock. Without `max_steps`, the step bound becomes the
    /// larger of the config's and `minutes × steps_per_minute_bound`.
    pub minutes: Option<f64>,
    /// Steps per minute of budget that bound a `minutes` run without `max_steps`. It must
    /// exceed what the machine runs, or the run ends (annealed) before the clock; it must stay
    /// finite, since the time-based schedule spans it (it places the warm-up). Default 600.
    pub steps_per_minute_bound: f64,
    /// Continues from the newest checkpoint in `<out>/run/checkpoints` (an error if none).
    pub resume: bool,
    /// Hides the progress bar.
    pub no_progress: bool,
    /// Modules kept frozen for the whole run (added to `trainer.freeze` as `-1`).
    pub freeze: Vec<String>,
}

impl RunOptions {
    /// Options writing to `out`, with no overrides.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        RunOptions {
            out: out.into(),
            max_steps: None,
            minutes: None,
            steps_per_minute_bound: 600.0,
            resume: false,
            no_progress: false,
            freeze: Vec::new(),
        }
    }

    /// Where the trainer writes metrics, curves and checkpoints.
    pub fn run_dir(&self) -> PathBuf {
        self.out.join("run")
    }

    /// Applies the overrides to `trainer` (idempotent).
    pub fn apply(&self, trainer: &mut TrainerConfig) {
        if let Some(n) = self.max_steps {
            trainer.max_steps = n;
        }
        if let Some(m) = self.minutes {
            trainer.max_time_s = Some(m * 60.0);
            trainer.schedule_by_time = true;
            if self.max_steps.is_none() {
                // The config's `max_steps` sizes a step-bounded run: left alone it would end a
                // long time-budgeted run early. (A non-positive `m` is refused by the trainer.)
                let bound = (m.max(0.0) * self.steps_per_minute_bound).ceil() as u64;
                trainer.max_steps = trainer.max_steps.max(bound);
            }
        }
        if self.no_progress {
            trainer.progress = false;
        }
        if !self.freeze.is_empty() {
            trainer.freeze.enabled = true;
            for module in &self.freeze {
                trainer
                    .freeze
                    .modules
                    .insert(module.clone(), FreezeSpec::Steps(-1));
            }
        }
    }
}

/// Trains `task` as `train` and `options` say: applies the options, builds the optimizer over
/// the task's trainable weights, resumes from the newest checkpoint if `options.resume`, and
/// fits. The task's `evaluate` metrics of the last evaluation are in the summary.
pub fn run(
    task: &mut dyn TrainTask,
    train: &TrainSection,
    options: &RunOptions,
) -> Result<TrainSummary> {
    run_with(task, train, options, &mut [])
}

/// [`run`] with user callbacks (see [`Trainer::fit_with`]).
pub fn run_with(
    task: &mut dyn TrainTask,
    train: &TrainSection,
    options: &RunOptions,
    callbacks: &mut [&mut dyn Callback],
) -> Result<TrainSummary> {
    let mut config = train.trainer.clone();
    options.apply(&mut config);
    let mut optimizer = train.optim.build(task.params().trainable_vars())?;
    let trainer = Trainer::new(config, options.run_dir())?;
    let start = if options.resume {
        let dir = latest_checkpoint(&trainer.checkpoint_dir())?.ok_or_else(|| Error::Config {
            key: "--resume".into(),
            msg: format!("no checkpoint in {}", trainer.checkpoint_dir().display()),
        })?;
        trainer.resume(&dir, task, optimizer.as_mut())?
    } else {
        0
    };
    trainer.fit_with(task, optimizer.as_mut(), &train.sched, start, callbacks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trainer(max_steps: u64) -> TrainerConfig {
        TrainerConfig::new(max_steps)
    }

    fn options(max_steps: Option<u64>, minutes: Option<f64>) -> RunOptions {
        RunOptions {
            max_steps,
            minutes,
            ..RunOptions::new("out")
        }
    }

    #[test]
    fn minutes_without_max_steps_lift_the_configs_step_bound() {
        let mut t = trainer(3000);
        options(None, Some(30.0)).apply(&mut t);
        assert_eq!(t.max_steps, 18_000);
        assert_eq!(t.max_time_s, Some(1800.0));
        assert!(t.schedule_by_time);
    }

    #[test]
    fn a_short_budget_keeps_the_configs_larger_bound() {
        let mut t = trainer(3000);
        options(None, Some(1.0)).apply(&mut t);
        assert_eq!(t.max_steps, 3000);
    }

    #[test]
    fn max_steps_bounds_a_time_budgeted_run() {
        let mut t = trainer(3000);
        options(Some(500), Some(30.0)).apply(&mut t);
        assert_eq!(t.max_steps, 500);
        let mut t = trainer(3000);
        options(Some(500), None).apply(&mut t);
        assert_eq!((t.max_steps, t.max_time_s), (500, None));
        assert!(!t.schedule_by_time);
    }

    #[test]
    fn applying_twice_changes_nothing_more() {
        let o = RunOptions {
            freeze: vec!["encoder".into()],
            no_progress: true,
            ..options(None, Some(2.0))
        };
        let mut once = trainer(100);
        o.apply(&mut once);
        let mut twice = once.clone();
        o.apply(&mut twice);
        assert_eq!(once, twice);
        assert!(once.freeze.enabled && !once.progress);
        assert_eq!(
            once.freeze.modules.get("encoder"),
            Some(&FreezeSpec::Steps(-1))
        );
    }
}
