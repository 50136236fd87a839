//! Configuration is data: a whole model — graph inputs, modules, connections, outputs — read from
//! YAML and built into the one activation graph ([`dag::Graph`](crate::dag::Graph)), with every
//! connection type-checked and every mandatory input port checked connected before any
//! computation. The built model runs eagerly ([`BuiltModel::forward`]) or, its inputs bound to a
//! data layer's outputs ([`ModelConfig::build_on`]), under the graph's `train` / `eval` / `infer`
//! actions.
//!
//! ```yaml
//! name: JasperCTC                  # optional, for logs
//! inputs:                          # graph inputs: name -> neural type (the parser's text form)
//!   audio_signal: "(B, T) AudioSignal{freq=16000}"
//!   a_sig_length: "(B) Lengths"
//! modules:                         # node name -> {type, config, seed?}; any order
//!   encoder: {type: ConvAsrEncoder, config: {feat_in: 64, jasper: [...]}}
//!   preprocessor: {type: AudioToMelSpectrogramPreprocessor, config: {features: 64}}
//! connections:                     # producer -> consumer; producer: an input or `node.port`
//!   - audio_signal -> preprocessor.input_signal
//!   - a_sig_length -> preprocessor.length
//!   - preprocessor.processed_signal -> encoder.audio_signal
//!   - preprocessor.processed_length -> encoder.length
//! outputs: [encoder.outputs, encoder.encoded_lengths]
//! ```
//!
//! ```ignore
//! nemo_asr::registry::ensure_registered();
//! let config = ModelConfig::from_yaml_file("configs/graphs/jasper_ctc_graph.yaml")?;
//! let params = Parameters::new();
//! let model = config.build(&params, &Device::Cpu)?;    // all checks happen here
//! let out = model.forward(inputs)?;                    // out["loss.loss"]
//! ```
//!
//! Nothing is computed before every check has passed; a config naming an unregistered type
//! fails at `build`:
//!
//! ```
//! use candle_core::Device;
//! use nemo_core::config::ModelConfig;
//! use nemo_core::params::Parameters;
//!
//! let config = ModelConfig::from_yaml_str("modules:\n  enc: {type: NoSuchEncoder}\n")?;
//! let err = config.build(&Parameters::new(), &Device::Cpu).err().map(|e| e.to_string());
//! let err = err.unwrap_or_default();
//! assert!(err.starts_with("line 2, column 15: `modules.enc.type`: unknown module type"), "{err}");
//! # Ok::<(), nemo_core::Error>(())
//! ```
//!
//! Module types come from the [`registry`](crate::registry). Modules are built and run in an
//! order computed from the connections (producers first, ties by name), so the YAML may list them
//! in any order; a cycle is an error naming it. A node's weights live in the [`Parameters`] under
//! its name (`encoder.blocks.0.conv.weight`), the same names a typed model with the same module
//! names uses, so weights load across the two.
//!
//! Every error is a [`ConfigError`] (inside [`Error::ModelConfig`]) naming the file, the line and
//! column, the key path (`modules.encoder.config.jasper[3].kernel`), the value and what was
//! expected; a miswired connection names both ports and both types.

mod topo;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use candle_core::{DType, Device};
use serde::Deserialize;

pub use crate::yaml::{ConfigError, ConfigProblem, Location, from_value, join_key, path_to_key};

use crate::dag::{DynHandle, Graph, LazyCall};
use crate::module::{DynModule, NamedTensors};
use crate::params::Parameters;
use crate::registry::{BuildContext, ModuleFactory, build_module, closest, unknown_type};
use crate::types::NeuralType;
use crate::yaml::from_value_boxed;
use crate::{Error, ForwardCtx, Result};

/// One connection, `producer -> node.port`, where the producer is a graph input `name` or a
/// module output `node.port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    /// The producer: a graph input or `node.port`.
    pub from: String,
    /// The consumer: `node.port`.
    pub to: String,
}

impl FromStr for Connection {
    type Err = String;

