//! The ASR data layer: NeMo manifests in, padded batches of audio and label ids out.
//!
//! [`AudioToTextDataset`] reads one or more manifests, normalizes and encodes each transcript,
//! drops utterances outside `[min_duration, max_duration]` (by the manifest's duration, as NeMo
//! does), checks that the audio files exist, and either preloads all audio in parallel (rayon) or
//! decodes it per batch, in parallel, when the batch is made. [`AudioToTextDataLayer`] adds NeMo's
//! `DataLoader` behaviour: batches of `batch_size`, a seeded shuffle per epoch (ChaCha8 with the
//! epoch as stream: the order depends only on `seed` and the epoch), `drop_last`, and collation
//! into an [`AudioToTextBatch`]:
//!
//! | field | shape | dtype | NeMo port |
//! |---|---|---|---|
//! | `audio_signal` | `(B, T)` | f32, zero-padded | `AudioSignal(freq=sample_rate)` |
//! | `a_sig_length` | `(B)` | i64 | `Lengths` |
//! | `transcripts` | `(B, S)` | i64, padded with `pad_id` | `Labels` |
//! | `transcript_length` | `(B)` | i64 | `Lengths` |
//!
//! A bad utterance (transcript with a character outside the labels, missing or undecodable audio)
//! is an error naming the manifest and line, or — with `on_bad_sample: skip` — is left out,
//! counted, and reported in [`DatasetSummary`] and by `tracing::warn!`.
//!
//! Differences from NeMo 0.x `AudioToTextDataLayer`: `trim_silence: true` is refused (no VAD
//! here); `num_workers` is accepted and ignored (rayon does the parallel decoding); the shuffle is
//! reproducible from `seed`; `on_bad_sample`, `seed` and `preload` are additions.
//!
//! ```no_run
//! # fn main() -> nemo_asr::Result<()> {
//! use candle_core::Device;
//! use nemo_asr::data::{AudioToTextDataLayer, AudioToTextDataLayerConfig};
//! let mut config = AudioToTextDataLayerConfig::new("corpus/train.json", 32);
//! config.max_duration = Some(16.7);
//! let layer = AudioToTextDataLayer::new(config)?;
//! for epoch in 0..2 {
//!     for batch in layer.epoch(epoch, &Device::Cpu) {
//!         let batch = batch?;
//!         let (b, t) = batch.audio_signal.dims2()?;
//!         # let _ = (b, t);
//!     }
//! }
//! println!("{}", layer.summary());
//! # Ok(())
//! # }
//! ```

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use nemo_core::dag::DataLayer;
use nemo_core::module::{NamedTensors, PortTypes, TensorStruct};
use nemo_core::{NeuralModule, neural_module};

pub use super::audio_to_text_config::{AudioToTextDataLayerConfig, OnBadSample};
pub use super::audio_to_text_dataset::{
    AudioToTextDataset, AudioToTextSample, DatasetSummary, ctc_min_steps,
};
use super::vocabulary::Vocabulary;
use crate::{Error, Result};

/// One padded batch, the four output ports of NeMo's `AudioToTextDataLayer` as plain tensors:
/// `audio_signal` `(B, T)` f32 audio at the layer's sample rate, zero past each length;
/// `a_sig_length` `(B)` i64 valid samples per row; `transcripts` `(B, S)` i64 label ids, `pad_id`
/// past each length; `transcript_length` `(B)` i64 valid ids per row.
/// [`AudioToTextDataLayer::wrap_outputs`] checks and types them.
pub type AudioToTextBatch = AudioToTextDataLayerOutputTensors;

/// Pads `(audio, ids)` pairs into an [`AudioToTextBatch`] on `device`.
///
/// `T` is the longest audio and `S` the longest transcript of the batch; an empty batch is an
/// error.
pub fn collate(
    items: &[(&[f32], &[u32])],
    pad_id: u32,
    device: &Device,
) -> Result<AudioToTextBatch> {
    let b = items.len();
    if b == 0 {
        return Err(Error::Shape {
            op: "collate",
            msg: "cannot make a batch of 0 utterances".into(),
        });
    }
    let t = items.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
    let s = items.iter().map(|(_, y)| y.len()).max().unwrap_or(0);
    let mut audio = vec![0f32; b * t];
    let mut ids = vec![i64::from(pad_id); b * s];
    let mut a_len = Vec::with_capacity(b);
    let mut y_len = Vec::with_capacity(b);
    for (i, (a, y)) in items.iter().enumerate() {
        // Rows are `t` and `s` long and every item fits its row, so both ranges exist.
        if let Some(row) = audio.get_mut(i * t..i * t + a.len()) {
            row.copy_from_slice(a);
        }
        if let Some(row) = ids.get_mut(i * s..i * s + y.len()) {
            row.iter_mut()
                .zip(y.iter())
                .for_each(|(d, &v)| *d = i64::from(v));
        }
        a_len.push(len_i64(a.len())?);
        y_len.push(len_i64(y.len())?);
    }
    Ok(AudioToTextBatch {
        audio_signal: Tensor::from_vec(audio, (b, t), device)?,
        a_sig_length: Tensor::from_vec(a_len, b, device)?,
        transcripts: Tensor::from_vec(ids, (b, s), device)?,
        transcript_length: Tensor::from_vec(y_len, b, device)?,
    })
}

