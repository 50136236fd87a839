// The transcripts and their lengths swapped in the CTC loss (`forward`): one error per port.
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
        targets: &batch.transcript_length,
        input_length: &encoded.encoded_lengths,
        target_length: &batch.transcripts,
    })?;
    Ok(())
}
