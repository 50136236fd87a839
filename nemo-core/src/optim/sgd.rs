//! Stochastic gradient descent with momentum, as `torch.optim.SGD`.
//!
//! Per parameter `p` with gradient `g`, learning rate `lr`, at the parameter's update `t`
//! (1-based):
//!
//! ```text
//! d   = g + weight_decay * p                       (L2 penalty added to the gradient)
//! buf = d                                          if t == 1
//!     = momentum * buf + (1 - dampening) * d       otherwise        (only if momentum != 0)
//! d   = d + momentum * buf   if nesterov,  buf otherwise             (only if momentum != 0)
//! p   = p - lr * d
//! ```
//!
//! State per parameter: `momentum_buffer` (shape of the parameter; absent without momentum).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::check_non_negative;
use super::driver::{Driver, UpdateRule, lost_buffers};
use super::fused::par_update;
use super::state::{SlotShape, Slots};
use crate::{Error, Result};

/// Options of [`Sgd`] (NeMo's `SGDParams`; PyTorch's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// Momentum factor; 0 disables momentum. Default 0.
    pub momentum: f64,
    /// Dampening of the momentum's gradient term (`1 - dampening`). Default 0.
    pub dampening: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`). Default false.
    pub nesterov: bool,
    /// L2 penalty, added to the gradient as `weight_decay * p`. Default 0.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    /// SGD with the given momentum, other options at their defaults.
    pub fn with_momentum(momentum: f64) -> Self {
        Self {
            momentum,
            ..Self::default()
        }
    }
}

/// SGD with momentum, Nesterov and L2 weight decay (see the module doc).
pub type Sgd = Driver<SgdConfig>;

impl UpdateRule for SgdConfig {
    const NAME: &'static str = "sgd";

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::Config`] for a negative or non-finite value, or Nesterov without momentum or
    /// with dampening.
    fn validate(&self) -> Result<()> {
        check_non_negative("optim.momentum", self.momentum)?;
        check_non_negative("optim.dampening", self.dampening)?;
        check_non_negative("optim.weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::Config {
                key: "optim.nesterov".to_string(),
                msg: format!(
                    "Nesterov momentum needs momentum > 0 and dampening 0, got momentum {} and \
                     dampening {}",
                    self.momentum, self.dampening
                ),
            });
        }
        Ok(())
    }

    /// `momentum_buffer` with momentum, nothing without.
    fn slots(&self) -> Slots {
        if self.momentum != 0.0 {
            vec![("momentum_buffer", SlotShape::LikeParam)]
        } else {
            Vec::new()
        }
    }

    fn update_in_place(
        &self,
        p: &mut [f32],
        g: &[f32],
        buffers: &mut [&mut [f32]],
        t: u64,
        lr: f64,
    ) -> Result<()> {
        let (lr, wd) = (lr as f32, self.weight_decay as f32);
        let (momentum, keep) = (self.momentum as f32, (1.0 - self.dampening) as f32);
        let (first, nesterov) = (t == 1, self.nesterov);
        let decayed = move |p: f32, g: f32| if wd != 0.0 { g + wd * p } else { g };
        match buffers {
            [] => par_update([p], [g], |[p], [g]| {
                for (p, &g) in p.iter_mut().zip(g) {
                    *p -= lr * decayed(*p, g);
                }
            }),
            [b] => par_update([p, &mut **b], [g], |[p, b], [g]| {
                for ((p, b), &g) in p.iter_mut().zip(b.iter_mut()).zip(g) {
                    let d = decayed(*p, g);
                    *b = if first { d } else { *b * momentum + keep * d };
                    let d = if nesterov { d + momentum * *b } else { *b };
                    *p -= lr * d;
                }
            }),
            _ => Err(lost_buffers(Self::NAME)),
        }
    }

    fn update_tensors(
        &self,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Tensor],
        t: u64,
        lr: f64,
    ) -> Result<Tensor> {
        let mut d = if self.weight_decay != 0.0 {
            (grad + param.affine(self.weight_decay, 0.0)?)?
        } else {
            grad.clone()
        };
        if let Some(buf) = buffers.first_mut() {
            let next = if t == 1 {
                d.copy()? // owned: the buffer must not share the gradient's storage
            } else {
                (buf.affine(self.momentum, 0.0)? + d.affine(1.0 - self.dampening, 0.0)?)?
            };
            d = if self.nesterov {
                (&d + next.affine(self.momentum, 0.0)?)?
            } else {
                next.clone()
            };
            *buf = next;
        }
        Ok((param - d.affine(lr, 0.0)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::{TestResult, check_paths_agree};

    #[test]
    fn fused_cpu_kernel_matches_tensor_ops() -> TestResult {
        for c in [
            SgdConfig::default(),
            SgdConfig {
                momentum: 0.9,
                dampening: 0.1,
                weight_decay: 0.01,
                ..SgdConfig::default()
            },
            SgdConfig {
                momentum: 0.8,
                nesterov: true,
                weight_decay: 0.001,
                ..SgdConfig::default()
            },
        ] {
            check_paths_agree(&c)?;
        }
        Ok(())
    }
}
