// The CTC loss called without `target_length` (`call`).
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
    let log_probs = asr.decoder.call(ConvAsrDecoderInputs {
        encoder_output: &encoded.outputs,
    })?;
    let _ = asr.ctc.call(CtcLossInputs {
        log_probs: &log_probs.logprobs,
        targets: &batch.transcripts,
        input_length: &encoded.encoded_lengths,
    })?;
    Ok(())
}
