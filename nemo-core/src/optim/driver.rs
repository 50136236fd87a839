//! The one optimizer driver: [`Driver<R>`] runs any [`UpdateRule`] over named parameters.
//!
//! What every optimizer does the same way lives here: checking the parameters, one state per
//! parameter (an update count and the rule's f32 buffers), looking each gradient up, skipping
//! frozen parameters and those without a gradient, using gradients in f32, choosing the fused
//! CPU pass or the tensor-op version of the rule, counting steps and the state dict. A rule
//! ([`SgdConfig`](super::SgdConfig), [`AdamWConfig`](super::AdamWConfig),
//! [`NovogradConfig`](super::NovogradConfig)) only says which buffers it keeps and how one
//! tensor is updated.

use std::collections::HashSet;
use std::fmt;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use super::fused::update_cpu_in_place;
use super::state::{self, ParamState, Slots, problems_error};
use super::{Optimizer, OptimizerConfig};
use crate::{Error, Result};

/// The update of one parameter tensor by one optimizer, given its gradient and state.
///
/// Implemented by the options of each rule, so that `Driver<SgdConfig>` is SGD. Both versions
/// must compute the same update: [`UpdateRule::update_in_place`] is the fast one, used when every
/// tensor is contiguous f32 on the CPU; [`UpdateRule::update_tensors`] runs on any device.
pub trait UpdateRule: fmt::Debug + Clone + Send + Into<OptimizerConfig> {
    /// The rule's name as in [`OptimizerConfig`] (`sgd`, `adamw`, `novograd`).
    const NAME: &'static str;

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key (`optim.betas`, ...) and the value.
    fn validate(&self) -> Result<()>;

    /// The state buffers kept per parameter, in the order the update receives them.
    fn slots(&self) -> Slots;

    /// Updates `param` and the state `buffers` in place from `grad`, at the parameter's `t`-th
    /// update (1-based) with learning rate `lr`.
    ///
    /// # Errors
    /// [`Error::Optimizer`] if the slices' lengths or the number of buffers are not what the
    /// rule expects.
    fn update_in_place(
        &self,
        param: &mut [f32],
        grad: &[f32],
        buffers: &mut [&mut [f32]],
        t: u64,
        lr: f64,
    ) -> Result<()>;

    /// [`UpdateRule::update_in_place`] with tensor operations: returns the new parameter value
    /// and replaces the buffers.
    ///
    /// # Errors
    /// As [`UpdateRule::update_in_place`]; [`Error::Candle`] if a tensor operation fails.
    fn update_tensors(
        &self,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Tensor],
        t: u64,
        lr: f64,
    ) -> Result<Tensor>;
}

/// An optimizer: the update rule `R` applied to named parameters, with per-parameter state and
/// a step counter (see the module doc). [`Sgd`](super::Sgd), [`AdamW`](super::AdamW) and
/// [`Novograd`](super::Novograd) are this type over their options.
#[derive(Debug)]
pub struct Driver<R> {
    rule: R,
    params: Vec<(String, Var)>,
    slots: Slots,
    states: Vec<ParamState>,
    step: u64,
}

impl<R: UpdateRule> Driver<R> {
    /// The optimizer over `params` (checkpoint name, f32 variable) with zeroed state.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid options; [`Error::Optimizer`] for empty or duplicated names
    /// or non-f32 variables.
    pub fn new(params: Vec<(String, Var)>, rule: R) -> Result<Self> {
        rule.validate()?;
        check_params(&params)?;
        let slots = rule.slots();
        let states = params
            .iter()
            .map(|(_, var)| ParamState::zeroed(var, &slots))
            .collect::<Result<_>>()?;
        Ok(Self {
            rule,
            params,
            slots,
            states,
            step: 0,
        })
    }

    /// The rule's options.
    pub fn rule(&self) -> &R {
        &self.rule
    }
}

/// Names must be non-empty and unique (they are checkpoint keys); master weights must be f32.
fn check_params(params: &[(String, Var)]) -> Result<()> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for (name, var) in params {
        if name.is_empty() {
            problems.push("a parameter has an empty name".to_string());
        } else if !seen.insert(name.as_str()) {
            problems.push(format!("parameter `{name}` is given twice"));
        }
        if var.dtype() != DType::F32 {
            problems.push(format!(
                "parameter `{name}` is {:?}, master weights must be f32",
                var.dtype()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems_error("invalid parameters", &problems))
    }
}

/// One update of `param` (f32 `grad`): in place on the CPU (`None`: `param` shares the
/// variable's storage), else the new value; counts the parameter's update.
fn update<R: UpdateRule>(
    rule: &R,
    param: &Tensor,
    grad: &Tensor,
    state: &mut ParamState,
    lr: f64,
) -> Result<Option<Tensor>> {
    let t = state.step + 1;
    let fused = update_cpu_in_place(param, grad, &state.slots, |p, g, buffers| {
        rule.update_in_place(p, g, buffers, t, lr)
    })?;
    let next = if fused {
        None
    } else {
        Some(rule.update_tensors(param, grad, &mut state.slots, t, lr)?)
    };
    state.step = t;
    Ok(next)
}

/// The error of a rule handed other buffers than its [`UpdateRule::slots`].
pub(crate) fn lost_buffers(rule: &str) -> Error {
    Error::Optimizer {
        msg: format!("{rule}: parameter state lost its buffers"),
    }
}

impl<R: UpdateRule> Optimizer for Driver<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }

    fn config(&self) -> OptimizerConfig {
        self.rule.clone().into()
    }

    fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    fn step_count(&self) -> u64 {
        self.step
    }

    fn step(&mut self, grads: &GradStore, lr: f64, frozen: &dyn Fn(&str) -> bool) -> Result<()> {
        if !lr.is_finite() || lr < 0.0 {
            return Err(Error::Optimizer {
                msg: format!("learning rate must be finite and >= 0, got {lr}"),
            });
        }
        for ((name, var), state) in self.params.iter().zip(self.states.iter_mut()) {
            if frozen(name) {
                continue;
            }
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            if grad.shape() != var.shape() {
                return Err(Error::Optimizer {
                    msg: format!(
                        "gradient of `{name}` has shape {:?}, the parameter {:?}",
                        grad.dims(),
                        var.dims()
                    ),
                });
            }
            let grad = grad.detach().to_dtype(DType::F32)?;
            let param = var.as_detached_tensor();
            if let Some(next) = update(&self.rule, &param, &grad, state, lr)? {
                var.set(&next)?;
            }
        }
        self.step += 1;
        Ok(())
    }

    fn state_dict(&self) -> Result<Vec<(String, Tensor)>> {
        state::write(&self.params, &self.states, &self.slots, self.step)
    }

    fn load_state_dict(&mut self, entries: &[(String, Tensor)]) -> Result<()> {
        let (step, states) = state::read(entries, &self.params, &self.slots)?;
        self.states = states;
        self.step = step;
        Ok(())
    }
}
