// A general `EncodedRepresentation` into a port that wants the more specific `AcousticEncodedRepresentation` (`call`).
#[path = "common/asr.rs"]
mod common;
use nemo::asr::modules::*;
use nemo::prelude::*;

fn main() -> nemo::Result<()> {
    let asr = common::asr()?;
    let batch = asr.data.call(&asr.graph)?;
    let mel = asr.preprocessor.call(AudioToMelSpectrogramPreprocessorInputs {
        input_signal: &batch.audio_signal,
        length: &batch.a_sig_length,
    })?;
    let encoded = asr.encoder.call(ConvAsrEncoderInputs {
        audio_signal: &mel.processed_signal,
        length: &mel.processed_length,
    })?;
    let projected = asr.connector.call(JasperRnnConnectorInputs {
        tensor: &encoded.outputs,
    })?;
    let projected = projected.tensor.permute_to::<(B, D, T)>()?;
    let _ = asr.decoder.call(ConvAsrDecoderInputs {
        encoder_output: &projected,
    })?;
    Ok(())
}
