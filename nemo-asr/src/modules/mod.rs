//! The collection's neural modules, each with typed ports (`#[neural_module]`).

pub mod audio_preprocessor;
pub mod conv_asr_decoder;
pub mod conv_asr_encoder;
pub mod ctc_loss;
pub mod jasper_block;
pub mod spectrogram_augmentation;

pub use audio_preprocessor::{
    AudioPreprocessor, AudioPreprocessorInputs, AudioPreprocessorOutputs,
};
pub use conv_asr_decoder::{
    ConvASRDecoder, ConvASRDecoderConfig, ConvASRDecoderInputs, ConvASRDecoderOutputs,
};
pub use conv_asr_encoder::{
    ConvASREncoder, ConvASREncoderConfig, ConvASREncoderInputs, ConvASREncoderOutputs,
};
pub use ctc_loss::{CTCLossNM, CTCLossNMInputs, CTCLossNMOutputs};
pub use jasper_block::{JasperBlock, JasperBlockConfig};
pub use spectrogram_augmentation::{
    SpectrogramAugmentation, SpectrogramAugmentationInputs, SpectrogramAugmentationOutputs,
};
