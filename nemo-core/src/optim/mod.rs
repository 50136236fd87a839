//! Optimizers, gradient clipping and learning-rate schedules of the training runtime.
//!
//! NeMo 0.x's `train` action takes an optimizer name with its parameters and an `lr_policy`; the
//! policy gives the learning rate of every step, the optimizer applies one update per step. Here:
//!
//! - [`Optimizer`]: the update over named parameters (names are checkpoint keys), with per-step
//!   freezing, checkpointable state ([`Optimizer::state_dict`]) and three rules: [`Sgd`]
//!   (`torch.optim.SGD`), [`AdamW`] (`torch.optim.AdamW`) and [`Novograd`] (NeMo's
//!   `nemo/core/optim/novograd.py`), chosen by an [`OptimizerConfig`] read from YAML:
//!   `{name: novograd, betas: [0.95, 0.5], weight_decay: 0.001}`.
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
mod novograd;
mod schedule;
mod sgd;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Shape, Tensor, Var};
use serde::{Deserialize, Serialize};

pub use adamw::{AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, grad_norm};
pub use novograd::{Novograd, NovogradConfig};
pub use schedule::{LrPolicy, LrSchedule};
pub use sgd::{Sgd, SgdConfig};

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

// ---------------------------------------------------------------------------------------------
// Shared machinery of the rules: parameter checks, per-parameter state, state dicts.

/// Shape of one state buffer relative to its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotShape {
    /// Same shape as the parameter.
    LikeParam,
    /// A scalar `()` (NovoGrad's per-tensor second moment).
    Scalar,
}

/// State of one parameter: how many updates it received and its f32 buffers.
#[derive(Debug, Clone)]
pub(crate) struct ParamState {
    /// Updates applied to this parameter (PyTorch's per-parameter `state["step"]`).
    pub step: u64,
    /// Buffers in the order of the rule's slot list.
    pub slots: Vec<Tensor>,
}

