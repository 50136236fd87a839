//! Helpers for tests, usable from any crate's tests (each crate's `tests/common` module builds on
//! them):
//!
//! * [`TestResult`], the `?`-friendly result every test returns;
//! * seeded values ([`seeded_rng`], [`uniform_values`], [`uniform_tensor`]) — the same numbers
//!   on every run and platform, without an RNG shared between tests;
//! * gradient checks: [`check_gradients`] compares candle's autograd with central differences,
//!   [`finite_differences`] differentiates any scalar function, [`assert_close`] and
//!   [`assert_close_scaled`] compare values;
//! * [`vars_without_gradient`] and [`assert_all_vars_receive_gradients`]: candle's fused ops
//!   (`layer_norm`, `rms_norm`, `softmax_last_dim`, `sdpa`) record no backward op, so every
//!   parameter upstream of one silently gets no gradient and never trains; a model test should
//!   call this once on a real batch;
//! * [`test_device!`](crate::test_device): one test body run on the CPU and, in a build with the
//!   `cuda` feature, on the GPU.
//!
//! ```
//! use candle_core::{DType, Device};
//! use nemo_core::params::Parameters;
//! use nemo_core::testing::vars_without_gradient;
//! # fn main() -> nemo_core::Result<()> {
//! let params = Parameters::new();
//! let vb = params.var_builder(DType::F32, &Device::Cpu);
//! let used = vb.get_with_hints(3, "used", candle_nn::init::ONE)?;
//! let _unused = vb.get_with_hints(3, "unused", candle_nn::init::ONE)?;
//! let loss = used.sqr()?.sum_all()?;
//! let missing = vars_without_gradient(&loss, &params)?;
//! assert_eq!(missing.len(), 1);
//! assert_eq!(missing[0].name, "unused");
//! # Ok(())
//! # }
//! ```

mod device;
mod gradient_check;
mod gradients;
mod values;

pub use gradient_check::{assert_close, assert_close_scaled, check_gradients, finite_differences};
pub use gradients::{
    GradientProblem, GradientReport, assert_all_vars_receive_gradients, vars_without_gradient,
};
pub use values::{TestResult, seeded_rng, to_f64_vec, uniform_tensor, uniform_values};
