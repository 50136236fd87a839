//! Optimizer state: per parameter an update count and the rule's f32 buffers, and its state
//! dict — the step counters as `i64` scalars and the buffers under `"{name}.{slot}"` — read back
//! by a reader that collects every problem (missing, unexpected, duplicated, mis-shaped entries)
//! before anything is loaded.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use candle_core::{DType, Device, Shape, Tensor, Var};

use super::STEP_KEY;
use crate::{Error, Result};

/// Shape of one state buffer relative to its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotShape {
    /// Same shape as the parameter.
    LikeParam,
    /// A scalar `()` (NovoGrad's per-tensor second moment).
    Scalar,
}

impl SlotShape {
    /// The buffer's shape for a parameter of shape `param`.
    pub fn of(self, param: &Shape) -> Shape {
        match self {
            SlotShape::LikeParam => param.clone(),
            SlotShape::Scalar => Shape::from(()),
        }
    }
}

/// A rule's buffers: name (the state-dict key after `"{param}."`) and shape, in the order the
/// rule receives them.
pub type Slots = Vec<(&'static str, SlotShape)>;

/// State of one parameter: how many updates it received and its f32 buffers.
#[derive(Debug, Clone)]
pub(crate) struct ParamState {
    /// Updates applied to this parameter (PyTorch's per-parameter `state["step"]`).
    pub step: u64,
    /// Buffers in the order of the rule's slot list.
    pub slots: Vec<Tensor>,
}

impl ParamState {
    /// No updates yet, every buffer zero (f32, on the parameter's device).
    pub(crate) fn zeroed(var: &Var, slots: &Slots) -> Result<Self> {
        let mut buffers = Vec::with_capacity(slots.len());
        for &(_, kind) in slots {
            buffers.push(Tensor::zeros(
                kind.of(var.shape()),
                DType::F32,
                var.device(),
            )?);
        }
        Ok(ParamState {
            step: 0,
            slots: buffers,
        })
    }
}

/// The state dict of `params` with their `states` after `step` optimizer steps (see
/// [`Optimizer::state_dict`](super::Optimizer::state_dict)).
pub(crate) fn write(
    params: &[(String, Var)],
    states: &[ParamState],
    slots: &Slots,
    step: u64,
) -> Result<Vec<(String, Tensor)>> {
    let mut out = Vec::with_capacity(1 + params.len() * (1 + slots.len()));
    out.push((STEP_KEY.to_string(), counter_tensor(step)?));
    for ((name, _), state) in params.iter().zip(states) {
        out.push((format!("{name}.step"), counter_tensor(state.step)?));
        for ((slot, _), buffer) in slots.iter().zip(&state.slots) {
            // A copy: the fused CPU kernels update the buffers in place.
            out.push((format!("{name}.{slot}"), buffer.copy()?));
        }
    }
    Ok(out)
}

/// Reads what [`write`] wrote for `params` and `slots`: the step counter and every parameter's
/// state, or one error listing every problem.
pub(crate) fn read(
    state: &[(String, Tensor)],
    params: &[(String, Var)],
    slots: &Slots,
) -> Result<(u64, Vec<ParamState>)> {
    let mut reader = StateReader::new(state);
    let step = reader.counter(STEP_KEY);
    let mut states = Vec::with_capacity(params.len());
    for (name, var) in params {
        let param_step = reader.counter(&format!("{name}.step"));
        let mut buffers = Vec::with_capacity(slots.len());
        for &(slot, kind) in slots {
            let shape = kind.of(var.shape());
            buffers.push(reader.buffer(&format!("{name}.{slot}"), &shape, var.device()));
        }
        states.push((param_step, buffers));
    }
    reader.finish()?;
    // Every entry was found and valid (finish() returned Ok), so the options are all Some.
    let mut new_states = Vec::with_capacity(states.len());
    for (param_step, buffers) in states {
        let slots: Option<Vec<Tensor>> = buffers.into_iter().collect();
        match (param_step, slots) {
            (Some(step), Some(slots)) => new_states.push(ParamState { step, slots }),
            _ => return Err(problems_error("cannot load state", &[])),
        }
    }
    let Some(step) = step else {
        return Err(problems_error("cannot load state", &[]));
    };
    Ok((step, new_states))
}

/// Throws a list of problems into one [`Error::Optimizer`], at most 12 named.
pub(crate) fn problems_error(what: &str, problems: &[String]) -> Error {
    const SHOWN: usize = 12;
    let mut msg = format!("{what}: ");
    for (i, p) in problems.iter().take(SHOWN).enumerate() {
        if i > 0 {
            msg.push_str("; ");
        }
        msg.push_str(p);
    }
    if problems.len() > SHOWN {
        let _ = write!(msg, "; and {} more", problems.len() - SHOWN);
    }
    Error::Optimizer { msg }
}

/// A step counter as an `i64` scalar tensor on the CPU.
fn counter_tensor(n: u64) -> Result<Tensor> {
    let n = i64::try_from(n).map_err(|_| Error::Optimizer {
        msg: format!("step counter {n} does not fit in i64"),
    })?;
    Ok(Tensor::new(n, &Device::Cpu)?)
}

/// Looks entries of a state dict up by key, collecting every problem.
struct StateReader<'a> {
    entries: HashMap<&'a str, &'a Tensor>,
    used: HashSet<&'a str>,
    problems: Vec<String>,
    order: Vec<&'a str>,
}

