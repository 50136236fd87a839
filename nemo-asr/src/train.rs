//! Training and evaluating an [`EncDecCtcModel`] on manifests: the task the core [`Trainer`]
//! runs, WER evaluation, and the YAML config of a whole run.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use nemo_core::ForwardCtx;
use nemo_core::optim::{LrSchedule, OptimizerConfig};
use nemo_core::params::Parameters;
use nemo_core::train::{TrainTask, TrainerConfig};
use serde::{Deserialize, Serialize};

use crate::data::{AudioToTextDataLayer, AudioToTextDataLayerConfig, OnBadSample};
use crate::decoding::CtcBeamSearch;
use crate::metrics::WordErrorRate;
use crate::models::{EncDecCtcModel, EncDecCtcModelConfig};
use crate::{Error, Result};

fn default_batch() -> usize {
    16
}

/// The `train:` section of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Utterances per micro-batch. Default 16.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Seeds weights, shuffling, dither and SpecAugment.
    #[serde(default)]
    pub seed: u64,
    /// Longest training utterance kept, in seconds.
    #[serde(default)]
    pub max_duration: Option<f64>,
    /// Batches of utterances of similar duration, in random order (NeMo's
    /// `use_semi_sorted_batching`): less padding, faster steps. Default false.
    #[serde(default)]
    pub semi_sorted_batching: bool,
    /// A bad training utterance (unreadable audio, a character outside the labels, audio too
    /// short for its transcript): `error` (default) stops with the manifest line, `skip` leaves
    /// it out and counts it.
    #[serde(default)]
    pub on_bad_sample: OnBadSample,
    /// The loop: steps, accumulation, clipping, checkpoints, evaluation, freezing.
    pub trainer: TrainerConfig,
    /// The optimizer.
    pub optim: OptimizerConfig,
    /// The learning-rate schedule.
    pub sched: LrSchedule,
}

/// A whole run: the model and how to train it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The model.
    pub model: EncDecCtcModelConfig,
    /// The training settings.
    pub train: TrainSection,
}

impl TrainSection {
    /// Checks the trainer, optimizer and schedule settings.
    pub fn validate(&self) -> Result<()> {
        self.trainer.validate()?;
        self.optim.validate()?;
        self.sched.validate()?;
        Ok(())
    }
}

/// Reads a YAML file into `T`; a syntax or schema error names the file and line.
pub fn read_yaml_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    serde_norway::from_str(&text).map_err(|e| Error::Config {
        key: match e.location() {
            Some(l) => format!("{}:{}", path.display(), l.line()),
            None => path.display().to_string(),
        },
        msg: e.to_string(),
    })
}

impl RunConfig {
    /// Reads and validates a run config; errors name the file and key.
    pub fn from_yaml_file(path: &Path) -> Result<Self> {
        let cfg: RunConfig = read_yaml_file(path)?;
        cfg.model.validate()?;
        cfg.train.validate()?;
        Ok(cfg)
    }
}

/// The settings every ASR data layer of a model shares: its labels and sample rate, audio
/// decoded into memory up front.
pub fn layer_config(
    manifest: &Path,
    labels: &[String],
    sample_rate: u32,
    batch_size: usize,
) -> AudioToTextDataLayerConfig {
    let mut cfg = AudioToTextDataLayerConfig::new(manifest.display().to_string(), batch_size);
    cfg.labels = labels.to_vec();
    cfg.sample_rate = sample_rate;
    cfg.preload = true;
    cfg
}

/// A data layer over `manifest` for `model`, shuffled (training) or, for evaluation, sorted by
/// duration so batches carry little padding.
pub fn data_layer(
    model: &EncDecCtcModelConfig,
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
    cfg.semi_sorted_batching = !shuffle;
    AudioToTextDataLayer::new(cfg)
}

/// The training data layer of a run: shuffled with the run's seed, `max_duration`, batching and
/// `on_bad_sample`, without utterances `model` cannot align (see
/// [`AudioToTextDataset::retain_alignable`](crate::data::AudioToTextDataset::retain_alignable)).
pub fn train_data_layer(
    model: &EncDecCtcModel,
    manifest: &Path,
    train: &TrainSection,
) -> Result<AudioToTextDataLayer> {
    let config = model.config();
    let mut cfg = layer_config(
        manifest,
        &config.labels,
        config.sample_rate,
        train.batch_size,
    );
    cfg.shuffle = true;
    cfg.seed = train.seed;
    cfg.max_duration = train.max_duration;
    cfg.semi_sorted_batching = train.semi_sorted_batching;
    cfg.on_bad_sample = train.on_bad_sample;
    let mut layer = AudioToTextDataLayer::new(cfg)?;
    layer.retain_alignable(|samples| model.encoded_length(samples))?;
    Ok(layer)
}

/// Greedy-decoding WER and CER of `model` over every utterance of `layer`.
pub fn evaluate(model: &EncDecCtcModel, layer: &AudioToTextDataLayer) -> Result<WordErrorRate> {
    evaluate_with(model, layer, None)
}