/// Parameters, their states and the step counter, shared by all rules.
#[derive(Debug)]
pub(crate) struct Core {
    params: Vec<(String, Var)>,
    states: Vec<ParamState>,
    slots: Vec<(&'static str, SlotShape)>,
    step: u64,
}

/// Shape of a buffer of kind `kind` for a parameter of shape `param`.
fn slot_shape(kind: SlotShape, param: &Shape) -> Shape {
    match kind {
        SlotShape::LikeParam => param.clone(),
        SlotShape::Scalar => Shape::from(()),
    }
}

/// Throws a list of problems into one [`Error::Optimizer`], at most 12 named.
fn problems_error(what: &str, problems: &[String]) -> Error {
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

impl Core {
    /// Checks the parameters and creates zeroed state with the given buffer slots.
    pub(crate) fn new(
        params: Vec<(String, Var)>,
        slots: Vec<(&'static str, SlotShape)>,
    ) -> Result<Self> {
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for (name, var) in &params {
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
        if !problems.is_empty() {
            return Err(problems_error("invalid parameters", &problems));
        }
        let mut states = Vec::with_capacity(params.len());
        for (_, var) in &params {
            let mut buffers = Vec::with_capacity(slots.len());
            for &(_, kind) in &slots {
                buffers.push(Tensor::zeros(
                    slot_shape(kind, var.shape()),
                    DType::F32,
                    var.device(),
                )?);
            }
            states.push(ParamState {
                step: 0,
                slots: buffers,
            });
        }
        Ok(Self {
            params,
            states,
            slots,
            step: 0,
        })
    }

    pub(crate) fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    pub(crate) fn step_count(&self) -> u64 {
        self.step
    }

    /// Runs `update(param, grad_f32, state)` for every trainable parameter with a gradient and
    /// stores the new value it returns (`None`: it updated `param`, which shares the variable's
    /// storage, in place); counts the step.
    pub(crate) fn step(
        &mut self,
        grads: &GradStore,
        lr: f64,
        frozen: &dyn Fn(&str) -> bool,
        mut update: impl FnMut(&Tensor, &Tensor, &mut ParamState) -> Result<Option<Tensor>>,
    ) -> Result<()> {
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
            if let Some(next) = update(&param, &grad, state)? {
                var.set(&next)?;
            }
        }
        self.step += 1;
        Ok(())
    }

    pub(crate) fn state_dict(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::with_capacity(1 + self.params.len() * (1 + self.slots.len()));
        out.push((STEP_KEY.to_string(), counter_tensor(self.step)?));
        for ((name, _), state) in self.params.iter().zip(&self.states) {
            out.push((format!("{name}.step"), counter_tensor(state.step)?));
            for ((slot, _), buffer) in self.slots.iter().zip(&state.slots) {
                // A copy: the fused CPU kernels update the buffers in place.
                out.push((format!("{name}.{slot}"), buffer.copy()?));
            }
        }
        Ok(out)
    }

    pub(crate) fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut reader = StateReader::new(state);
        let step = reader.counter(STEP_KEY);
        let mut states = Vec::with_capacity(self.params.len());
        for (name, var) in &self.params {
            let param_step = reader.counter(&format!("{name}.step"));
            let mut buffers = Vec::with_capacity(self.slots.len());
            for &(slot, kind) in &self.slots {
                let shape = slot_shape(kind, var.shape());
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
        self.states = new_states;
        self.step = step;
        Ok(())
    }
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

// ---------------------------------------------------------------------------------------------
// Fused CPU kernels: one pass over parameter, gradient and state instead of a dozen tensor ops.

/// Elements per parallel work item of the fused CPU kernels.
const CHUNK: usize = 1 << 14;

/// Runs `f` on the data of `tensors` when every one is a contiguous f32 tensor on the CPU;
/// `Ok(None)` (without calling `f`) otherwise, for the caller to fall back to tensor ops.
pub(crate) fn with_cpu_f32<R>(
    tensors: &[&Tensor],
    f: impl FnOnce(&[&[f32]]) -> Result<R>,
) -> Result<Option<R>> {
    if tensors
        .iter()
        .any(|t| !t.device().is_cpu() || t.dtype() != DType::F32)
    {
        return Ok(None);
    }
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let (candle_core::Storage::Cpu(candle_core::CpuStorage::F32(data)), Some((start, end))) =
            (&**storage, layout.contiguous_offsets())
        else {
            return Ok(None);
        };
        match data.get(start..end) {
            Some(slice) => slices.push(slice),
            None => return Ok(None),
        }
    }
    f(&slices).map(Some)
}

/// An in-place kernel body: the destination's f32 data and, for the innermost call, the source's.
type Body<'b> = Box<dyn FnOnce(&mut [f32], Option<&[f32]>) -> Result<()> + 'b>;

/// A candle in-place op running a [`Body`] on contiguous f32 CPU data.
struct SliceOp<'b> {
    body: std::cell::RefCell<Option<Body<'b>>>,
    failure: std::cell::RefCell<Option<Error>>,
}

/// The contiguous f32 data of a CPU storage.
fn f32_data<'s>(
    storage: &'s candle_core::CpuStorage,
    layout: &candle_core::Layout,
) -> candle_core::Result<&'s [f32]> {
    let data = storage.as_slice::<f32>()?;
    layout
        .contiguous_offsets()
        .and_then(|(start, end)| data.get(start..end))
        .ok_or_else(|| candle_core::Error::Msg("optimizer kernel: data not contiguous".into()))
}

impl SliceOp<'_> {
    fn run(
        &self,
        dst: &mut candle_core::CpuStorage,
        dst_layout: &candle_core::Layout,
        src: Option<(&candle_core::CpuStorage, &candle_core::Layout)>,
    ) -> candle_core::Result<()> {
        let not_f32 =
            || candle_core::Error::Msg("optimizer kernel: data not contiguous f32".into());
        let candle_core::CpuStorage::F32(data) = dst else {
            return Err(not_f32());
        };
        let dst = dst_layout
            .contiguous_offsets()
            .and_then(|(start, end)| data.get_mut(start..end))
            .ok_or_else(not_f32)?;
        let src = src.map(|(s, l)| f32_data(s, l)).transpose()?;
        let body = self
            .body
            .borrow_mut()
            .take()
            .ok_or_else(|| candle_core::Error::Msg("optimizer kernel ran twice".into()))?;
        body(dst, src).map_err(|e| {
            let msg = e.to_string();
            *self.failure.borrow_mut() = Some(e);
            candle_core::Error::Msg(msg)
        })
    }

    /// Runs `body` on `dst`'s data (and `src`'s, read-only), returning the body's own error.
    fn apply(dst: &Tensor, src: Option<&Tensor>, body: Body<'_>) -> Result<()> {
        let op = SliceOp {
            body: std::cell::RefCell::new(Some(body)),
            failure: std::cell::RefCell::new(None),
        };
        let ran = match src {
            // inplace_op2 locks both storages and rejects a source aliasing the destination.
            Some(src) => dst.inplace_op2(src, &op),
            None => dst.inplace_op1(&op),
        };
        if let Some(e) = op.failure.borrow_mut().take() {
            return Err(e);
        }
        Ok(ran?)
    }
}

