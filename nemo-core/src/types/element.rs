//! Element types: what the numbers of a tensor mean, as an is-a tree.
//!
//! NeMo's tree (`nemo/core/neural_types/elements.py`) is declared in [`crate::typed::elements`]
//! with [`#[element_type]`](crate::element_type), which produces both the compile-time marker and
//! the static [`ElementInfo`] used here, so the two layers cannot disagree. Element types declared
//! in other crates register themselves at link time and parse by name like the built-in ones.

use std::fmt;

use super::Comparison;

/// The static description of one element type: its name, parent and parameter keys.
///
/// One `ElementInfo` exists per element type, in a `static` made by `#[element_type]`.
#[derive(Debug)]
pub struct ElementInfo {
    /// The canonical name, e.g. `MelSpectrogram`.
    pub name: &'static str,
    /// Other accepted spellings, e.g. NeMo's class name `MelSpectrogramType`.
    pub aliases: &'static [&'static str],
    /// The parent in the is-a tree; `None` only for the root, `Void`.
    pub parent: Option<fn() -> &'static ElementInfo>,
    /// Names of the type's parameters, e.g. `["freq"]` for `AudioSignal`.
    pub params: &'static [&'static str],
}

impl ElementInfo {
    /// The parent, or `None` for the root.
    pub fn parent(&self) -> Option<&'static ElementInfo> {
        self.parent.map(|p| p())
    }

    /// Whether `self` is `other` or one of its descendants.
    pub fn is_a(&self, other: &ElementInfo) -> bool {
        if self.name == other.name {
            return true;
        }
        let mut cur = self.parent();
        while let Some(info) = cur {
            if info.name == other.name {
                return true;
            }
            cur = info.parent();
        }
        false
    }

    /// Whether this is the root type `Void`, which every element type is a kind of.
    pub fn is_void(&self) -> bool {
        self.parent.is_none()
    }

    /// The chain from this type up to the root, e.g. `MelSpectrogram < Spectrogram < Channel < Void`.
    pub fn lineage(&self) -> String {
        let mut out = self.name.to_string();
        let mut cur = self.parent();
        while let Some(info) = cur {
            out.push_str(" < ");
            out.push_str(info.name);
            cur = info.parent();
        }
        out
    }

    /// Looks an element type up by its name or an alias, among the built-in types and those
    /// registered by other crates.
    pub fn lookup(name: &str) -> Option<&'static ElementInfo> {
        inventory::iter::<ElementRegistration>
            .into_iter()
            .map(|r| (r.info)())
            .find(|info| info.name == name || info.aliases.contains(&name))
    }

    /// Every registered element type, sorted by name (for error messages and docs).
    pub fn all() -> Vec<&'static ElementInfo> {
        let mut all: Vec<_> = inventory::iter::<ElementRegistration>
            .into_iter()
            .map(|r| (r.info)())
            .collect();
        all.sort_by_key(|i| i.name);
        all.dedup_by_key(|i| i.name);
        all
    }
}

impl PartialEq for ElementInfo {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for ElementInfo {}

/// A registered element type, collected across crates at link time.
#[doc(hidden)]
pub struct ElementRegistration {
    /// Returns the type's static description.
    pub info: fn() -> &'static ElementInfo,
}

inventory::collect!(ElementRegistration);

/// An element type with its parameter values, e.g. `AudioSignal{freq=16000}`.
///
/// A parameter left unset (`None`) matches any value, as in NeMo: `AudioSignal` and
/// `AudioSignal{freq=16000}` are the same type.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementType {
    info: &'static ElementInfo,
    params: Vec<Option<f64>>,
}

impl ElementType {
    /// The element type of `info` with every parameter unset.
    pub fn new(info: &'static ElementInfo) -> Self {
        ElementType {
            info,
            params: vec![None; info.params.len()],
        }
    }

    /// The same type with parameter `key` set to `value`; `None` if the type has no such key.
    pub fn with_param(mut self, key: &str, value: f64) -> Option<Self> {
        let idx = self.info.params.iter().position(|k| *k == key)?;
        *self.params.get_mut(idx)? = Some(value);
        Some(self)
    }

    /// The static description.
    pub fn info(&self) -> &'static ElementInfo {
        self.info
    }

    /// The canonical name.
    pub fn name(&self) -> &'static str {
        self.info.name
    }

    /// The value of parameter `key`, if the type has it and it is set.
    pub fn param(&self, key: &str) -> Option<f64> {
        let idx = self.info.params.iter().position(|k| *k == key)?;
        self.params.get(idx).copied().flatten()
    }

    /// Parameter keys with their values, in declaration order.
    pub fn params(&self) -> impl Iterator<Item = (&'static str, Option<f64>)> + '_ {
        self.info
            .params
            .iter()
            .copied()
            .zip(self.params.iter().copied())
    }

    /// Compares this element type, on an *output* port, with `input`, the element type of the
    /// input port it is connected to (NeMo's `ElementType.compare`, read in the paper's direction).
    ///
    /// * the same type with agreeing parameters → [`Comparison::Same`];
    /// * the same type with a parameter set to different values on both sides →
    ///   [`Comparison::SameTypeIncompatibleParams`];
    /// * `self` a descendant of `input` → [`Comparison::Less`] (compatible);
    /// * `self` an ancestor of `input` → [`Comparison::Greater`] (incompatible);
    /// * an input of the root type `Void` accepts everything → [`Comparison::Same`], as NeMo's
    ///   `VoidType.compare`;
    /// * otherwise [`Comparison::Incompatible`].
    pub fn compare(&self, input: &ElementType) -> Comparison {
        if input.info.is_void() {
            return Comparison::Same;
        }
        if self.info == input.info {
            let clash = self
                .params
                .iter()
                .zip(&input.params)
                .any(|(a, b)| matches!((a, b), (Some(a), Some(b)) if a != b));
            return if clash {
                Comparison::SameTypeIncompatibleParams
            } else {
                Comparison::Same
            };
        }
        if self.info.is_a(input.info) {
            Comparison::Less
        } else if input.info.is_a(self.info) {
            Comparison::Greater
        } else {
            Comparison::Incompatible
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.info.is_void() {
            return f.write_str("void");
        }
        f.write_str(self.info.name)?;
        let set: Vec<_> = self
            .params()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        if !set.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in set.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}
