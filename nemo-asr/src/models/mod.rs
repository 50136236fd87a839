//! Whole models: modules wired together with their configuration, weights and labels.

pub mod enc_dec_attention;
pub mod enc_dec_ctc;

pub use enc_dec_attention::{EncDecAttentionModel, EncDecAttentionModelConfig};
pub use enc_dec_ctc::{EncDecCTCModel, EncDecCTCModelConfig};