impl candle_core::InplaceOp1 for SliceOp<'_> {
    fn name(&self) -> &'static str {
        "nemo-optimizer-update"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        self.run(storage, layout, None)
    }
}

impl candle_core::InplaceOp2 for SliceOp<'_> {
    fn name(&self) -> &'static str {
        "nemo-optimizer-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        self.run(s1, l1, Some((s2, l2)))
    }
}

/// The signature of a fused in-place update: `(param, grad, state buffers)`.
pub(crate) type InPlace<'f> = dyn FnMut(&mut [f32], &[f32], &mut [&mut [f32]]) -> Result<()> + 'f;

/// Locks `buffers` one after the other (outermost first), then `param` with `grad`.
fn nest(
    buffers: &[&Tensor],
    mut acc: Vec<&mut [f32]>,
    param: &Tensor,
    grad: &Tensor,
    f: &mut InPlace<'_>,
) -> Result<()> {
    match buffers.split_first() {
        Some((buffer, rest)) => SliceOp::apply(
            buffer,
            None,
            Box::new(move |data, _| {
                let mut acc: Vec<&mut [f32]> = acc;
                acc.push(data);
                nest(rest, acc, param, grad, f)
            }),
        ),
        None => SliceOp::apply(
            param,
            Some(grad),
            Box::new(move |p, g| f(p, g.unwrap_or_default(), &mut acc)),
        ),
    }
}

/// Runs `f(param, grad, buffers)` with `param` and the state `buffers` writable in place, when
/// every tensor is contiguous f32 on the CPU; `Ok(false)` (without calling `f`) otherwise.
///
/// The buffers must be owned by the optimizer (no other tensor shares their storage): they are
/// created by it, and copied on the way in and out of state dicts.
pub(crate) fn update_cpu_in_place(
    param: &Tensor,
    grad: &Tensor,
    buffers: &[Tensor],
    mut f: impl FnMut(&mut [f32], &[f32], &mut [&mut [f32]]) -> Result<()>,
) -> Result<bool> {
    let all = [param, grad].into_iter().chain(buffers);
    let usable = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous();
    if !all.clone().all(usable) {
        return Ok(false);
    }
    let n = param.elem_count();
    if grad.elem_count() != n {
        return Err(Error::Optimizer {
            msg: format!("gradient has {} elements, parameter {n}", grad.elem_count()),
        });
    }
    let buffers: Vec<&Tensor> = buffers.iter().collect();
    nest(
        &buffers,
        Vec::with_capacity(buffers.len()),
        param,
        grad,
        &mut f,
    )?;
    Ok(true)
}

/// In-place element-wise kernel: splits the `M` written slices and `R` read slices (all of one
/// length) into aligned chunks and runs `f(written chunks, read chunks)` on them in parallel.
pub(crate) fn par_update<const M: usize, const R: usize>(
    written: [&mut [f32]; M],
    read: [&[f32]; R],
    f: impl Fn([&mut [f32]; M], [&[f32]; R]) + Sync,
) -> Result<()> {
    use rayon::prelude::*;
    let n = written.first().map_or(0, |s| s.len());
    if written.iter().any(|s| s.len() != n) || read.iter().any(|s| s.len() != n) {
        return Err(Error::Optimizer {
            msg: "fused update: parameter, gradient and state lengths differ".to_string(),
        });
    }
    let mut chunked: Vec<std::slice::ChunksMut<'_, f32>> =
        written.into_iter().map(|s| s.chunks_mut(CHUNK)).collect();
    let mut work = Vec::with_capacity(n.div_ceil(CHUNK));
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let reads = read.map(|s| s.get(start..end).unwrap_or_default());
        let writes: [&mut [f32]; M] = std::array::from_fn(|o| {
            chunked
                .get_mut(o)
                .and_then(|chunks| chunks.next())
                .unwrap_or_default()
        });
        work.push((writes, reads));
    }
    work.into_par_iter().for_each(|(w, r)| f(w, r));
    Ok(())
}

