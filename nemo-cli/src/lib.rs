//! What the command-line programs of nemo-rs share: the global `--log` and `--device` options
//! ([`GlobalArgs`]), logging, the
//! training arguments every `train` command takes ([`TrainArgs`] → the core runner's
//! [`RunOptions`](nemo_core::train::RunOptions)), and the process tuning they apply at start
//! ([`nemo_host`]). The programs themselves are this crate's binaries (`nemo-asr`, `nemo-nlp`).
//!
//! The collections stay libraries: clap, anyhow and the tracing subscriber reach only the
//! programs.

pub mod device;
pub mod global_args;
pub mod logging;
pub mod train_args;

pub use device::DeviceArg;
pub use global_args::GlobalArgs;
pub use train_args::TrainArgs;
