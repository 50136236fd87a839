//! [`MseLoss`]: the mean squared error between predictions and targets, a scalar `Loss`
//! (NeMo 0.x `MSELoss`).
//!
//! `predictions: (B, D) Channel`, `target: (B, D) Labels` → `loss: Loss` = mean over all
//! elements of `(predictions - target)²`.

use crate::Result;
use crate::prelude::*;

/// Mean squared error (NeMo 0.x `MSELoss`).
#[neural_module(
    kind = loss,
    inputs(
        predictions: (B, D) Channel,
        target: (B, D) Labels,
    ),
    outputs(loss: Loss),
)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[doc(alias = "MSELoss")]
pub struct MseLoss;

impl Forward for MseLoss {
    fn forward_tensors(
        &self,
        x: MseLossInputTensors,
        _ctx: &ForwardCtx,
    ) -> Result<MseLossOutputTensors> {
        let target = x.target.to_dtype(x.predictions.dtype())?;
        let loss = (x.predictions - target)?.sqr()?.mean_all()?;
        Ok(MseLossOutputTensors { loss })
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    #[test]
    fn mean_of_squared_differences() -> Result<()> {
        let p: NTensor<(B, D), Channel> =
            NTensor::new(Tensor::new(&[[1f32], [2.], [4.]], &Device::Cpu)?)?;
        let t: NTensor<(B, D), Labels> =
            NTensor::new(Tensor::new(&[[1f32], [0.], [1.]], &Device::Cpu)?)?;
        let out = MseLoss.forward(MseLossInputs {
            predictions: &p,
            target: &t,
        })?;
        let v = out.loss.tensor().to_scalar::<f32>()?;
        assert!((v - 13.0 / 3.0).abs() < 1e-6, "{v}");
        Ok(())
    }
}
