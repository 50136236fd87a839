// NeMo 1.x's port names (`input_lengths`, `target_lengths`) for NeMo 0.x's CTC loss (`call`).
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
        input_lengths: &encoded.encoded_lengths,
        target_length: &batch.transcript_length,
    })?;
    Ok(())
}
