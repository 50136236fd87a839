//! [`NeuralType`]: axes, an element type and an optional flag — the type of one port.

use std::fmt;
use std::str::FromStr;

use super::{AxisKind, AxisType, Comparison, ElementInfo, ElementType};

/// The neural type of a port: its axes (or none, for scalars such as a loss), the meaning of its
/// elements, and whether the port may be left unconnected.
///
/// One textual form is used everywhere — errors, configs, docs — and parses back to an equal
/// type: `(B, D:64, T) MelSpectrogram`, `(B) Lengths`, `(B, T) AudioSignal{freq=16000}`, `Loss`
/// (no axes), `void` (the root type that accepts anything), `(B) Lengths?` (optional port),
/// `([B], T) Labels` (a list axis).
///
/// ```
/// use nemo_core::types::{Comparison, NeuralType};
/// let out: NeuralType = "(B, D:64, T) MelSpectrogram".parse()?;
/// let inp: NeuralType = "(B, D, T) Spectrogram".parse()?;
/// assert_eq!(out.compare(&inp), Comparison::Less);
/// assert!(out.compare(&inp).is_compatible());
/// # Ok::<(), nemo_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NeuralType {
    axes: Option<Vec<AxisType>>,
    element: ElementType,
    optional: bool,
}

/// How two axis lists relate, before the element types are considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AxesRelation {
    Same,
    Transposed,
    SizeMismatch,
    ContainerMismatch,
    Unrelated,
}

impl NeuralType {
    /// A type with the given axes (`None` for a scalar such as a loss) and element type.
    pub fn new(axes: Option<Vec<AxisType>>, element: ElementType) -> Self {
        NeuralType {
            axes,
            element,
            optional: false,
        }
    }

    /// The root type, `void`: no axes, element `Void`. As an input it accepts anything.
    pub fn void() -> Self {
        NeuralType::new(None, ElementType::new(crate::typed::elements::void_info()))
    }

    /// The same type on an optional port.
    pub fn optional(self) -> Self {
        NeuralType {
            optional: true,
            ..self
        }
    }

    /// The axes, or `None` for a type without axes.
    pub fn axes(&self) -> Option<&[AxisType]> {
        self.axes.as_deref()
    }

    /// The element type.
    pub fn element(&self) -> &ElementType {
        &self.element
    }

    /// Whether the port may be left unconnected.
    pub fn is_optional(&self) -> bool {
        self.optional
    }

    /// The number of tensor axes (list axes excluded), or `None` for a type without axes.
    pub fn rank(&self) -> Option<usize> {
        self.axes
            .as_ref()
            .map(|a| a.iter().filter(|x| !x.is_list).count())
    }

    /// Compares this type, on an *output* port, with `input`, the type of the input port it is
    /// connected to. See [`Comparison`] for the direction.
    ///
    /// Rules (NeMo's, with its quirks fixed — each deviation says what NeMo does):
    /// * An input of type `void` without axes accepts anything: [`Comparison::Same`].
    /// * Types without axes match only types without axes; then the element result decides.
    /// * Axes are compared position by position; `Any` matches exactly one axis of any kind, on
    ///   either side. Every position must match: a mismatch is never cancelled by a later `Any`
    ///   (NeMo keeps only the last position's verdict, so `(T, Any)` vs `(B, Any)` is SAME there).
    /// * An input axis with a fixed size accepts only that size; one without a size accepts any.
    ///   An output of unknown size into a fixed-size input is [`Comparison::DimIncompatible`]: at
    ///   wiring time nothing guarantees the size.
    /// * Axes that are a permutation of each other — compared as *multisets* of kinds (NeMo
    ///   compares sets, so `(B, D, D)` vs `(D, B, B)` passes there) — are
    ///   [`Comparison::TransposeSame`] when the elements are compatible.
    /// * A size mismatch with compatible elements is [`Comparison::DimIncompatible`]; the paper's
    ///   Table 1 reports this for a compatible subtype too, and so do we (NeMo's code requires the
    ///   elements to be SAME). With incompatible elements both are [`Comparison::Incompatible`].
    /// * Different list nesting is [`Comparison::ContainerSizeMismatch`]; different rank is
    ///   [`Comparison::Incompatible`].
    pub fn compare(&self, input: &NeuralType) -> Comparison {
        if input.axes.is_none() && input.element.info().is_void() {
            return Comparison::Same;
        }
        let element = self.element.compare(&input.element);
        let relation = match (&self.axes, &input.axes) {
            (None, None) => AxesRelation::Same,
            (Some(out), Some(inp)) => compare_axes(out, inp),
            _ => AxesRelation::Unrelated,
        };
        match relation {
            AxesRelation::Same => element,
            AxesRelation::Transposed if element.is_compatible() => Comparison::TransposeSame,
            AxesRelation::SizeMismatch if element.is_compatible() => Comparison::DimIncompatible,
            AxesRelation::ContainerMismatch => Comparison::ContainerSizeMismatch,
            _ => Comparison::Incompatible,
        }
    }
}

fn kinds_match(a: AxisKind, b: AxisKind) -> bool {
    a == b || a == AxisKind::Any || b == AxisKind::Any
}

fn compare_axes(out: &[AxisType], inp: &[AxisType]) -> AxesRelation {
    let lists = |axes: &[AxisType]| axes.iter().filter(|a| a.is_list).count();
    if lists(out) != lists(inp) {
        return AxesRelation::ContainerMismatch;
    }
    if out.len() != inp.len() {
        return AxesRelation::Unrelated;
    }
    let positional = out
        .iter()
        .zip(inp)
        .all(|(o, i)| kinds_match(o.kind, i.kind) && o.is_list == i.is_list);
    if positional {
        let sizes_ok = out
            .iter()
            .zip(inp)
            .all(|(o, i)| i.size.is_none() || o.size == i.size);
        return if sizes_ok {
            AxesRelation::Same
        } else {
            AxesRelation::SizeMismatch
        };
    }
    let mut a: Vec<(bool, AxisKind)> = out.iter().map(|x| (x.is_list, x.kind)).collect();
    let mut b: Vec<(bool, AxisKind)> = inp.iter().map(|x| (x.is_list, x.kind)).collect();
    a.sort();
    b.sort();
    if a == b {
        AxesRelation::Transposed
    } else {
        AxesRelation::Unrelated
    }
}

impl fmt::Display for NeuralType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(axes) = &self.axes {
            f.write_str("(")?;
            for (i, axis) in axes.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{axis}")?;
            }
            f.write_str(") ")?;
        }
        write!(f, "{}", self.element)?;
        if self.optional {
            f.write_str("?")?;
        }
        Ok(())
    }
}

impl FromStr for NeuralType {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        super::parse::parse_neural_type(s)
    }
}

/// Looks up an element type by name, for parsers: `void`/`Void`/`VoidType` included.
pub(crate) fn lookup_element(name: &str) -> Option<&'static ElementInfo> {
    if name.eq_ignore_ascii_case("void") {
        return Some(crate::typed::elements::void_info());
    }
    ElementInfo::lookup(name)
}
