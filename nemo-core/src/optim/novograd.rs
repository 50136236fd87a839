//! NovoGrad, as NeMo's `Novograd` (`nemo/core/optim/novograd.py`): Adam-like momentum with a
//! per-tensor ("layer-wise") second moment ([Ginsburg et al., 2019](https://arxiv.org/abs/1905.11286)).
//!
//! Per parameter tensor `p` with gradient `g`, learning rate `lr`:
//!
//! ```text
//! n     = ||g||^2                                   (one scalar per tensor)
//! v     = n                            if v == 0    (first update: initialised with the norm)
//!       = beta2 * v + (1 - beta2) * n  otherwise
//! v_max = max(v_max, v)                             (amsgrad only; used instead of v)
//! d     = g / (sqrt(v) + eps)
//! d     = d + weight_decay * p                      (decay added to the normalized gradient)
//! d     = d * (1 - beta1)                           (grad_averaging only)
//! m     = beta1 * m + d
//! p     = p - lr * m
//! ```
//!
//! There is no bias correction. State per parameter: `exp_avg` (m, the parameter's shape),
//! `exp_avg_sq` (v, a scalar) and, with amsgrad, `max_exp_avg_sq` (a scalar). NeMo's optional
//! layer-wise update clipping (`luc`) is not implemented.
//!
//! Reference: NeMo at commit `a09a33f5e2eec648ab80e199a165010e4082b179`,
//! `nemo/core/optim/novograd.py`, `Novograd.step`.

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use super::{
    Core, Optimizer, OptimizerConfig, ParamState, SlotShape, check_non_negative, check_range,
    par_update, sum_squares, update_cpu_in_place,
};
use crate::{Error, Result};

/// Options of [`Novograd`] (NeMo's `NovogradParams` and `Novograd.__init__` defaults, the
/// values QuartzNet trains with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NovogradConfig {
    /// Decay of the first moment and of the per-tensor second moment, each in `[0, 1)`.
    /// Default `[0.95, 0.98]`.
    pub betas: [f64; 2],
    /// Added to the denominator `sqrt(v)`. Default 1e-8.
    pub eps: f64,
    /// Added to the normalized gradient as `weight_decay * p`. Default 0.
    pub weight_decay: f64,
    /// Multiply the normalized gradient by `1 - beta1` before the momentum. Default false.
    pub grad_averaging: bool,
    /// Normalize by the running maximum of the second moment. Default false.
    pub amsgrad: bool,
}

impl Default for NovogradConfig {
    fn default() -> Self {
        Self {
            betas: [0.95, 0.98],
            eps: 1e-8,
            weight_decay: 0.0,
            grad_averaging: false,
            amsgrad: false,
        }
    }
}

