//! The lazy activation graph of NeMo 0.x (paper §3.1): instantiate modules, call them on
//! *symbolic* handles to record the DAG (no compute happens), then run an action —
//! [`Graph::train`], [`Graph::eval`] or [`Graph::infer`].
//!
//! Every connection is checked when it is made: by the compiler for typed handles
//! ([`Handle<A, E>`], with the same bounds and messages as the eager `forward`), and with
//! NeMo's type comparison for dynamic ones ([`DynHandle`], [`Graph::call_dyn`]). Handles convert
//! both ways: [`Handle::into_dyn`] and [`DynHandle::typed`] (checked at run time), so typed
//! modules, trait objects and modules built from YAML mix in one graph. Eager calls stay
//! available.
//!
//! Actions run only the nodes the requested handles depend on. Data layers ([`DataLayer`])
//! serve batch `index` of epoch `epoch` as a pure function of both; training feeds batch
//! `g = step * batches_per_step + micro` as index `g % n` of epoch `g / n`, so a run resumed from
//! a checkpoint sees the same batches (and, on CPU, the same losses) as an uninterrupted one.
//! `eval` and `infer` run epoch 0 once, in eval mode; `infer` detaches and joins each
//! handle's values along the batch axis, zero-padding batches of different lengths
//! (`infer_batches` keeps one value per batch). Typed axis operations on handles
//! (`permute_to`, `sum_over`, ...) are nodes too. See `docs/training.md`.
//!
//! ```
//! use std::sync::Arc;
//! use candle_core::{DType, Device};
//! use nemo_core::dag::{Graph, TrainAction};
//! use nemo_core::optim::{AdamW, AdamWConfig};
//! use nemo_core::train::TrainerConfig;
//! use nemo_core::tutorials::*;
//!
//! # fn main() -> nemo_core::Result<()> {
//! let graph = Graph::new();
//! let vb = graph.params().var_builder(DType::F32, &Device::Cpu);
//! let data = Arc::new(RealFunctionDataLayer::new(RealFunctionDataLayerConfig {
//!     n: 256, batch_size: 64, ..Default::default() }, &Device::Cpu)?);
//! let net = Arc::new(TaylorNetConfig { dim: 4 }.init(vb.pp("taylor_net"))?);
//! let loss = Arc::new(MseLoss);
//!
//! // The DAG: symbolic handles, checked as they are connected.
//! let d = data.call(&graph)?;
//! let p = net.call(TaylorNetInputs { x: &d.x })?;
//! let l = loss.call(MseLossInputs { predictions: &p.y_pred, target: &d.y })?;
//!
//! // An action.
//! let mut opt = AdamW::new(graph.params().trainable_vars(), AdamWConfig::default())?;
//! let mut config = TrainerConfig::new(5);
//! config.progress = false;
//! let dir = std::env::temp_dir().join(format!("nemo-dag-doc-{}", std::process::id()));
//! let summary = graph.train(TrainAction::new(l.loss, &mut opt, 0.01, config, &dir))?;
//! assert_eq!(summary.steps, 5);
//! let y = graph.infer(&[p.y_pred.into_dyn()])?;
//! assert_eq!(y[0].dims(), &[256, 1]);
//! # let _ = std::fs::remove_dir_all(&dir);
//! # Ok(())
//! # }
//! ```

mod actions;
mod axis_op;
mod data;
mod graph;
mod handle;
mod module;

pub use actions::{BatchMean, EvalMetric, Evaluation, TrainAction};
pub use data::{DataLayer, LazyDataLayer};
pub use graph::{Graph, LazyCall, NodeOutputs, check_wiring, connectable, unknown_input};
pub use handle::{DynHandle, Handle, Symbolic};
pub use module::LazyModule;
