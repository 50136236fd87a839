//! `JasperRnnConnector` (NeMo 0.x's `JasperRNNConnector`): connects a Jasper/QuartzNet encoder to an RNN
//! decoder — a 1×1 conv from the encoder's channels to the decoder's hidden size, then a transpose
//! to batch-first, time-major order.
//!
//! Ports: `tensor (B, D = in_channels, T) Channel` → `tensor (B, T, D = out_channels)
//! EncodedRepresentation`. The input accepts any kind of `Channel`, e.g. the encoder's
//! `AcousticEncodedRepresentation`.

use candle_core::Tensor;
use candle_nn::VarBuilder;
use nemo_core::{Forward, ForwardCtx, neural_module};
use serde::{Deserialize, Serialize};

use crate::kernels::pointwise_conv1d;
use crate::{Error, Result};

/// The connector's configuration, NeMo's `connector:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JasperRnnConnectorConfig {
    /// Input channels: the encoder's last `filters`.
    pub in_channels: usize,
    /// Output channels: the decoder's `hidden_size`.
    pub out_channels: usize,
}

impl JasperRnnConnectorConfig {
    /// Checks that both sizes are positive.
    pub fn validate(&self) -> Result<()> {
        if self.in_channels == 0 || self.out_channels == 0 {
            return Err(Error::Config {
                key: "connector".into(),
                msg: format!(
                    "in_channels {} and out_channels {} must be positive",
                    self.in_channels, self.out_channels
                ),
            });
        }
        Ok(())
    }
}

/// The encoder-to-decoder connector.
#[neural_module(
    inputs(tensor: (B, D = in_channels, T as frames) Channel),
    outputs(tensor: (B, T as frames, D = out_channels) EncodedRepresentation),
)]
#[derive(Debug, Clone)]
#[doc(alias = "JasperRNNConnector")]
pub struct JasperRnnConnector {
    in_channels: usize,
    out_channels: usize,
    weight: Tensor,
    bias: Tensor,
}

impl JasperRnnConnectorConfig {
    /// Builds the connector with its weights from `vb` (`weight`, `bias`).
    pub fn init(&self, vb: VarBuilder) -> Result<JasperRnnConnector> {
        JasperRnnConnector::new(self, vb)
    }
}

impl JasperRnnConnector {
    /// Builds the connector: `icnn.weight` `(out, in, 1)` and `icnn.bias` `(out)` from `vb`,
    /// `U(±1/sqrt(in))` as PyTorch's `Conv1d`.
    fn new(config: &JasperRnnConnectorConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let bound = 1.0 / (config.in_channels as f64).sqrt();
        let init = candle_nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let vb = vb.pp("icnn");
        Ok(JasperRnnConnector {
            in_channels: config.in_channels,
            out_channels: config.out_channels,
            weight: vb.get_with_hints(
                (config.out_channels, config.in_channels, 1),
                "weight",
                init,
            )?,
            bias: vb.get_with_hints(config.out_channels, "bias", init)?,
        })
    }

    /// `(B, out, T)` conv output transposed to `(B, T, out)`, from `(B, in, T)`.
    pub fn connect(&self, x: &Tensor) -> Result<Tensor> {
        Ok(pointwise_conv1d(x, &self.weight, Some(&self.bias))?
            .transpose(1, 2)?
            .contiguous()?)
    }
}

impl Forward for JasperRnnConnector {
    fn forward_tensors(
        &self,
        x: JasperRnnConnectorInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo_core::Result<JasperRnnConnectorOutputTensors> {
        Ok(JasperRnnConnectorOutputTensors {
            tensor: self.connect(&x.tensor)?,
        })
    }
}
