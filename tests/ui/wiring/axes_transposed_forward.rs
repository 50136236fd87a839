// The encoder's `(B, D, T)` output into the attention decoder, which reads `(B, T, D)` (`forward`).
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
    let encoded = asr.encoder.forward(ConvAsrEncoderInputs {
        audio_signal: &mel.processed_signal,
        length: &mel.processed_length,
    })?;
    let _ = asr.decoder_rnn.forward(DecoderRnnInputs {
        targets: &batch.transcripts,
        encoder_outputs: &encoded.outputs,
        encoder_lengths: None,
    })?;
    Ok(())
}
