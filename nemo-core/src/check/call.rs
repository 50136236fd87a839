//! Static port signatures (made by `#[neural_module]`) and the per-call checker.
//!
//! A call's checker lives on the stack: symbol bindings are a fixed array, nothing allocates
//! unless a check fails, so the checks cost well under a microsecond per call.

use candle_core::{DType, DeviceLocation, Tensor};

use super::error::{Direction, Problem, TypeError};
use super::mode;
use crate::types::{AxisKind, AxisType, ElementInfo, ElementType, NeuralType};
use crate::{Error, Result};

/// The most symbolic dimensions one module's ports may use.
pub const MAX_SYMBOLS: usize = 8;
/// The most configuration-derived sizes (and, separately, parameters) one module's ports may use.
pub const MAX_CONFIG: usize = 8;

/// Where an axis's size comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSpec {
    /// Any size.
    Free,
    /// A size fixed in the declaration (`D: 64`).
    Fixed(usize),
    /// A size from the module's configuration (`D = feat_in`): index into
    /// [`PortConfig::sizes`], and the expression's text for messages.
    Config(usize, &'static str),
    /// A symbolic size, bound at its first occurrence in a call: index into the module's symbols.
    Symbol(usize),
}

/// One axis of a port signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisSpec {
    /// The kind.
    pub kind: AxisKind,
    /// Where the size comes from.
    pub size: SizeSpec,
}

/// An element parameter of a port whose value comes from the module's configuration
/// (`AudioSignal{freq = sample_rate}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// The parameter, e.g. `freq`.
    pub key: &'static str,
    /// Index into [`PortConfig::params`].
    pub index: usize,
}

/// The static signature of one port.
#[derive(Debug, Clone, Copy)]
pub struct PortSpec {
    /// The port's name.
    pub name: &'static str,
    /// The axes, or `None` for a port without axes (a loss).
    pub axes: Option<&'static [AxisSpec]>,
    /// The element type.
    pub element: fn() -> &'static ElementInfo,
    /// Element parameters set from the configuration.
    pub params: &'static [ParamSpec],
    /// Whether the port may be left unconnected.
    pub optional: bool,
}

/// Configuration values a module's ports refer to, read from the module at each call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PortConfig {
    /// Sizes (`D = feat_in`), by index.
    pub sizes: [usize; MAX_CONFIG],
    /// Element parameters (`freq = sample_rate`), by index.
    pub params: [f64; MAX_CONFIG],
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            sizes: [0; MAX_CONFIG],
            params: [0.0; MAX_CONFIG],
        }
    }
}

impl PortSpec {
    /// The port's runtime type under `cfg`, with configuration sizes and parameters filled in.
    pub fn neural_type(&self, cfg: &PortConfig) -> NeuralType {
        let axes = self.axes.map(|axes| {
            axes.iter()
                .map(|a| match a.size {
                    SizeSpec::Fixed(n) => AxisType::sized(a.kind, n),
                    SizeSpec::Config(i, _) => cfg
                        .sizes
                        .get(i)
                        .map_or(AxisType::new(a.kind), |&n| AxisType::sized(a.kind, n)),
                    SizeSpec::Free | SizeSpec::Symbol(_) => AxisType::new(a.kind),
                })
                .collect()
        });
        let mut element = ElementType::new((self.element)());
        for p in self.params {
            if let Some(&v) = cfg.params.get(p.index) {
                element = element.clone().with_param(p.key, v).unwrap_or(element);
            }
        }
        let ty = NeuralType::new(axes, element);
        if self.optional { ty.optional() } else { ty }
    }

    /// The element type with the configured parameters, for tagging output values.
    pub fn element_type(&self, cfg: &PortConfig) -> Option<ElementType> {
        if self.params.is_empty() {
            return None;
        }
        let mut element = ElementType::new((self.element)());
        for p in self.params {
            let v = cfg.params.get(p.index).copied()?;
            element = element.with_param(p.key, v)?;
        }
        Some(element)
    }
}

const UNBOUND: usize = usize::MAX;

