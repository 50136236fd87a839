//! Neural modules: typed ports declared with [`#[neural_module]`](crate::neural_module).
//!
//! ```ignore
//! #[neural_module(
//!     inputs(
//!         audio_signal: (B, D = feat_in, T) MelSpectrogram,
//!         length: (B) Lengths,
//!     ),
//!     outputs(
//!         outputs: (B, D = feat_out, T as t_enc) AcousticEncodedRepresentation,
//!         encoded_lengths: (B) Lengths,
//!     ),
//! )]
//! pub struct ConvAsrEncoder { feat_in: usize, feat_out: usize, /* ... */ }
//!
//! impl Forward for ConvAsrEncoder {
//!     fn forward_tensors(&self, x: ConvAsrEncoderInputTensors, ctx: &ForwardCtx) -> Result<ConvAsrEncoderOutputTensors> {
//!         /* plain candle code */
//!     }
//! }
//!
//! let out = encoder.forward(ConvAsrEncoderInputs { audio_signal: &mel, length: &len })?;
//! out.outputs // NTensor<(B, D, T), AcousticEncodedRepresentation>
//! ```
//!
//! # Port syntax
//! `name: (axes) Element{params}?` — axes are `B`, `T`, `D`, `C`, `W`, `H`, `Any`, `Seq`,
//! `FlowGroup`, `Singleton` or a path to an [`axis_kind!`](crate::axis_kind); each may carry a
//! fixed size `D: 64`, a size from the module `D = feat_in` (the field `self.feat_in`) or
//! `D = {any_expression(self)}`, and a symbol `T as frames` that must agree across all ports of one
//! call (`B` is the symbol `B` by default). Element parameters come from the module the same way:
//! `AudioSignal{freq = sample_rate}`. A trailing `?` makes the port optional. A port without axes
//! is written as the element alone (`loss: Loss`).
//!
//! # What is generated
//! For a module `M`: `MInputs<P0, ..>` (the typed call's named arguments, generic so a subtype
//! fits), `MOutputs` (named typed outputs), `MInputTensors`/`MOutputTensors` (the same with plain
//! tensors, for the implementation), `impl NeuralModule for M`, and `M::forward` — the typed call,
//! whose bounds make a miswired port a compile error naming the port and both types, and which
//! runs the [runtime fallback](crate::check) on inputs and outputs.
//!
//! `kind = data_layer` declares outputs only (and generates `M::wrap_outputs`); `kind = loss`
//! requires exactly one output without axes whose element is a kind of `Loss`.

use std::collections::HashMap;
use std::fmt;

use candle_core::Tensor;

use crate::check::{CallCheck, PortConfig, PortSpec};
use crate::types::NeuralType;
use crate::{ForwardCtx, Result};

/// The three kinds of NeMo modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModuleKind {
    /// Inputs and outputs.
    Module,
    /// Outputs only: produces data.
    DataLayer,
    /// A loss: inputs, and one scalar output of kind `Loss`.
    Loss,
}

/// The ordered port names and runtime types of one side of a module.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PortTypes(Vec<(String, NeuralType)>);

impl PortTypes {
    /// From ordered (name, type) pairs.
    pub fn new(ports: Vec<(String, NeuralType)>) -> Self {
        PortTypes(ports)
    }

    /// The type of port `name`.
    pub fn get(&self, name: &str) -> Option<&NeuralType> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Port names in order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// (name, type) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &NeuralType)> {
        self.0.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The number of ports.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no ports.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for PortTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, ty)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}: {ty}")?;
        }
        Ok(())
    }
}

/// Named tensors passed through the dynamic path.
pub type NamedTensors = HashMap<String, Tensor>;

/// A struct of plain tensors, one field per port (generated).
pub trait TensorStruct: Sized {
    /// Takes the fields out of `values` by port name; errors on missing mandatory or unknown ports.
    fn from_named(values: NamedTensors) -> Result<Self>;
    /// The fields by port name (unset optional ports omitted).
    fn into_named(self) -> NamedTensors;
}

impl TensorStruct for () {
    fn from_named(_values: NamedTensors) -> Result<Self> {
        Ok(())
    }
    fn into_named(self) -> NamedTensors {
        NamedTensors::new()
    }
}

/// A module with declared ports; implemented by [`#[neural_module]`](crate::neural_module).
pub trait NeuralModule {
    /// The module's type name, used in messages.
    const NAME: &'static str;
    /// Module, data layer or loss.
    const KIND: ModuleKind;
    /// The plain-tensor inputs, one field per input port.
    type InputTensors: TensorStruct;
    /// The plain-tensor outputs, one field per output port.
    type OutputTensors: TensorStruct;
    /// The input port signatures, in order.
    fn input_ports() -> &'static [PortSpec];
    /// The output port signatures, in order.
    fn output_ports() -> &'static [PortSpec];
    /// The symbolic dimensions the ports use, e.g. `["B", "t_enc"]`.
    fn symbols() -> &'static [&'static str];
    /// The configuration values the ports refer to, read from `self`.
    fn port_config(&self) -> PortConfig;
    /// Runtime-checks plain input tensors (no element information).
    fn check_inputs(&self, check: &mut CallCheck<'_>, inputs: &Self::InputTensors) -> Result<()>;
    /// Runtime-checks plain output tensors.
    fn check_outputs(&self, check: &mut CallCheck<'_>, outputs: &Self::OutputTensors)
    -> Result<()>;

    /// The input ports and their runtime types under this module's configuration (NeMo's
    /// `input_types`).
    fn input_types(&self) -> PortTypes {
        port_types(Self::input_ports(), &self.port_config())
    }

    /// The output ports and their runtime types (NeMo's `output_types`).
    fn output_types(&self) -> PortTypes {
        port_types(Self::output_ports(), &self.port_config())
    }
}

fn port_types(ports: &[PortSpec], cfg: &PortConfig) -> PortTypes {
    PortTypes(
        ports
            .iter()
            .map(|p| (p.name.to_string(), p.neural_type(cfg)))
            .collect(),
    )
}

/// The computation of a module, on plain tensors. The typed call `forward` (generated) and the
/// dynamic path wrap it with the checks.
#[diagnostic::on_unimplemented(
    message = "`{Self}` declares ports with #[neural_module] but does not implement `Forward`",
    note = "add `impl Forward for {Self} {{ fn forward_tensors(&self, inputs: Self::InputTensors, ctx: &ForwardCtx) -> Result<Self::OutputTensors> {{ .. }} }}`"
)]
pub trait Forward: NeuralModule {
    /// Computes the outputs from the inputs; `ctx` says whether the call trains and gives its
    /// random draws.
    fn forward_tensors(
        &self,
        inputs: Self::InputTensors,
        ctx: &ForwardCtx,
    ) -> Result<Self::OutputTensors>;

