//! [`ModelConfig`]: a whole model as data — graph inputs, modules, connections, outputs — read
//! from YAML text, a file or a parsed value, with every error placed at its file, line and key
//! path. Building it is [`build`](super::build)'s job.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::connection::Connection;
use crate::types::NeuralType;
use crate::yaml::{ConfigError, ConfigProblem, Location, from_value_boxed};
use crate::{Error, Result};

/// One module of a model config: `name: {type: ..., config: {...}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleEntry {
    /// The node's name: its key under `modules`, its parameter prefix.
    pub name: String,
    /// The registered type name, e.g. `ConvAsrEncoder`.
    pub type_name: String,
    /// The module's own config section, given to its factory (null: all defaults).
    pub config: serde_norway::Value,
}

/// Where a config's text came from, to place errors found after parsing.
#[derive(Debug, Clone, PartialEq)]
struct SourceText {
    file: Option<PathBuf>,
    text: String,
}

/// A whole model as data: graph inputs, modules, connections, outputs. See the [module
/// docs](crate::config) for the YAML shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// A name for logs.
    pub name: Option<String>,
    /// Graph inputs and their types, in order.
    pub inputs: Vec<(String, NeuralType)>,
    /// The modules, in the order written (build order comes from the connections).
    pub modules: Vec<ModuleEntry>,
    /// The connections, in the order written.
    pub connections: Vec<Connection>,
    /// The values `forward` returns: graph inputs or `node.port` outputs.
    pub outputs: Vec<String>,
    source: Option<SourceText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    inputs: serde_norway::Mapping,
    modules: serde_norway::Mapping,
    #[serde(default)]
    connections: Vec<String>,
    #[serde(default)]
    outputs: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    config: serde_norway::Value,
}

/// Errors while building, boxed until they become [`Error::ModelConfig`].
pub(super) type CfgResult<T> = std::result::Result<T, Box<ConfigError>>;

pub(super) fn cfg_error(key: impl Into<String>, problem: ConfigProblem) -> Box<ConfigError> {
    Box::new(ConfigError::new(key, problem))
}

pub(super) fn value_error(
    key: String,
    found: impl ToString,
    expected: impl ToString,
) -> Box<ConfigError> {
    cfg_error(
        key,
        ConfigProblem::Value {
            found: found.to_string(),
            expected: expected.to_string(),
        },
    )
}

fn key_text(key: &serde_norway::Value, at: &str) -> CfgResult<String> {
    match key {
        serde_norway::Value::String(s) => Ok(s.clone()),
        other => Err(value_error(
            at.to_string(),
            format!("{other:?}"),
            "a name (a string key)",
        )),
    }
}

/// A valid node or input name: not empty, no `.`, no spaces or arrows.
fn check_name(name: &str, key: String) -> CfgResult<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(value_error(
            key,
            name,
            "a name of letters, digits, `_` or `-` (no `.`)",
        ))
    }
}

impl ModelConfig {
    /// Parses a model config from YAML text; a syntax error gives the line and column, any other
    /// error the key path (and its line).
    pub fn from_yaml_str(text: &str) -> Result<Self> {
        Self::parse(text, None)
    }

    /// Reads a model config from a YAML file; errors name the file too.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, Some(path))
    }

    fn parse(text: &str, file: Option<&Path>) -> Result<Self> {
        let value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
            let mut err = ConfigError::new("", ConfigProblem::Syntax { msg: e.to_string() });
            err.file = file.map(Path::to_path_buf);
            err.location = e.location().map(|l| Location {
                line: l.line(),
                column: l.column(),
            });
            err.into_error()
        })?;
        let mut config =
            Self::from_value_inner(&value).map_err(|e| e.in_source(file, text).into_error())?;
        config.source = Some(SourceText {
            file: file.map(Path::to_path_buf),
            text: text.to_string(),
        });
        Ok(config)
    }

    /// Reads a model config from an already parsed YAML value (e.g. a section of a larger file);
    /// errors name key paths relative to `value`, without lines.
    pub fn from_value(value: &serde_norway::Value) -> Result<Self> {
        Self::from_value_inner(value).map_err(Error::from)
    }

    fn from_value_inner(value: &serde_norway::Value) -> CfgResult<Self> {
        if !value.is_mapping() {
            return Err(value_error(
                String::new(),
                format!("{value:?}"),
                "a mapping with `inputs`, `modules`, `connections`, `outputs`",
            ));
        }
        let raw: RawModel = from_value_boxed(value, "")?;
        let mut inputs = Vec::with_capacity(raw.inputs.len());
        for (k, v) in &raw.inputs {
            let name = key_text(k, "inputs")?;
            let key = format!("inputs.{name}");
            check_name(&name, key.clone())?;
            let text = v.as_str().ok_or_else(|| {
                value_error(
                    key.clone(),
                    format!("{v:?}"),
                    "a neural type as text, e.g. \"(B, T) AudioSignal{freq=16000}\"",
                )
            })?;
            let ty: NeuralType = text
                .parse()
                .map_err(|e: Error| cfg_error(key.clone(), ConfigProblem::Source(Box::new(e))))?;
            inputs.push((name, ty));
        }
        let mut modules = Vec::with_capacity(raw.modules.len());
        for (k, v) in &raw.modules {
            let name = key_text(k, "modules")?;
            let key = format!("modules.{name}");
            check_name(&name, key.clone())?;
            if inputs.iter().any(|(n, _)| *n == name) {
                return Err(value_error(
                    key,
                    &name,
                    "a module name different from every graph input name",
                ));
            }
            let entry: RawEntry = from_value_boxed(v, &key)?;
            modules.push(ModuleEntry {
                name,
                type_name: entry.type_name,
                config: entry.config,
            });
        }
        let connections = raw
            .connections
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c.parse::<Connection>().map_err(|why| {
                    value_error(
                        format!("connections[{i}]"),
                        c,
                        format!("`producer -> node.port` ({why})"),
                    )
                })
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(ModelConfig {
            name: raw.name,
            inputs,
            modules,
            connections,
            outputs: raw.outputs,
            source: None,
        })
    }

    /// Places an error in the source text (file, line, column) when the config came from text.
    pub(super) fn place(&self, e: Box<ConfigError>) -> Error {
        match &self.source {
            Some(s) => e.in_source(s.file.as_deref(), &s.text).into_error(),
            None => Error::ModelConfig(e),
        }
    }
}
