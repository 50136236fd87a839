//! The training runtime: NeMo's `train` action as a [`Trainer`] over a [`TrainTask`].
//!
//! One step = `batches_per_step` micro-batches whose gradients are accumulated (each loss scaled
//! by `1 / batches_per_step`, so the update equals the large-batch one), a [`GradientSync`] of
//! the gradients across data-parallel replicas (a no-op in one process), unscaling and an inf/NaN
//! check, an optional global-norm clip, and one optimizer update with the schedule's learning
//! rate, skipping parameters that are not trainable or whose module the dynamic [`FreezeConfig`]
//! freezes at this step (their weights and optimizer state stay bit-identical).
//!
//! Mixed precision ([`MixedPrecision`], `precision: {mode: f16}`): the task computes in f16 (or
//! bf16) over f32 master weights ([`TrainTask::set_compute_dtype`]); in f16 a [`GradScaler`]
//! scales the loss dynamically, skips the updates whose gradients overflow and backs the scale
//! off, and grows it after `growth_interval` clean steps. Its state is checkpointed.
//!
//! Around the step: a progress bar and `tracing` lines, a metrics JSONL per run, evaluation and
//! early stopping, checkpoints every N steps keeping the last K (written atomically), resumption
//! from them (exact on CPU), and `curves.png` of the loss and metrics at the end (`plot`, a
//! default feature).
//!
//! [`run`] is the one way a collection trains a model from a [`RunConfig`]; [`average_checkpoints`]
//! averages the weights of a run's last checkpoints.
//!
//! Run directory layout: `metrics.jsonl`, `curves.png`, `checkpoints/step-00000100/`.

mod average;
mod checkpoint;
mod freeze;
#[cfg(feature = "plot")]
pub mod plot;
pub mod precision;
mod run;
mod step_record;
pub mod sync;
mod trainer;

pub use average::{average_checkpoints, last_checkpoints, weights_file, write_average};

pub use checkpoint::{Checkpoint, latest_checkpoint};
pub use freeze::{FreezeConfig, FreezeSpec};
pub use precision::{GradScaler, GradScalerState, MixedPrecision, PrecisionMode};
pub use run::{RunConfig, RunOptions, TrainSection, run, run_with};
pub use step_record::StepRecord;
pub use sync::{GradientSync, SingleProcess};
pub use trainer::{
    Callback, EarlyStopping, TrainSummary, TrainTask, Trainer, TrainerConfig, micro_batch_seed,
};