fn len_i64(n: usize) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::Shape {
        op: "collate",
        msg: format!("length {n} does not fit in i64"),
    })
}

impl AudioToTextDataset {
    /// Collates utterances `indices` (decoded in parallel when not preloaded). With
    /// `on_bad_sample: skip`, utterances that fail to decode are left out (and remembered, so
    /// later batches skip them without decoding); `Ok(None)` when none is left.
    pub fn batch(
        &self,
        indices: &[usize],
        pad_id: u32,
        device: &Device,
    ) -> Result<Option<AudioToTextBatch>> {
        let items = self.decode_batch(indices)?;
        if items.is_empty() {
            return Ok(None);
        }
        let refs: Vec<(&[f32], &[u32])> = items.iter().map(|(a, y)| (a.as_ref(), *y)).collect();
        collate(&refs, pad_id, device).map(Some)
    }
}

/// NeMo's `AudioToTextDataLayer`: an [`AudioToTextDataset`] with batching and shuffling, and
/// NeMo 0.x's typed output ports. Iterate [`epoch`](Self::epoch) for eager training, or add it
/// to a lazy graph with `call` (it is a [`DataLayer`]: batch `index` of epoch `epoch` is made on
/// the layer's [`device`](Self::on_device) when an action asks for it).
#[neural_module(
    kind = data_layer,
    outputs(
        audio_signal: (B, T) AudioSignal{freq = {self.config.sample_rate}},
        a_sig_length: (B) Lengths,
        transcripts: (B, T) Labels,
        transcript_length: (B) Lengths,
    ),
)]
#[derive(Debug)]
pub struct AudioToTextDataLayer {
    config: AudioToTextDataLayerConfig,
    dataset: AudioToTextDataset,
    device: Device,
}

impl AudioToTextDataLayer {
    /// Builds the dataset of `config` (see [`AudioToTextDataset::new`]); graph batches are made
    /// on the CPU until [`on_device`](Self::on_device).
    pub fn new(config: AudioToTextDataLayerConfig) -> Result<Self> {
        let dataset = AudioToTextDataset::new(&config)?;
        Ok(Self {
            config,
            dataset,
            device: Device::Cpu,
        })
    }

    /// The same layer making its graph batches on `device`.
    pub fn on_device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// The settings.
    pub fn config(&self) -> &AudioToTextDataLayerConfig {
        &self.config
    }

    /// The dataset.
    pub fn dataset(&self) -> &AudioToTextDataset {
        &self.dataset
    }

    /// See [`AudioToTextDataset::retain_alignable`].
    pub fn retain_alignable(&mut self, encoded_len: impl Fn(usize) -> usize) -> Result<usize> {
        self.dataset.retain_alignable(encoded_len)
    }

    /// Number of utterances.
    pub fn len(&self) -> usize {
        self.dataset.len()
    }

    /// Whether there are no utterances.
    pub fn is_empty(&self) -> bool {
        self.dataset.is_empty()
    }

    /// Sample rate of `audio_signal`, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.config.sample_rate
    }

    /// The label set.
    pub fn labels(&self) -> &Vocabulary {
        self.dataset.labels()
    }

    /// Batches per epoch (before any utterance is skipped at load).
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The order utterances are visited in `epoch`: `0..len` shuffled by a ChaCha8 generator
    /// seeded with `seed` on stream `epoch` when `shuffle`, else `0..len`. With
    /// `semi_sorted_batching`, consecutive runs of `batch_size` are utterances of similar
    /// duration, the runs in random order (the short last run stays last).
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        rng.set_stream(epoch);
        if self.config.semi_sorted_batching {
            let samples = self.dataset.samples();
            let f = if self.config.shuffle {
                self.config.randomization_factor
            } else {
                0.0
            };
            let mut keyed: Vec<(f64, usize)> = order
                .iter()
                .map(|&i| {
                    let d = samples.get(i).map_or(0.0, |s| s.duration);
                    let noise = if f > 0.0 {
                        rng.random_range(-f..=f)
                    } else {
                        0.0
                    };
                    (d * (1.0 + noise), i)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let sorted: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
            let b = self.config.batch_size.max(1);
            let mut batches: Vec<&[usize]> = sorted.chunks(b).collect();
            let short = batches.pop_if(|last| last.len() < b);
            if self.config.shuffle {
                batches.shuffle(&mut rng);
            }
            order = batches
                .into_iter()
                .chain(short)
                .flatten()
                .copied()
                .collect();
        } else if self.config.shuffle {
            order.shuffle(&mut rng);
        }
        order
    }

    /// The batches of `epoch`, made on `device` as they are consumed.
    pub fn epoch(&self, epoch: u64, device: &Device) -> AudioToTextEpoch<'_> {
        let order = self.epoch_order(epoch);
        AudioToTextEpoch {
            layer: self,
            order,
            pos: 0,
            device: device.clone(),
            failed_at_start: self.dataset.failed_count(),
            done: false,
        }
    }

    /// Kept, filtered and skipped counts.
    pub fn summary(&self) -> DatasetSummary {
        self.dataset.summary()
    }
}

