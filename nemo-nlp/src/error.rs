//! The error type of the NLP collection: every variant names the file, line, key or value at
//! fault.

use std::path::PathBuf;

/// Errors of `nemo-nlp`.
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
    /// A line of a text file cannot be used (not UTF-8, ...).
    #[error("{path}:{line}: {msg}")]
    Text {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// Two files that must be aligned line by line (source and target, hypothesis and
    /// reference) are not.
    #[error("{first} and {second}: {msg}")]
    Alignment {
        /// The first file (source, hypothesis).
        first: PathBuf,
        /// The second file (target, reference).
        second: PathBuf,
        /// What is wrong, with the line counts.
        msg: String,
    },
    /// A tokenizer file could not be read, written or used.
    #[error("tokenizer {path}: {msg}")]
    TokenizerFile {
        /// The `tokenizer.json` file (or the model directory).
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A tokenizer failed on text or ids (encoding, decoding, training).
    #[error("tokenizer {op}: {msg}")]
    Tokenizer {
        /// The operation, e.g. `train` or `decode`.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("config `{key}`: {msg}")]
    Config {
        /// The key, e.g. `tokens_in_batch`.
        key: String,
        /// What is wrong, with the value found.
        msg: String,
    },
    /// Inputs of a metric cannot be scored (no references, streams of different lengths).
    #[error("{metric}: {msg}")]
    Metric {
        /// The metric, e.g. `BLEU`.
        metric: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// Tensors or sequences given to an op have shapes it cannot take.
    #[error("{op}: {msg}")]
    Shape {
        /// The op, e.g. `collate`.
        op: &'static str,
        /// What is wrong, with the sizes involved.
        msg: String,
    },
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An error from the core: a type check, a config.
    #[error(transparent)]
    Core(#[from] nemo_core::Error),
}

/// Module computations return the core's error type; NLP errors travel inside it unchanged
/// (type errors and candle errors as themselves, the rest as the module's error).
impl From<Error> for nemo_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(e) => e,
            Error::Candle(e) => nemo_core::Error::Candle(e),
            other => nemo_core::Error::Module {
                module: "nemo-nlp".into(),
                source: Box::new(other),
            },
        }
    }
}

/// Result alias of `nemo-nlp`.
pub type Result<T> = std::result::Result<T, Error>;
