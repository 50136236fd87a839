//! [`DataLayer`]: a module without inputs that the graph's actions feed batch by batch (NeMo's
//! data layers), and [`LazyDataLayer`], what the generated `call` of a `kind = data_layer` module
//! requires.

use std::sync::Arc;

use crate::Result;
use crate::module::{NamedTensors, PortTypes};

/// A source of batches in a [`Graph`](super::Graph).
///
/// Batch `index` of epoch `epoch` must be a pure function of `(epoch, index)` and the layer's
/// configuration (its seed and shuffle setting decide the order of each epoch): the actions
/// rely on it to resume training exactly and to feed several layers in step.
pub trait DataLayer: Send + Sync {
    /// The layer's type name, used to name its node.
    fn type_name(&self) -> &'static str;
    /// The output ports and their runtime types (what the handles of its node carry).
    fn dyn_output_types(&self) -> PortTypes;
    /// Batches per epoch.
    fn num_batches(&self) -> usize;
    /// Batch `index` (`< num_batches()`) of epoch `epoch`, one tensor per output port.
    fn batch(&self, epoch: u64, index: usize) -> Result<NamedTensors>;
}

/// What a data layer's generated lazy `call` requires: a [`DataLayer`] that can be shared.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be added to a graph: it does not implement `DataLayer`",
    note = "implement `nemo_core::dag::DataLayer` (num_batches, batch) for `{Self}`"
)]
pub trait LazyDataLayer {
    /// The layer as a shared trait object.
    #[doc(hidden)]
    fn __as_dyn_data_layer(self: &Arc<Self>) -> Arc<dyn DataLayer>;
}

#[diagnostic::do_not_recommend]
impl<L: DataLayer + 'static> LazyDataLayer for L {
    fn __as_dyn_data_layer(self: &Arc<Self>) -> Arc<dyn DataLayer> {
        self.clone()
    }
}
