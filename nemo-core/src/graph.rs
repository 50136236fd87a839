//! Modules wired from data: a graph of [`DynModule`]s whose connections are type-checked with
//! [`NeuralType::compare`] when they are made, before any computation.
//!
//! ```ignore
//! let mut g = DynGraph::new();
//! g.input("audio", "(B, T) AudioSignal{freq=16000}".parse()?)?;
//! g.add("preprocessor", preprocessor)?;
//! g.connect("audio", "preprocessor.input_signal")?;   // checked here
//! let out = g.run(inputs)?;                            // out["preprocessor.processed_signal"]
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::Tensor;

use crate::check::{Direction, Problem, TypeError};
use crate::module::{DynModule, NamedTensors};
use crate::types::NeuralType;
use crate::{Error, Result};

/// Where a node's input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Input(String),
    Node { node: usize, port: String },
}

struct Node {
    name: String,
    module: Arc<dyn DynModule>,
    inputs: HashMap<String, Source>,
}

/// A DAG of dynamically typed modules. Nodes are added in an order where every producer comes
/// before its consumers, so the graph is acyclic by construction and runs in insertion order.
#[derive(Default)]
pub struct DynGraph {
    inputs: Vec<(String, NeuralType)>,
    nodes: Vec<Node>,
}

fn split(endpoint: &str) -> (&str, Option<&str>) {
    match endpoint.split_once('.') {
        Some((node, port)) => (node, Some(port)),
        None => (endpoint, None),
    }
}

fn wiring_error(module: &str, port: &str, port_type: String, problem: Problem) -> Error {
    Error::Type(Box::new(TypeError {
        module: module.to_string(),
        direction: Direction::Input,
        port: port.to_string(),
        port_type,
        shape: None,
        problem,
        bindings: Vec::new(),
    }))
}

impl DynGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    fn name_taken(&self, name: &str) -> bool {
        self.inputs.iter().any(|(n, _)| n == name) || self.nodes.iter().any(|n| n.name == name)
    }

    /// Declares a graph input `name` of type `ty`.
    pub fn input(&mut self, name: &str, ty: NeuralType) -> Result<()> {
        if self.name_taken(name) || name.contains('.') {
            return Err(Error::Config {
                key: name.to_string(),
                msg: "graph input names must be unique and contain no `.`".into(),
            });
        }
        self.inputs.push((name.to_string(), ty));
        Ok(())
    }

    /// Adds a module as node `name`.
    pub fn add(&mut self, name: &str, module: impl DynModule + 'static) -> Result<()> {
        self.add_arc(name, Arc::new(module))
    }

    /// Adds a shared module as node `name` (one module may appear as several nodes).
    pub fn add_arc(&mut self, name: &str, module: Arc<dyn DynModule>) -> Result<()> {
        if self.name_taken(name) || name.contains('.') {
            return Err(Error::Config {
                key: name.to_string(),
                msg: "node names must be unique and contain no `.`".into(),
            });
        }
        self.nodes.push(Node {
            name: name.to_string(),
            module,
            inputs: HashMap::new(),
        });
        Ok(())
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The type produced at `from`: a graph input `name` or a node output `node.port`.
    fn source_type(&self, from: &str) -> Result<(Source, NeuralType)> {
        match split(from) {
            (name, None) => self
                .inputs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(n, t)| (Source::Input(n.clone()), t.clone()))
                .ok_or_else(|| Error::Config {
                    key: from.to_string(),
                    msg: format!(
                        "no graph input `{name}`; inputs: {}",
                        self.inputs
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
            (node, Some(port)) => {
                let idx = self.node_index(node).ok_or_else(|| Error::Config {
                    key: from.to_string(),
                    msg: format!("no node `{node}`"),
                })?;
                let types = self.nodes[idx].module.dyn_output_types();
                let ty = types.get(port).cloned().ok_or_else(|| {
                    wiring_error(
                        node,
                        port,
                        String::new(),
                        Problem::Unknown {
                            known: types.names().into_iter().map(String::from).collect(),
                        },
                    )
                })?;
                Ok((
                    Source::Node {
                        node: idx,
                        port: port.to_string(),
                    },
                    ty,
                ))
            }
        }
    }

    /// Connects `from` (a graph input `name` or an output `node.port`) to the input `to`
    /// (`node.port`), checking `from_type.compare(to_type)` now: anything but SAME or LESS is an
    /// error naming both ends, both types and the comparison result.
    pub fn connect(&mut self, from: &str, to: &str) -> Result<()> {
        let (source, from_type) = self.source_type(from)?;
        let (node, Some(port)) = split(to) else {
            return Err(Error::Config {
                key: to.to_string(),
                msg: "a connection's target is `node.port`".into(),
            });
        };
        let idx = self.node_index(node).ok_or_else(|| Error::Config {
            key: to.to_string(),
            msg: format!("no node `{node}`"),
        })?;
        if let Source::Node { node: from_idx, .. } = source
            && from_idx >= idx
        {
            {
                return Err(Error::Config {
                    key: to.to_string(),
                    msg: format!(
                        "`{from}` is added after `{node}`; add producers before consumers"
                    ),
                });
            }
        }
        let types = self.nodes[idx].module.dyn_input_types();
        let Some(to_type) = types.get(port) else {
            return Err(wiring_error(
                node,
                port,
                String::new(),
                Problem::Unknown {
                    known: types.names().into_iter().map(String::from).collect(),
                },
            ));
        };
        let comparison = from_type.compare(to_type);
        if !comparison.is_compatible() {
            return Err(wiring_error(
                node,
                port,
                to_type.to_string(),
                Problem::Connection {
                    from: from.to_string(),
                    from_type: from_type.to_string(),
                    comparison,
                },
            ));
        }
        self.nodes[idx].inputs.insert(port.to_string(), source);
        Ok(())
    }

    /// Checks that every mandatory input port of every node is connected.
    pub fn validate(&self) -> Result<()> {
        for node in &self.nodes {
            for (port, ty) in node.module.dyn_input_types().iter() {
                if !ty.is_optional() && !node.inputs.contains_key(port) {
                    return Err(wiring_error(
                        &node.name,
                        port,
                        ty.to_string(),
                        Problem::Missing,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Runs every node in order on the graph inputs; returns every node output as `node.port`.
    pub fn run(&self, inputs: NamedTensors) -> Result<HashMap<String, Tensor>> {
        self.validate()?;
        let mut values: HashMap<String, Tensor> = HashMap::new();
        for (name, ty) in &self.inputs {
            let t = inputs
                .get(name)
                .ok_or_else(|| wiring_error("graph", name, ty.to_string(), Problem::Missing))?;
            values.insert(name.clone(), t.clone());
        }
        for node in &self.nodes {
            let mut args = NamedTensors::new();
            for (port, source) in &node.inputs {
                let key = match source {
                    Source::Input(name) => name.clone(),
                    Source::Node { node, port } => format!("{}.{port}", self.nodes[*node].name),
                };
                if let Some(t) = values.get(&key) {
                    args.insert(port.clone(), t.clone());
                }
            }
            let out = node.module.forward_dyn(args).map_err(|e| match e {
                Error::Type(mut te) => {
                    te.module = format!("{} ({})", node.name, te.module);
                    Error::Type(te)
                }
                other => other,
            })?;
            for (port, t) in out {
                values.insert(format!("{}.{port}", node.name), t);
            }
        }
        Ok(values)
    }
}
