//! Learning-rate schedules as pure functions of the step, as NeMo's learning-rate policies
//! (0.x `nemo/utils/lr_policies.py`, today `nemo/core/optim/lr_scheduler.py`).
//!
//! With peak rate `lr`, `W` warmup steps, `T = max_steps` and the 0-based step `s` (the number of
//! updates already applied):
//!
//! ```text
//! s <  W:  lr * (s + 1) / (W + 1)                                    (linear warmup)
//! s >  T:  min_lr
//! else, with progress q = (s - W) / (T - W):
//!   WarmupPolicy              lr
//!   WarmupAnnealing           min_lr + (lr - min_lr) * (1 - q)
//!   CosineAnnealing           min_lr + (lr - min_lr) * (1 + cos(pi * q)) / 2
//!   PolynomialDecayAnnealing  min_lr + (lr - min_lr) * (1 - q)^power
//! ```
//!
//! `W` is `warmup_steps`, or `floor(warmup_ratio * T)`, or 0. When `T == W` the decay has no
//! length and the rate is `lr` up to `T` (NeMo divides by zero there).
//!
//! Reference: NeMo at commit `2421b36558f76e49872adab8b64bbb5b215ba277`,
//! `nemo/utils/lr_policies.py` (0.x); both versions agree on the formulas above. Past `T` NeMo
//! 0.x's `WarmupPolicy` returns 0 and today's returns `min_lr`; we return `min_lr` (the same with
//! the default `min_lr = 0`).

use serde::{Deserialize, Serialize};

use super::check_non_negative;
use crate::{Error, Result};

/// The shape of the schedule after warmup (NeMo's policy class names; short aliases accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LrPolicy {
    /// Constant `lr` after warmup.
    #[serde(alias = "constant")]
    WarmupPolicy,
    /// Linear decay from `lr` to `min_lr` at `max_steps`.
    #[serde(alias = "linear")]
    WarmupAnnealing,
    /// Half-cosine decay from `lr` to `min_lr` at `max_steps`.
    #[serde(alias = "cosine")]
    CosineAnnealing,
    /// Polynomial decay `(1 - q)^power` from `lr` to `min_lr` at `max_steps`.
    #[serde(alias = "polynomial")]
    PolynomialDecayAnnealing,
}

/// A learning-rate schedule: peak rate, warmup and decay (see the module doc).
///
/// Read from YAML as NeMo's `optim.sched` section plus the peak `lr`:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use nemo_core::optim::{LrPolicy, LrSchedule};
///
/// let yaml = "name: CosineAnnealing\nlr: 0.01\nwarmup_ratio: 0.1\nmin_lr: 0.0001\n";
/// let schedule: LrSchedule = serde_norway::from_str(yaml)?;
/// assert_eq!(schedule.name, LrPolicy::CosineAnnealing);
/// assert_eq!(schedule.lr_at(100, 1000), 0.01); // end of warmup: the peak
/// assert_eq!(schedule.lr_at(1000, 1000), 0.0001); // end of the run: min_lr
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrSchedule {
    /// The policy after warmup.
    pub name: LrPolicy,
    /// Peak learning rate (NeMo's `optim.lr`), reached at the end of warmup.
    pub lr: f64,
    /// Warmup length in steps; exclusive with `warmup_ratio`. Default: none.
    #[serde(default)]
    pub warmup_steps: Option<u64>,
    /// Warmup length as a fraction of `max_steps`, in `[0, 1]`. Default: none.
    #[serde(default)]
    pub warmup_ratio: Option<f64>,
    /// Rate at the end of the decay and after `max_steps`. Default 0.
    #[serde(default)]
    pub min_lr: f64,
    /// Exponent of `PolynomialDecayAnnealing`. Default 1 (linear).
    #[serde(default = "default_power")]
    pub power: f64,
    /// NeMo's `PolynomialDecayAnnealing(cycle=...)`. Accepted for compatibility; as in NeMo it
    /// changes nothing, since steps past `max_steps` get `min_lr`. Default false.
    #[serde(default)]
    pub cycle: bool,
}

fn default_power() -> f64 {
    1.0
}

