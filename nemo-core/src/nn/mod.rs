//! Building blocks shared by the collections — layers, losses and functions that are not about
//! speech or text in particular, so both collections depend on the core rather than on each
//! other:
//!
//! * [`Rnn`] — stacked GRU/LSTM layers (PyTorch's weight names), run over a sequence or a step;
//! * [`Attention`] — Luong/Bahdanau attention over encoder outputs;
//! * [`DecoderRnn`] — NeMo 0.x's attention decoder (a typed module), teacher-forced or step by
//!   step;
//! * [`SequenceLoss`] — NeMo 0.x's masked, label-smoothed sequence cross-entropy (a typed loss);
//! * [`dropout`], [`log_softmax`], [`lengths_to_vec`] — the functions they share, with seeded
//!   masks and differentiable formulations (candle's fused softmax records no backward);
//! * [`LayerNorm`] / [`layer_norm()`] and [`softmax()`] — fused CPU kernels with hand-written
//!   backward passes (candle's fused versions record none);
//! * [`transformer`] — NeMo 0.x's Transformer: embeddings, multi-head attention with a K/V
//!   cache, feed-forward, encoder and decoder blocks and stacks;
//! * [`seeded_var_builder`] — initial weights drawn from a seed and each variable's name.

mod attention;
mod cpu_kernel;
mod decoder_rnn;
mod dropout;
pub mod layer_norm;
mod lengths;
mod log_softmax;
mod rnn;
pub mod seeded_init;
mod sequence_loss;
pub mod softmax;
pub mod transformer;

pub use attention::{Attention, AttentionContext, AttentionMethod};
pub use decoder_rnn::*;
pub use dropout::dropout;
pub use layer_norm::{LayerNorm, LayerNormConfig, layer_norm};
pub use lengths::lengths_to_vec;
pub use log_softmax::log_softmax;
pub use rnn::{Rnn, RnnState, RnnType};
pub use seeded_init::seeded_var_builder;
pub use sequence_loss::*;
pub use softmax::softmax;
pub use transformer::{
    DecoderCache, HiddenAct, KeyValues, MultiHeadAttention, MultiHeadAttentionConfig,
    PositionEncoding, PositionWiseFf, PositionWiseFfConfig, TransformerBlockConfig,
    TransformerDecoder, TransformerDecoderBlock, TransformerDecoderConfig, TransformerEmbedding,
    TransformerEmbeddingConfig, TransformerEncoder, TransformerEncoderBlock,
    TransformerEncoderConfig, TransformerStepDecoder,
};
