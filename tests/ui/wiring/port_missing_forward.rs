// The CTC loss called without `target_length` (`forward`).
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
    let encoded = asr.encoder.forward(ConvASREncoderInputs {
        audio_signal: &mel.processed_signal,
        length: &mel.processed_length,
    })?;
    let log_probs = asr.decoder.forward(ConvASRDecoderInputs {
        encoder_output: &encoded.outputs,
    })?;
    let _ = asr.ctc.forward(CTCLossNMInputs {
        log_probs: &log_probs.logprobs,
        targets: &batch.transcripts,
        input_length: &encoded.encoded_lengths,
    })?;
    Ok(())
}
