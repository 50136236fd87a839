// NeMo 1.x's port names (`input_lengths`, `target_lengths`) for NeMo 0.x's CTC loss (`forward`).
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
    let log_probs = asr.decoder.forward(ConvAsrDecoderInputs {
        encoder_output: &encoded.outputs,
    })?;
    let _ = asr.ctc.forward(CtcLossInputs {
        log_probs: &log_probs.logprobs,
        targets: &batch.transcripts,
        input_lengths: &encoded.encoded_lengths,
        target_length: &batch.transcript_length,
    })?;
    Ok(())
}
