//! The Transformer of NeMo 0.x's NLP collection (`nemo/collections/nlp/nm/trainables/common/
//! transformer/`, v0.11.1) — the building blocks of its NMT encoder-decoder and of BERT — in
//! `(B, T, D)` layout:
//!
//! * [`TransformerEmbedding`] — token + position (+ token type) embedding, LayerNorm, dropout;
//!   [`PositionEncoding`] and [`sinusoidal_position_encoding`];
//! * [`MultiHeadAttention`] — Q and K each scaled by `d_head^−¼`, the fused masked
//!   [`softmax`](crate::nn::softmax()), [`KeyValues`] for incremental decoding;
//! * [`PositionWiseFf`] — the ReLU (or GELU) feed-forward network;
//! * [`TransformerEncoderBlock`], [`TransformerDecoderBlock`] — post-LN as NeMo 0.x or pre-LN
//!   ([`TransformerBlockConfig::pre_ln`]);
//! * [`TransformerEncoder`], [`TransformerDecoder`] — the stacks, the decoder with
//!   [`step`](TransformerDecoder::step) over a [`DecoderCache`] for generation;
//! * [`TransformerStepDecoder`] — embedding, decoder step, (tied) output projection and
//!   log-softmax as a [`StepDecoder`](crate::decoding::StepDecoder) for greedy and beam search;
//! * [`mask`] — `(B, T)` padding masks and causal masks as additive −10000 masks;
//! * [`init`] — NeMo's initialization (Xavier-uniform linears, `N(0, 1/√D)` embeddings), drawn
//!   from any `VarBuilder`, e.g. [`seeded_var_builder`](crate::nn::seeded_var_builder).
//!
//! Every LayerNorm and softmax runs the fused kernels with hand-written backward passes of
//! [`crate::nn`], so every parameter trains (candle's fused versions record no backward).
//! Dropout is active only when the [`ForwardCtx`] trains, and draws from it: a seeded step
//! replays exactly. Parameter names are NeMo's, so its checkpoints map key for key.

pub mod block;
pub mod decoder;
pub mod decoder_block;
pub mod embedding;
pub mod encoder;
pub mod encoder_block;
pub mod feed_forward;
pub mod init;
pub mod mask;
pub mod multi_head_attention;
pub mod position_encoding;
pub mod step_decoder;

pub use block::TransformerBlockConfig;
pub use decoder::{DecoderCache, TransformerDecoder, TransformerDecoderConfig};
pub use decoder_block::TransformerDecoderBlock;
pub use embedding::{TransformerEmbedding, TransformerEmbeddingConfig};
pub use encoder::{TransformerEncoder, TransformerEncoderConfig};
pub use encoder_block::TransformerEncoderBlock;
pub use feed_forward::{HiddenAct, PositionWiseFf, PositionWiseFfConfig};
pub use multi_head_attention::{KeyValues, MultiHeadAttention, MultiHeadAttentionConfig};
pub use position_encoding::{PositionEncoding, sinusoidal_position_encoding};
pub use step_decoder::TransformerStepDecoder;

use candle_core::Tensor;

use crate::{ForwardCtx, Result};

/// Dropout with rate `p` when `ctx` trains (one random stream of `ctx` per call), else `x`.
fn dropout_t(x: &Tensor, p: f64, ctx: &ForwardCtx) -> Result<Tensor> {
    if ctx.is_training() && p > 0.0 {
        crate::nn::dropout(x, p, &mut ctx.rng())
    } else {
        Ok(x.clone())
    }
}
