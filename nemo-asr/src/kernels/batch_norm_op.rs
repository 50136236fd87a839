//! The candle custom ops of training-mode batch normalization: the forward on `(x, γ, β)`, which
//! records the batch statistics, and its backward on `(x, ∂L/∂y, y)`, each running the CPU kernels
//! of [`batch_norm_cpu`](super::batch_norm_cpu) or, with the `cuda` feature, the CUDA ones.

use std::sync::{Arc, OnceLock};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, bail};

use super::batch_norm_cpu::{Dims, Float, HostStats, backward, forward};
use super::cpu_args::{arg_slice, dispatch_float};

/// What the forward kernel computes and the backward and the caller reuse: per-channel values in
/// host memory from the CPU kernel, on the device from the CUDA kernel.
#[derive(Debug)]
pub(crate) enum Saved {
    Host(HostStats),
    #[cfg(feature = "cuda")]
    Device(crate::kernels::cuda::batch_norm::DeviceStats),
}

/// The training-mode forward on `(x, γ, β)`; records [`Saved`] for its backward and the caller.
#[derive(Debug, Clone)]
pub(crate) struct BatchNormTrain {
    pub(crate) dims: Dims,
    pub(crate) eps: f64,
    pub(crate) relu: bool,
    /// Filled by `cpu_fwd` or `cuda_fwd`.
    pub(crate) saved: Arc<OnceLock<Saved>>,
}

/// The backward on `(x, ∂L/∂y, y)`, returning `∂L/∂x`, `∂L/∂γ` and `∂L/∂β` packed in one vector
/// (see [`Dims::packed_grads_shape`]).
#[derive(Debug, Clone)]
struct BatchNormTrainBackward {
    pub(crate) dims: Dims,
    pub(crate) relu: bool,
    pub(crate) saved: Arc<OnceLock<Saved>>,
}

/// [`forward`] on the storages of `(x, γ, β)`; stores the statistics in `op.saved`.
fn forward_storage<T: Float>(
    this: &BatchNormTrain,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let op = this.name();
    let x = arg_slice::<T>(op, "x", s1, l1, &this.dims.x_shape())?;
    let gamma = arg_slice::<T>(op, "weight", s2, l2, &this.dims.c_shape())?;
    let beta = arg_slice::<T>(op, "bias", s3, l3, &this.dims.c_shape())?;
    let (y, saved) = if this.relu {
        forward::<T, true>(&this.dims, this.eps, x, gamma, beta)?
    } else {
        forward::<T, false>(&this.dims, this.eps, x, gamma, beta)?
    };
    if this.saved.set(Saved::Host(saved)).is_err() {
        bail!("{op}: the forward ran twice on one op");
    }
    Ok(T::to_cpu_storage_owned(y))
}

impl CustomOp3 for BatchNormTrain {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_float!(
            self.name(),
            s1.dtype(),
            forward_storage(self, (s1, l1), (s2, l2), (s3, l3))
        )?;
        Ok((storage, self.dims.x_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let d = self.dims;
        let (y, stats) = crate::kernels::cuda::batch_norm::forward(
            self.name(),
            (d.batch, d.channels, d.time),
            self.eps,
            self.relu,
            (s1, l1),
            (s2, l2),
            (s3, l3),
        )?;
        if self.saved.set(Saved::Device(stats)).is_err() {
            bail!("{}: the forward ran twice on one op", self.name());
        }
        Ok((y, d.x_shape()))
    }

    /// The packed gradients are in `x`'s dtype from the CPU kernel and `f32` from the CUDA one;
    /// each is cast to its input's dtype (a no-op but for half-precision `x` on CUDA).
    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = self.dims;
        let dy = dy.contiguous()?;
        let packed = x.apply_op3(
            &dy,
            y,
            BatchNormTrainBackward {
                dims,
                relu: self.relu,
                saved: Arc::clone(&self.saved),
            },
        )?;
        let n = dims.numel();
        let c = dims.channels;
        let dx = packed
            .narrow(0, 0, n)?
            .reshape(dims.x_shape())?
            .to_dtype(x.dtype())?;
        let dgamma = packed.narrow(0, n, c)?.to_dtype(gamma.dtype())?;
        let dbeta = packed.narrow(0, n + c, c)?.to_dtype(beta.dtype())?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// [`backward`] on the storages of `(x, ∂L/∂y, y)`.
fn backward_storage<T: Float>(
    this: &BatchNormTrainBackward,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let op = this.name();
    let shape = this.dims.x_shape();
    let x = arg_slice::<T>(op, "x", s1, l1, &shape)?;
    let dy = arg_slice::<T>(op, "dy", s2, l2, &shape)?;
    let y = arg_slice::<T>(op, "y", s3, l3, &shape)?;
    let Some(Saved::Host(saved)) = this.saved.get() else {
        bail!("{op}: the backward ran before the CPU forward");
    };
    let grads = if this.relu {
        backward::<T, true>(&this.dims, saved, x, dy, y)?
    } else {
        backward::<T, false>(&this.dims, saved, x, dy, y)?
    };
    Ok(T::to_cpu_storage_owned(grads))
}

impl CustomOp3 for BatchNormTrainBackward {
    fn name(&self) -> &'static str {
        "batch-norm-train-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_float!(
            self.name(),
            s1.dtype(),
            backward_storage(self, (s1, l1), (s2, l2), (s3, l3))
        )?;
        Ok((storage, self.dims.packed_grads_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let Some(Saved::Device(saved)) = self.saved.get() else {
            bail!("{}: the backward ran before the CUDA forward", self.name());
        };
        let d = self.dims;
        let packed = crate::kernels::cuda::batch_norm::backward(
            self.name(),
            (d.batch, d.channels, d.time),
            self.relu,
            saved,
            (s1, l1),
            (s2, l2),
            (s3, l3),
        )?;
        Ok((packed, d.packed_grads_shape()))
    }
}

/// Reads one statistic that the CUDA forward kept on the device, as a `(C)` `f64` tensor; applied
/// (without a backward) to the `(C)` weight for its device.
#[cfg(feature = "cuda")]
pub(crate) struct SavedStat {
    pub(crate) saved: Arc<OnceLock<Saved>>,
    pub(crate) which: crate::kernels::cuda::batch_norm::Stat,
}

#[cfg(feature = "cuda")]
impl candle_core::CustomOp1 for SavedStat {
    fn name(&self) -> &'static str {
        "batch-norm-saved-stat"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        bail!("{}: the statistics are on a CUDA device", self.name())
    }

    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let Some(Saved::Device(saved)) = self.saved.get() else {
            bail!("{}: no statistics on the device", self.name());
        };
        let stat = crate::kernels::cuda::batch_norm::stat(saved, self.which, s)?;
        Ok((stat, l.shape().clone()))
    }
}
