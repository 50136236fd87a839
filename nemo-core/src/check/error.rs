//! [`TypeError`]: what a failed check says — module, port, axis, expected, found, bindings.

use std::fmt;

use candle_core::DType;

use crate::types::Comparison;

/// Which side of a module a port is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// An input port.
    Input,
    /// An output port.
    Output,
    /// A value outside any module (e.g. wrapping a tensor).
    Value,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Input => "input",
            Direction::Output => "output",
            Direction::Value => "value",
        })
    }
}

/// What exactly went wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Problem {
    /// The tensor has the wrong number of axes.
    Rank {
        /// The port's rank.
        expected: usize,
        /// The tensor's rank.
        found: usize,
    },
    /// An axis has the wrong size.
    Size {
        /// 0-based axis position.
        axis: usize,
        /// The axis label, e.g. `D`.
        label: String,
        /// The size the port requires.
        expected: usize,
        /// The tensor's size.
        found: usize,
        /// Where the expectation comes from, e.g. "fixed by the port", "the module's `feat_in`",
        /// "symbol `B`, bound by port `audio_signal`".
        because: String,
    },
    /// An element parameter differs, e.g. `freq`.
    Param {
        /// The parameter.
        key: String,
        /// The port's value.
        expected: f64,
        /// The value's.
        found: f64,
    },
    /// The value's element type does not fit the port.
    Element {
        /// The value's element type.
        found: String,
        /// The comparison result.
        comparison: Comparison,
    },
    /// Floating-point ports of one call disagree on dtype.
    DType {
        /// The dtype of the first floating-point port.
        expected: DType,
        /// This port's dtype.
        found: DType,
        /// The port that set the expectation.
        first_port: String,
    },
    /// Ports of one call are on different devices.
    Device {
        /// The first port's device.
        expected: String,
        /// This port's device.
        found: String,
        /// The port that set the expectation.
        first_port: String,
    },
    /// A mandatory port was not given.
    Missing,
    /// A port of this name does not exist.
    Unknown {
        /// The ports that exist.
        known: Vec<String>,
    },
    /// A connection between two ports whose types do not fit (dynamic wiring).
    Connection {
        /// `module.port` of the output.
        from: String,
        /// The output's type.
        from_type: String,
        /// The comparison result.
        comparison: Comparison,
    },
    /// The module has more symbolic dimensions than the checker supports.
    TooManySymbols,
}

/// A failed runtime type check.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeError {
    /// The module, e.g. `ConvAsrEncoder` (or the graph node's name).
    pub module: String,
    /// Input, output, or a free value.
    pub direction: Direction,
    /// The port.
    pub port: String,
    /// The port's type, in the textual form.
    pub port_type: String,
    /// The offending tensor's shape, when there is one.
    pub shape: Option<Vec<usize>>,
    /// What is wrong.
    pub problem: Problem,
    /// The binding of every symbolic dimension at the time of the failure, e.g. `[("B", 4)]`.
    pub bindings: Vec<(String, usize)>,
}

impl TypeError {
    /// A new error without bindings.
    pub fn new(
        module: impl Into<String>,
        direction: Direction,
        port: impl Into<String>,
        port_type: impl Into<String>,
        shape: &[usize],
        problem: Problem,
    ) -> Self {
        TypeError {
            module: module.into(),
            direction,
            port: port.into(),
            port_type: port_type.into(),
            shape: Some(shape.to_vec()),
            problem,
            bindings: Vec::new(),
        }
    }
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {} `{}`: ", self.module, self.direction, self.port)?;
        match &self.problem {
            Problem::Rank { expected, found } => {
                write!(f, "expected {expected} axes, found a tensor with {found}")?
            }
            Problem::Size {
                axis,
                label,
                expected,
                found,
                because,
            } => write!(
                f,
                "axis {axis} ({label}) has size {found}, expected {expected} ({because})"
            )?,
            Problem::Param {
                key,
                expected,
                found,
            } => write!(
                f,
                "element parameter `{key}` is {found}, expected {expected}"
            )?,
            Problem::Element { found, comparison } => write!(
                f,
                "found element type `{found}`: {comparison} ({})",
                comparison.explain()
            )?,
            Problem::DType {
                expected,
                found,
                first_port,
            } => write!(
                f,
                "dtype {found:?} differs from {expected:?} of port `{first_port}`"
            )?,
            Problem::Device {
                expected,
                found,
                first_port,
            } => write!(
                f,
                "tensor on {found}, but port `{first_port}` is on {expected}"
            )?,
            Problem::Missing => f.write_str("mandatory port not connected")?,
            Problem::Unknown { known } => {
                write!(f, "no such port; the ports are {}", known.join(", "))?
            }
            Problem::Connection {
                from,
                from_type,
                comparison,
            } => write!(
                f,
                "cannot connect `{from}` of type `{from_type}`: {comparison} ({})",
                comparison.explain()
            )?,
            Problem::TooManySymbols => f.write_str("too many symbolic dimensions")?,
        }
        write!(f, "\n  port type: {}", self.port_type)?;
        if let Some(shape) = &self.shape {
            write!(f, "\n  tensor shape: {shape:?}")?;
        }
        if !self.bindings.is_empty() {
            let b: Vec<String> = self
                .bindings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, "\n  bindings: {}", b.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for TypeError {}
