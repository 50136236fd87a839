//! [`Graph`]: the activation DAG recorded by lazy calls, and how it computes a batch.
//!
//! Nodes are appended by lazy calls, each consuming handles of earlier nodes, so the insertion
//! order is a topological order and the graph is acyclic by construction. Evaluating a set of
//! handles runs only the nodes they depend on.

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::Tensor;

use super::data::DataLayer;
use super::handle::{DynHandle, Handle};
use crate::check::{Direction, Problem, TypeError};
use crate::module::{DynModule, NamedTensors, PortTypes};
use crate::params::Parameters;
use crate::typed::{Axes, Element};
use crate::types::{AxisKind, Comparison, NeuralType};
use crate::{Error, ForwardCtx, Result};

#[derive(Clone)]
pub(crate) enum NodeKind {
    Module(Arc<dyn DynModule>),
    Data(Arc<dyn DataLayer>),
    /// A graph input, fed by name when the graph runs (`Graph::run`).
    Input,
}

#[derive(Clone)]
pub(crate) enum Input {
    Port { node: usize, port: Arc<str> },
    Const(Tensor),
}

#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) name: Arc<str>,
    pub(crate) kind: NodeKind,
    pub(crate) inputs: Vec<(String, Input)>,
    pub(crate) outputs: PortTypes,
}

struct Inner {
    nodes: Vec<Node>,
    params: Parameters,
}

/// An activation graph: modules called lazily on symbolic handles (NeMo 0.x's DAG). Cheap to
/// clone; clones are the same graph.
///
/// The [`Parameters`] store the modules took their weights from travels with the graph, so the
/// actions can switch train/eval mode and checkpoint the weights.
#[derive(Clone)]
pub struct Graph {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self.node_names();
        f.debug_struct("Graph").field("nodes", &names).finish()
    }
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether an output of type `from` may feed an input of type `to` at wiring time: NeMo's
/// comparison, except that an axis whose size is unknown on the output side is left to the
/// runtime check when the graph runs (a `(B, D)` output may feed a `(B, D:1)` port).
pub fn connectable(from: &NeuralType, to: &NeuralType) -> Comparison {
    let comparison = from.compare(to);
    if comparison != Comparison::DimIncompatible {
        return comparison;
    }
    let (Some(out), Some(inp)) = (from.axes(), to.axes()) else {
        return comparison;
    };
    let clash = out.len() != inp.len()
        || out.iter().zip(inp).any(|(o, i)| {
            (o.kind != i.kind && i.kind != AxisKind::Any)
                || matches!((o.size, i.size), (Some(a), Some(b)) if a != b)
        });
    if clash { comparison } else { Comparison::Same }
}

/// The error for a connection to input `port` of `module`, which has no such port.
pub fn unknown_input(module: &str, port: &str, inputs: &PortTypes) -> Error {
    wiring_error(
        module,
        port,
        String::new(),
        Problem::Unknown {
            known: inputs.names().into_iter().map(String::from).collect(),
        },
    )
}

