// A spectrogram into the decoder's `encoder_output` port (`call`): the element types are unrelated.
#[path = "common/asr.rs"]
mod common;
use nemo::asr::modules::*;

fn main() -> nemo::Result<()> {
    let asr = common::asr()?;
    let batch = asr.data.call(&asr.graph)?;
    let mel = asr.preprocessor.call(AudioToMelSpectrogramPreprocessorInputs {
        input_signal: &batch.audio_signal,
        length: &batch.a_sig_length,
    })?;
    let _ = asr.decoder.call(ConvAsrDecoderInputs {
        encoder_output: &mel.processed_signal,
    })?;
    Ok(())
}