impl NovogradConfig {
    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::Config`] for betas outside `[0, 1)` or a negative or non-finite eps or weight decay.
    pub fn validate(&self) -> Result<()> {
        for beta in self.betas {
            check_range("optim.betas", beta, 0.0, 1.0)?;
        }
        check_non_negative("optim.eps", self.eps)?;
        check_non_negative("optim.weight_decay", self.weight_decay)
    }
}

/// NovoGrad (see the module doc).
#[derive(Debug)]
pub struct Novograd {
    config: NovogradConfig,
    core: Core,
}

impl Novograd {
    /// NovoGrad over `params` (checkpoint name, f32 variable).
    ///
    /// # Errors
    /// [`Error::Config`] for invalid options; [`Error::Optimizer`] for empty or duplicated names
    /// or non-f32 variables.
    pub fn new(params: Vec<(String, Var)>, config: NovogradConfig) -> Result<Self> {
        config.validate()?;
        let mut slots = vec![
            ("exp_avg", SlotShape::LikeParam),
            ("exp_avg_sq", SlotShape::Scalar),
        ];
        if config.amsgrad {
            slots.push(("max_exp_avg_sq", SlotShape::Scalar));
        }
        let core = Core::new(params, slots)?;
        Ok(Self { config, core })
    }

    /// The options.
    pub fn novograd_config(&self) -> &NovogradConfig {
        &self.config
    }
}

/// One NovoGrad update of `param`: in place on the CPU, else the new value.
fn update(
    c: &NovogradConfig,
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

/// [`update`] as fused in-place passes over contiguous f32 CPU data (the squared norm, then the
/// update); `false` (nothing done) for other tensors.
fn update_cpu(
    c: &NovogradConfig,
    param: &Tensor,
    grad: &Tensor,
    state: &mut ParamState,
    lr: f64,
) -> Result<bool> {
    let [b1, b2] = c.betas.map(|b| b as f32);
    let [c1, c2] = c.betas.map(|b| (1.0 - b) as f32);
    let (lr, eps, wd) = (lr as f32, c.eps as f32, c.weight_decay as f32);
    let averaging = c.grad_averaging;
    let done = update_cpu_in_place(param, grad, &state.slots, |p, g, buffers| {
        let (m, v, v_max) = match buffers {
            [m, v] => (m, v, None),
            [m, v, v_max] => (m, v, Some(v_max)),
            _ => return Err(lost_buffers()),
        };
        let v = v.first_mut().ok_or_else(lost_buffers)?;
        let v_max = match v_max {
            Some(vm) => Some(vm.first_mut().ok_or_else(lost_buffers)?),
            None => None,
        };
        let norm = sum_squares(g) as f32; // ||g||^2
        *v = if *v == 0.0 { norm } else { *v * b2 + c2 * norm };
        let v_hat = match v_max {
            Some(vm) => {
                *vm = vm.max(*v);
                *vm
            }
            None => *v,
        };
        let denom = v_hat.sqrt() + eps;
        par_update([p, &mut **m], [g], |[p, m], [g]| {
            for ((p, m), &g) in p.iter_mut().zip(m.iter_mut()).zip(g) {
                let mut d = g / denom;
                if wd != 0.0 {
                    d += wd * *p;
                }
                if averaging {
                    d *= c1;
                }
                *m = *m * b1 + d;
                *p -= lr * *m;
            }
        })
    })?;
    if done {
        state.step += 1;
    }
    Ok(done)
}

fn lost_buffers() -> Error {
    Error::Optimizer {
        msg: "novograd: parameter state lost its buffers".to_string(),
    }
}

/// [`update`] with tensor operations, on any device.
///
/// The second moment stays on the device (no host synchronisation): the `v == 0` test of NeMo is
/// a `where_cond`.
fn update_tensors(
    c: &NovogradConfig,
    param: &Tensor,
    grad: &Tensor,
    state: &mut ParamState,
    lr: f64,
) -> Result<Tensor> {
    let [beta1, beta2] = c.betas;
    let (m, v, v_max) = match state.slots.as_slice() {
        [m, v] => (m, v, None),
        [m, v, v_max] => (m, v, Some(v_max)),
        _ => return Err(lost_buffers()),
    };
    let norm = grad.sqr()?.sum_all()?; // ()
    let blended = (v.affine(beta2, 0.0)? + norm.affine(1.0 - beta2, 0.0)?)?;
    let v = v.eq(0f32)?.where_cond(&norm, &blended)?;
    let v_max = v_max.map(|vm| vm.maximum(&v)).transpose()?;
    let denom = v_max.as_ref().unwrap_or(&v).sqrt()?.affine(1.0, c.eps)?;
    let mut d = grad.broadcast_div(&denom)?;
    if c.weight_decay != 0.0 {
        d = (d + param.affine(c.weight_decay, 0.0)?)?;
    }
    if c.grad_averaging {
        d = d.affine(1.0 - beta1, 0.0)?;
    }
    let m = (m.affine(beta1, 0.0)? + d)?;
    let next = (param - m.affine(lr, 0.0)?)?;
    state.slots = match v_max {
        Some(v_max) => vec![m, v, v_max],
        None => vec![m, v],
    };
    state.step += 1;
    Ok(next)
}

impl Optimizer for Novograd {
    fn name(&self) -> &'static str {
        "novograd"
    }

    fn config(&self) -> OptimizerConfig {
        OptimizerConfig::Novograd(self.config.clone())
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
            NovogradConfig::default(),
            NovogradConfig {
                betas: [0.8, 0.5],
                weight_decay: 0.001,
                grad_averaging: true,
                ..NovogradConfig::default()
            },
            NovogradConfig {
                betas: [0.9, 0.7],
                weight_decay: 0.01,
                amsgrad: true,
                ..NovogradConfig::default()
            },
        ] {
            let slots = {
                let mut s = vec![
                    ("exp_avg", SlotShape::LikeParam),
                    ("exp_avg_sq", SlotShape::Scalar),
                ];
                if c.amsgrad {
                    s.push(("max_exp_avg_sq", SlotShape::Scalar));
                }
                s
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
