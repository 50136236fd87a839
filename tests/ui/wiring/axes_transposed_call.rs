// The encoder's `(B, D, T)` output into the attention decoder, which reads `(B, T, D)` (`call`).
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
    let encoded = asr.encoder.call(ConvAsrEncoderInputs {
        audio_signal: &mel.processed_signal,
        length: &mel.processed_length,
    })?;
    let _ = asr.decoder_rnn.call(DecoderRnnInputs {
        targets: &batch.transcripts,
        encoder_outputs: &encoded.outputs,
        encoder_lengths: None,
    })?;
    Ok(())
}