    /// Parses `producer -> node.port`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (from, to) = s
            .split_once("->")
            .ok_or_else(|| "no `->` between producer and consumer".to_string())?;
        let (from, to) = (from.trim(), to.trim());
        let ok = |e: &str| {
            !e.is_empty()
                && e.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
        };
        if !ok(from) || !ok(to) || to.contains("->") {
            return Err("endpoints are names like `encoder.outputs`".into());
        }
        match to.split_once('.') {
            Some((n, p)) if !n.is_empty() && !p.is_empty() && !p.contains('.') => {}
            _ => return Err(format!("the consumer `{to}` is not `node.port`")),
        }
        if from.split('.').count() > 2 || from.starts_with('.') || from.ends_with('.') {
            return Err(format!(
                "the producer `{from}` is neither a graph input nor `node.port`"
            ));
        }
        Ok(Connection {
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)
    }
}

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

/// How to build: the weights' dtype. (Random draws — dither, masks, dropout — come from the
/// [`ForwardCtx`](crate::ForwardCtx) of each run, not from the build.)
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOptions {
    /// The weights' dtype; default `F32`.
    pub dtype: DType,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { dtype: DType::F32 }
    }
}

/// Where a config's text came from, to place errors found after parsing.
#[derive(Debug, Clone, PartialEq)]
struct SourceText {
    file: Option<PathBuf>,
    text: String,
}

/// A whole model as data: graph inputs, modules, connections, outputs. See the [module
/// docs](self) for the YAML shape.
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
type CfgResult<T> = std::result::Result<T, Box<ConfigError>>;

fn cfg_error(key: impl Into<String>, problem: ConfigProblem) -> Box<ConfigError> {
    Box::new(ConfigError::new(key, problem))
}

