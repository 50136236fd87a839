//! Core of nemo-rs: neural types checked by the compiler and at run time, and the training
//! runtime built on them.
//!
//! * [`types`] — runtime neural types: axes, the element-type tree, [`NeuralType`](types::NeuralType)
//!   with its textual form, and NeMo's [`Comparison`](types::Comparison) semantics;
//! * [`typed`] — the same types as compile-time markers, [`NTensor`], typed axis
//!   operations, and the bounds that make miswiring a build error;
//! * [`module`] — [`#[neural_module]`](neural_module) modules, their runtime port maps and the
//!   dynamic (trait-object) path; [`config`] and [`registry`] — models wired from YAML;
//! * [`check`] — the runtime fallback for what the compiler cannot know;
//! * [`params`] — a model's named weights, freezing and train/eval mode; [`io`] — atomic files;
//! * [`optim`] — optimizers and learning-rate schedules; [`train`] — the training loop,
//!   checkpoints, dynamic freezing;
//! * [`dag`] — the lazy activation graph (modules called on symbolic handles) and its `train`,
//!   `eval` and `infer` actions; [`tutorials`] — NeMo 0.x's toy modules;
//!   [`testing`] — helpers for other crates' tests (every variable gets a gradient).
//!
//! Sibling crates: `nemo-macros` (the macros re-exported here), `nemo-asr` (speech), and the
//! facade `nemo`.

// Lets the macros' generated code name `::nemo_core` inside this crate too.
extern crate self as nemo_core;

pub mod check;
pub mod config;
pub mod dag;
pub mod decoding;
pub mod error;
pub mod forward_ctx;
pub mod io;
pub mod module;
pub mod nn;
pub mod optim;
pub mod params;
pub mod registry;
pub mod suggest;
pub mod testing;
pub mod train;
pub mod tutorials;
pub mod typed;
pub mod types;
pub mod yaml;

pub use error::{Error, Result};
pub use forward_ctx::ForwardCtx;
pub use module::{DynModule, Forward, ModuleKind, NeuralModule, PortTypes};
pub use nemo_macros::{element_type, neural_module};
pub use typed::NTensor;

/// Markers and traits most modules need: `use nemo_core::prelude::*;`.
pub mod prelude {
    pub use crate::ForwardCtx;
    pub use crate::module::{DynModule, Forward, NeuralModule};
    pub use crate::typed::axes::{Any, B, C, D, H, T, W};
    pub use crate::typed::elements::*;
    pub use crate::typed::{Element, IsA, NTensor, Port};
    pub use crate::{element_type, neural_module};
    pub use candle_core::{DType, Device, Tensor};
}

#[doc(hidden)]
pub mod __private {
    pub use candle_core::Tensor;
    pub use inventory;
    pub use nemo_macros::__axis_id as axis_id;
}
