//! `ConvAsrEncoder` (NeMo's `ConvASREncoder`, `JasperEncoder` in 0.x): the Jasper/QuartzNet encoder, a stack of [`JasperBlock`]s built from NeMo's
//! YAML block list.
//!
//! Ports: `audio_signal (B, D = feat_in, T) MelSpectrogram`, `length (B) Lengths` →
//! `outputs (B, D = feat_out, T) AcousticEncodedRepresentation`, `encoded_lengths (B) Lengths`.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use nemo_core::{Forward, ForwardCtx, neural_module};
use serde::{Deserialize, Serialize};

use super::jasper_block::{JasperBlock, JasperBlockConfig, lengths_to_vec};
use crate::{Error, Result};

/// The encoder's configuration, NeMo's `encoder:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvAsrEncoderConfig {
    /// Input features (mel bands).
    pub feat_in: usize,
    /// Activation; only `relu` (NeMo's QuartzNet default) is supported.
    #[serde(default = "relu")]
    pub activation: String,
    /// The blocks, in order.
    pub jasper: Vec<JasperBlockConfig>,
}

fn relu() -> String {
    "relu".into()
}

impl ConvAsrEncoderConfig {
    /// Checks every block; errors name the key path (`encoder.jasper[2].kernel`).
    pub fn validate(&self) -> Result<()> {
        if self.feat_in == 0 {
            return Err(Error::Config {
                key: "encoder.feat_in".into(),
                msg: "must be positive".into(),
            });
        }
        if self.activation != "relu" {
            return Err(Error::Config {
                key: "encoder.activation".into(),
                msg: format!("`{}` is not supported; use `relu`", self.activation),
            });
        }
        if self.jasper.is_empty() {
            return Err(Error::Config {
                key: "encoder.jasper".into(),
                msg: "the block list is empty".into(),
            });
        }
        for (i, b) in self.jasper.iter().enumerate() {
            b.validate(&format!("encoder.jasper[{i}]"))?;
        }
        Ok(())
    }

    /// Output channels: the last block's filters.
    pub fn feat_out(&self) -> usize {
        self.jasper.last().map_or(self.feat_in, |b| b.filters)
    }

    /// The total time stride.
    pub fn stride(&self) -> usize {
        self.jasper.iter().map(|b| b.stride).product()
    }
}

/// The Jasper/QuartzNet encoder.
#[neural_module(
    inputs(
        audio_signal: (B, D = feat_in, T) MelSpectrogram,
        length: (B) Lengths,
    ),
    outputs(
        outputs: (B, D = feat_out, T) AcousticEncodedRepresentation,
        encoded_lengths: (B) Lengths,
    ),
)]
#[derive(Debug, Clone)]
#[doc(alias = "ConvASREncoder", alias = "JasperEncoder")]
pub struct ConvAsrEncoder {
    feat_in: usize,
    feat_out: usize,
    config: ConvAsrEncoderConfig,
    blocks: Vec<JasperBlock>,
}

impl ConvAsrEncoderConfig {
    /// Builds the encoder with its weights from `vb` (`blocks.{i}.*`).
    pub fn init(&self, vb: VarBuilder) -> Result<ConvAsrEncoder> {
        ConvAsrEncoder::new(self.clone(), vb)
    }
}

impl ConvAsrEncoder {
    /// Builds the encoder with its weights from `vb` (`blocks.{i}.*`).
    fn new(config: ConvAsrEncoderConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let mut blocks = Vec::with_capacity(config.jasper.len());
        let mut c_in = config.feat_in;
        for (i, b) in config.jasper.iter().enumerate() {
            blocks.push(b.init(c_in, vb.pp(format!("blocks.{i}")))?);
            c_in = b.filters;
        }
        Ok(ConvAsrEncoder {
            feat_in: config.feat_in,
            feat_out: config.feat_out(),
            config,
            blocks,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ConvAsrEncoderConfig {
        &self.config
    }

    /// Runs the blocks on plain tensors in the mode `ctx` gives; lengths as a vector.
    pub fn encode(
        &self,
        x: &Tensor,
        lengths: &[usize],
        ctx: &ForwardCtx,
    ) -> Result<(Tensor, Vec<usize>)> {
        let mut out = x.clone();
        let mut lens = lengths.to_vec();
        for (i, block) in self.blocks.iter().enumerate() {
            (out, lens) = block.forward_t(&out, &lens, &ctx.for_module(&format!("blocks.{i}")))?;
        }
        Ok((out, lens))
    }
}

impl Forward for ConvAsrEncoder {
    fn forward_tensors(
        &self,
        x: ConvAsrEncoderInputTensors,
        ctx: &ForwardCtx,
    ) -> nemo_core::Result<ConvAsrEncoderOutputTensors> {
        let lens = lengths_to_vec(&x.length)?;
        let (outputs, lens) = self.encode(&x.audio_signal, &lens, ctx)?;
        let lens: Vec<i64> = lens.into_iter().map(|l| l as i64).collect();
        let encoded_lengths = Tensor::new(lens, x.length.device())?.to_dtype(x.length.dtype())?;
        Ok(ConvAsrEncoderOutputTensors {
            outputs,
            encoded_lengths,
        })
    }
}
