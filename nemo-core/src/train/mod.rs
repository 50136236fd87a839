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
//! from them (exact on CPU), and `curves.png` of the loss and metrics at the end ([`plot`]).
//!
//! Run directory layout: `metrics.jsonl`, `curves.png`, `checkpoints/step-00000100/`.

mod checkpoint;
mod freeze;
pub mod plot;
pub mod precision;
pub mod sync;
mod trainer;

pub use checkpoint::{Checkpoint, latest_checkpoint};
pub use freeze::{FreezeConfig, FreezeSpec};
pub use precision::{GradScaler, GradScalerState, MixedPrecision, PrecisionMode};
pub use sync::{GradientSync, SingleProcess};
pub use trainer::{
    Callback, EarlyStopping, StepRecord, TrainSummary, TrainTask, Trainer, TrainerConfig,
};
