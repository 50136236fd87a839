//! The error type of `nemo-core`.

use std::path::PathBuf;

/// Errors of `nemo-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Text that should be a neural type could not be parsed.
    #[error("cannot parse neural type `{input}`: {msg}")]
    ParseType {
        /// The text as given.
        input: String,
        /// What is wrong, and where.
        msg: String,
    },
    /// A connection or a call broke a neural-type rule (see [`crate::check`]).
    #[error("{0}")]
    Type(Box<crate::check::TypeError>),
    /// A module's own computation failed (its message names the module).
    #[error("`{module}`: {source}")]
    Module {
        /// The module.
        module: String,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Tensors given to an op have shapes or values it cannot take.
    #[error("{op}: {msg}")]
    Shape {
        /// The op, e.g. `DecoderRnn`.
        op: &'static str,
        /// What is wrong, with the shapes involved.
        msg: String,
    },
    /// A configuration value is missing, out of range or inconsistent.
    #[error("config `{key}`: {msg}")]
    Config {
        /// The key path, e.g. `freeze.modules.encoder`.
        key: String,
        /// What is wrong, with the value found.
        msg: String,
    },
    /// A model or module configuration (YAML) is invalid; the message names the file, line and
    /// column where known, the key path, the value found and what was expected (see
    /// [`crate::config::ConfigError`]).
    #[error("{0}")]
    ModelConfig(Box<crate::config::ConfigError>),
    /// An optimizer was given parameters or state it cannot use.
    #[error("optimizer: {msg}")]
    Optimizer {
        /// What is wrong.
        msg: String,
    },
    /// A checkpoint could not be written or read.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of `nemo-core`.
pub type Result<T> = std::result::Result<T, Error>;
