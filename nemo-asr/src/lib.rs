//! Speech recognition collection of nemo-rs.
//!
//! The paper's §4.1 pipelines: a data layer reading NeMo manifests and WAV files, the mel
//! preprocessor, Jasper/QuartzNet encoders with a CTC decoder and loss, greedy decoding and WER.

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
pub mod train_attention;

pub use error::{Error, Result};
