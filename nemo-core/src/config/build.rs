//! Building a [`ModelConfig`] into the activation graph: every module type looked up in the
//! [`registry`](crate::registry), every connection and mandatory input port checked, the modules
//! built and wired in an order computed from the connections, before anything runs.

use std::collections::HashMap;

use candle_core::{DType, Device};

use super::built_model::{BuiltModel, BuiltNode};
use super::model_config::{CfgResult, ModelConfig, cfg_error, value_error};
use super::topo;
use crate::dag::{DynHandle, Graph, LazyCall};
use crate::module::DynModule;
use crate::params::Parameters;
use crate::registry::{BuildContext, ModuleFactory, build_module, unknown_type};
use crate::suggest::did_you_mean;
use crate::types::NeuralType;
use crate::yaml::{ConfigError, ConfigProblem};
use crate::{Error, Result};

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

impl ModelConfig {
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
            let hint = did_you_mean(head, node_names.clone());
            format!(
                "a module name before the `.` (modules: {}){hint}",
                node_names.collect::<Vec<_>>().join(", ")
            )
        } else if producer {
            let hint = did_you_mean(head, input_names.clone());
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
                let hint = did_you_mean(out, all.iter().map(String::as_str));
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
