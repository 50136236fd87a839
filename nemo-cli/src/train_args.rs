//! The arguments every `train` command takes: the run config, where the model goes, and the
//! overrides the core runner applies ([`RunOptions`]).

use std::path::PathBuf;

use nemo_core::train::RunOptions;

/// `train`'s shared arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Run config (YAML): `model:`, `train_ds:` and `train:` sections.
    #[arg(long)]
    pub config: PathBuf,
    /// Model directory to write (config, vocabulary, weights); the run's metrics, curves and
    /// checkpoints go to `<out>/run`.
    #[arg(long)]
    pub out: PathBuf,
    /// Overrides `train.trainer.max_steps`.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Stops after this many minutes of training (evaluates and saves first); the
    /// learning-rate schedule follows the clock, so the run ends annealed. `max_steps` is then an
    /// upper bound: `--max-steps`, else the config's or 600 steps per minute, whichever is
    /// larger (a machine reaching it first ends the run annealed, earlier).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Continues from the newest checkpoint in `<out>/run/checkpoints`.
    #[arg(long)]
    pub resume: bool,
    /// Hides the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl TrainArgs {
    /// The runner's options, with `freeze` kept frozen for the whole run.
    pub fn options(&self, freeze: Vec<String>) -> RunOptions {
        RunOptions {
            max_steps: self.max_steps,
            minutes: self.minutes,
            resume: self.resume,
            no_progress: self.no_progress,
            freeze,
            ..RunOptions::new(&self.out)
        }
    }
}
