//! [`BuiltModel`]: a model built from a [`ModelConfig`](super::ModelConfig) — its nodes in the
//! graph, the modules in run order, the handles of its inputs and outputs — and how it runs
//! eagerly.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::connection::Connection;
use crate::dag::{DynHandle, Graph};
use crate::module::{DynModule, NamedTensors};
use crate::{ForwardCtx, Result};

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

/// A model built from a [`ModelConfig`](super::ModelConfig): its nodes in a [`Graph`], the modules in run order, the
/// handles of its inputs and declared outputs.
pub struct BuiltModel {
    pub(super) name: Option<String>,
    pub(super) graph: Graph,
    pub(super) nodes: Vec<BuiltNode>,
    pub(super) connections: Vec<Connection>,
    pub(super) inputs: Vec<(String, DynHandle)>,
    pub(super) outputs: Vec<(String, DynHandle)>,
    pub(super) handles: HashMap<String, DynHandle>,
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
