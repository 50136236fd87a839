//! [`NeuralType`]: axes, an element type and an optional flag — the type of one port.

use std::fmt;

use super::{AxisKind, AxisType, Comparison, ElementType};

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
    /// * Axes are compared position by position; an input `Any` matches exactly one axis of any
    ///   kind, while an output `Any` (an axis of unknown kind) fits only an input `Any`, as in
    ///   NeMo. Every position must match: a mismatch is never cancelled by a later `Any` (NeMo
    ///   keeps only the last position's verdict, so `(T, Any)` vs `(B, Any)` is SAME there).
    /// * An input axis with a fixed size accepts only that size; one without a size accepts any.
    ///   An output of unknown size into a fixed-size input is [`Comparison::DimIncompatible`]: at
    ///   wiring time nothing guarantees the size.
    /// * Axes that are a permutation of each other — a one-to-one matching of axes, so kinds
    ///   count as a *multiset* (NeMo compares sets, so `(B, D, D)` vs `(D, B, B)` passes there) —
    ///   are [`Comparison::TransposeSame`] when the elements are compatible and the permuted sizes
    ///   fit, and [`Comparison::DimIncompatible`] when only the sizes stand in the way.
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

/// An output axis of kind `out` fits an input axis of kind `inp`: the same kind, or the input is
/// `Any`. An output `Any` (a kind nobody knows) fits only an input `Any`, as in NeMo's
/// `test_any_axis`.
fn kinds_match(out: AxisKind, inp: AxisKind) -> bool {
    out == inp || inp == AxisKind::Any
}

fn size_fits(out: &AxisType, inp: &AxisType) -> bool {
    inp.size.is_none() || out.size == inp.size
}

/// Whether the input axes can each take a distinct output axis of a fitting kind (and, if
/// `sizes`, a fitting size): a small bipartite matching by backtracking (ranks are at most 6).
fn permutation_exists(out: &[AxisType], inp: &[AxisType], sizes: bool) -> bool {
    fn go(i: usize, out: &[AxisType], inp: &[AxisType], used: &mut [bool], sizes: bool) -> bool {
        let Some(target) = inp.get(i) else {
            return true;
        };
        for (j, o) in out.iter().enumerate() {
            if used[j] || o.is_list != target.is_list || !kinds_match(o.kind, target.kind) {
                continue;
            }
            if sizes && !size_fits(o, target) {
                continue;
            }
            used[j] = true;
            if go(i + 1, out, inp, used, sizes) {
                return true;
            }
            used[j] = false;
        }
        false
    }
    let mut used = vec![false; out.len()];
    go(0, out, inp, &mut used, sizes)
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
        return if out.iter().zip(inp).all(|(o, i)| size_fits(o, i)) {
            AxesRelation::Same
        } else {
            AxesRelation::SizeMismatch
        };
    }
    if permutation_exists(out, inp, true) {
        AxesRelation::Transposed
    } else if permutation_exists(out, inp, false) {
        AxesRelation::SizeMismatch
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
