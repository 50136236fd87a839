//! The ASR data layer as a typed node of a lazy graph, as NeMo 0.x wires it: data layer →
//! preprocessor → encoder, called on symbolic handles, computed by `infer` over utterances of
//! different lengths.

use std::path::Path;
use std::sync::Arc;

use nemo_asr::data::{AudioToTextDataLayer, AudioToTextDataLayerConfig};
use nemo_asr::modules::*;
use nemo_asr::preprocessing::AudioToMelSpectrogramPreprocessorConfig;
use nemo_core::dag::{DataLayer, Graph};

use nemo_core::testing::TestResult;

fn small_manifest() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests/small.json")
        .display()
        .to_string()
}

#[test]
fn the_data_layer_feeds_a_lazy_graph_and_infer_pads_batches_of_different_lengths() -> TestResult {
    let graph = Graph::new();
    let mut config = AudioToTextDataLayerConfig::new(small_manifest(), 2);
    config.shuffle = false;
    let data = Arc::new(AudioToTextDataLayer::new(config)?);
    let preprocessor = Arc::new(AudioToMelSpectrogramPreprocessorConfig::default().init()?);

    let batch = data.call(&graph)?;
    assert_eq!(
        batch.audio_signal.neural_type().to_string(),
        "(B, T) AudioSignal{freq=16000}"
    );
    let mel = preprocessor.call(AudioToMelSpectrogramPreprocessorInputs {
        input_signal: &batch.audio_signal,
        length: &batch.a_sig_length,
    })?;
    let out = graph.infer(&[
        mel.processed_signal.clone().into_dyn(),
        mel.processed_length.clone().into_dyn(),
        batch.transcripts.clone().into_dyn(),
    ])?;
    let per_batch = graph.infer_batches(&[mel.processed_signal.into_dyn()])?;

    // Five utterances in batches of two: three batches whose frame counts differ.
    assert_eq!(per_batch[0].len(), 3);
    let frames: Vec<usize> = per_batch[0]
        .iter()
        .map(|t| t.dim(2))
        .collect::<Result<_, _>>()?;
    let longest = *frames.iter().max().ok_or("no batches")?;
    assert!(frames.iter().any(|&f| f < longest), "{frames:?}");
    assert_eq!(out[0].dims(), &[5, 64, longest]);
    assert_eq!(out[1].dims(), &[5]);
    // Each batch sits in the joined tensor as computed, zero past its own frames.
    let mut row = 0;
    for part in &per_batch[0] {
        let (b, _, t) = part.dims3()?;
        let joined = out[0].narrow(0, row, b)?;
        assert_eq!(
            joined.narrow(2, 0, t)?.flatten_all()?.to_vec1::<f32>()?,
            part.flatten_all()?.to_vec1::<f32>()?
        );
        if t < longest {
            let pad = joined.narrow(2, t, longest - t)?;
            assert_eq!(pad.abs()?.sum_all()?.to_scalar::<f32>()?, 0.0);
        }
        row += b;
    }
    // Lengths never exceed the joined frame axis, and every utterance has frames.
    for len in out[1].to_vec1::<i64>()? {
        assert!(len > 0 && len as usize <= longest);
    }
    assert_eq!(out[2].dim(0)?, 5);
    Ok(())
}

#[test]
fn a_batch_past_the_epoch_is_an_error_naming_it() -> TestResult {
    let mut config = AudioToTextDataLayerConfig::new(small_manifest(), 2);
    config.drop_last = true;
    let data = AudioToTextDataLayer::new(config)?;
    assert_eq!(DataLayer::num_batches(&data), 2);
    assert!(data.batch(0, 1).is_ok());
    let err = data
        .batch(0, 2)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("batch 2 of epoch 0"), "{err}");
    Ok(())
}
