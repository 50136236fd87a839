//! # nemo
//!
//! NVIDIA NeMo's neural modules in Rust: every module port has a *neural type* — axes and a
//! semantic element type — checked by the compiler where it can be and at run time where it
//! cannot. A miswired model fails at `cargo build`:
//!
//! ```text
//! error[E0277]: port `audio_signal` of `JasperEncoder` expects `MelSpectrogram`, found `AcousticEncodedRepresentation`
//! ```
//!
//! This crate is the facade: it re-exports [`core`] (`nemo-core`: types, typed tensors, checks,
//! modules, the training runtime) and the collections behind features ([`asr`] and [`nlp`], on by
//! default).
//! Start with [`prelude`] and the `examples/` directory.

pub use nemo_core as core;
pub use nemo_core::{
    DynModule, Error, Forward, ForwardCtx, ModuleKind, NTensor, NeuralModule, PortTypes, Result,
    axis_kind, check, config, dag, module, nn, optim, params, registry, testing, train, tutorials,
    typed, types,
};
pub use nemo_macros::{element_type, neural_module};

/// Speech recognition: data layer, mel features, Jasper/QuartzNet, CTC, WER.
#[cfg(feature = "asr")]
pub use nemo_asr as asr;

/// Language: BPE tokenizers, the translation data layer, SacreBLEU-compatible BLEU.
#[cfg(feature = "nlp")]
pub use nemo_nlp as nlp;

/// What most programs need: `use nemo::prelude::*;`.
pub mod prelude {
    pub use nemo_core::prelude::*;
}