/// `sum(x^2)` accumulated in f64, in parallel chunks.
pub(crate) fn sum_squares(x: &[f32]) -> f64 {
    use rayon::prelude::*;
    x.par_chunks(CHUNK)
        .map(|c| c.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
        .sum()
}

/// Element-wise kernel: splits `inputs` (all of length `n`) and `O` new outputs of length `n`
/// into aligned chunks and runs `f(input chunks, output chunks)` on them in parallel.
pub(crate) fn par_map<const I: usize, const O: usize>(
    inputs: [&[f32]; I],
    f: impl Fn([&[f32]; I], [&mut [f32]; O]) + Sync,
) -> Result<[Vec<f32>; O]> {
    use rayon::prelude::*;
    let n = inputs.first().map_or(0, |s| s.len());
    if inputs.iter().any(|s| s.len() != n) {
        return Err(Error::Optimizer {
            msg: "fused update: parameter, gradient and state lengths differ".to_string(),
        });
    }
    let mut outputs: [Vec<f32>; O] = std::array::from_fn(|_| vec![0f32; n]);
    let mut per_output: Vec<std::slice::ChunksMut<'_, f32>> =
        outputs.iter_mut().map(|v| v.chunks_mut(CHUNK)).collect();
    let mut work = Vec::with_capacity(n.div_ceil(CHUNK));
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let ins = inputs.map(|s| s.get(start..end).unwrap_or_default());
        let outs: [&mut [f32]; O] = std::array::from_fn(|o| {
            per_output
                .get_mut(o)
                .and_then(|chunks| chunks.next())
                .unwrap_or_default()
        });
        work.push((ins, outs));
    }
    work.into_par_iter().for_each(|(ins, outs)| f(ins, outs));
    Ok(outputs)
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

#[cfg(test)]
pub(crate) mod test_util {
    //! Checks that a rule's fused CPU kernel and its tensor-op version (used on GPUs) agree.

    use candle_core::{DType, Device, Tensor};

    use super::{ParamState, SlotShape, slot_shape};
    use crate::Result;

    /// Result of the tests.
    pub(crate) type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// Deterministic values in about `[-2, 2]` (a 64-bit LCG).
    pub(crate) fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    fn zero_state(slots: &[(&str, SlotShape)], shape: &[usize]) -> Result<ParamState> {
        let slots = slots
            .iter()
            .map(|&(_, kind)| {
                Tensor::zeros(slot_shape(kind, &shape.into()), DType::F32, &Device::Cpu)
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(ParamState { step: 0, slots })
    }

    fn assert_close(a: &Tensor, b: &Tensor, what: &str) -> TestResult {
        let a = a.flatten_all()?.to_vec1::<f32>()?;
        let b = b.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            let tol = 2e-5 * x.abs().max(1.0);
            assert!(
                (x - y).abs() <= tol,
                "{what}[{i}]: fused {x}, tensor ops {y}"
            );
        }
        Ok(())
    }

    /// Runs three updates of a (3, 50000) parameter (several kernel chunks) through both
    /// versions (the fused one in place) and compares the parameter and every buffer after each.
    pub(crate) fn check_paths_agree(
        slots: &[(&str, SlotShape)],
        fused: impl Fn(&Tensor, &Tensor, &mut ParamState, f64) -> Result<bool>,
        tensor_ops: impl Fn(&Tensor, &Tensor, &mut ParamState, f64) -> Result<Tensor>,
    ) -> TestResult {
        let shape = [3usize, 50_000];
        let n = shape.iter().product();
        let p_fused = Tensor::from_vec(pseudo_random(n, 1), &shape, &Device::Cpu)?;
        let mut p_ops = p_fused.copy()?;
        let (mut s_fused, mut s_ops) = (zero_state(slots, &shape)?, zero_state(slots, &shape)?);
        for (step, lr) in [0.1, 0.03, 0.05].into_iter().enumerate() {
            let g = Tensor::from_vec(pseudo_random(n, 10 + step as u64), &shape, &Device::Cpu)?;
            assert!(fused(&p_fused, &g, &mut s_fused, lr)?, "no fused CPU path");
            p_ops = tensor_ops(&p_ops, &g, &mut s_ops, lr)?;
            assert_close(&p_fused, &p_ops, &format!("step {step} param"))?;
            assert_eq!(s_fused.step, s_ops.step);
            for ((name, _), (a, b)) in slots.iter().zip(s_fused.slots.iter().zip(&s_ops.slots)) {
                assert_close(a, b, &format!("step {step} {name}"))?;
            }
        }
        Ok(())
    }
}
