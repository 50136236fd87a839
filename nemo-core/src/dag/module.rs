//! [`LazyModule`]: what a module's generated lazy `call` requires — a [`DynModule`] that can be
//! shared by the graph.

use std::sync::Arc;

use crate::module::DynModule;

/// A module that can be a node of a [`Graph`](super::Graph): it implements
/// [`Forward`](crate::Forward) (hence [`DynModule`]) and is `Send + Sync + 'static`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be called lazily: it must implement `Forward` and be `Send + Sync + 'static`",
    note = "a graph node holds the module as an `Arc<dyn DynModule>`"
)]
pub trait LazyModule {
    /// The module as a shared trait object.
    #[doc(hidden)]
    fn __as_dyn_module(self: &Arc<Self>) -> Arc<dyn DynModule>;
}

#[diagnostic::do_not_recommend]
impl<M: DynModule + 'static> LazyModule for M {
    fn __as_dyn_module(self: &Arc<Self>) -> Arc<dyn DynModule> {
        self.clone()
    }
}