/// WER and CER of `model` over every utterance of `layer`, decoded greedily or by `search` (a
/// CTC beam search, with its language model if it has one), in eval mode.
pub fn evaluate_with(
    model: &EncDecCtcModel,
    layer: &AudioToTextDataLayer,
    search: Option<&CtcBeamSearch>,
) -> Result<WordErrorRate> {
    let mut wer = WordErrorRate::new();
    let labels = model.labels();
    for batch in layer.epoch(0, model.device()) {
        let batch = batch?;
        let hyps = match search {
            Some(s) => model.transcribe_beam(&batch.audio_signal, &batch.a_sig_length, s)?,
            None => model.transcribe(&batch.audio_signal, &batch.a_sig_length)?,
        };
        let lens: Vec<i64> = batch
            .transcript_length
            .to_dtype(candle_core::DType::I64)?
            .to_vec1()?;
        let ids: Vec<Vec<i64>> = batch
            .transcripts
            .to_dtype(candle_core::DType::I64)?
            .to_vec2()?;
        for ((hyp, row), len) in hyps.iter().zip(ids).zip(lens) {
            let ids: Vec<u32> = row
                .into_iter()
                .take(len.max(0) as usize)
                .map(|v| v as u32)
                .collect();
            wer.update(hyp, &labels.decode(&ids)?);
        }
    }
    Ok(wer)
}

/// The CTC training task: micro-batches in a seeded order, epoch after epoch.
pub struct CtcTrainTask<'a> {
    model: &'a EncDecCtcModel,
    train: BatchCursor<'a>,
    val: Option<&'a AudioToTextDataLayer>,
    batches_per_step: usize,
}

/// Batch `index` of an endless run of epochs over a training data layer — epoch
/// `index / batches_per_epoch`, each in the layer's seeded order — so a resumed run sees exactly
/// the batches the uninterrupted one would have.
#[derive(Debug)]
pub struct BatchCursor<'a> {
    layer: &'a AudioToTextDataLayer,
    order: (u64, Vec<usize>),
    device: Device,
}

impl<'a> BatchCursor<'a> {
    /// A cursor over `layer` making batches on `device`; an empty layer is an error.
    pub fn new(layer: &'a AudioToTextDataLayer, device: &Device) -> Result<Self> {
        if layer.num_batches() == 0 {
            return Err(Error::Config {
                key: "train_ds".into(),
                msg: "the training manifest has no usable utterances".into(),
            });
        }
        Ok(BatchCursor {
            layer,
            order: (0, layer.epoch_order(0)),
            device: device.clone(),
        })
    }

    /// The data layer.
    pub fn layer(&self) -> &'a AudioToTextDataLayer {
        self.layer
    }

    /// Batch `index` (counting across epochs), padded with the layer's `pad_id` (0 if unset).
    pub fn batch(&mut self, index: u64) -> Result<crate::data::AudioToTextBatch> {
        let per_epoch = self.layer.num_batches().max(1) as u64;
        let (epoch, pos) = (index / per_epoch, (index % per_epoch) as usize);
        if self.order.0 != epoch {
            self.order = (epoch, self.layer.epoch_order(epoch));
        }
        let bs = self.layer.config().batch_size;
        let end = self.order.1.len().min((pos + 1) * bs);
        let indices = self.order.1.get(pos * bs..end).unwrap_or(&[]).to_vec();
        let pad = self.layer.config().pad_id.unwrap_or(0);
        self.layer
            .dataset()
            .batch(&indices, pad, &self.device)?
            .ok_or_else(|| Error::Config {
                key: "train_ds".into(),
                msg: format!("batch {pos} of epoch {epoch} has no usable utterance"),
            })
    }
}

impl<'a> CtcTrainTask<'a> {
    /// A task training `model` on `train`, evaluating WER on `val`.
    pub fn new(
        model: &'a EncDecCtcModel,
        train: &'a AudioToTextDataLayer,
        val: Option<&'a AudioToTextDataLayer>,
        batches_per_step: usize,
    ) -> Result<Self> {
        Ok(CtcTrainTask {
            model,
            train: BatchCursor::new(train, model.device())?,
            val,
            batches_per_step,
        })
    }
}

impl TrainTask for CtcTrainTask<'_> {
    fn params(&self) -> &Parameters {
        self.model.params()
    }

    fn loss(&mut self, step: u64, micro: usize, ctx: &ForwardCtx) -> nemo_core::Result<Tensor> {
        let index = step * self.batches_per_step as u64 + micro as u64;
        let b = self.train.batch(index)?;
        let (loss, _) = self.model.loss(
            &b.audio_signal,
            &b.a_sig_length,
            &b.transcripts,
            &b.transcript_length,
            ctx,
        )?;
        Ok(loss)
    }

    fn set_compute_dtype(&mut self, dtype: candle_core::DType) -> nemo_core::Result<()> {
        Ok(self.model.set_compute_dtype(dtype)?)
    }

    fn evaluate(&mut self, _step: u64) -> nemo_core::Result<BTreeMap<String, f64>> {
        let Some(val) = self.val else {
            return Ok(BTreeMap::new());
        };
        let wer = evaluate(self.model, val)?;
        let mut out = BTreeMap::new();
        if let (Some(w), Some(c)) = (wer.wer(), wer.cer()) {
            out.insert("wer".to_string(), w);
            out.insert("cer".to_string(), c);
        }
        Ok(out)
    }
}
