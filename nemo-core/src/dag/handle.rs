//! Symbolic tensors of a [`Graph`]: [`Handle<A, E>`] (typed, checked by the compiler) and
//! [`DynHandle`] (runtime type only), each naming one output port of one node.
//!
//! A handle holds no value: it is what a lazy call returns and what the actions
//! ([`Graph::train`], [`Graph::eval`], [`Graph::infer`]) are asked to compute.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::Graph;
use crate::typed::{Axes, Element};
use crate::types::{ElementType, NeuralType};
use crate::{Error, Result};

/// One output port of one node of a graph, with its runtime [`NeuralType`].
#[derive(Clone)]
pub struct DynHandle {
    pub(crate) graph: Graph,
    pub(crate) node: usize,
    pub(crate) node_name: Arc<str>,
    pub(crate) port: Arc<str>,
    pub(crate) ty: NeuralType,
}

impl fmt::Debug for DynHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynHandle({}: {})", self.name(), self.ty)
    }
}

impl DynHandle {
    /// The runtime type of the port, under the producing module's configuration.
    pub fn neural_type(&self) -> &NeuralType {
        &self.ty
    }

    /// The producing node's name, e.g. `TaylorNet` or `TaylorNet_1`.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The output port's name.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// `node.port`, as in messages (a graph input: its name).
    pub fn name(&self) -> String {
        if self.port.is_empty() {
            self.node_name.to_string()
        } else {
            format!("{}.{}", self.node_name, self.port)
        }
    }

    /// The graph this handle belongs to.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// This handle seen with compile-time axes `A` and element `E`, checked now with NeMo's
    /// comparison: the handle's type must be the same as `(A) E` or a more specific kind of it.
    ///
    /// # Errors
    /// [`Error::Type`] naming the handle, both types and the comparison result.
    pub fn typed<A: Axes, E: Element>(&self) -> Result<Handle<A, E>> {
        let target = NeuralType::new(
            (A::RANK > 0).then(A::axis_types),
            ElementType::new(E::info()),
        );
        let comparison = self.ty.compare(&target);
        if !comparison.is_compatible() {
            return Err(Error::Type(Box::new(crate::check::TypeError {
                module: "DynHandle::typed".to_string(),
                direction: crate::check::Direction::Value,
                port: self.name(),
                port_type: target.to_string(),
                shape: None,
                problem: crate::check::Problem::Connection {
                    from: self.name(),
                    from_type: self.ty.to_string(),
                    comparison,
                },
                bindings: Vec::new(),
            })));
        }
        Ok(Handle {
            inner: self.clone(),
            _marker: PhantomData,
        })
    }
}

/// A symbolic tensor of a [`Graph`] whose axes `A` and element type `E` are known to the
/// compiler, as an [`NTensor<A, E>`](crate::NTensor) is: lazy calls take it with the same bounds
/// as eager calls, so a miswired lazy call does not compile.
pub struct Handle<A, E> {
    inner: DynHandle,
    _marker: PhantomData<fn() -> (A, E)>,
}

impl<A, E> Clone for Handle<A, E> {
    fn clone(&self) -> Self {
        Handle {
            inner: self.inner.clone(),
            _marker: PhantomData,
        }
    }
}

impl<A, E> fmt::Debug for Handle<A, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({}: {})", self.inner.name(), self.inner.ty)
    }
}

impl<A, E> Handle<A, E> {
    /// A typed view of `inner` whose type the caller has checked.
    pub(crate) fn from_dyn_unchecked(inner: DynHandle) -> Self {
        Handle {
            inner,
            _marker: PhantomData,
        }
    }

    /// The handle without its compile-time type (for actions and dynamic calls).
    pub fn into_dyn(self) -> DynHandle {
        self.inner
    }

    /// The untyped view of this handle.
    pub fn as_dyn(&self) -> &DynHandle {
        &self.inner
    }

    /// The runtime type of the port (with sizes and element parameters from the configuration).
    pub fn neural_type(&self) -> &NeuralType {
        &self.inner.ty
    }

    /// `node.port`, as in messages.
    pub fn name(&self) -> String {
        self.inner.name()
    }
}

impl<A, E> From<Handle<A, E>> for DynHandle {
    fn from(h: Handle<A, E>) -> Self {
        h.inner
    }
}

/// A symbolic value a lazy call accepts: a [`Handle`] or a reference to one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a graph handle",
    label = "lazy `call` takes `Handle`s",
    note = "a lazy call connects symbolic handles returned by other lazy calls; for tensors use the eager `forward`"
)]
pub trait Symbolic {
    /// The handle's axes.
    type Axes: Axes;
    /// The handle's element type.
    type Element: Element;
    /// The untyped handle.
    fn dyn_handle(&self) -> DynHandle;
}

#[diagnostic::do_not_recommend]
impl<A: Axes, E: Element> Symbolic for Handle<A, E> {
    type Axes = A;
    type Element = E;
    fn dyn_handle(&self) -> DynHandle {
        self.inner.clone()
    }
}

#[diagnostic::do_not_recommend]
impl<S: Symbolic> Symbolic for &S {
    type Axes = S::Axes;
    type Element = S::Element;
    fn dyn_handle(&self) -> DynHandle {
        (*self).dyn_handle()
    }
}
