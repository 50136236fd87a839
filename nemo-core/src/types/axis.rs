//! Axes of a neural type: what each dimension of a tensor means.
//!
//! An [`AxisType`] is an [`AxisKind`] (Batch, Time, Dimension, ...) with an optional fixed size and
//! a flag marking a *list* axis (a Python-style list of tensors rather than a tensor dimension, as
//! NeMo's container ports). Textual form: `B`, `D:64`, `[B]` (list axis).

use std::fmt;

/// What a dimension of a tensor means (NeMo's `AxisKind`).
///
/// `Channel` is an alias of [`AxisKind::Dimension`], as in NeMo. Users add kinds of their own with
/// [`axis_kind!`](crate::axis_kind); those are [`AxisKind::User`] and parse by name like the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AxisKind {
    /// The batch axis (`B`, `N`, `batch`).
    Batch,
    /// Time or sequence position (`T`, `time`).
    Time,
    /// A feature dimension (`D`, `C`, `dimension`, `channel`).
    Dimension,
    /// Image width (`W`, `width`).
    Width,
    /// Image height (`H`, `height`).
    Height,
    /// Matches exactly one axis of any kind (`Any`, `any`).
    Any,
    /// A sequence axis (`seq`, `sequence`).
    Sequence,
    /// Flow groups of flow-based TTS models (`flowgroup`).
    FlowGroup,
    /// An axis of size one (`S`, `singleton`).
    Singleton,
    /// A kind declared outside this crate with [`axis_kind!`](crate::axis_kind), by its label.
    User(&'static str),
}

/// The built-in kinds with every spelling the parser accepts; the first spelling is the canonical
/// one that [`Display`](fmt::Display) writes.
const SPELLINGS: &[(AxisKind, &[&str])] = &[
    (AxisKind::Batch, &["B", "N", "batch"]),
    (AxisKind::Time, &["T", "time"]),
    (AxisKind::Dimension, &["D", "C", "dimension", "channel"]),
    (AxisKind::Width, &["W", "width"]),
    (AxisKind::Height, &["H", "height"]),
    (AxisKind::Any, &["Any", "any"]),
    (AxisKind::Sequence, &["seq", "sequence"]),
    (AxisKind::FlowGroup, &["flowgroup"]),
    (AxisKind::Singleton, &["singleton", "S"]),
];

/// A user-declared axis kind, collected across crates at link time.
#[doc(hidden)]
pub struct AxisKindRegistration {
    /// The label the kind is written with.
    pub label: &'static str,
}

inventory::collect!(AxisKindRegistration);

impl AxisKind {
    /// The canonical short label (`B`, `T`, `D`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            AxisKind::User(label) => label,
            kind => SPELLINGS
                .iter()
                .find(|(k, _)| k == kind)
                .map_or("?", |(_, names)| names[0]),
        }
    }

    /// Looks a kind up by any of its spellings (case-sensitive for the one-letter labels,
    /// case-insensitive for the long names), including user-declared kinds.
    pub fn from_label(label: &str) -> Option<AxisKind> {
        for (kind, names) in SPELLINGS {
            for name in *names {
                let hit = if name.len() == 1 {
                    *name == label
                } else {
                    name.eq_ignore_ascii_case(label)
                };
                if hit {
                    return Some(*kind);
                }
            }
        }
        inventory::iter::<AxisKindRegistration>
            .into_iter()
            .find(|r| r.label == label)
            .map(|r| AxisKind::User(r.label))
    }

    /// Every label the parser accepts, for error messages.
    pub fn known_labels() -> Vec<&'static str> {
        let mut out: Vec<&'static str> = SPELLINGS.iter().map(|(_, n)| n[0]).collect();
        out.extend(
            inventory::iter::<AxisKindRegistration>
                .into_iter()
                .map(|r| r.label),
        );
        out
    }
}

impl fmt::Display for AxisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One axis of a neural type: a kind, an optional fixed size, and whether it is a list axis.
///
/// A list axis has no size (NeMo's rule): its length is that of a Rust `Vec`, not of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AxisType {
    /// What the axis means.
    pub kind: AxisKind,
    /// A fixed size every tensor on this axis must have, if any.
    pub size: Option<usize>,
    /// `true` for a list (container) axis.
    pub is_list: bool,
}

impl AxisType {
    /// An axis of `kind` with no fixed size.
    pub const fn new(kind: AxisKind) -> Self {
        AxisType {
            kind,
            size: None,
            is_list: false,
        }
    }

    /// An axis of `kind` whose size must be `size`.
    pub const fn sized(kind: AxisKind, size: usize) -> Self {
        AxisType {
            kind,
            size: Some(size),
            is_list: false,
        }
    }

    /// A list axis of `kind`.
    pub const fn list(kind: AxisKind) -> Self {
        AxisType {
            kind,
            size: None,
            is_list: true,
        }
    }

    /// The same axis with a fixed size.
    pub const fn with_size(self, size: usize) -> Self {
        AxisType {
            size: Some(size),
            ..self
        }
    }
}

impl From<AxisKind> for AxisType {
    fn from(kind: AxisKind) -> Self {
        AxisType::new(kind)
    }
}

impl fmt::Display for AxisType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_list {
            write!(f, "[{}]", self.kind)
        } else if let Some(size) = self.size {
            write!(f, "{}:{size}", self.kind)
        } else {
            write!(f, "{}", self.kind)
        }
    }
}
