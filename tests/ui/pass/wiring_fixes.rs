// The fixes the wiring errors suggest compile on both paths: `.permute_to::<(B, T, D)>()` on an
// eager value and on a graph handle, and a subtype where its parent is expected.
#[path = "../wiring/common/asr.rs"]
mod common;
use nemo::asr::modules::*;
use nemo::prelude::*;

fn main() -> nemo::Result<()> {
    let asr = common::asr()?;
    if false {
        // Eager.
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
            encoder_outputs: &encoded.outputs.permute_to::<(B, T, D)>()?,
            encoder_lengths: None,
        })?;
    }
    // Lazy.
    let batch = asr.data.call(&asr.graph)?;
    let mel = asr.preprocessor.call(AudioToMelSpectrogramPreprocessorInputs {
        input_signal: &batch.audio_signal,
        length: &batch.a_sig_length,
    })?;
    let encoded = asr.encoder.call(ConvAsrEncoderInputs {
        audio_signal: &mel.processed_signal,
        length: &mel.processed_length,
    })?;
    let out = asr.decoder_rnn.call(DecoderRnnInputs {
        targets: &batch.transcripts,
        encoder_outputs: &encoded.outputs.permute_to::<(B, T, D)>()?,
        encoder_lengths: None,
    })?;
    assert_eq!(out.log_probs.neural_type().to_string(), "(B, T, D:30) Logprobs");
    Ok(())
}
