// A spectrogram into the decoder's `encoder_output` port (`forward`): the element types are unrelated.
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
    let _ = asr.decoder.forward(ConvAsrDecoderInputs {
        encoder_output: &mel.processed_signal,
    })?;
    Ok(())
}
