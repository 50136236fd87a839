//! Optimizers, gradient clipping and learning-rate schedules of the training runtime.
//!
//! NeMo 0.x's `train` action takes an optimizer name with its parameters and an `lr_policy`; the
//! policy gives the learning rate of every step, the optimizer applies one update per step. Here:
//!
//! - [`Optimizer`]: the update over named parameters (names are checkpoint keys), with per-step
//!   freezing, checkpointable state ([`Optimizer::state_dict`]) and three rules: [`Sgd`]
//!   (`torch.optim.SGD`), [`AdamW`] (`torch.optim.AdamW`) and [`Novograd`] (NeMo's
//!   `nemo/core/optim/novograd.py`), chosen by an [`OptimizerConfig`] read from YAML:
//!   `{name: novograd, betas: [0.95, 0.5], weight_decay: 0.001}`. Each is one generic
//!   [`Driver`] (parameters, state, gradients, freezing, state dicts) over the rule's
//!   [`UpdateRule`] (the update of one tensor, a fused CPU pass and a tensor-op version).
//! - [`clip_grad_norm`]: global L2 gradient clipping as `torch.nn.utils.clip_grad_norm_`.
//! - [`LrSchedule`]: warmup then constant, linear, cosine or polynomial decay, as a pure function
//!   of the step (NeMo's `WarmupPolicy`, `WarmupAnnealing`, `CosineAnnealing`,
//!   `PolynomialDecayAnnealing`).
//!
//! Parameters are f32 [`Var`]s (the master weights); every piece of optimizer state is f32 on the
//! parameter's device, whatever dtype the forward pass computes in.
//!
//! ```
//! # fn main() -> nemo_core::Result<()> {
//! use candle_core::{Device, Tensor, Var};
//! use nemo_core::optim::{LrPolicy, LrSchedule, OptimizerConfig};
//!
//! let w = Var::from_tensor(&Tensor::new(&[1f32, -2.0], &Device::Cpu)?)?;
//! let config: OptimizerConfig = serde_json::from_str(r#"{"name": "sgd", "momentum": 0.9}"#)
//!     .map_err(|e| nemo_core::Error::Config { key: "optim".into(), msg: e.to_string() })?;
//! let mut optimizer = config.build(vec![("w".to_string(), w.clone())])?;
//! let schedule = LrSchedule::new(LrPolicy::CosineAnnealing, 0.1).with_warmup_steps(10);
//!
//! let loss = w.as_tensor().sqr()?.sum_all()?;
//! let grads = loss.backward()?;
//! optimizer.step(&grads, schedule.lr_at(0, 1000), &|_| false)?;
//! assert_eq!(optimizer.step_count(), 1);
//! # Ok(())
//! # }
//! ```

mod adamw;
mod clip;
mod driver;
mod fused;
mod novograd;
mod schedule;
mod sgd;
mod state;
#[cfg(test)]
mod test_util;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

pub use adamw::{AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, grad_norm};
pub use driver::{Driver, UpdateRule};
pub(crate) use fused::with_cpu_f32;
pub use novograd::{Novograd, NovogradConfig};
pub use schedule::{LrPolicy, LrSchedule};
pub use sgd::{Sgd, SgdConfig};
pub use state::{SlotShape, Slots};

use crate::{Error, Result};

/// Key of the optimizer-wide step counter in [`Optimizer::state_dict`].
pub const STEP_KEY: &str = "step";

/// An update rule over named parameters.
///
/// The parameters are given at construction as `(name, Var)` pairs; the names are the model's
/// checkpoint keys and also name the optimizer state (`"{name}.exp_avg"`, ...).
pub trait Optimizer: Send {
    /// The rule's name as in [`OptimizerConfig`] (`sgd`, `adamw`, `novograd`).
    fn name(&self) -> &'static str;

    /// The configuration this optimizer was built with.
    fn config(&self) -> OptimizerConfig;

    /// The optimized parameters, in construction order.
    fn params(&self) -> &[(String, Var)];

    /// How many times [`Optimizer::step`] has run (restored by [`Optimizer::load_state_dict`]).
    fn step_count(&self) -> u64;

    /// Applies one update with learning rate `lr`.
    ///
    /// A parameter for which `frozen(name)` is true, or that has no gradient in `grads`, is left
    /// bit-identical and its optimizer state (moments and per-parameter step) is not touched,
    /// as PyTorch skips parameters whose `.grad` is `None`; NeMo's dynamic layer freezing relies on
    /// this. Gradients may have any float dtype; they are used in f32.
    ///
    /// # Errors
    /// [`Error::Optimizer`] if `lr` is negative or not finite or a gradient's shape differs from
    /// its parameter's; [`Error::Candle`] if a tensor operation fails.
    fn step(&mut self, grads: &GradStore, lr: f64, frozen: &dyn Fn(&str) -> bool) -> Result<()>;

