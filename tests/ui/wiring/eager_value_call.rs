// An eager value into the lazy `call`, which connects graph handles.
#[path = "common/asr.rs"]
mod common;
use nemo::asr::modules::*;

fn main() -> nemo::Result<()> {
    let asr = common::asr()?;
    let batch = asr.batch()?;
    let mel = asr.preprocessor.forward(AudioToMelSpectrogramPreprocessorInputs {
        input_signal: &batch.audio_signal,
        length: &batch.a_sig_length,
    })?;
    let _ = asr.encoder.call(ConvAsrEncoderInputs {
        audio_signal: &mel.processed_signal,
        length: &mel.processed_length,
    })?;
    Ok(())
}