    /// An untyped but runtime-checked call: plain tensors in and out, checked against the ports.
    fn forward_checked(
        &self,
        inputs: Self::InputTensors,
        ctx: &ForwardCtx,
    ) -> Result<Self::OutputTensors> {
        let cfg = self.port_config();
        let mut check = CallCheck::new(Self::NAME, Self::symbols(), &cfg);
        if check.active() {
            self.check_inputs(&mut check, &inputs)?;
        }
        let outputs = self.forward_tensors(inputs, ctx)?;
        if check.active() {
            self.check_outputs(&mut check, &outputs)?;
        }
        Ok(outputs)
    }
}

/// What generated typed calls go through, so a module without [`Forward`] gets one message and
/// no list of the types that do implement it.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` declares ports with #[neural_module] but does not implement `Forward`",
    note = "add `impl Forward for {Self} {{ fn forward_tensors(&self, inputs: Self::InputTensors, ctx: &ForwardCtx) -> Result<Self::OutputTensors> {{ .. }} }}`"
)]
pub trait ForwardImpl: NeuralModule {
    /// Calls [`Forward::forward_tensors`].
    fn __forward(
        &self,
        inputs: Self::InputTensors,
        ctx: &ForwardCtx,
    ) -> Result<Self::OutputTensors>;
}

#[diagnostic::do_not_recommend]
impl<M: Forward> ForwardImpl for M {
    fn __forward(
        &self,
        inputs: Self::InputTensors,
        ctx: &ForwardCtx,
    ) -> Result<Self::OutputTensors> {
        self.forward_tensors(inputs, ctx)
    }
}

/// A module seen through its runtime types only: how modules wired from data (a YAML config)
/// are held and called. Every [`Forward`] module is one.
pub trait DynModule: Send + Sync {
    /// The module's type name.
    fn type_name(&self) -> &'static str;
    /// Module, data layer or loss.
    fn kind(&self) -> ModuleKind;
    /// The input ports and their runtime types.
    fn dyn_input_types(&self) -> PortTypes;
    /// The output ports and their runtime types.
    fn dyn_output_types(&self) -> PortTypes;
    /// A runtime-checked call on named tensors, training or not as `ctx` says.
    fn forward_dyn(&self, inputs: NamedTensors, ctx: &ForwardCtx) -> Result<NamedTensors>;
}

impl<M: Forward + Send + Sync> DynModule for M {
    fn type_name(&self) -> &'static str {
        M::NAME
    }
    fn kind(&self) -> ModuleKind {
        M::KIND
    }
    fn dyn_input_types(&self) -> PortTypes {
        self.input_types()
    }
    fn dyn_output_types(&self) -> PortTypes {
        self.output_types()
    }
    fn forward_dyn(&self, inputs: NamedTensors, ctx: &ForwardCtx) -> Result<NamedTensors> {
        let inputs = M::InputTensors::from_named(inputs)?;
        Ok(self.forward_checked(inputs, ctx)?.into_named())
    }
}

/// The error for a mandatory port missing from named tensors (generated code).
#[doc(hidden)]
pub fn port_missing(
    module: &'static str,
    dir: crate::check::Direction,
    spec: &PortSpec,
) -> crate::Error {
    crate::Error::Type(Box::new(crate::check::TypeError {
        module: module.to_string(),
        direction: dir,
        port: spec.name.to_string(),
        port_type: spec.neural_type(&PortConfig::default()).to_string(),
        shape: None,
        problem: crate::check::Problem::Missing,
        bindings: Vec::new(),
    }))
}

/// Rejects named tensors left over after a module took its ports (generated code).
#[doc(hidden)]
pub fn reject_unknown_ports(
    module: &'static str,
    dir: crate::check::Direction,
    ports: &[PortSpec],
    rest: &NamedTensors,
) -> Result<()> {
    let Some(name) = rest.keys().min() else {
        return Ok(());
    };
    Err(crate::Error::Type(Box::new(crate::check::TypeError {
        module: module.to_string(),
        direction: dir,
        port: name.clone(),
        port_type: "(none)".to_string(),
        shape: None,
        problem: crate::check::Problem::Unknown {
            known: ports.iter().map(|p| p.name.to_string()).collect(),
        },
        bindings: Vec::new(),
    })))
}