    /// The optimizer state for a checkpoint: [`STEP_KEY`] (the step counter, an `i64` scalar),
    /// and per parameter `"{name}.step"` (`i64` scalar) and the rule's f32 buffers
    /// (`"{name}.momentum_buffer"`, `"{name}.exp_avg"`, `"{name}.exp_avg_sq"`,
    /// `"{name}.max_exp_avg_sq"`), in parameter order.
    ///
    /// # Errors
    /// [`Error::Candle`] if a counter tensor cannot be created.
    fn state_dict(&self) -> Result<Vec<(String, Tensor)>>;

    /// Restores state written by [`Optimizer::state_dict`] of an optimizer of the same rule and
    /// options over parameters with the same names and shapes. Buffers may come in any float dtype
    /// and on any device; they are stored as f32 on each parameter's device.
    ///
    /// Nothing changes unless every entry is valid.
    ///
    /// # Errors
    /// [`Error::Optimizer`] listing every missing, unexpected, duplicated or mis-shaped entry
    /// with its name and shapes.
    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()>;
}

/// Which optimizer to build and its options, read from a NeMo-style `optim` section.
///
/// Tagged by `name`; the learning rate is not part of it (it comes from the [`LrSchedule`]).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use nemo_core::optim::{NovogradConfig, OptimizerConfig};
///
/// let yaml = "name: novograd\nbetas: [0.8, 0.5]\nweight_decay: 0.001\n";
/// let config: OptimizerConfig = serde_norway::from_str(yaml)?;
/// let expected = NovogradConfig { betas: [0.8, 0.5], weight_decay: 0.001, ..Default::default() };
/// assert_eq!(config, OptimizerConfig::Novograd(expected));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum OptimizerConfig {
    /// Stochastic gradient descent with momentum, as `torch.optim.SGD`.
    Sgd(SgdConfig),
    /// Adam with decoupled weight decay, as `torch.optim.AdamW`.
    #[serde(alias = "adam_w")]
    AdamW(AdamWConfig),
    /// NovoGrad, as NeMo's `Novograd`.
    Novograd(NovogradConfig),
}

impl Default for OptimizerConfig {
    /// NovoGrad with NeMo's defaults, the optimizer of QuartzNet.
    fn default() -> Self {
        Self::Novograd(NovogradConfig::default())
    }
}

impl OptimizerConfig {
    /// Checks the options (ranges of betas, eps, momentum, weight decay).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key (`optim.betas`, ...) and the value.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Sgd(c) => c.validate(),
            Self::AdamW(c) => c.validate(),
            Self::Novograd(c) => c.validate(),
        }
    }

    /// Builds the optimizer over `params` (checkpoint name, f32 variable).
    ///
    /// # Errors
    /// [`Error::Config`] for invalid options; [`Error::Optimizer`] for an empty or duplicated
    /// name or a variable that is not f32.
    pub fn build(&self, params: Vec<(String, Var)>) -> Result<Box<dyn Optimizer>> {
        Ok(match self {
            Self::Sgd(c) => Box::new(Sgd::new(params, c.clone())?),
            Self::AdamW(c) => Box::new(AdamW::new(params, c.clone())?),
            Self::Novograd(c) => Box::new(Novograd::new(params, c.clone())?),
        })
    }
}

impl From<SgdConfig> for OptimizerConfig {
    fn from(c: SgdConfig) -> Self {
        Self::Sgd(c)
    }
}

impl From<AdamWConfig> for OptimizerConfig {
    fn from(c: AdamWConfig) -> Self {
        Self::AdamW(c)
    }
}

impl From<NovogradConfig> for OptimizerConfig {
    fn from(c: NovogradConfig) -> Self {
        Self::Novograd(c)
    }
}

/// Checks that `value` lies in `[lo, hi)`, naming the config key otherwise.
pub(crate) fn check_range(key: &str, value: f64, lo: f64, hi: f64) -> Result<()> {
    if value.is_finite() && value >= lo && value < hi {
        Ok(())
    } else {
        Err(Error::Config {
            key: key.to_string(),
            msg: format!("must be in [{lo}, {hi}), got {value}"),
        })
    }
}

/// Checks that `value` is finite and non-negative, naming the config key otherwise.
pub(crate) fn check_non_negative(key: &str, value: f64) -> Result<()> {
    check_range(key, value, 0.0, f64::INFINITY)
}