impl DataLayer for AudioToTextDataLayer {
    fn type_name(&self) -> &'static str {
        <Self as NeuralModule>::NAME
    }

    fn dyn_output_types(&self) -> PortTypes {
        NeuralModule::output_types(self)
    }

    fn num_batches(&self) -> usize {
        AudioToTextDataLayer::num_batches(self)
    }

    /// Batch `index` of [`epoch_order`](AudioToTextDataLayer::epoch_order)`(epoch)`, checked
    /// against the output ports.
    fn batch(&self, epoch: u64, index: usize) -> nemo_core::Result<NamedTensors> {
        let b = self.config.batch_size;
        let order = self.epoch_order(epoch);
        let start = index.saturating_mul(b);
        let end = order.len().min(start.saturating_add(b));
        let past = || Error::Config {
            key: "batch".into(),
            msg: format!(
                "batch {index} of epoch {epoch} is past the layer's {} batches",
                AudioToTextDataLayer::num_batches(self)
            ),
        };
        let Some(indices) = order.get(start..end).filter(|i| !i.is_empty()) else {
            return Err(past().into());
        };
        if self.config.drop_last && indices.len() < b {
            return Err(past().into());
        }
        let batch = self
            .dataset
            .batch(indices, self.config.pad_id.unwrap_or(0), &self.device)?
            .ok_or_else(|| Error::Config {
                key: "batch".into(),
                msg: format!(
                    "every utterance of batch {index} of epoch {epoch} failed to load; {}",
                    self.summary()
                ),
            })?;
        let typed = self.wrap_outputs(batch)?;
        Ok(AudioToTextBatch {
            audio_signal: typed.audio_signal.into_tensor(),
            a_sig_length: typed.a_sig_length.into_tensor(),
            transcripts: typed.transcripts.into_tensor(),
            transcript_length: typed.transcript_length.into_tensor(),
        }
        .into_named())
    }
}

/// The batches of one epoch; yields `Err` once and then stops if a batch cannot be made.
#[derive(Debug)]
pub struct AudioToTextEpoch<'a> {
    layer: &'a AudioToTextDataLayer,
    order: Vec<usize>,
    pos: usize,
    device: Device,
    failed_at_start: usize,
    done: bool,
}

impl AudioToTextEpoch<'_> {
    /// The utterance indices of this epoch, in visiting order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    fn finish(&mut self) {
        self.done = true;
        let failed = self.layer.dataset.failed_count();
        if failed > self.failed_at_start {
            tracing::warn!(
                "{} utterances failed to decode this epoch and were skipped; {}",
                failed - self.failed_at_start,
                self.layer.summary()
            );
        }
    }
}

impl Iterator for AudioToTextEpoch<'_> {
    type Item = Result<AudioToTextBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let cfg = &self.layer.config;
        while !self.done {
            let end = self.order.len().min(self.pos + cfg.batch_size);
            let full = end - self.pos == cfg.batch_size;
            if self.pos >= end || (!full && cfg.drop_last) {
                self.finish();
                return None;
            }
            let indices = self.order.get(self.pos..end).unwrap_or(&[]);
            self.pos = end;
            match self
                .layer
                .dataset
                .batch(indices, cfg.pad_id.unwrap_or(0), &self.device)
            {
                Ok(Some(batch)) => return Some(Ok(batch)),
                Ok(None) => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        let b = self.layer.config.batch_size;
        let rest = self.order.len().saturating_sub(self.pos);
        let n = if self.layer.config.drop_last {
            rest / b
        } else {
            rest.div_ceil(b)
        };
        (0, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collate_pads() -> Result<()> {
        let a: [f32; 3] = [0.5, -0.5, 0.25];
        let b: [f32; 1] = [1.0];
        let batch = collate(&[(&a, &[1, 2]), (&b, &[3, 4, 5])], 9, &Device::Cpu)?;
        assert_eq!(
            batch.audio_signal.to_vec2::<f32>()?,
            vec![vec![0.5, -0.5, 0.25], vec![1.0, 0.0, 0.0]]
        );
        assert_eq!(batch.a_sig_length.to_vec1::<i64>()?, vec![3, 1]);
        assert_eq!(
            batch.transcripts.to_vec2::<i64>()?,
            vec![vec![1, 2, 9], vec![3, 4, 5]]
        );
        assert_eq!(batch.transcript_length.to_vec1::<i64>()?, vec![2, 3]);
        assert!(collate(&[], 0, &Device::Cpu).is_err());
        Ok(())
    }
}
