// The README's example, as a new crate that depends on `nemo` writes it: NeMo 0.x's lazy
// pipeline, with the preprocessor's spectrogram fed to the CTC decoder instead of the encoder's
// output.
use std::sync::Arc;

use nemo::asr::data::{AudioToTextDataLayer, AudioToTextDataLayerConfig};
use nemo::asr::modules::{
    AudioToMelSpectrogramPreprocessorConfig, AudioToMelSpectrogramPreprocessorInputs,
    ConvAsrDecoderConfig, ConvAsrDecoderInputs,
};
use nemo::dag::Graph;
use nemo::prelude::*;

fn main() -> nemo::Result<()> {
    let graph = Graph::new();
    let params = graph.params();
    let vb = params.var_builder(DType::F32, &Device::Cpu);
    let data = AudioToTextDataLayer::new(AudioToTextDataLayerConfig::new("train.json", 32))?;
    let preprocessor = AudioToMelSpectrogramPreprocessorConfig::default().init()?;
    let config = ConvAsrDecoderConfig { feat_in: 64, num_classes: 28 };
    let decoder = config.init(vb.pp("decoder"))?;

    let batch = Arc::new(data).call(&graph)?;
    let mel = Arc::new(preprocessor).call(AudioToMelSpectrogramPreprocessorInputs {
        input_signal: &batch.audio_signal,
        length: &batch.a_sig_length,
    })?;
    let log_probs = Arc::new(decoder).call(ConvAsrDecoderInputs {
        encoder_output: &mel.processed_signal,
    })?;
    println!("{}", log_probs.logprobs.neural_type());
    Ok(())
}
