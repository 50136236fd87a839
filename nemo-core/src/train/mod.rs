//! The training runtime: NeMo's `train` action as a [`Trainer`] over a [`TrainTask`].
//!
//! One step = `batches_per_step` micro-batches whose gradients are accumulated (each loss scaled
//! by `1 / batches_per_step`, so the update equals the large-batch one), an optional global-norm
//! clip, and one optimizer update with the schedule's learning rate, skipping parameters that are
//! not trainable or whose module the dynamic [`FreezeConfig`] freezes at this step. Around it:
//! a progress bar and `tracing` lines, a metrics JSONL per run, evaluation and early stopping,
//! checkpoints every N steps keeping the last K (written atomically), and resumption from them.

mod checkpoint;
mod freeze;
mod trainer;

pub use checkpoint::{Checkpoint, latest_checkpoint};
pub use freeze::{FreezeConfig, FreezeSpec};
pub use trainer::{
    Callback, EarlyStopping, StepRecord, TrainSummary, TrainTask, Trainer, TrainerConfig,
};
