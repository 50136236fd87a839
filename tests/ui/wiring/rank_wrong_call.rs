// A time-pooled encoding, `(B, D)`, into a port of rank 3 (`call`).
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
    let pooled = encoded.outputs.mean_over::<T>()?;
    let _ = asr.decoder.call(ConvAsrDecoderInputs {
        encoder_output: &pooled,
    })?;
    Ok(())
}
