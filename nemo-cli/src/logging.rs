//! `tracing` output on stderr, filtered by `--log`.

use anyhow::{Context, Result};

/// Sends `tracing` events matching `filter` (e.g. `info`, `nemo_core=debug`) to stderr.
pub fn init(filter: &str) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter)
                .with_context(|| format!("bad --log filter `{filter}`"))?,
        )
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}
