//! Runtime neural types: axes, element types, [`NeuralType`] and [`Comparison`].
//!
//! The compile-time markers in [`crate::typed`] are the other face of the same types: the runtime
//! type of every typed port is derived from its markers, so the two cannot disagree.

mod axis;
mod comparison;
mod element;
mod neural_type;
mod parse;

#[doc(hidden)]
pub use axis::AxisKindRegistration;
pub use axis::{AxisKind, AxisType};
pub use comparison::Comparison;
#[doc(hidden)]
pub use element::ElementRegistration;
pub use element::{ElementInfo, ElementType};
pub use neural_type::NeuralType;
