// A plain candle tensor into a typed port: give it its axes and element type first.
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
    let lengths = mel.processed_length.into_tensor();
    let _ = asr.encoder.forward(ConvAsrEncoderInputs {
        audio_signal: &mel.processed_signal,
        length: &lengths,
    })?;
    Ok(())
}
