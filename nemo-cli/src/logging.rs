//! `tracing` output on stderr, filtered by `--log` (or `RUST_LOG` when `--log` is not given).

use std::io::IsTerminal;

use anyhow::{Context, Result};

/// Sends `tracing` events to stderr, filtered by `filter` (e.g. `info`, `nemo_core=debug`) or,
/// without one, by `RUST_LOG` (default `info`); colours only on a terminal.
pub fn init(filter: Option<&str>) -> Result<()> {
    let filter = match filter {
        Some(f) => tracing_subscriber::EnvFilter::try_new(f)
            .with_context(|| format!("bad --log filter `{f}`"))?,
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .or_else(|_| tracing_subscriber::EnvFilter::try_new("info"))
            .context("bad RUST_LOG filter")?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}
