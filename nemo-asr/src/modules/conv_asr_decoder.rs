//! `ConvAsrDecoder` (NeMo's `ConvASRDecoder`, `JasperDecoderForCTC` in 0.x): a 1×1 conv to `num_classes + 1` outputs (the
//! CTC blank last) and a log-softmax over classes.
//!
//! Ports: `encoder_output (B, D = feat_in, T) AcousticEncodedRepresentation` →
//! `logprobs (B, T, D = num_outputs) Logprobs` (batch-first, time before classes, as NeMo).

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use nemo_core::{Forward, ForwardCtx, neural_module};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::kernels::pointwise_conv1d;
use crate::modules::jasper_block::cast_like;

/// The decoder's configuration, NeMo's `decoder:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvAsrDecoderConfig {
    /// Input channels (the encoder's output channels).
    pub feat_in: usize,
    /// Labels, not counting the blank.
    pub num_classes: usize,
}

/// The CTC decoder.
#[neural_module(
    inputs(encoder_output: (B, D = feat_in, T as frames) AcousticEncodedRepresentation),
    outputs(logprobs: (B, T as frames, D = num_outputs) Logprobs),
)]
#[derive(Debug, Clone)]
#[doc(alias = "ConvASRDecoder", alias = "JasperDecoderForCTC")]
pub struct ConvAsrDecoder {
    feat_in: usize,
    num_outputs: usize,
    weight: Tensor,
    bias: Tensor,
}

impl ConvAsrDecoderConfig {
    /// Builds the decoder with its weights from `vb` (`weight`, `bias`).
    pub fn init(&self, vb: VarBuilder) -> Result<ConvAsrDecoder> {
        ConvAsrDecoder::new(self, vb)
    }
}

impl ConvAsrDecoder {
    /// Builds the decoder, weights `weight` `(num_classes + 1, feat_in, 1)` and `bias` from `vb`.
    fn new(config: &ConvAsrDecoderConfig, vb: VarBuilder) -> Result<Self> {
        let out = config.num_classes + 1;
        let bound = 1.0 / (config.feat_in as f64).sqrt();
        let init = candle_nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        Ok(ConvAsrDecoder {
            feat_in: config.feat_in,
            num_outputs: out,
            weight: vb.get_with_hints((out, config.feat_in, 1), "weight", init)?,
            bias: vb.get_with_hints(out, "bias", init)?,
        })
    }

    /// Log-probabilities `(B, T, classes)` from encoder output `(B, D, T)`. Under mixed
    /// precision the 1×1 conv runs in the input's dtype (f16/bf16) and the log-softmax, and so
    /// the CTC loss after it, in f32.
    pub fn decode(&self, x: &Tensor) -> Result<Tensor> {
        let (w, b) = (cast_like(&self.weight, x)?, cast_like(&self.bias, x)?);
        let logits = pointwise_conv1d(x, &w, Some(&b))?;
        let logits = match logits.dtype() {
            DType::F16 | DType::BF16 => logits.to_dtype(DType::F32)?,
            _ => logits,
        };
        Ok(nemo_core::nn::log_softmax(&logits.transpose(1, 2)?)?)
    }
}

impl Forward for ConvAsrDecoder {
    fn forward_tensors(
        &self,
        x: ConvAsrDecoderInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo_core::Result<ConvAsrDecoderOutputTensors> {
        Ok(ConvAsrDecoderOutputTensors {
            logprobs: self.decode(&x.encoder_output)?,
        })
    }
}