/// The graph's one connection rule: `from` may feed input `port` (of type `to_type`) of
/// `module` if the types are [`connectable`] (NeMo's comparison, with sizes the output leaves
/// open checked when the graph runs).
///
/// # Errors
/// [`Error::Type`] naming the module, the port, both ends and both types.
pub fn check_wiring(
    module: &str,
    port: &str,
    to_type: &NeuralType,
    from: &DynHandle,
) -> Result<()> {
    let comparison = connectable(&from.ty, to_type);
    if comparison.is_compatible() {
        return Ok(());
    }
    Err(wiring_error(
        module,
        port,
        to_type.to_string(),
        Problem::Connection {
            from: from.name(),
            from_type: from.ty.to_string(),
            comparison,
        },
    ))
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

impl Graph {
    /// An empty graph with its own, empty [`Parameters`] store.
    pub fn new() -> Self {
        Self::with_params(Parameters::new())
    }

    /// An empty graph whose modules take their weights from `params`.
    pub fn with_params(params: Parameters) -> Self {
        Graph {
            inner: Arc::new(Mutex::new(Inner {
                nodes: Vec::new(),
                params,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a panic while appending a node; the node list is still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The parameter store (shared).
    pub fn params(&self) -> Parameters {
        self.lock().params.clone()
    }

    /// Whether `other` is this graph (a clone of it).
    pub fn same_graph(&self, other: &Graph) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The node names, in insertion (topological) order.
    pub fn node_names(&self) -> Vec<String> {
        self.lock()
            .nodes
            .iter()
            .map(|n| n.name.to_string())
            .collect()
    }

    /// A snapshot of the nodes.
    pub(crate) fn nodes(&self) -> Vec<Node> {
        self.lock().nodes.clone()
    }

    fn push(&self, name: Option<&str>, type_name: &str, mut node: Node) -> Result<NodeOutputs> {
        let mut inner = self.lock();
        let name: Arc<str> = match name {
            Some(n) => {
                if n.is_empty() || n.contains('.') || inner.nodes.iter().any(|x| &*x.name == n) {
                    return Err(Error::Config {
                        key: n.to_string(),
                        msg: "node names must be unique, non-empty and contain no `.`".into(),
                    });
                }
                n.into()
            }
            None => {
                let taken = |c: &str| inner.nodes.iter().any(|x| &*x.name == c);
                let mut candidate = type_name.to_string();
                let mut i = 1;
                while taken(&candidate) {
                    candidate = format!("{type_name}_{i}");
                    i += 1;
                }
                candidate.into()
            }
        };
        node.name = name.clone();
        let index = inner.nodes.len();
        let handles = node
            .outputs
            .iter()
            .map(|(port, ty)| DynHandle {
                graph: self.clone(),
                node: index,
                node_name: name.clone(),
                port: port.into(),
                ty: ty.clone(),
            })
            .collect();
        inner.nodes.push(node);
        Ok(NodeOutputs {
            node: name,
            handles,
        })
    }

    /// Adds a data layer as a node; returns its output handles. Typed data layers do this
    /// through their generated `call`.
    pub fn add_data_layer(&self, layer: Arc<dyn DataLayer>) -> Result<NodeOutputs> {
        let type_name = layer.type_name();
        let outputs = layer.dyn_output_types();
        self.push(
            None,
            type_name,
            Node {
                name: "".into(),
                kind: NodeKind::Data(layer),
                inputs: Vec::new(),
                outputs,
            },
        )
    }

    /// Adds a graph input `name` of type `ty`: a value given by name to [`Graph::run`] (the inputs
    /// of a model built from YAML). Its handle is named `name`.
    ///
    /// # Errors
    /// A name that is empty, contains `.` or is taken.
    pub fn input(&self, name: &str, ty: NeuralType) -> Result<DynHandle> {
        let outputs = self.push(
            Some(name),
            name,
            Node {
                name: "".into(),
                kind: NodeKind::Input,
                inputs: Vec::new(),
                outputs: PortTypes::new(vec![(String::new(), ty)]),
            },
        )?;
        outputs.get("")
    }

    /// Computes `targets` from the graph inputs `feeds` (by input name), running only the nodes
    /// they need, each in the mode `ctx` gives it. Eager use of a graph built from YAML.
    ///
    /// # Errors
    /// A needed input missing from `feeds`; a needed data layer (use the actions); a module's
    /// failure (its message names the node).
    pub fn run(
        &self,
        targets: &[DynHandle],
        feeds: &NamedTensors,
        ctx: &ForwardCtx,
    ) -> Result<Vec<Tensor>> {
        let nodes = self.nodes();
        let plan = Plan::new(self, &nodes, targets)?;
        plan.run(&nodes, targets, Feed::Inputs(feeds), ctx)
    }

    /// Calls a module seen through its runtime types (a trait object, a module built from a YAML
    /// config) on named handles: each connection is compared now (an incompatible one is an
    /// [`Error::Type`] naming the port, both ends and both types); every mandatory input must be
    /// given. Returns the node's output handles; `.typed::<A, E>()` gives them a compile-time
    /// type for typed calls downstream.
    pub fn call_dyn(
        &self,
        module: Arc<dyn DynModule>,
        inputs: &[(&str, DynHandle)],
    ) -> Result<NodeOutputs> {
        self.call_dyn_named(None, module, inputs)
    }

    /// [`call_dyn`](Self::call_dyn) with the node's name chosen (e.g. the module's key in a YAML
    /// model), instead of the type name.
    pub fn call_dyn_as(
        &self,
        name: &str,
        module: Arc<dyn DynModule>,
        inputs: &[(&str, DynHandle)],
    ) -> Result<NodeOutputs> {
        self.call_dyn_named(Some(name), module, inputs)
    }

    fn call_dyn_named(
        &self,
        name: Option<&str>,
        module: Arc<dyn DynModule>,
        inputs: &[(&str, DynHandle)],
    ) -> Result<NodeOutputs> {
        let mut call = LazyCall::on(self.clone(), module);
        call.name = name.map(String::from);
        for (port, h) in inputs {
            call.input(port, h.clone());
        }
        call.finish()
    }

    /// Computes `targets` for batch `index` of epoch `epoch` of the data layers they depend on,
    /// running only the nodes they need, each in the mode `ctx` gives it (`ctx.for_module(node
    /// name)`: a frozen node's name runs it in eval mode).
    ///
    /// # Errors
    /// A handle of another graph; a module's failure (its message names the node); a data
    /// layer's batch lacking a port.
    pub fn run_batch(
        &self,
        targets: &[DynHandle],
        epoch: u64,
        index: usize,
        ctx: &ForwardCtx,
    ) -> Result<Vec<Tensor>> {
        let nodes = self.nodes();
        let plan = Plan::new(self, &nodes, targets)?;
        plan.run(&nodes, targets, Feed::Batch { epoch, index }, ctx)
    }

    /// The number of batches per epoch of the data layers `targets` depend on.
    ///
    /// # Errors
    /// If they depend on no data layer, or on data layers of different lengths.
    pub fn num_batches(&self, targets: &[DynHandle]) -> Result<usize> {
        let nodes = self.nodes();
        Plan::new(self, &nodes, targets)?.num_batches(&nodes)
    }
}

/// The handles of one node's output ports.
#[derive(Debug, Clone)]
pub struct NodeOutputs {
    node: Arc<str>,
    handles: Vec<DynHandle>,
}

impl NodeOutputs {
    /// The node's name.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// The handle of output `port`.
    ///
    /// # Errors
    /// [`Error::Type`] listing the ports if there is no such port.
    pub fn get(&self, port: &str) -> Result<DynHandle> {
        self.handles
            .iter()
            .find(|h| &*h.port == port)
            .cloned()
            .ok_or_else(|| {
                Error::Type(Box::new(TypeError {
                    module: self.node.to_string(),
                    direction: Direction::Output,
                    port: port.to_string(),
                    port_type: "(none)".into(),
                    shape: None,
                    problem: Problem::Unknown {
                        known: self.handles.iter().map(|h| h.port.to_string()).collect(),
                    },
                    bindings: Vec::new(),
                }))
            })
    }

    /// The handle of output `port` with compile-time type `Handle<A, E>` (checked now, see
    /// [`DynHandle::typed`]). Generated lazy calls use it.
    pub fn take<A: Axes, E: Element>(&mut self, port: &str) -> Result<Handle<A, E>> {
        self.get(port)?.typed()
    }

    /// All output handles, in port order.
    pub fn handles(&self) -> &[DynHandle] {
        &self.handles
    }
}

/// A lazy call being assembled (what generated `call`s and [`Graph::call_dyn`] use): the
/// module, then its inputs, then [`finish`](Self::finish) checks and records the node.
pub struct LazyCall {
    graph: Option<Graph>,
    module: Arc<dyn DynModule>,
    pub(crate) name: Option<String>,
    inputs: Vec<(String, DynHandle)>,
    constants: Vec<(String, Tensor)>,
}

impl LazyCall {
    /// A call of `module`; its graph is that of its input handles.
    pub fn new(module: Arc<dyn DynModule>) -> Self {
        LazyCall {
            graph: None,
            module,
            name: None,
            inputs: Vec::new(),
            constants: Vec::new(),
        }
    }

    pub(crate) fn on(graph: Graph, module: Arc<dyn DynModule>) -> Self {
        let mut call = Self::new(module);
        call.graph = Some(graph);
        call
    }

    /// Connects input `port` to `handle`.
    pub fn input(&mut self, port: &str, handle: DynHandle) {
        self.inputs.push((port.to_string(), handle));
    }

    /// Feeds input `port` a constant tensor (an optional port given an eager value).
    pub fn constant(&mut self, port: &str, value: Tensor) {
        self.constants.push((port.to_string(), value));
    }

    /// Checks every connection and records the node.
    ///
    /// # Errors
    /// A handle from another graph (or, for a call without inputs, no graph at all); an unknown,
    /// doubly connected or missing mandatory port; an incompatible connection.
    pub fn finish(self) -> Result<NodeOutputs> {
        let type_name = self.module.type_name();
        let graph = match (&self.graph, self.inputs.first()) {
            (Some(g), _) => g.clone(),
            (None, Some((_, h))) => h.graph.clone(),
            (None, None) => {
                return Err(Error::Config {
                    key: type_name.to_string(),
                    msg: "a lazy call needs at least one input handle to know its graph; use `Graph::call_dyn`".into(),
                });
            }
        };
        let in_types = self.module.dyn_input_types();
        let mut inputs: Vec<(String, Input)> = Vec::new();
        let connected: Vec<(&str, Option<&DynHandle>)> = self
            .inputs
            .iter()
            .map(|(p, h)| (p.as_str(), Some(h)))
            .chain(self.constants.iter().map(|(p, _)| (p.as_str(), None)))
            .collect();
        for (port, handle) in &connected {
            let Some(to_type) = in_types.get(port) else {
                return Err(unknown_input(type_name, port, &in_types));
            };
            if connected.iter().filter(|(p, _)| p == port).count() > 1 {
                return Err(Error::Config {
                    key: format!("{type_name}.{port}"),
                    msg: "the port is connected twice".into(),
                });
            }
            let Some(h) = handle else { continue };
            if !h.graph.same_graph(&graph) {
                return Err(Error::Config {
                    key: format!("{type_name}.{port}"),
                    msg: format!(
                        "handle `{}` belongs to another graph; a module call may only connect handles of one graph",
                        h.name()
                    ),
                });
            }
            check_wiring(type_name, port, to_type, h)?;
            inputs.push((
                port.to_string(),
                Input::Port {
                    node: h.node,
                    port: h.port.clone(),
                },
            ));
        }
        for (port, value) in self.constants {
            inputs.push((port, Input::Const(value)));
        }
        for (port, ty) in in_types.iter() {
            if !ty.is_optional() && !inputs.iter().any(|(p, _)| p == port) {
                return Err(wiring_error(
                    type_name,
                    port,
                    ty.to_string(),
                    Problem::Missing,
                ));
            }
        }
        let outputs = self.module.dyn_output_types();
        graph.push(
            self.name.as_deref(),
            type_name,
            Node {
                name: "".into(),
                kind: NodeKind::Module(self.module),
                inputs,
                outputs,
            },
        )
    }
}

/// Where the values that enter a graph come from in one run.
#[derive(Clone, Copy)]
pub(crate) enum Feed<'a> {
    /// Batch `index` of epoch `epoch` of every data layer.
    Batch {
        /// The epoch.
        epoch: u64,
        /// The batch within it.
        index: usize,
    },
    /// Graph inputs by name.
    Inputs(&'a NamedTensors),
}

/// The nodes a set of targets needs.
pub(crate) struct Plan {
    needed: Vec<bool>,
}

impl Plan {
    pub(crate) fn new(graph: &Graph, nodes: &[Node], targets: &[DynHandle]) -> Result<Plan> {
        let mut needed = vec![false; nodes.len()];
        let mut stack = Vec::new();
        for t in targets {
            if !t.graph.same_graph(graph) {
                return Err(Error::Config {
                    key: t.name(),
                    msg: "the handle belongs to another graph".into(),
                });
            }
            stack.push(t.node);
        }
        while let Some(i) = stack.pop() {
            let Some(slot) = needed.get_mut(i) else {
                continue;
            };
            if *slot {
                continue;
            }
            *slot = true;
            if let Some(node) = nodes.get(i) {
                for (_, input) in &node.inputs {
                    if let Input::Port { node, .. } = input {
                        stack.push(*node);
                    }
                }
            }
        }
        Ok(Plan { needed })
    }

    fn data_layers<'n>(
        &self,
        nodes: &'n [Node],
    ) -> impl Iterator<Item = (&'n Node, &'n Arc<dyn DataLayer>)> {
        nodes
            .iter()
            .zip(&self.needed)
            .filter(|(_, n)| **n)
            .filter_map(|(node, _)| match &node.kind {
                NodeKind::Data(d) => Some((node, d)),
                NodeKind::Module(_) | NodeKind::Input => None,
            })
    }

    pub(crate) fn num_batches(&self, nodes: &[Node]) -> Result<usize> {
        let mut count: Option<(usize, &str)> = None;
        for (node, d) in self.data_layers(nodes) {
            let n = d.num_batches();
            match count {
                None => count = Some((n, &node.name)),
                Some((m, first)) if m != n => {
                    return Err(Error::Config {
                        key: node.name.to_string(),
                        msg: format!(
                            "data layers fed together must have as many batches: `{}` has {n}, `{first}` has {m}",
                            node.name
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        match count {
            Some((n, _)) if n > 0 => Ok(n),
            Some((_, name)) => Err(Error::Config {
                key: name.to_string(),
                msg: "the data layer has no batches".into(),
            }),
            None => Err(Error::Config {
                key: "graph".into(),
                msg: "the requested tensors depend on no data layer".into(),
            }),
        }
    }

    pub(crate) fn run(
        &self,
        nodes: &[Node],
        targets: &[DynHandle],
        feed: Feed<'_>,
        ctx: &ForwardCtx,
    ) -> Result<Vec<Tensor>> {
        let mut values: Vec<Option<NamedTensors>> = vec![None; nodes.len()];
        for (i, (node, needed)) in nodes.iter().zip(&self.needed).enumerate() {
            if !needed {
                continue;
            }
            let out = match (&node.kind, feed) {
                (NodeKind::Data(d), Feed::Batch { epoch, index }) => {
                    d.batch(epoch, index).map_err(|e| in_node(&node.name, e))?
                }
                (NodeKind::Data(_), Feed::Inputs(_)) => {
                    return Err(Error::Config {
                        key: node.name.to_string(),
                        msg: "the data layer feeds the graph batch by batch; run it with an action (`train`, `eval`, `infer`) or `run_batch`".into(),
                    });
                }
                (NodeKind::Input, Feed::Inputs(feeds)) => {
                    let value = feeds.get(&*node.name).ok_or_else(|| {
                        wiring_error(
                            "graph",
                            &node.name,
                            node.outputs
                                .get("")
                                .map(|t| t.to_string())
                                .unwrap_or_default(),
                            Problem::Missing,
                        )
                    })?;
                    NamedTensors::from([(String::new(), value.clone())])
                }
                (NodeKind::Input, Feed::Batch { .. }) => {
                    return Err(Error::Config {
                        key: node.name.to_string(),
                        msg: "the graph input has no value in an action: bind it to a data layer's output when building (`ModelConfig::build_on`)".into(),
                    });
                }
                (NodeKind::Module(m), _) => {
                    let mut args = NamedTensors::new();
                    for (port, input) in &node.inputs {
                        let t = match input {
                            Input::Const(t) => t.clone(),
                            Input::Port {
                                node: src,
                                port: src_port,
                            } => fetch(nodes, &values, *src, src_port)?,
                        };
                        args.insert(port.clone(), t);
                    }
                    m.forward_dyn(args, &ctx.for_module(&node.name))
                        .map_err(|e| in_node(&node.name, e))?
                }
            };
            if let Some(slot) = values.get_mut(i) {
                *slot = Some(out);
            }
        }
        targets
            .iter()
            .map(|t| fetch(nodes, &values, t.node, &t.port))
            .collect()
    }
}

fn fetch(
    nodes: &[Node],
    values: &[Option<NamedTensors>],
    node: usize,
    port: &str,
) -> Result<Tensor> {
    let name = nodes
        .get(node)
        .map(|n| n.name.to_string())
        .unwrap_or_default();
    values
        .get(node)
        .and_then(|v| v.as_ref())
        .and_then(|v| v.get(port))
        .cloned()
        .ok_or_else(|| {
            Error::Type(Box::new(TypeError {
                module: name,
                direction: Direction::Output,
                port: port.to_string(),
                port_type: nodes
                    .get(node)
                    .and_then(|n| n.outputs.get(port))
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                shape: None,
                problem: Problem::Missing,
                bindings: Vec::new(),
            }))
        })
}

fn in_node(node: &str, e: Error) -> Error {
    match e {
        Error::Type(mut te) => {
            if te.module != node {
                te.module = format!("{node} ({})", te.module);
            }
            Error::Type(te)
        }
        other => other,
    }
}
