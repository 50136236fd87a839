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

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use super::{
    Core, Optimizer, OptimizerConfig, ParamState, SlotShape, check_non_negative, par_update,
    update_cpu_in_place,
};
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

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::Config`] for a negative or non-finite value, or Nesterov without momentum or
    /// with dampening.
    pub fn validate(&self) -> Result<()> {
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
}

/// SGD with momentum, Nesterov and L2 weight decay (see the module doc).
#[derive(Debug)]
pub struct Sgd {
    config: SgdConfig,
    core: Core,
}

impl Sgd {
    /// SGD over `params` (checkpoint name, f32 variable).
    ///
    /// # Errors
    /// [`Error::Config`] for invalid options; [`Error::Optimizer`] for empty or duplicated names
    /// or non-f32 variables.
    pub fn new(params: Vec<(String, Var)>, config: SgdConfig) -> Result<Self> {
        config.validate()?;
        let slots = if config.momentum != 0.0 {
            vec![("momentum_buffer", SlotShape::LikeParam)]
        } else {
            Vec::new()
        };
        let core = Core::new(params, slots)?;
        Ok(Self { config, core })
    }

    /// The options.
    pub fn sgd_config(&self) -> &SgdConfig {
        &self.config
    }
}

/// One SGD update of `param`: in place on the CPU, else the new value.
fn update(
    c: &SgdConfig,
    param: &Tensor,
    grad: &Tensor,
    state: &mut ParamState,
    lr: f64,
) -> Result<Option<Tensor>> {
    if update_cpu(c, param, grad, state, lr)? {
        return Ok(None);
    }
    update_tensors(c, param, grad, state, lr).map(Some)
}

/// [`update`] as one fused in-place pass over contiguous f32 CPU data; `false` (nothing done)
/// for other tensors.
fn update_cpu(
    c: &SgdConfig,
    param: &Tensor,
    grad: &Tensor,
    state: &mut ParamState,
    lr: f64,
) -> Result<bool> {
    let (lr, wd) = (lr as f32, c.weight_decay as f32);
    let (momentum, keep) = (c.momentum as f32, (1.0 - c.dampening) as f32);
    let (first, nesterov) = (state.step == 0, c.nesterov);
    let decayed = move |p: f32, g: f32| if wd != 0.0 { g + wd * p } else { g };
    let done = update_cpu_in_place(param, grad, &state.slots, |p, g, buffers| match buffers {
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
        _ => Err(lost_buffers()),
    })?;
    if done {
        state.step += 1;
    }
    Ok(done)
}

fn lost_buffers() -> Error {
    Error::Optimizer {
        msg: "sgd: parameter state lost its buffers".to_string(),
    }
}

/// [`update`] with tensor operations, on any device.
fn update_tensors(
    c: &SgdConfig,
    param: &Tensor,
    grad: &Tensor,
    state: &mut ParamState,
    lr: f64,
) -> Result<Tensor> {
    let mut d = if c.weight_decay != 0.0 {
        (grad + param.affine(c.weight_decay, 0.0)?)?
    } else {
        grad.clone()
    };
    if let Some(buf) = state.slots.first_mut() {
        let next = if state.step == 0 {
            d.copy()? // owned: the buffer must not share the gradient's storage
        } else {
            (buf.affine(c.momentum, 0.0)? + d.affine(1.0 - c.dampening, 0.0)?)?
        };
        d = if c.nesterov {
            (&d + next.affine(c.momentum, 0.0)?)?
        } else {
            next.clone()
        };
        *buf = next;
    }
    state.step += 1;
    Ok((param - d.affine(lr, 0.0)?)?)
}

impl Optimizer for Sgd {
    fn name(&self) -> &'static str {
        "sgd"
    }

    fn config(&self) -> OptimizerConfig {
        OptimizerConfig::Sgd(self.config.clone())
    }

    fn params(&self) -> &[(String, Var)] {
        self.core.params()
    }

    fn step_count(&self) -> u64 {
        self.core.step_count()
    }

    fn step(
        &mut self,
        grads: &candle_core::backprop::GradStore,
        lr: f64,
        frozen: &dyn Fn(&str) -> bool,
    ) -> Result<()> {
        let c = &self.config;
        self.core
            .step(grads, lr, frozen, |p, g, s| update(c, p, g, s, lr))
    }

    fn state_dict(&self) -> Result<Vec<(String, Tensor)>> {
        self.core.state_dict()
    }

    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        self.core.load_state_dict(state)
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
            let slots = if c.momentum != 0.0 {
                vec![("momentum_buffer", SlotShape::LikeParam)]
            } else {
                Vec::new()
            };
            check_paths_agree(
                &slots,
                |p, g, s, lr| update_cpu(&c, p, g, s, lr),
                |p, g, s, lr| update_tensors(&c, p, g, s, lr),
            )?;
        }
        Ok(())
    }
}
