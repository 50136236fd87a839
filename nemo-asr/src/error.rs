//! The error type of the ASR collection: every variant names the file, line, key or value at fault.

use std::path::PathBuf;

/// Errors of `nemo-asr`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A manifest line could not be used.
    #[error("{path}:{line}: {msg}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A language model (ARPA) file could not be read.
    #[error("{path}:{line}: {msg}")]
    LanguageModel {
        /// The ARPA file.
        path: PathBuf,
        /// 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// An audio file could not be decoded or resampled.
    #[error("{path}: {msg}")]
    Audio {
        /// The audio file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("config `{key}`: {msg}")]
    Config {
        /// The key path, e.g. `encoder.jasper[2].kernel`.
        key: String,
        /// What is wrong.
        msg: String,
    },
    /// Tensors given to an op have shapes or values it cannot take.
    #[error("{op}: {msg}")]
    Shape {
        /// The op, e.g. `ctc_loss`.
        op: &'static str,
        /// What is wrong, with the shapes involved.
        msg: String,
    },
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An error from the core: a type check, a checkpoint, an optimizer.
    #[error(transparent)]
    Core(#[from] nemo_core::Error),
}

/// Module computations return the core's error type; ASR errors travel inside it unchanged
/// (type errors and candle errors as themselves, the rest as the module's error).
impl From<Error> for nemo_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(e) => e,
            Error::Candle(e) => nemo_core::Error::Candle(e),
            other => nemo_core::Error::Module {
                module: "nemo-asr".into(),
                source: Box::new(other),
            },
        }
    }
}

/// Result alias of `nemo-asr`.
pub type Result<T> = std::result::Result<T, Error>;
