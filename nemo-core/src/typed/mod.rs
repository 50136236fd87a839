//! The compile-time layer: element types and axes as marker types, typed tensors, and the trait
//! bounds that turn miswiring into a build error.
//!
//! * an element type is a marker implementing [`IsA`] for itself and each of its ancestors, so
//!   "`MelSpectrogram` is a kind of `Spectrogram`" is the bound `MelSpectrogram: IsA<Spectrogram>`;
//! * a port's axes are a tuple of markers, `(B, D, T)`, so rank and order are part of its type;
//! * [`NTensor<A, E>`] is a candle tensor carrying both, and its axis operations name axes
//!   instead of indices.
//!
//! The runtime [`NeuralType`](crate::types::NeuralType) of a typed value is derived from these
//! markers ([`NTensor::neural_type`]), never written twice.

pub mod axes;
pub mod elements;
mod fit;
pub mod kind_id;
pub mod list;
mod tensor;

pub use axes::{Axes, Axis, AxisMatches};
pub use fit::{AxesFit, HasAxis, IsA, PermuteFrom, WithoutAxis};
pub use tensor::{NTensor, Port};

use crate::types::ElementInfo;

/// A compile-time element type, made by [`#[element_type]`](crate::element_type).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an element type",
    note = "declare element types with `#[element_type(parent = ...)]`"
)]
pub trait Element: 'static + Send + Sync + Copy + Default {
    /// The runtime description, registered for parsing by name.
    fn info() -> &'static ElementInfo;
}
