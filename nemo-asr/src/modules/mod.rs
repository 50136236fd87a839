//! The collection's neural modules, each with typed ports (`#[neural_module]`): the Jasper/
//! QuartzNet encoder and its CTC decoder, the connector to an attention decoder, and — re-exported
//! so a speech model is wired from one place — the front end (`preprocessing`), the CTC loss
//! (`losses`) and the sequence parts shared with other collections (`nemo_core::nn`).

pub mod conv_asr_decoder;
pub mod conv_asr_encoder;
pub mod jasper_block;
pub mod jasper_rnn_connector;

pub use conv_asr_decoder::{
    ConvAsrDecoder, ConvAsrDecoderConfig, ConvAsrDecoderInputs, ConvAsrDecoderOutputs,
};
pub use conv_asr_encoder::{
    ConvAsrEncoder, ConvAsrEncoderConfig, ConvAsrEncoderInputs, ConvAsrEncoderOutputs,
};
pub use jasper_block::{JasperBlock, JasperBlockConfig};
pub use jasper_rnn_connector::{
    JasperRnnConnector, JasperRnnConnectorConfig, JasperRnnConnectorInputs,
    JasperRnnConnectorOutputs,
};
pub use nemo_core::nn::{
    Attention, AttentionContext, AttentionMethod, DecoderRnn, DecoderRnnConfig, DecoderRnnInputs,
    DecoderRnnOutputs, DecoderState, DecoderStep, Rnn, RnnState, RnnType, SequenceLoss,
    SequenceLossConfig, SequenceLossInputs, SequenceLossOutputs,
};

pub use crate::losses::{CtcLoss, CtcLossConfig, CtcLossInputs, CtcLossOutputs};
pub use crate::preprocessing::{
    AudioToMelSpectrogramPreprocessor, AudioToMelSpectrogramPreprocessorConfig,
    AudioToMelSpectrogramPreprocessorInputs, AudioToMelSpectrogramPreprocessorOutputs,
    SpectrogramAugmentation, SpectrogramAugmentationConfig, SpectrogramAugmentationInputs,
    SpectrogramAugmentationOutputs,
};
