//! Whole models: modules wired together with their tokenizers, configuration and weights.
//!
//! - [`mt_enc_dec_model`]: the Transformer translation model ([`MtEncDecModel`]).

pub mod mt_enc_dec_model;

pub use mt_enc_dec_model::{
    MODEL_CONFIG_FILE, MtEncDecModel, MtEncDecModelConfig, TRANSLATE_TOKENS_IN_BATCH, WEIGHTS_FILE,
};