fn value_error(key: String, found: impl ToString, expected: impl ToString) -> Box<ConfigError> {
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
    fn place(&self, e: Box<ConfigError>) -> Error {
        match &self.source {
            Some(s) => e.in_source(s.file.as_deref(), &s.text).into_error(),
            None => Error::ModelConfig(e),
        }
    }

    /// Builds the model with default [`BuildOptions`] (f32) into a new [`Graph`] whose weights
    /// are `params`. See [`Self::build_on`].
    pub fn build(&self, params: &Parameters, device: &Device) -> Result<BuiltModel> {
        self.build_with(params, device, &BuildOptions::default())
    }

    /// [`Self::build`] with `options`.
    pub fn build_with(
        &self,
        params: &Parameters,
        device: &Device,
        options: &BuildOptions,
    ) -> Result<BuiltModel> {
        self.build_on(&Graph::with_params(params.clone()), &[], device, options)
    }

    /// Builds every module (weights created in the graph's [`Parameters`] under each module's
    /// name, on `device`) as nodes of `graph` named by their keys, and checks — before any
    /// computation — that every module type exists, every connection names existing ports whose
    /// types fit (the graph's connection rule: NeMo's comparison, sizes an output leaves open
    /// checked when the graph runs), no input port is fed twice, every mandatory input port is
    /// connected, the connections have no cycle, and every output exists.
    ///
    /// A graph input named in `bindings` is that handle (e.g. a data layer's output, so the
    /// graph's `train` / `eval` / `infer` actions run the model); the others become
    /// [`Graph::input`]s, fed by [`BuiltModel::forward`].
    pub fn build_on(
        &self,
        graph: &Graph,
        bindings: &[(&str, DynHandle)],
        device: &Device,
        options: &BuildOptions,
    ) -> Result<BuiltModel> {
        self.build_inner(graph, bindings, device, options)
            .map_err(|e| self.place(e))
    }

    /// The error for an endpoint naming nothing.
    fn endpoint_error(&self, key: String, endpoint: &str, producer: bool) -> Box<ConfigError> {
        let node_names = self.modules.iter().map(|m| m.name.as_str());
        let input_names = self.inputs.iter().map(|(n, _)| n.as_str());
        let (head, _) = endpoint.split_once('.').unwrap_or((endpoint, ""));
        let expected = if endpoint.contains('.') {
            let hint = closest(head, node_names.clone())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            format!(
                "a module name before the `.` (modules: {}){hint}",
                node_names.collect::<Vec<_>>().join(", ")
            )
        } else if producer {
            let hint = closest(head, input_names.clone())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            format!(
                "a graph input (inputs: {}) or `node.port`{hint}",
                input_names.collect::<Vec<_>>().join(", ")
            )
        } else {
            "`node.port`".to_string()
        };
        value_error(key, endpoint, expected)
    }

    fn build_inner(
        &self,
        graph: &Graph,
        bindings: &[(&str, DynHandle)],
        device: &Device,
        options: &BuildOptions,
    ) -> CfgResult<BuiltModel> {
        let params = &graph.params();
        for (name, _) in bindings {
            if !self.inputs.iter().any(|(n, _)| n == name) {
                return Err(value_error(
                    "inputs".into(),
                    name,
                    format!(
                        "a graph input to bind (inputs: {})",
                        self.inputs
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        // 1. Every type exists.
        for m in &self.modules {
            if ModuleFactory::lookup(&m.type_name).is_none() {
                return Err(Box::new(unknown_type(
                    &format!("modules.{}.type", m.name),
                    &m.type_name,
                )));
            }
        }
        // 2. Every endpoint names something; no input port is fed twice; the module graph.
        let index: HashMap<&str, usize> = self
            .modules
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.as_str(), i))
            .collect();
        let mut fed: HashMap<&str, usize> = HashMap::new();
        let mut edges = Vec::new();
        for (i, c) in self.connections.iter().enumerate() {
            let key = format!("connections[{i}]");
            let to_node = c.to.split_once('.').map_or(c.to.as_str(), |(n, _)| n);
            let Some(&to) = index.get(to_node) else {
                return Err(self.endpoint_error(key, &c.to, false));
            };
            match c.from.split_once('.') {
                Some((node, _)) => match index.get(node) {
                    Some(&from) => edges.push((from, to)),
                    None => return Err(self.endpoint_error(key, &c.from, true)),
                },
                None => {
                    if !self.inputs.iter().any(|(n, _)| *n == c.from) {
                        return Err(self.endpoint_error(key, &c.from, true));
                    }
                }
            }
            if let Some(first) = fed.insert(c.to.as_str(), i) {
                let earlier = self
                    .connections
                    .get(first)
                    .map_or(String::new(), |c| c.from.clone());
                return Err(value_error(
                    key,
                    c,
                    format!(
                        "one producer per input port: `{}` is already fed from `{earlier}` \
                         (connections[{first}])",
                        c.to
                    ),
                ));
            }
        }
        // 3. An order: producers first.
        let names: Vec<String> = self.modules.iter().map(|m| m.name.clone()).collect();
        let order = topo::topo_order(&names, &edges)
            .map_err(|nodes| cfg_error("connections", ConfigProblem::Cycle { nodes }))?;
        // 4. Build the modules in that order.
        let mut nodes = Vec::with_capacity(order.len());
        for &i in &order {
            let Some(m) = self.modules.get(i) else {
                continue;
            };
            let key = format!("modules.{}.config", m.name);
            let ctx = BuildContext::new(&m.name, &key, params, device, options.dtype);
            let module = build_module(&m.type_name, &m.config, &ctx).map_err(|e| match e {
                Error::ModelConfig(ce) => ce,
                other => cfg_error(key.clone(), ConfigProblem::Source(Box::new(other))),
            })?;
            nodes.push(BuiltNode {
                name: m.name.clone(),
                type_name: m.type_name.clone(),
                module,
            });
        }
        // 5. Every mandatory input port is connected.
        for node in &nodes {
            for (port, ty) in node.module.dyn_input_types().iter() {
                let target = format!("{}.{port}", node.name);
                if ty.is_optional() || fed.contains_key(target.as_str()) {
                    continue;
                }
                return Err(cfg_error(
                    format!("modules.{}", node.name),
                    ConfigProblem::Unconnected {
                        candidates: fitting_producers(&self.inputs, &nodes, &node.name, ty),
                        port: target,
                        port_type: ty.to_string(),
                    },
                ));
            }
        }
        // 6. Graph inputs: bound handles or new graph inputs.
        let mut handles: HashMap<String, DynHandle> = HashMap::new();
        for (name, ty) in &self.inputs {
            let handle = match bindings.iter().find(|(n, _)| n == name) {
                Some((_, h)) => h.clone(),
                None => graph.input(name, ty.clone()).map_err(|e| {
                    cfg_error(format!("inputs.{name}"), ConfigProblem::Source(Box::new(e)))
                })?,
            };
            handles.insert(name.clone(), handle);
        }
        // 7. Wire the modules in run order; each connection is checked as it is made.
        let mut built: HashMap<String, crate::dag::NodeOutputs> = HashMap::new();
        for node in &nodes {
            let mut call = LazyCall::on(graph.clone(), node.module.clone());
            call.name = Some(node.name.clone());
            for (i, c) in self.connections.iter().enumerate() {
                let Some((to_node, port)) = c.to.split_once('.') else {
                    continue;
                };
                if to_node != node.name {
                    continue;
                }
                let from = match (handles.get(&c.from), c.from.split_once('.')) {
                    (Some(h), _) => h.clone(),
                    // An existing module's missing port: the error lists its ports.
                    (None, Some((node, port))) => built
                        .get(node)
                        .map(|out| out.get(port))
                        .unwrap_or_else(|| {
                            Err(Error::Config {
                                key: c.from.clone(),
                                msg: "the producer is built after its consumer".into(),
                            })
                        })
                        .map_err(|e| {
                            cfg_error(
                                format!("connections[{i}]"),
                                ConfigProblem::Source(Box::new(e)),
                            )
                        })?,
                    (None, None) => {
                        return Err(value_error(format!("connections[{i}]"), c, "a graph input"));
                    }
                };
                check_connection(&node.name, node.module.as_ref(), port, &from).map_err(|e| {
                    cfg_error(
                        format!("connections[{i}]"),
                        ConfigProblem::Source(Box::new(e)),
                    )
                })?;
                call.input(port, from);
            }
            let out = call.finish().map_err(|e| {
                cfg_error(
                    format!("modules.{}", node.name),
                    ConfigProblem::Source(Box::new(e)),
                )
            })?;
            for h in out.handles() {
                handles.insert(format!("{}.{}", node.name, h.port()), h.clone());
            }
            built.insert(node.name.clone(), out);
        }
        // 8. Every output exists.
        for (i, out) in self.outputs.iter().enumerate() {
            let exists = match out.split_once('.') {
                Some((node, port)) => nodes
                    .iter()
                    .find(|n| n.name == node)
                    .is_some_and(|n| n.module.dyn_output_types().get(port).is_some()),
                None => self.inputs.iter().any(|(n, _)| n == out),
            };
            if !exists {
                let all: Vec<String> = nodes
                    .iter()
                    .flat_map(|n| {
                        n.module
                            .dyn_output_types()
                            .names()
                            .into_iter()
                            .map(|p| format!("{}.{p}", n.name))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let hint = closest(out, all.iter().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(value_error(
                    format!("outputs[{i}]"),
                    out,
                    format!(
                        "a module output `node.port` (one of {}){hint}",
                        all.join(", ")
                    ),
                ));
            }
        }
        let outputs = self
            .outputs
            .iter()
            .filter_map(|o| handles.get(o).map(|h| (o.clone(), h.clone())))
            .collect();
        let inputs = self
            .inputs
            .iter()
            .filter_map(|(n, _)| handles.get(n).map(|h| (n.clone(), h.clone())))
            .collect();
        Ok(BuiltModel {
            name: self.name.clone(),
            graph: graph.clone(),
            nodes,
            connections: self.connections.clone(),
            inputs,
            outputs,
            handles,
        })
    }
}

/// Whether `from` may feed input `port` of `module` (node `node`): the graph's connection rule.
fn check_connection(
    node: &str,
    module: &dyn DynModule,
    port: &str,
    from: &DynHandle,
) -> Result<()> {
    let inputs = module.dyn_input_types();
    let Some(to_type) = inputs.get(port) else {
        return Err(crate::dag::unknown_input(node, port, &inputs));
    };
    crate::dag::check_wiring(node, port, to_type, from)
}

/// Graph inputs and outputs of other nodes whose type fits `ty`.
fn fitting_producers(
    inputs: &[(String, NeuralType)],
    nodes: &[BuiltNode],
    consumer: &str,
    ty: &NeuralType,
) -> Vec<String> {
    let mut out: Vec<String> = inputs
        .iter()
        .filter(|(_, t)| t.compare(ty).is_compatible())
        .map(|(n, _)| n.clone())
        .collect();
    for node in nodes.iter().filter(|n| n.name != consumer) {
        for (port, t) in node.module.dyn_output_types().iter() {
            if t.compare(ty).is_compatible() {
                out.push(format!("{}.{port}", node.name));
            }
        }
    }
    out
}

/// One built module of a [`BuiltModel`].
#[derive(Clone)]
pub struct BuiltNode {
    /// The node's name (its key under `modules`).
    pub name: String,
    /// Its type name as written in the config.
    pub type_name: String,
    /// The module.
    pub module: Arc<dyn DynModule>,
}

impl fmt::Debug for BuiltNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltNode")
            .field("name", &self.name)
            .field("type_name", &self.type_name)
            .field("inputs", &self.module.dyn_input_types().to_string())
            .field("outputs", &self.module.dyn_output_types().to_string())
            .finish()
    }
}

/// A model built from a [`ModelConfig`]: its nodes in a [`Graph`], the modules in run order, the
/// handles of its inputs and declared outputs.
pub struct BuiltModel {
    name: Option<String>,
    graph: Graph,
    nodes: Vec<BuiltNode>,
    connections: Vec<Connection>,
    inputs: Vec<(String, DynHandle)>,
    outputs: Vec<(String, DynHandle)>,
    handles: HashMap<String, DynHandle>,
}

impl fmt::Debug for BuiltModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltModel")
            .field("name", &self.name)
            .field("nodes", &self.nodes)
            .field("connections", &self.connections)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl BuiltModel {
    /// The config's `name`, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The graph the model's nodes are in (for the actions, or to extend it).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The modules in run order (producers first).
    pub fn nodes(&self) -> &[BuiltNode] {
        &self.nodes
    }

    /// The module names in run order.
    pub fn node_names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// The module of node `name`.
    pub fn module(&self, name: &str) -> Option<&Arc<dyn DynModule>> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| &n.module)
    }

    /// The connections, as written.
    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    /// The graph inputs' handles (new graph inputs, or the handles they were bound to).
    pub fn inputs(&self) -> &[(String, DynHandle)] {
        &self.inputs
    }

    /// The declared outputs' handles, keyed as written (`loss.loss`).
    pub fn outputs(&self) -> &[(String, DynHandle)] {
        &self.outputs
    }

    /// The handle of any graph input or module output `node.port`.
    pub fn handle(&self, name: &str) -> Option<&DynHandle> {
        self.handles.get(name)
    }

    /// Runs the model on its inputs (by input name) in eval mode and returns the declared
    /// outputs, keyed as written (`loss.loss`).
    pub fn forward(&self, inputs: &NamedTensors) -> Result<NamedTensors> {
        self.forward_t(inputs, &ForwardCtx::eval())
    }

    /// [`Self::forward`] in the mode `ctx` gives (each node gets `ctx.for_module(its name)`).
    pub fn forward_t(&self, inputs: &NamedTensors, ctx: &ForwardCtx) -> Result<NamedTensors> {
        let targets: Vec<DynHandle> = self.outputs.iter().map(|(_, h)| h.clone()).collect();
        let values = self.graph.run(&targets, inputs, ctx)?;
        Ok(self
            .outputs
            .iter()
            .map(|(name, _)| name.clone())
            .zip(values)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_parse_and_print() {
        let c: std::result::Result<Connection, _> = "a -> b.c".parse();
        assert_eq!(
            c,
            Ok(Connection {
                from: "a".into(),
                to: "b.c".into()
            })
        );
        assert_eq!(c.map(|c| c.to_string()), Ok("a -> b.c".to_string()));
        assert!("a -> b".parse::<Connection>().is_err());
        assert!("a b.c".parse::<Connection>().is_err());
        assert!("a.b.c -> d.e".parse::<Connection>().is_err());
    }
}
