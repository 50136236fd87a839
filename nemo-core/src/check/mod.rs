//! The runtime fallback: what the compiler cannot know, checked at each typed call.
//!
//! Fixed sizes (including sizes from a module's configuration, `D = feat_in`), symbolic
//! dimensions bound across all ports of one call and its outputs (the `B` of `audio_signal`
//! equals the `B` of `length`, as jaxtyping binds them), element parameters (`freq`), and dtype
//! and device agreement. Failures are [`TypeError`]s naming module, port, axis, expected and
//! found, and the binding of every symbolic dimension.
//!
//! Checks are on by default and cheap enough to leave on (see `docs/benchmarks.md`);
//! [`disable_checks`] and [`disable_semantic_checks`] turn them off for a scope and restore the
//! *previous* state when the guard drops (NeMo restores "on" whatever came before).

mod call;
mod error;
mod mode;

pub use call::{
    AxisSpec, CallCheck, MAX_CONFIG, MAX_SYMBOLS, ParamSpec, PortConfig, PortSpec, SizeSpec,
};
pub use error::{Direction, Problem, TypeError};
pub use mode::{
    CheckGuard, checks_enabled, disable_checks, disable_semantic_checks, semantic_checks_enabled,
};
