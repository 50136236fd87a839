//! [`ConfigError`]: what is wrong with a configuration, and where — the file, the line and column,
//! the key path (`modules.encoder.config.jasper[3].kernel`), the value found and what was expected.
//!
//! Errors made while deserializing a module's config from a `serde_norway::Value` know their key
//! path but not their line; [`ConfigError::in_source`] fills in the file and, by walking the YAML
//! text to that key path, the line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use super::locate::{Location, locate};
use crate::Error;

/// What is wrong with a configuration value.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// The text is not valid YAML.
    Syntax {
        /// The parser's message.
        msg: String,
    },
    /// A value does not deserialize; serde's message names the value found and the expectation
    /// (e.g. "invalid type: string \"x\", expected an integer", "unknown field `kernal`, expected
    /// one of ...").
    Invalid {
        /// The deserializer's message.
        msg: String,
    },
    /// A value is well-formed but not acceptable.
    Value {
        /// The value found, as written.
        found: String,
        /// What was expected instead.
        expected: String,
    },
    /// No module factory is registered under this type name.
    UnknownType {
        /// The type name given.
        found: String,
        /// Every registered type name, sorted.
        known: Vec<String>,
        /// The registered name closest to `found`, if any is close.
        suggestion: Option<String>,
    },
    /// A mandatory input port of a module has no connection.
    Unconnected {
        /// `node.port`.
        port: String,
        /// The port's type.
        port_type: String,
        /// Graph inputs and module outputs whose type fits the port.
        candidates: Vec<String>,
    },
    /// The connections between modules form a cycle.
    Cycle {
        /// The modules on the cycle, in order; the first is repeated at the end.
        nodes: Vec<String>,
    },
    /// A deeper error — a miswired port, a module constructor's failure — at this key.
    Source(Box<Error>),
}

/// A configuration error with its place: file, line and column (when known) and key path.
#[derive(Debug)]
pub struct ConfigError {
    /// The file the configuration came from, if it came from a file.
    pub file: Option<PathBuf>,
    /// Where in the YAML text, if known.
    pub location: Option<Location>,
    /// The key path, e.g. `modules.encoder.config.jasper[3].kernel`; empty for the whole document.
    pub key: String,
    /// What is wrong.
    pub problem: ConfigProblem,
}

impl ConfigError {
    /// An error at `key` without a file or location.
    pub fn new(key: impl Into<String>, problem: ConfigProblem) -> Self {
        ConfigError {
            file: None,
            location: None,
            key: key.into(),
            problem,
        }
    }

    /// Sets the file (unless already set) and, when the location is unknown, finds the key path's
    /// line and column in `text` (the YAML the configuration was read from).
    pub fn in_source(mut self, file: Option<&Path>, text: &str) -> Self {
        if self.file.is_none() {
            self.file = file.map(Path::to_path_buf);
        }
        if self.location.is_none() && !self.key.is_empty() {
            self.location = locate(text, &self.key);
        }
        self
    }

    /// Wraps the error as the crate's [`Error`].
    pub fn into_error(self) -> Error {
        Error::ModelConfig(Box::new(self))
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        e.into_error()
    }
}

impl From<Box<ConfigError>> for Error {
    fn from(e: Box<ConfigError>) -> Self {
        Error::ModelConfig(e)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.location) {
            (Some(file), Some(l)) => write!(f, "{}:{}:{}: ", file.display(), l.line, l.column)?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(l)) => write!(f, "line {}, column {}: ", l.line, l.column)?,
            (None, None) => f.write_str("config: ")?,
        }
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        match &self.problem {
            ConfigProblem::Syntax { msg } => write!(f, "invalid YAML: {msg}"),
            ConfigProblem::Invalid { msg } => f.write_str(msg),
            ConfigProblem::Value { found, expected } => {
                write!(f, "found `{found}`, expected {expected}")
            }
            ConfigProblem::UnknownType {
                found,
                known,
                suggestion,
            } => {
                write!(f, "unknown module type `{found}`")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                if known.is_empty() {
                    f.write_str(
                        "\n  no module types are registered (is the collection crate linked? \
                         call e.g. `nemo_asr::registry::ensure_registered()`)",
                    )
                } else {
                    write!(f, "\n  known types: {}", known.join(", "))
                }
            }
            ConfigProblem::Unconnected {
                port,
                port_type,
                candidates,
            } => {
                write!(
                    f,
                    "mandatory input `{port}` of type `{port_type}` is not connected; \
                     add a connection `<producer> -> {port}`"
                )?;
                if candidates.is_empty() {
                    f.write_str(" (no graph input or module output has a fitting type)")
                } else {
                    write!(f, " (fitting producers: {})", candidates.join(", "))
                }
            }
            ConfigProblem::Cycle { nodes } => {
                write!(f, "the connections form a cycle: {}", nodes.join(" -> "))
            }
            ConfigProblem::Source(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            ConfigProblem::Source(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

/// Joins a key prefix and a relative key path: `join("modules.enc.config", "jasper[3].kernel")`
/// is `modules.enc.config.jasper[3].kernel`; an index segment attaches without a dot.
pub fn join_key(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ if rest.starts_with('[') => format!("{prefix}{rest}"),
        _ => format!("{prefix}.{rest}"),
    }
}

/// Renders a [`serde_path_to_error::Path`] as a key path relative to its root (`jasper[3].kernel`;
/// empty for the root).
pub fn path_to_key(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// Deserializes `T` from `value`, an error naming the full key path `prefix` + the path inside
/// `value` and the deserializer's message (the value found and the expectation).
pub fn from_value<T: serde::de::DeserializeOwned>(
    value: &serde_norway::Value,
    prefix: &str,
) -> crate::Result<T> {
    from_value_boxed(value, prefix).map_err(Error::from)
}

/// [`from_value`] with the error unwrapped, for callers that place it further.
pub(crate) fn from_value_boxed<T: serde::de::DeserializeOwned>(
    value: &serde_norway::Value,
    prefix: &str,
) -> Result<T, Box<ConfigError>> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = join_key(prefix, &path_to_key(e.path()));
        Box::new(ConfigError::new(
            key,
            ConfigProblem::Invalid {
                msg: e.into_inner().to_string(),
            },
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_join_with_dots_and_brackets() {
        assert_eq!(join_key("a.b", "c[2].d"), "a.b.c[2].d");
        assert_eq!(join_key("a.b", "[2].d"), "a.b[2].d");
        assert_eq!(join_key("", "x"), "x");
        assert_eq!(join_key("x", ""), "x");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Block {
        kernel: Vec<usize>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Enc {
        jasper: Vec<Block>,
    }

    #[test]
    fn from_value_names_the_nested_key() -> Result<(), Box<dyn std::error::Error>> {
        let v: serde_norway::Value =
            serde_norway::from_str("jasper: [{kernel: [3]}, {kernel: x}]")?;
        let e = from_value_boxed::<Enc>(&v, "modules.encoder.config")
            .err()
            .ok_or("accepted")?;
        assert_eq!(e.key, "modules.encoder.config.jasper[1].kernel");
        let msg = e.to_string();
        assert!(
            msg.contains("\"x\"") && msg.contains("expected a sequence"),
            "{msg}"
        );
        let v: serde_norway::Value = serde_norway::from_str("jasper: [{kernal: [3]}]")?;
        let e = from_value_boxed::<Enc>(&v, "m").err().ok_or("accepted")?;
        assert!(e.key.starts_with("m.jasper[0]"), "{}", e.key);
        assert!(e.to_string().contains("unknown field `kernal`"), "{e}");
        Ok(())
    }
}