impl<'a> StateReader<'a> {
    fn new(state: &'a [(String, Tensor)]) -> Self {
        let mut entries = HashMap::with_capacity(state.len());
        let mut problems = Vec::new();
        let mut order = Vec::with_capacity(state.len());
        for (key, tensor) in state {
            if entries.insert(key.as_str(), tensor).is_some() {
                problems.push(format!("entry `{key}` is given twice"));
            } else {
                order.push(key.as_str());
            }
        }
        Self {
            entries,
            used: HashSet::with_capacity(state.len()),
            problems,
            order,
        }
    }

    fn take(&mut self, key: &str, expected: &str) -> Option<&'a Tensor> {
        match self.entries.get_key_value(key) {
            Some((&k, &t)) => {
                self.used.insert(k);
                Some(t)
            }
            None => {
                self.problems
                    .push(format!("missing `{key}` (expected {expected})"));
                None
            }
        }
    }

    /// A non-negative integral scalar (any dtype, shape `()` or `(1)`).
    fn counter(&mut self, key: &str) -> Option<u64> {
        let t = self.take(key, "an integer scalar")?;
        let value = match t.elem_count() {
            1 => t
                .flatten_all()
                .and_then(|t| t.to_dtype(DType::F64))
                .and_then(|t| t.to_vec1::<f64>())
                .ok()
                .and_then(|v| v.first().copied()),
            _ => None,
        };
        match value {
            Some(v) if v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(63) => Some(v as u64),
            Some(v) => {
                self.problems
                    .push(format!("`{key}` = {v} is not a step count"));
                None
            }
            None => {
                self.problems.push(format!(
                    "`{key}` has shape {:?} and dtype {:?}, expected an integer scalar",
                    t.dims(),
                    t.dtype()
                ));
                None
            }
        }
    }

    /// A float buffer of the given shape, as f32 on `device`.
    fn buffer(&mut self, key: &str, shape: &Shape, device: &Device) -> Option<Tensor> {
        let t = self.take(key, &format!("shape {:?}", shape.dims()))?;
        if t.shape() != shape {
            self.problems.push(format!(
                "`{key}` has shape {:?}, expected {:?}",
                t.dims(),
                shape.dims()
            ));
            return None;
        }
        if !t.dtype().is_float() {
            self.problems.push(format!(
                "`{key}` has dtype {:?}, expected a float",
                t.dtype()
            ));
            return None;
        }
        match t
            .detach()
            .to_dtype(DType::F32)
            .and_then(|t| t.to_device(device))
            .and_then(|t| t.copy()) // owned: the fused CPU kernels update it in place
        {
            Ok(t) => Some(t),
            Err(e) => {
                self.problems.push(format!("`{key}`: {e}"));
                None
            }
        }
    }

    fn finish(mut self) -> Result<()> {
        for key in &self.order {
            if !self.used.contains(key) {
                self.problems.push(format!("unexpected entry `{key}`"));
            }
        }
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(problems_error("cannot load state", &self.problems))
        }
    }
}
