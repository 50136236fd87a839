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
//!   masks and differentiable formulations (candle's fused softmax records no backward).

mod attention;
mod decoder_rnn;
mod dropout;
mod lengths;
mod log_softmax;
mod rnn;
mod sequence_loss;

pub use attention::{Attention, AttentionContext, AttentionMethod};
pub use decoder_rnn::*;
pub use dropout::dropout;
pub use lengths::lengths_to_vec;
pub use log_softmax::log_softmax;
pub use rnn::{Rnn, RnnState, RnnType};
pub use sequence_loss::*;
