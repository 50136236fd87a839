//! Training and evaluating an [`EncDecAttentionModel`] on manifests: its data layer (the same
//! [`AudioToTextDataLayer`] as the CTC model's, with EOS appended and PAD padding), the task the
//! core [`Trainer`](nemo_core::train::Trainer) runs, WER evaluation with greedy or beam search,
//! and the YAML config of a whole run (`model:` + the CTC run's `train:` section).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Tensor};
use nemo_core::ForwardCtx;
use nemo_core::params::Parameters;
use nemo_core::train::TrainTask;
use serde::{Deserialize, Serialize};

use crate::data::{AudioToTextBatch, AudioToTextDataLayer};
use crate::decoding::BeamSearchConfig;
use crate::metrics::WordErrorRate;
use crate::models::{EncDecAttentionModel, EncDecAttentionModelConfig};
use crate::train::{BatchCursor, TrainSection, layer_config, read_yaml_file};
use crate::{Error, Result};

/// A whole run of the attention model: the model and how to train it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionRunConfig {
    /// The model.
    pub model: EncDecAttentionModelConfig,
    /// The training settings (the CTC run's section).
    pub train: TrainSection,
}

impl AttentionRunConfig {
    /// Reads and validates a run config; errors name the file and key.
    pub fn from_yaml_file(path: &Path) -> Result<Self> {
        let cfg: AttentionRunConfig = read_yaml_file(path)?;
        cfg.model.validate()?;
        cfg.train.validate()?;
        Ok(cfg)
    }
}

/// A data layer over `manifest` for `model`: transcripts get EOS appended and are padded with
/// PAD; shuffled (training) or in order (evaluation).
pub fn attention_data_layer(
    model: &EncDecAttentionModelConfig,
    manifest: &Path,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    max_duration: Option<f64>,
) -> Result<AudioToTextDataLayer> {
    let mut cfg = layer_config(manifest, &model.labels, model.sample_rate, batch_size);
    cfg.shuffle = shuffle;
    cfg.seed = seed;
    cfg.max_duration = max_duration;
    cfg.eos_id = Some(model.eos_id());
    cfg.pad_id = Some(model.pad_id());
    AudioToTextDataLayer::new(cfg)
}

/// The training data layer of a run: [`attention_data_layer`] with the `train:` section's batch
/// size, seed, duration limit, batching and `on_bad_sample`.
pub fn attention_train_data_layer(
    model: &EncDecAttentionModelConfig,
    manifest: &Path,
    train: &TrainSection,
) -> Result<AudioToTextDataLayer> {
    let mut cfg = layer_config(manifest, &model.labels, model.sample_rate, train.batch_size);
    cfg.shuffle = true;
    cfg.seed = train.seed;
    cfg.max_duration = train.max_duration;
    cfg.eos_id = Some(model.eos_id());
    cfg.pad_id = Some(model.pad_id());
    cfg.semi_sorted_batching = train.semi_sorted_batching;
    cfg.on_bad_sample = train.on_bad_sample;
    AudioToTextDataLayer::new(cfg)
}

/// The reference transcripts of a batch: ids up to each length, labels only (EOS, PAD dropped).
pub fn batch_references(
    model: &EncDecAttentionModel,
    batch: &AudioToTextBatch,
) -> Result<Vec<String>> {
    let n = model.labels().len() as i64;
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
            model.labels().decode(&ids)
        })
        .collect()
}

/// WER and CER of `model` over every utterance of `layer`, decoded with `decoding` (the model's
/// own `decoding:` section when `None`), in eval mode.
pub fn evaluate_attention(
    model: &EncDecAttentionModel,
    layer: &AudioToTextDataLayer,
    decoding: Option<&BeamSearchConfig>,
) -> Result<WordErrorRate> {
    let mut wer = WordErrorRate::new();
    let decoding = decoding.unwrap_or(&model.config().decoding);
    for batch in layer.epoch(0, model.device()) {
        let batch = batch?;
        let hyps = model.transcribe_with(&batch.audio_signal, &batch.a_sig_length, decoding)?;
        let refs = batch_references(model, &batch)?;
        for (h, r) in hyps.iter().zip(&refs) {
            wer.update(h, r);
        }
    }
    Ok(wer)
}

/// The attention model's training task: micro-batches in a seeded order, epoch after epoch.
pub struct AttentionTrainTask<'a> {
    model: &'a EncDecAttentionModel,
    train: BatchCursor<'a>,
    val: Option<&'a AudioToTextDataLayer>,
    batches_per_step: usize,
}

impl<'a> AttentionTrainTask<'a> {
    /// A task training `model` on `train` (from [`attention_data_layer`]), evaluating greedy WER
    /// on `val`.
    pub fn new(
        model: &'a EncDecAttentionModel,
        train: &'a AudioToTextDataLayer,
        val: Option<&'a AudioToTextDataLayer>,
        batches_per_step: usize,
    ) -> Result<Self> {
        let pad = model.config().pad_id();
        if train.config().pad_id != Some(pad) || train.config().eos_id != Some(pad - 1) {
            return Err(Error::Config {
                key: "train_ds".into(),
                msg: format!(
                    "the data layer must append EOS {} and pad with {pad} (use `attention_data_layer`)",
                    pad - 1
                ),
            });
        }
        Ok(AttentionTrainTask {
            model,
            train: BatchCursor::new(train, model.device())?,
            val,
            batches_per_step: batches_per_step.max(1),
        })
    }
}

impl TrainTask for AttentionTrainTask<'_> {
    fn params(&self) -> &Parameters {
        self.model.params()
    }

    fn loss(&mut self, step: u64, micro: usize, ctx: &ForwardCtx) -> nemo_core::Result<Tensor> {
        let index = step * self.batches_per_step as u64 + micro as u64;
        let b = self.train.batch(index)?;
        let (loss, _) = self
            .model
            .loss(&b.audio_signal, &b.a_sig_length, &b.transcripts, ctx)?;
        Ok(loss)
    }

    fn evaluate(&mut self, _step: u64) -> nemo_core::Result<BTreeMap<String, f64>> {
        let Some(val) = self.val else {
            return Ok(BTreeMap::new());
        };
        let greedy = BeamSearchConfig {
            beam_size: 1,
            ..self.model.config().decoding.clone()
        };
        let wer = evaluate_attention(self.model, val, Some(&greedy))?;
        let mut out = BTreeMap::new();
        if let (Some(w), Some(c)) = (wer.wer(), wer.cer()) {
            out.insert("wer".to_string(), w);
            out.insert("cer".to_string(), c);
        }
        Ok(out)
    }
}
