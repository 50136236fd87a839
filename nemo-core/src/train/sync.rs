//! The seam for data parallelism: [`GradientSync`] combines the gradients of all replicas after
//! accumulation and before unscaling, the non-finite check, clipping and the update.
//!
//! A single process uses [`SingleProcess`], which does nothing. Multi-GPU data parallelism
//! (NeMo 0.x's `torch.distributed` + NCCL path, PyTorch DDP) plugs in here without touching the
//! step loop:
//!
//! * one process per GPU, each with its own [`Trainer`](super::Trainer), model replica and
//!   optimizer, all started from the same weights (rank 0's broadcast, or the same seed);
//! * each task reads its own shard of every batch (it knows its rank from the implementation
//!   passed to it, e.g. `rank()` and `world_size()` here);
//! * an NCCL implementation of [`GradientSync::all_reduce`] sums each gradient in place over the
//!   ranks (`ncclAllReduce` with `ncclSum` on the gradient's CUDA buffer, through cudarc's
//!   `nccl` module; bucketing small tensors into one flat buffer as DDP does) and divides by
//!   `world_size()`, so every replica applies the same mean gradient. An inf or NaN on any rank
//!   propagates through the sum, so all ranks skip the same steps and keep the same loss scale;
//! * only rank 0 writes metrics, curves and checkpoints (the trainer already checks `rank()`).

use candle_core::Var;
use candle_core::backprop::GradStore;

use crate::Result;

/// Combines gradients across data-parallel replicas.
pub trait GradientSync: Send {
    /// Replaces each gradient of `vars` in `grads` by its mean over all replicas. Called once per
    /// update, after the micro-batches are accumulated, with the still-scaled gradients.
    fn all_reduce(&mut self, grads: &mut GradStore, vars: &[(String, Var)]) -> Result<()>;
    /// How many replicas train together.
    fn world_size(&self) -> usize;
    /// This replica's index in `0..world_size()`; rank 0 writes the run's files.
    fn rank(&self) -> usize;
}

/// One process, no communication: the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingleProcess;

impl GradientSync for SingleProcess {
    fn all_reduce(&mut self, _grads: &mut GradStore, _vars: &[(String, Var)]) -> Result<()> {
        Ok(())
    }

    fn world_size(&self) -> usize {
        1
    }

    fn rank(&self) -> usize {
        0
    }
}