impl LrSchedule {
    /// A schedule of policy `name` with peak rate `lr`, no warmup, `min_lr` 0 and power 1.
    pub fn new(name: LrPolicy, lr: f64) -> Self {
        Self {
            name,
            lr,
            warmup_steps: None,
            warmup_ratio: None,
            min_lr: 0.0,
            power: default_power(),
            cycle: false,
        }
    }

    /// A constant rate without warmup.
    pub fn constant(lr: f64) -> Self {
        Self::new(LrPolicy::WarmupPolicy, lr)
    }

    /// Sets the warmup length in steps (and clears `warmup_ratio`).
    pub fn with_warmup_steps(mut self, steps: u64) -> Self {
        self.warmup_steps = Some(steps);
        self.warmup_ratio = None;
        self
    }

    /// Sets the warmup length as a fraction of `max_steps` (and clears `warmup_steps`).
    pub fn with_warmup_ratio(mut self, ratio: f64) -> Self {
        self.warmup_ratio = Some(ratio);
        self.warmup_steps = None;
        self
    }

    /// Sets the final rate.
    pub fn with_min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }

    /// Sets the exponent of the polynomial decay.
    pub fn with_power(mut self, power: f64) -> Self {
        self.power = power;
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] (keys `optim.sched.*`) for a negative or non-finite rate, both warmup
    /// keys set, a warmup ratio outside `[0, 1]`, a negative power, or (cosine) `min_lr > lr`.
    pub fn validate(&self) -> Result<()> {
        check_non_negative("optim.lr", self.lr)?;
        check_non_negative("optim.sched.min_lr", self.min_lr)?;
        check_non_negative("optim.sched.power", self.power)?;
        if let Some(ratio) = self.warmup_ratio {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(Error::Config {
                    key: "optim.sched.warmup_ratio".to_string(),
                    msg: format!("must be in [0, 1], got {ratio}"),
                });
            }
            if self.warmup_steps.is_some() {
                return Err(Error::Config {
                    key: "optim.sched.warmup_ratio".to_string(),
                    msg: "give either `warmup_steps` or `warmup_ratio`, not both".to_string(),
                });
            }
        }
        if self.name == LrPolicy::CosineAnnealing && self.min_lr > self.lr {
            return Err(Error::Config {
                key: "optim.sched.min_lr".to_string(),
                msg: format!(
                    "cosine annealing needs min_lr <= lr, got min_lr {} and lr {}",
                    self.min_lr, self.lr
                ),
            });
        }
        Ok(())
    }

    /// The warmup length in steps for a run of `max_steps` steps: `warmup_steps`, else
    /// `floor(warmup_ratio * max_steps)` (as NeMo's `int(...)`), else 0.
    pub fn warmup_steps(&self, max_steps: u64) -> u64 {
        match (self.warmup_steps, self.warmup_ratio) {
            (Some(steps), _) => steps,
            // `as` saturates; a validated ratio in [0, 1] stays within max_steps.
            (None, Some(ratio)) => (ratio * max_steps as f64).floor() as u64,
            (None, None) => 0,
        }
    }

    /// The learning rate of the update at 0-based `step` in a run of `max_steps` steps.
    pub fn lr_at(&self, step: u64, max_steps: u64) -> f64 {
        let warmup = self.warmup_steps(max_steps);
        if step < warmup {
            return self.lr * (step + 1) as f64 / (warmup + 1) as f64;
        }
        if step > max_steps {
            return self.min_lr;
        }
        let decay_steps = max_steps.saturating_sub(warmup); // warmup <= step <= max_steps here
        if decay_steps == 0 {
            return self.lr;
        }
        let progress = (step - warmup) as f64 / decay_steps as f64;
        let span = self.lr - self.min_lr;
        match self.name {
            LrPolicy::WarmupPolicy => self.lr,
            LrPolicy::WarmupAnnealing => (1.0 - progress) * span + self.min_lr,
            LrPolicy::CosineAnnealing => {
                span * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) + self.min_lr
            }
            LrPolicy::PolynomialDecayAnnealing => {
                span * (1.0 - progress).powf(self.power) + self.min_lr
            }
        }
    }
}
