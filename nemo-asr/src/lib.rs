//! Speech recognition collection of nemo-rs.
//!
//! The paper's §4.1 pipelines: a data layer reading NeMo manifests and WAV files, the mel
//! preprocessor, Jasper/QuartzNet encoders with a CTC decoder and loss (§4.1.1) or an attention
//! decoder (§4.1.2), greedy, beam and LM decoding, WER; [`train`] is the one training task both
//! models train through (`nemo_core::train::run`).

pub mod data;
pub mod decoding;
pub mod error;
pub mod kernels;
pub mod losses;
pub mod metrics;
pub mod models;
pub mod modules;
pub mod preprocessing;
pub mod registry;
pub mod train;

pub use error::{Error, Result};
