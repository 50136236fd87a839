//! The options every program takes before its subcommand: logging and the device.

use clap::Args;

use crate::DeviceArg;

/// `--log` and `--device`, global to a program's subcommands (`#[command(flatten)]`).
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Log filter for tracing output (e.g. `info`, `debug`, `nemo_core=debug`); default:
    /// `RUST_LOG`, else `info`.
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// Where models run: `cpu`, or `cuda` / `cuda:N` (GPU N; needs a build with `--features
    /// cuda`). A model directory loads on any device, whichever it was trained on.
    #[arg(long, global = true, default_value = "cpu")]
    pub device: DeviceArg,
}
