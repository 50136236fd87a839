//! Training a [`SpeechModel`] on manifests: the run config (`model:`, `train_ds:`, `train:`),
//! the training data layer, and the one training task the core runner
//! ([`nemo_core::train::run`]) fits, whichever model it is (evaluating with
//! [`models::evaluate`](crate::models::evaluate)).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use nemo_core::ForwardCtx;
use nemo_core::params::Parameters;
use nemo_core::train::TrainTask;
use serde::{Deserialize, Serialize};

use crate::data::{AudioToTextBatch, AudioToTextDataLayer, OnBadSample};
use crate::models::{SpeechModel, evaluate};
use crate::{Error, Result};

/// A whole ASR run: the model `C`'s config, the `train_ds:` section, and the core `train:`
/// section (loop, optimizer, schedule, seed).
pub type RunConfig<C> = nemo_core::train::RunConfig<C, TrainDataConfig>;

/// The `train_ds:` section of a run config: how training batches are made (the manifest itself
/// comes from the command line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainDataConfig {
    /// Utterances per micro-batch. Default 16.
    pub batch_size: usize,
    /// Longest training utterance kept, in seconds.
    pub max_duration: Option<f64>,
    /// Batches of utterances of similar duration, in random order (NeMo's
    /// `use_semi_sorted_batching`): less padding, faster steps. Default false.
    pub semi_sorted_batching: bool,
    /// A bad training utterance (unreadable audio, a character outside the labels, audio too
    /// short for its transcript): `error` (default) stops with the manifest line, `skip` leaves
    /// it out and counts it.
    pub on_bad_sample: OnBadSample,
}

impl Default for TrainDataConfig {
    fn default() -> Self {
        TrainDataConfig {
            batch_size: 16,
            max_duration: None,
            semi_sorted_batching: false,
            on_bad_sample: OnBadSample::default(),
        }
    }
}

impl TrainDataConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::Config {
                key: "train_ds.batch_size".into(),
                msg: "must be at least 1".into(),
            });
        }
        if self.max_duration.is_some_and(|d| d.is_nan() || d <= 0.0) {
            return Err(Error::Config {
                key: "train_ds.max_duration".into(),
                msg: "must be positive".into(),
            });
        }
        Ok(())
    }
}

/// Reads and validates a run config for model `M`; errors name the file and key.
pub fn read_run_config<M: SpeechModel>(path: &Path) -> Result<RunConfig<M::Config>> {
    let cfg = RunConfig::<M::Config>::from_yaml_file(path)?;
    let named = |e: Error| match e {
        Error::Config { key, msg } => Error::Config {
            key: format!("{}: {key}", path.display()),
            msg,
        },
        e => e,
    };
    M::validate_config(&cfg.model).map_err(named)?;
    cfg.train_ds.validate().map_err(named)?;
    Ok(cfg)
}

/// The training data layer of a run: shuffled with `seed`, as `train_ds` says, without the
/// utterances `model` cannot learn from ([`SpeechModel::retain_trainable`]).
pub fn train_data_layer<M: SpeechModel>(
    model: &M,
    manifest: &Path,
    train_ds: &TrainDataConfig,
    seed: u64,
) -> Result<AudioToTextDataLayer> {
    let mut cfg = M::layer_config(model.config(), manifest, train_ds.batch_size);
    cfg.shuffle = true;
    cfg.seed = seed;
    cfg.max_duration = train_ds.max_duration;
    cfg.semi_sorted_batching = train_ds.semi_sorted_batching;
    cfg.on_bad_sample = train_ds.on_bad_sample;
    let mut layer = AudioToTextDataLayer::new(cfg)?;
    model.retain_trainable(&mut layer)?;
    Ok(layer)
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
    pub fn batch(&mut self, index: u64) -> Result<AudioToTextBatch> {
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

/// The training task of any [`SpeechModel`]: micro-batches in a seeded order, epoch after epoch,
/// and greedy WER/CER on a validation layer.
pub struct SpeechTrainTask<'a, M: SpeechModel> {
    model: &'a M,
    train: BatchCursor<'a>,
    val: Option<&'a AudioToTextDataLayer>,
    batches_per_step: usize,
}

impl<'a, M: SpeechModel> SpeechTrainTask<'a, M> {
    /// A task training `model` on `train` (from [`train_data_layer`]) with `batches_per_step`
    /// micro-batches per update, evaluating on `val` (from [`eval_data_layer`](crate::models::eval_data_layer)).
    pub fn new(
        model: &'a M,
        train: &'a AudioToTextDataLayer,
        val: Option<&'a AudioToTextDataLayer>,
        batches_per_step: usize,
    ) -> Result<Self> {
        let expected = M::layer_config(model.config(), Path::new(""), 1);
        let got = train.config();
        if (got.eos_id, got.pad_id) != (expected.eos_id, expected.pad_id) {
            return Err(Error::Config {
                key: "train_ds".into(),
                msg: format!(
                    "the data layer appends EOS {:?} and pads with {:?}; the {} model needs \
                     {:?} and {:?} (make it with `train_data_layer`)",
                    got.eos_id,
                    got.pad_id,
                    M::KIND.name(),
                    expected.eos_id,
                    expected.pad_id
                ),
            });
        }
        Ok(SpeechTrainTask {
            model,
            train: BatchCursor::new(train, model.device())?,
            val,
            batches_per_step: batches_per_step.max(1),
        })
    }
}

impl<M: SpeechModel> TrainTask for SpeechTrainTask<'_, M> {
    fn params(&self) -> &Parameters {
        self.model.params()
    }

    fn loss(&mut self, step: u64, micro: usize, ctx: &ForwardCtx) -> nemo_core::Result<Tensor> {
        let index = step * self.batches_per_step as u64 + micro as u64;
        let batch = self.train.batch(index)?;
        Ok(self.model.batch_loss(&batch, ctx)?)
    }

    fn set_compute_dtype(&mut self, dtype: DType) -> nemo_core::Result<()> {
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