/// Checks the tensors of one call against the module's port signatures.
pub struct CallCheck<'a> {
    module: &'static str,
    symbols: &'static [&'static str],
    cfg: &'a PortConfig,
    bound: [usize; MAX_SYMBOLS],
    bound_by: [&'static str; MAX_SYMBOLS],
    /// The float dtype of the first float input and of the first float output: each side must
    /// agree within itself, but an output may differ from the inputs (mixed precision computes
    /// log-softmax and losses in f32 from f16 activations, as PyTorch's autocast does).
    float: [Option<(DType, &'static str)>; 2],
    device: Option<(DeviceLocation, &'static str)>,
    active: bool,
    semantic: bool,
}

impl<'a> CallCheck<'a> {
    /// A checker for one call of `module`, whose ports use `symbols`, under configuration `cfg`.
    #[inline]
    pub fn new(
        module: &'static str,
        symbols: &'static [&'static str],
        cfg: &'a PortConfig,
    ) -> Self {
        CallCheck {
            module,
            symbols,
            cfg,
            bound: [UNBOUND; MAX_SYMBOLS],
            bound_by: [""; MAX_SYMBOLS],
            float: [None, None],
            device: None,
            active: mode::checks_enabled(),
            semantic: mode::semantic_checks_enabled(),
        }
    }

    /// Whether checks run for this call (see [`disable_checks`](super::disable_checks)).
    #[inline]
    pub fn active(&self) -> bool {
        self.active
    }

    /// The current bindings of the symbolic dimensions.
    pub fn bindings(&self) -> Vec<(String, usize)> {
        self.symbols
            .iter()
            .zip(self.bound)
            .filter(|(_, v)| *v != UNBOUND)
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    #[cold]
    fn fail(
        &self,
        dir: Direction,
        spec: &PortSpec,
        shape: Option<&[usize]>,
        problem: Problem,
    ) -> Error {
        Error::Type(Box::new(TypeError {
            module: self.module.to_string(),
            direction: dir,
            port: spec.name.to_string(),
            port_type: spec.neural_type(self.cfg).to_string(),
            shape: shape.map(<[usize]>::to_vec),
            problem,
            bindings: self.bindings(),
        }))
    }

    /// Reports a mandatory port left unconnected.
    #[cold]
    pub fn missing(&self, dir: Direction, spec: &PortSpec) -> Error {
        self.fail(dir, spec, None, Problem::Missing)
    }

    /// Checks one port's tensor: rank, sizes, symbols, dtype, device, and (semantic) the element
    /// parameters the value carries.
    #[inline]
    pub fn port(
        &mut self,
        dir: Direction,
        spec: &PortSpec,
        tensor: &Tensor,
        element: Option<&ElementType>,
    ) -> Result<()> {
        let dims = tensor.dims();
        match spec.axes {
            None => {
                if !dims.is_empty() && dims != [1] {
                    return Err(self.fail(
                        dir,
                        spec,
                        Some(dims),
                        Problem::Rank {
                            expected: 0,
                            found: dims.len(),
                        },
                    ));
                }
            }
            Some(axes) => {
                if axes.len() != dims.len() {
                    return Err(self.fail(
                        dir,
                        spec,
                        Some(dims),
                        Problem::Rank {
                            expected: axes.len(),
                            found: dims.len(),
                        },
                    ));
                }
                for (i, (axis, &found)) in axes.iter().zip(dims).enumerate() {
                    let expected = match axis.size {
                        SizeSpec::Free => continue,
                        SizeSpec::Fixed(n) => n,
                        SizeSpec::Config(c, _) => self.cfg.sizes.get(c).copied().unwrap_or(found),
                        SizeSpec::Symbol(s) => match self.bound.get(s).copied() {
                            Some(UNBOUND) => {
                                self.bound[s] = found;
                                self.bound_by[s] = spec.name;
                                continue;
                            }
                            Some(v) => v,
                            None => {
                                return Err(self.fail(
                                    dir,
                                    spec,
                                    Some(dims),
                                    Problem::TooManySymbols,
                                ));
                            }
                        },
                    };
                    if expected != found {
                        let because = self.because(axis.size);
                        return Err(self.fail(
                            dir,
                            spec,
                            Some(dims),
                            Problem::Size {
                                axis: i,
                                label: axis.kind.to_string(),
                                expected,
                                found,
                                because,
                            },
                        ));
                    }
                }
            }
        }
        let dtype = tensor.dtype();
        if dtype.is_float() {
            let side = &mut self.float[usize::from(dir == Direction::Output)];
            match *side {
                None => *side = Some((dtype, spec.name)),
                Some((expected, first)) if expected != dtype => {
                    return Err(self.fail(
                        dir,
                        spec,
                        Some(dims),
                        Problem::DType {
                            expected,
                            found: dtype,
                            first_port: first.to_string(),
                        },
                    ));
                }
                Some(_) => {}
            }
        }
        let location = tensor.device().location();
        match self.device {
            None => self.device = Some((location, spec.name)),
            Some((expected, first)) if expected != location => {
                return Err(self.fail(
                    dir,
                    spec,
                    Some(dims),
                    Problem::Device {
                        expected: format!("{expected:?}"),
                        found: format!("{location:?}"),
                        first_port: first.to_string(),
                    },
                ));
            }
            Some(_) => {}
        }
        if let Some(element) = element.filter(|_| self.semantic && !spec.params.is_empty()) {
            {
                for p in spec.params {
                    let (Some(found), Some(&expected)) =
                        (element.param(p.key), self.cfg.params.get(p.index))
                    else {
                        continue;
                    };
                    if found != expected {
                        return Err(self.fail(
                            dir,
                            spec,
                            Some(dims),
                            Problem::Param {
                                key: p.key.to_string(),
                                expected,
                                found,
                            },
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn because(&self, size: SizeSpec) -> String {
        match size {
            SizeSpec::Fixed(_) => "fixed by the port".to_string(),
            SizeSpec::Config(_, expr) => format!("from the module's `{expr}`"),
            SizeSpec::Symbol(s) => {
                let name = self.symbols.get(s).copied().unwrap_or("?");
                let by = self.bound_by.get(s).copied().unwrap_or("?");
                format!("symbol `{name}` bound by port `{by}`")
            }
            SizeSpec::Free => String::new(),
        }
    }
}
