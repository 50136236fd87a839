//! Scoring a model on a manifest: an evaluation data layer in the model's label encoding, the
//! references of a batch, and WER/CER of any transcription function over a layer.

use std::path::Path;

use candle_core::{DType, Device};

use crate::Result;
use crate::data::{AudioToTextBatch, AudioToTextDataLayer, Vocabulary};
use crate::metrics::WordErrorRate;

use super::SpeechModel;

/// An evaluation data layer over `manifest` for a model of `config`: in manifest order, batched
/// by similar duration (little padding), audio decoded up front.
pub fn eval_data_layer<M: SpeechModel>(
    config: &M::Config,
    manifest: &Path,
    batch_size: usize,
) -> Result<AudioToTextDataLayer> {
    let mut cfg = M::layer_config(config, manifest, batch_size);
    cfg.semi_sorted_batching = true;
    AudioToTextDataLayer::new(cfg)
}

/// The reference transcripts of a batch: ids up to each length, labels only (EOS and PAD, which
/// an attention model's batches carry, dropped).
pub fn batch_references(labels: &Vocabulary, batch: &AudioToTextBatch) -> Result<Vec<String>> {
    let n = labels.len() as i64;
    let lens: Vec<i64> = batch.transcript_length.to_dtype(DType::I64)?.to_vec1()?;
    let rows: Vec<Vec<i64>> = batch.transcripts.to_dtype(DType::I64)?.to_vec2()?;
    rows.into_iter()
        .zip(lens)
        .map(|(row, len)| {
            let ids: Vec<u32> = row
                .into_iter()
                .take(len.max(0) as usize)
                .filter(|&v| (0..n).contains(&v))
                .map(|v| v as u32)
                .collect();
            labels.decode(&ids)
        })
        .collect()
}

/// WER and CER of `transcribe` over every utterance of `layer`, against its references in
/// `labels`' encoding.
pub fn evaluate_with(
    layer: &AudioToTextDataLayer,
    labels: &Vocabulary,
    device: &Device,
    mut transcribe: impl FnMut(&AudioToTextBatch) -> Result<Vec<String>>,
) -> Result<WordErrorRate> {
    let mut wer = WordErrorRate::new();
    for batch in layer.epoch(0, device) {
        let batch = batch?;
        let hyps = transcribe(&batch)?;
        for (h, r) in hyps.iter().zip(batch_references(labels, &batch)?) {
            wer.update(h, &r);
        }
    }
    Ok(wer)
}

/// Greedy-decoding WER and CER of `model` over every utterance of `layer`.
pub fn evaluate<M: SpeechModel>(model: &M, layer: &AudioToTextDataLayer) -> Result<WordErrorRate> {
    evaluate_with(layer, model.labels(), model.device(), |b| {
        model.transcribe_greedy(b)
    })
}
