// A time-pooled encoding, `(B, D)`, into a port of rank 3 (`forward`).
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
    let pooled = encoded.outputs.mean_over::<T>()?;
    let _ = asr.decoder.forward(ConvAsrDecoderInputs {
        encoder_output: &pooled,
    })?;
    Ok(())
}
