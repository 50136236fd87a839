//! [`TaylorNet`]: NeMo 0.x's polynomial regressor of degree `dim`, a linear layer over the
//! powers `[x⁰, x¹, …, x^dim]` of its scalar input.
//!
//! `x: (B, D:1) Channel` → `y_pred: (B, D:1) Channel`. Weights: `fc1.weight (1, dim + 1)`,
//! `fc1.bias (1)` under the module's prefix (NeMo's `fc1 = nn.Linear(dim + 1, 1)`), initialized to
//! zero.

use candle_core::Tensor;
use candle_nn::{Linear, Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::prelude::*;
use crate::{Error, Result};

/// Settings of [`TaylorNet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaylorNetConfig {
    /// The polynomial's degree (NeMo's `dim`). Default 4.
    pub dim: usize,
}

impl Default for TaylorNetConfig {
    fn default() -> Self {
        TaylorNetConfig { dim: 4 }
    }
}

impl TaylorNetConfig {
    /// Builds the net, creating or loading `fc1.weight` and `fc1.bias` from `vb`.
    ///
    /// # Errors
    /// [`Error::Config`] for `dim = 0`; candle errors from `vb`.
    pub fn init(&self, vb: VarBuilder) -> Result<TaylorNet> {
        if self.dim == 0 {
            return Err(Error::Config {
                key: "dim".into(),
                msg: "the degree must be at least 1, found 0".into(),
            });
        }
        // Zero weights: the net is linear in them, so training from zero is well posed and
        // reproducible without a seeded generator (NeMo uses PyTorch's random default).
        let vb = vb.pp("fc1");
        let weight = vb.get_with_hints((1, self.dim + 1), "weight", candle_nn::init::ZERO)?;
        let bias = vb.get_with_hints(1, "bias", candle_nn::init::ZERO)?;
        let fc1 = Linear::new(weight, Some(bias));
        Ok(TaylorNet { dim: self.dim, fc1 })
    }
}

/// `y = fc1([x⁰, …, x^dim])` (NeMo 0.x `TaylorNet`).
#[neural_module(
    inputs(x: (B, D: 1) Channel),
    outputs(y_pred: (B, D: 1) Channel),
)]
#[derive(Debug, Clone)]
pub struct TaylorNet {
    dim: usize,
    fc1: Linear,
}

impl TaylorNet {
    /// The degree.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The linear layer over the powers.
    pub fn fc1(&self) -> &Linear {
        &self.fc1
    }
}

impl Forward for TaylorNet {
    fn forward_tensors(
        &self,
        inputs: TaylorNetInputTensors,
        _ctx: &ForwardCtx,
    ) -> Result<TaylorNetOutputTensors> {
        let x = inputs.x; // (B, 1)
        let mut powers = Vec::with_capacity(self.dim + 1);
        let mut p = x.ones_like()?;
        for _ in 0..=self.dim {
            let next = (&p * &x)?;
            powers.push(p);
            p = next;
        }
        let features = Tensor::cat(&powers, 1)?; // (B, dim + 1)
        let y_pred = self.fc1.forward(&features)?; // (B, 1)
        Ok(TaylorNetOutputTensors { y_pred })
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;
    use crate::params::Parameters;

    #[test]
    fn evaluates_the_polynomial() -> Result<()> {
        let params = Parameters::new();
        let vb = params.var_builder(DType::F32, &Device::Cpu);
        let net = TaylorNetConfig { dim: 2 }.init(vb.pp("net"))?;
        // y = 1 + 2x + 3x² + 0.5
        let w = Tensor::new(&[[1f32, 2., 3.]], &Device::Cpu)?;
        let b = Tensor::new(&[0.5f32], &Device::Cpu)?;
        let net = TaylorNet {
            dim: net.dim,
            fc1: Linear::new(w, Some(b)),
        };
        let x: NTensor<(B, D), Channel> =
            NTensor::new(Tensor::new(&[[2f32], [-1.]], &Device::Cpu)?)?;
        let y = net.forward(TaylorNetInputs { x: &x })?;
        assert_eq!(y.y_pred.tensor().to_vec2::<f32>()?, [[17.5], [2.5]]);
        Ok(())
    }

    #[test]
    fn degree_zero_is_refused() {
        let params = Parameters::new();
        let vb = params.var_builder(DType::F32, &Device::Cpu);
        assert!(TaylorNetConfig { dim: 0 }.init(vb).is_err());
    }
}
