//! The NeMo 0.x tutorial modules (`nemo/backends/pytorch/tutorials/toys.py`): a data layer of a
//! real function, NeMo's polynomial [`TaylorNet`] and an [`MseLoss`] — the smallest complete
//! graph, trained in the [`dag`](crate::dag) docs and tests.
//!
//! Ports follow NeMo 0.x: the data layer gives `x: (B, D:1) Channel` and `y: (B, D:1) Labels`,
//! `TaylorNet` maps `x` to `y_pred: (B, D:1) Channel`, `MseLoss` takes `predictions` and
//! `target` and returns `loss: Loss`.

mod mse_loss;
mod real_function_data_layer;
mod taylor_net;

pub use mse_loss::{
    MseLoss, MseLossHandles, MseLossInputTensors, MseLossInputs, MseLossOutputTensors,
    MseLossOutputs,
};
pub use real_function_data_layer::{
    RealFunction, RealFunctionDataLayer, RealFunctionDataLayerConfig, RealFunctionDataLayerHandles,
    RealFunctionDataLayerOutputTensors, RealFunctionDataLayerOutputs,
};
pub use taylor_net::{
    TaylorNet, TaylorNetConfig, TaylorNetHandles, TaylorNetInputTensors, TaylorNetInputs,
    TaylorNetOutputTensors, TaylorNetOutputs,
};
