//! Whole models: modules wired together with their configuration, weights and labels.

pub mod asr_model;
pub mod enc_dec_attention;
pub mod enc_dec_ctc;
pub mod evaluation;
pub mod speech_encoder;
pub mod speech_model;

pub use asr_model::{AsrModel, ModelKind};
pub use enc_dec_attention::{EncDecAttentionModel, EncDecAttentionModelConfig};
pub use enc_dec_ctc::{EncDecCtcModel, EncDecCtcModelConfig};
pub use evaluation::{batch_references, eval_data_layer, evaluate, evaluate_with};
pub use speech_encoder::{SpeechEncoder, TypedAudio, save_model_dir};
pub use speech_model::SpeechModel;
