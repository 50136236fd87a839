//! The collection's neural modules, each with typed ports (`#[neural_module]`).

pub mod attention;
pub mod conv_asr_decoder;
pub mod conv_asr_encoder;
pub mod ctc_loss;
pub mod decoder_rnn;
pub mod jasper_block;
pub mod jasper_rnn_connector;
pub mod rnn;
pub mod sequence_loss;
pub mod spectrogram_augmentation;

pub use crate::preprocessing::{
    AudioToMelSpectrogramPreprocessor, AudioToMelSpectrogramPreprocessorConfig,
    AudioToMelSpectrogramPreprocessorInputs, AudioToMelSpectrogramPreprocessorOutputs,
};
pub use attention::{Attention, AttentionContext, AttentionMethod};
pub use conv_asr_decoder::{
    ConvASRDecoder, ConvASRDecoderConfig, ConvASRDecoderInputs, ConvASRDecoderOutputs,
};
pub use conv_asr_encoder::{
    ConvASREncoder, ConvASREncoderConfig, ConvASREncoderInputs, ConvASREncoderOutputs,
};
pub use ctc_loss::{CTCLossNM, CTCLossNMInputs, CTCLossNMOutputs};
pub use decoder_rnn::{
    DecoderRNN, DecoderRNNConfig, DecoderRNNInputs, DecoderRNNOutputs, DecoderState, DecoderStep,
};
pub use jasper_block::{JasperBlock, JasperBlockConfig};
pub use jasper_rnn_connector::{
    JasperRNNConnector, JasperRNNConnectorConfig, JasperRNNConnectorInputs,
    JasperRNNConnectorOutputs,
};
pub use rnn::{Rnn, RnnState, RnnType};
pub use sequence_loss::{
    SequenceLoss, SequenceLossConfig, SequenceLossInputs, SequenceLossOutputs,
};
pub use spectrogram_augmentation::{
    SpectrogramAugmentation, SpectrogramAugmentationInputs, SpectrogramAugmentationOutputs,
};
