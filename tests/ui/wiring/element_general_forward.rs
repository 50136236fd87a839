// A general `EncodedRepresentation` into a port that wants the more specific `AcousticEncodedRepresentation` (`forward`).
#[path = "common/asr.rs"]
mod common;
use nemo::asr::modules::*;
use nemo::prelude::*;

fn main() -> nemo::Result<()> {
    let asr = common::asr()?;
    let batch = asr.batch()?;
    let mel = asr.preprocessor.forward(AudioToMelSpectrogramPreprocessorInputs {
        input_signal: &batch.audio_signal,
        length: &batch.a_sig_length,
    })?;
    let encoded = asr.encoder.forward(ConvAsrEncoderInputs {
        audio_signal: &mel.processed_signal,
        length: &mel.processed_length,
    })?;
    let projected = asr.connector.forward(JasperRnnConnectorInputs {
        tensor: &encoded.outputs,
    })?;
    let projected = projected.tensor.permute_to::<(B, D, T)>()?;
    let _ = asr.decoder.forward(ConvAsrDecoderInputs {
        encoder_output: &projected,
    })?;
    Ok(())
}
