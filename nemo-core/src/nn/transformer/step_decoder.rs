//! [`TransformerStepDecoder`]: a Transformer decoder as a [`StepDecoder`], so that
//! [`greedy_search`](crate::decoding::greedy_search) and
//! [`beam_search`](crate::decoding::beam_search) can drive it — NeMo 0.x's
//! `GreedySequenceGenerator._forward` (`transformer_generators.py`, v0.11.1) with a K/V cache:
//!
//! ```text
//! x = TransformerEmbedding(prev, start_pos = cache.len())        (N, 1, D)
//! h = TransformerDecoder::step(x, cache)                         (N, 1, D)
//! log_probs = log_softmax(h Wᵀ + b)                              (N, V)
//! ```
//!
//! `W` `(V, D)` is the output projection, usually the token table itself (NeMo's NMT ties it to
//! the embeddings); `b` its optional bias. The state is the [`DecoderCache`] from
//! [`TransformerDecoder::start`]; beams select its rows with
//! [`DecoderCache::index_select`].
//!
//! ```
//! # fn main() -> nemo_core::Result<()> {
//! use candle_core::{DType, Device, Tensor};
//! use nemo_core::decoding::{BeamSearchConfig, FinishedHypotheses, beam_search};
//! use nemo_core::nn::{
//!     TransformerDecoderConfig, TransformerEmbeddingConfig, TransformerStepDecoder,
//!     seeded_var_builder,
//! };
//! use nemo_core::params::Parameters;
//!
//! let params = Parameters::new();
//! let vb = seeded_var_builder(params.varmap(), 0, DType::F32, &Device::Cpu);
//! let embedding = TransformerEmbeddingConfig::new(12, 8).init(vb.pp("embedding"))?;
//! let decoder = TransformerDecoderConfig::new(1, 8, 16, 2).init(vb.pp("decoder"))?;
//! let step = TransformerStepDecoder::new(&embedding, &decoder, embedding.token_embedding(), None)?;
//! let source = Tensor::randn(0f32, 1.0, (2, 5, 8), &Device::Cpu)?; // (B, S, D) encoder states
//! let cache = decoder.start(&source, None)?;
//! let config = BeamSearchConfig {
//!     beam_size: 4,
//!     finished_hypotheses: FinishedHypotheses::Nemo,
//!     pad_id: Some(0),
//!     ..Default::default()
//! };
//! let out = beam_search(&step, cache, 2, 3, &[7, 7], &config)?; // BOS 2, EOS 3
//! assert_eq!(out.len(), 2);
//! # Ok(())
//! # }
//! ```

use candle_core::{DType, Tensor};

use super::decoder::{DecoderCache, TransformerDecoder};
use super::embedding::TransformerEmbedding;
use crate::decoding::{StepDecoder, StepOutput};
use crate::nn::log_softmax;
use crate::{Error, ForwardCtx, Result};

/// A Transformer decoder with its embedding and output layer, one token at a time; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct TransformerStepDecoder<'a> {
    embedding: &'a TransformerEmbedding,
    decoder: &'a TransformerDecoder,
    /// `(V, D)`, transposed once.
    projection_t: Tensor,
    /// `(V)`.
    bias: Option<Tensor>,
}

impl<'a> TransformerStepDecoder<'a> {
    /// The step function of `decoder` over tokens embedded by `embedding`, projected to the
    /// vocabulary by `output_weight` `(V, D)` (e.g. `embedding.token_embedding()`) plus
    /// `output_bias` `(V)`.
    ///
    /// # Errors
    /// [`Error::Shape`] when the widths or vocabulary sizes disagree.
    pub fn new(
        embedding: &'a TransformerEmbedding,
        decoder: &'a TransformerDecoder,
        output_weight: &Tensor,
        output_bias: Option<&Tensor>,
    ) -> Result<Self> {
        let d = decoder.config().hidden_size;
        let v = embedding.config().vocab_size;
        let bad = |msg: String| Error::Shape {
            op: "TransformerStepDecoder",
            msg,
        };
        if embedding.config().hidden_size != d {
            return Err(bad(format!(
                "the embedding's width {} differs from the decoder's {d}",
                embedding.config().hidden_size
            )));
        }
        if output_weight.dims() != [v, d] {
            return Err(bad(format!(
                "output_weight must be (V, D) = ({v}, {d}), got {:?}",
                output_weight.dims()
            )));
        }
        if let Some(b) = output_bias
            && b.dims() != [v]
        {
            return Err(bad(format!(
                "output_bias must be (V) = ({v}), got {:?}",
                b.dims()
            )));
        }
        Ok(TransformerStepDecoder {
            embedding,
            decoder,
            projection_t: output_weight.t()?,
            bias: output_bias.cloned(),
        })
    }

    /// The `(N, V)` logits after the hidden states `h` `(N, D)`.
    fn logits(&self, h: &Tensor) -> Result<Tensor> {
        let logits = h.matmul(&self.projection_t)?;
        Ok(match &self.bias {
            Some(b) => logits.broadcast_add(b)?,
            None => logits,
        })
    }
}

impl StepDecoder for TransformerStepDecoder<'_> {
    type State = DecoderCache;

    fn step(&self, prev: &[u32], cache: &DecoderCache) -> Result<StepOutput<DecoderCache>> {
        let n = prev.len();
        let device = self.projection_t.device();
        let ids = Tensor::from_slice(prev, (n, 1), device)?;
        let x = self
            .embedding
            .forward(&ids, None, cache.len(), &ForwardCtx::eval())?; // (N, 1, D)
        let mut cache = cache.clone();
        let h = self.decoder.step(&x, None, &mut cache)?.squeeze(1)?; // (N, D)
        let logits = self.logits(&h)?.to_dtype(DType::F32)?; // (N, V)
        Ok(StepOutput {
            log_probs: log_softmax(&logits)?,
            attention: None,
            state: cache,
        })
    }

    fn select(&self, cache: &DecoderCache, rows: &[u32]) -> Result<DecoderCache> {
        let rows = Tensor::from_slice(rows, rows.len(), self.projection_t.device())?;
        cache.index_select(&rows)
    }
}
