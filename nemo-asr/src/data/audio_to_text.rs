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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use nemo_core::dag::DataLayer;
use nemo_core::module::{NamedTensors, PortTypes, TensorStruct};
use nemo_core::{NeuralModule, neural_module};

use super::audio::AudioSegment;
use super::manifest::Manifest;
use super::vocabulary::{ENGLISH_LABELS, Vocabulary, normalize_transcript};
use crate::{Error, Result};

/// What to do with an utterance that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadSample {
    /// Fail with an error naming the manifest, line and problem (the default).
    #[default]
    Error,
    /// Leave the utterance out, count it, and warn.
    Skip,
}

fn default_labels() -> Vec<String> {
    ENGLISH_LABELS.iter().map(|c| c.to_string()).collect()
}
fn default_sample_rate() -> u32 {
    16_000
}
fn default_min_duration() -> Option<f64> {
    Some(0.1)
}
fn default_true() -> bool {
    true
}

/// Settings of [`AudioToTextDataLayer`], with NeMo 0.x's keys and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioToTextDataLayerConfig {
    /// Manifest path(s); several are separated by commas, as in NeMo.
    pub manifest_filepath: String,
    /// The label characters in id order, each a one-character string (default: NeMo's 28
    /// English characters `" ", a..z, "'"`).
    #[serde(default = "default_labels")]
    pub labels: Vec<String>,
    /// Utterances per batch.
    pub batch_size: usize,
    /// Rate the audio is resampled to, Hz (default 16000).
    #[serde(default = "default_sample_rate")]
    pub sample_rate: u32,
    /// NeMo reads integer files as integers first; the result is the same scaled float here, so
    /// the key is accepted and has no effect (default false).
    #[serde(default)]
    pub int_values: bool,
    /// Id prepended to every transcript (default none).
    #[serde(default)]
    pub bos_id: Option<u32>,
    /// Id appended to every transcript (default none).
    #[serde(default)]
    pub eos_id: Option<u32>,
    /// Id that pads `transcripts` past each transcript's length (default 0, NeMo's).
    #[serde(default)]
    pub pad_id: Option<u32>,
    /// Utterances shorter than this many seconds (manifest duration) are dropped (default 0.1).
    #[serde(default = "default_min_duration")]
    pub min_duration: Option<f64>,
    /// Utterances longer than this many seconds are dropped (default none).
    #[serde(default)]
    pub max_duration: Option<f64>,
    /// Clean transcripts with [`normalize_transcript`] before encoding (default true); when
    /// false the manifest text is encoded as it is.
    #[serde(default = "default_true")]
    pub normalize_transcripts: bool,
    /// Trimming leading/trailing silence is not supported: `true` is a config error.
    #[serde(default)]
    pub trim_silence: bool,
    /// Drop the last batch of an epoch when it is smaller than `batch_size` (default false).
    #[serde(default)]
    pub drop_last: bool,
    /// Shuffle the utterances every epoch (default true).
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// Accepted for NeMo configs and ignored: decoding runs on rayon's pool.
    #[serde(default)]
    pub num_workers: usize,
    /// Keep at most this many utterances after filtering; 0 keeps all (default 0).
    #[serde(default)]
    pub max_utts: usize,
    /// Error on a bad utterance, or skip and count it (default `error`).
    #[serde(default)]
    pub on_bad_sample: OnBadSample,
    /// Seed of the per-epoch shuffle (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Decode all audio into memory when the layer is built (in parallel) instead of per batch
    /// (default false). A few hours of 16 kHz audio take 230 MB per hour.
    #[serde(default)]
    pub preload: bool,
    /// Semi-sorted batching (NeMo's `use_semi_sorted_batching`): utterances are sorted by
    /// duration perturbed by a random factor, cut into batches, and the batches shuffled, so a
    /// batch holds utterances of similar length and little padding (default false). Without
    /// `shuffle` the order is sorted by duration.
    #[serde(default)]
    pub semi_sorted_batching: bool,
    /// The relative perturbation of durations before sorting, drawn uniformly from
    /// `[-f, f]` per utterance and epoch (default 0.1).
    #[serde(default = "default_randomization_factor")]
    pub randomization_factor: f64,
}

fn default_randomization_factor() -> f64 {
    0.1
}

impl AudioToTextDataLayerConfig {
    /// NeMo's defaults for `manifest_filepath` and `batch_size`.
    pub fn new(manifest_filepath: impl Into<String>, batch_size: usize) -> Self {
        Self {
            manifest_filepath: manifest_filepath.into(),
            labels: default_labels(),
            batch_size,
            sample_rate: default_sample_rate(),
            int_values: false,
            bos_id: None,
            eos_id: None,
            pad_id: None,
            min_duration: default_min_duration(),
            max_duration: None,
            normalize_transcripts: true,
            trim_silence: false,
            drop_last: false,
            shuffle: true,
            num_workers: 0,
            max_utts: 0,
            on_bad_sample: OnBadSample::Error,
            seed: 0,
            preload: false,
            semi_sorted_batching: false,
            randomization_factor: default_randomization_factor(),
        }
    }

    /// The manifest paths named by `manifest_filepath`.
    pub fn manifest_paths(&self) -> Vec<PathBuf> {
        self.manifest_filepath
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect()
    }

    fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| {
            Err(Error::Config {
                key: key.into(),
                msg,
            })
        };
        if self.manifest_paths().is_empty() {
            return bad("manifest_filepath", "no manifest given".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.randomization_factor) {
            return bad(
                "randomization_factor",
                format!("must be in [0, 1), found {}", self.randomization_factor),
            );
        }
        if self.sample_rate == 0 {
            return bad("sample_rate", "must be at least 1 Hz".into());
        }
        if self.trim_silence {
            return bad(
                "trim_silence",
                "trimming silence is not supported; set it to false".into(),
            );
        }
        for (key, v) in [
            ("min_duration", self.min_duration),
            ("max_duration", self.max_duration),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return bad(
                    key,
                    format!("must be a finite number of seconds >= 0, got {v}"),
                );
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_duration, self.max_duration)
            && lo > hi
        {
            return bad(
                "max_duration",
                format!("{hi} s is below min_duration {lo} s"),
            );
        }
        Ok(())
    }
}

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

/// Counts of what a dataset kept, filtered and skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetSummary {
    /// Entries read from the manifests.
    pub manifest_entries: usize,
    /// Utterances in the dataset.
    pub kept: usize,
    /// Total manifest duration of the kept utterances, seconds.
    pub kept_seconds: f64,
    /// Dropped for `duration < min_duration`.
    pub filtered_short: usize,
    /// Dropped for `duration > max_duration`.
    pub filtered_long: usize,
    /// Dropped by `max_utts`.
    pub filtered_max_utts: usize,
    /// Total manifest duration of the filtered utterances, seconds.
    pub filtered_seconds: f64,
    /// Skipped: transcript has a character outside the labels.
    pub skipped_text: usize,
    /// Skipped: audio file missing, or (with `preload`) not decodable.
    pub skipped_audio: usize,
    /// Kept utterances whose audio failed to decode when a batch was made (lazy loading); they
    /// are left out of every later batch.
    pub skipped_at_load: usize,
    /// Skipped: the transcript needs more CTC time steps than the audio gives (see
    /// [`AudioToTextDataset::retain_alignable`]).
    pub skipped_unalignable: usize,
}

impl DatasetSummary {
    /// All skipped utterances.
    pub fn skipped(&self) -> usize {
        self.skipped_text + self.skipped_audio + self.skipped_at_load + self.skipped_unalignable
    }
}

impl fmt::Display for DatasetSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} utterances kept ({:.2} h); filtered {} ({} short, {} long, {} over max_utts, {:.2} h); skipped {} ({} text, {} audio, {} at load, {} unalignable)",
            self.kept,
            self.manifest_entries,
            self.kept_seconds / 3600.0,
            self.filtered_short + self.filtered_long + self.filtered_max_utts,
            self.filtered_short,
            self.filtered_long,
            self.filtered_max_utts,
            self.filtered_seconds / 3600.0,
            self.skipped(),
            self.skipped_text,
            self.skipped_audio,
            self.skipped_at_load,
            self.skipped_unalignable,
        )
    }
}

/// One utterance of the dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioToTextSample {
    /// The audio file.
    pub audio_filepath: PathBuf,
    /// Start in the file, seconds.
    pub offset: f64,
    /// Manifest duration, seconds (the amount read; 0 reads to the end).
    pub duration: f64,
    /// The transcript after normalization.
    pub text: String,
    /// Its label ids, with `bos_id`/`eos_id` when configured.
    pub tokens: Vec<u32>,
    /// The manifest the utterance came from.
    pub manifest: PathBuf,
    /// Its 1-based line there.
    pub line: usize,
}

/// Utterances of one or more manifests with encoded transcripts (NeMo's `AudioDataset`).
#[derive(Debug)]
pub struct AudioToTextDataset {
    samples: Vec<AudioToTextSample>,
    audio: Option<Vec<Vec<f32>>>,
    labels: Vocabulary,
    sample_rate: u32,
    on_bad_sample: OnBadSample,
    summary: DatasetSummary,
    /// Samples whose lazy decoding failed (index -> message), left out of later batches.
    failed: Mutex<BTreeMap<usize, String>>,
}

/// Why an utterance was not kept, before counting.
enum Drop {
    Short,
    Long,
    Text(Error),
    Audio(Error),
}

impl AudioToTextDataset {
    /// Reads, filters and encodes the manifests of `config`, checks the audio files exist, and
    /// preloads the audio when `config.preload`.
    pub fn new(config: &AudioToTextDataLayerConfig) -> Result<Self> {
        config.validate()?;
        let labels = Vocabulary::from_strings(&config.labels)?;
        let mut summary = DatasetSummary::default();
        let mut samples = Vec::new();
        for path in config.manifest_paths() {
            let manifest = Manifest::from_file(&path)?;
            summary.manifest_entries += manifest.len();
            for entry in manifest.into_entries() {
                let verdict = Self::admit(config, &labels, &path, &entry);
                match verdict {
                    Ok(sample) => {
                        if config.max_utts > 0 && samples.len() >= config.max_utts {
                            summary.filtered_max_utts += 1;
                            summary.filtered_seconds += entry.duration;
                        } else {
                            summary.kept_seconds += entry.duration;
                            samples.push(sample);
                        }
                    }
                    Err(Drop::Short) => {
                        summary.filtered_short += 1;
                        summary.filtered_seconds += entry.duration;
                    }
                    Err(Drop::Long) => {
                        summary.filtered_long += 1;
                        summary.filtered_seconds += entry.duration;
                    }
                    Err(Drop::Text(e)) | Err(Drop::Audio(e))
                        if config.on_bad_sample == OnBadSample::Error =>
                    {
                        return Err(e);
                    }
                    Err(Drop::Text(e)) => {
                        summary.skipped_text += 1;
                        warn_skip(summary.skipped(), &e);
                    }
                    Err(Drop::Audio(e)) => {
                        summary.skipped_audio += 1;
                        warn_skip(summary.skipped(), &e);
                    }
                }
            }
        }
        let audio = if config.preload {
            let loaded: Vec<Result<Vec<f32>>> = samples
                .par_iter()
                .map(|s| load_sample(s, config.sample_rate))
                .collect();
            let mut kept_samples = Vec::with_capacity(samples.len());
            let mut audio = Vec::with_capacity(samples.len());
            for (s, a) in samples.into_iter().zip(loaded) {
                match a {
                    Ok(a) => {
                        kept_samples.push(s);
                        audio.push(a);
                    }
                    Err(e) if config.on_bad_sample == OnBadSample::Error => return Err(e),
                    Err(e) => {
                        summary.skipped_audio += 1;
                        summary.kept_seconds -= s.duration;
                        warn_skip(summary.skipped(), &e);
                    }
                }
            }
            samples = kept_samples;
            Some(audio)
        } else {
            None
        };
        summary.kept = samples.len();
        if summary.skipped() > 0 {
            tracing::warn!("asr dataset: {summary}");
        } else {
            tracing::info!("asr dataset: {summary}");
        }
        Ok(Self {
            samples,
            audio,
            labels,
            sample_rate: config.sample_rate,
            on_bad_sample: config.on_bad_sample,
            summary,
            failed: Mutex::new(BTreeMap::new()),
        })
    }

    /// Duration filter, transcript encoding and file check for one manifest entry.
    fn admit(
        config: &AudioToTextDataLayerConfig,
        labels: &Vocabulary,
        manifest: &Path,
        entry: &super::manifest::ManifestEntry,
    ) -> std::result::Result<AudioToTextSample, Drop> {
        if config.min_duration.is_some_and(|lo| entry.duration < lo) {
            return Err(Drop::Short);
        }
        if config.max_duration.is_some_and(|hi| entry.duration > hi) {
            return Err(Drop::Long);
        }
        let err = |msg: String| Error::Manifest {
            path: manifest.to_path_buf(),
            line: entry.line,
            msg,
        };
        let text = if config.normalize_transcripts {
            normalize_transcript(&entry.text, labels)
        } else {
            entry.text.clone()
        };
        let ids = labels
            .encode(&text)
            .map_err(|e| Drop::Text(err(format!("transcript {text:?}: {e}"))))?;
        let mut tokens = Vec::with_capacity(ids.len() + 2);
        tokens.extend(config.bos_id);
        tokens.extend(ids);
        tokens.extend(config.eos_id);
        if !entry.audio_filepath.is_file() {
            return Err(Drop::Audio(err(format!(
                "audio file `{}` does not exist",
                entry.audio_filepath.display()
            ))));
        }
        Ok(AudioToTextSample {
            audio_filepath: entry.audio_filepath.clone(),
            offset: entry.offset.unwrap_or(0.0),
            duration: entry.duration,
            text,
            tokens,
            manifest: manifest.to_path_buf(),
            line: entry.line,
        })
    }

    /// Leaves out utterances a CTC model cannot align, before any batch is drawn.
    ///
    /// CTC needs one time step per label plus a blank between each pair of equal neighbours; an
    /// utterance with fewer encoded steps has an infinite loss, and one such row makes the whole
    /// batch's loss and gradient non-finite. Such audio is almost always cut short (or belongs
    /// to another transcript), so it is bad input: an error naming the manifest line, or with
    /// `on_bad_sample: skip` left out and counted. `encoded_len` maps audio samples to the
    /// model's time steps; the audio's own length is used when preloaded, else the manifest
    /// duration (utterances without one are kept). Returns how many were left out.
    pub fn retain_alignable(&mut self, encoded_len: impl Fn(usize) -> usize) -> Result<usize> {
        let mut keep = Vec::with_capacity(self.samples.len());
        for (i, s) in self.samples.iter().enumerate() {
            let samples = match &self.audio {
                Some(audio) => audio.get(i).map_or(0, Vec::len),
                // Duration 0 reads the whole file, whose length is not known here.
                None if s.duration <= 0.0 => {
                    keep.push(true);
                    continue;
                }
                None => (s.duration * f64::from(self.sample_rate)).round() as usize,
            };
            let steps = encoded_len(samples);
            let needed = ctc_min_steps(&s.tokens);
            if needed <= steps {
                keep.push(true);
                continue;
            }
            let e = Error::Manifest {
                path: s.manifest.clone(),
                line: s.line,
                msg: format!(
                    "`{}`: its transcript needs {needed} CTC time steps but its {:.3} s of audio \
                     give {steps} (audio cut short, or another utterance's transcript?)",
                    s.audio_filepath.display(),
                    samples as f64 / f64::from(self.sample_rate),
                ),
            };
            if self.on_bad_sample == OnBadSample::Error {
                return Err(e);
            }
            self.summary.skipped_unalignable += 1;
            self.summary.kept_seconds -= s.duration;
            warn_skip(self.summary.skipped(), &e);
            keep.push(false);
        }
        let dropped = keep.iter().filter(|&&k| !k).count();
        if dropped == 0 {
            return Ok(0);
        }
        // Old index -> new index, for the lazily failed utterances.
        let mut new_index = Vec::with_capacity(keep.len());
        let mut n = 0;
        for &k in &keep {
            new_index.push(k.then_some(n));
            n += usize::from(k);
        }
        let mut flags = keep.iter();
        self.samples
            .retain(|_| flags.next().copied().unwrap_or(true));
        if let Some(audio) = &mut self.audio {
            let mut flags = keep.iter();
            audio.retain(|_| flags.next().copied().unwrap_or(true));
        }
        let failed = self.failed.get_mut().unwrap_or_else(|p| p.into_inner());
        *failed = std::mem::take(failed)
            .into_iter()
            .filter_map(|(i, msg)| new_index.get(i).copied().flatten().map(|j| (j, msg)))
            .collect();
        self.summary.kept = self.samples.len();
        tracing::warn!("asr dataset: {}", self.summary);
        Ok(dropped)
    }

    /// Number of utterances.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no utterances.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The utterances, in manifest order.
    pub fn samples(&self) -> &[AudioToTextSample] {
        &self.samples
    }

    /// The label set.
    pub fn labels(&self) -> &Vocabulary {
        &self.labels
    }

    /// Sample rate of the audio this dataset returns, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Whether the audio was decoded when the dataset was built.
    pub fn is_preloaded(&self) -> bool {
        self.audio.is_some()
    }

    /// Kept, filtered and skipped counts, including lazy decoding failures so far.
    pub fn summary(&self) -> DatasetSummary {
        let mut s = self.summary.clone();
        s.skipped_at_load = self.failed_count();
        s
    }

    /// Lazy decoding failures so far, `(manifest, line, message)`, in dataset order.
    pub fn load_failures(&self) -> Vec<(PathBuf, usize, String)> {
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed
            .iter()
            .filter_map(|(&i, msg)| {
                self.samples
                    .get(i)
                    .map(|s| (s.manifest.clone(), s.line, msg.clone()))
            })
            .collect()
    }

    fn failed_count(&self) -> usize {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn has_failed(&self, index: usize) -> bool {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&index)
    }

    /// The audio of utterance `index` at [`sample_rate`](Self::sample_rate): borrowed when
    /// preloaded, decoded now otherwise.
    pub fn audio(&self, index: usize) -> Result<Cow<'_, [f32]>> {
        if let Some(audio) = &self.audio {
            return audio
                .get(index)
                .map(|a| Cow::Borrowed(a.as_slice()))
                .ok_or_else(|| self.out_of_range(index));
        }
        let sample = self
            .samples
            .get(index)
            .ok_or_else(|| self.out_of_range(index))?;
        load_sample(sample, self.sample_rate).map(Cow::Owned)
    }

    /// The label ids of utterance `index`.
    pub fn tokens(&self, index: usize) -> Result<&[u32]> {
        self.samples
            .get(index)
            .map(|s| s.tokens.as_slice())
            .ok_or_else(|| self.out_of_range(index))
    }

    fn out_of_range(&self, index: usize) -> Error {
        Error::Shape {
            op: "AudioToTextDataset",
            msg: format!(
                "index {index} is out of range for {} utterances",
                self.len()
            ),
        }
    }

    /// Collates utterances `indices` (decoded in parallel when not preloaded). With
    /// `on_bad_sample: skip`, utterances that fail to decode are left out (and remembered, so
    /// later batches skip them without decoding); `Ok(None)` when none is left.
    pub fn batch(
        &self,
        indices: &[usize],
        pad_id: u32,
        device: &Device,
    ) -> Result<Option<AudioToTextBatch>> {
        let skip = self.on_bad_sample == OnBadSample::Skip;
        let wanted: Vec<usize> = if skip {
            indices
                .iter()
                .copied()
                .filter(|&i| !self.has_failed(i))
                .collect()
        } else {
            indices.to_vec()
        };
        let decoded: Vec<(usize, Result<Cow<'_, [f32]>>)> = if self.audio.is_some() {
            wanted.iter().map(|&i| (i, self.audio(i))).collect()
        } else {
            wanted.par_iter().map(|&i| (i, self.audio(i))).collect()
        };
        let mut items: Vec<(Cow<'_, [f32]>, &[u32])> = Vec::with_capacity(decoded.len());
        for (i, audio) in decoded {
            match audio {
                Ok(a) => items.push((a, self.tokens(i)?)),
                Err(e) if !skip => return Err(e),
                Err(e) => {
                    let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
                    failed.insert(i, e.to_string());
                    warn_skip(failed.len(), &e);
                }
            }
        }
        if items.is_empty() {
            return Ok(None);
        }
        let refs: Vec<(&[f32], &[u32])> = items.iter().map(|(a, y)| (a.as_ref(), *y)).collect();
        collate(&refs, pad_id, device).map(Some)
    }
}

/// The fewest CTC time steps that can emit `tokens`: one per label and a blank between each
/// pair of equal neighbours.
pub fn ctc_min_steps(tokens: &[u32]) -> usize {
    tokens.len() + tokens.windows(2).filter(|w| w[0] == w[1]).count()
}

/// Utterances skipped before the warnings stop naming each one.
const MAX_SKIP_WARNINGS: usize = 10;

/// Warns about the `nth` (1-based) skipped utterance, up to [`MAX_SKIP_WARNINGS`].
fn warn_skip(nth: usize, e: &Error) {
    if nth <= MAX_SKIP_WARNINGS {
        tracing::warn!("skipping utterance: {e}");
    }
    if nth == MAX_SKIP_WARNINGS {
        tracing::warn!("further skipped utterances are only counted (see the dataset summary)");
    }
}

/// Decodes one utterance, naming its manifest line on failure.
fn load_sample(s: &AudioToTextSample, sample_rate: u32) -> Result<Vec<f32>> {
    AudioSegment::from_file(&s.audio_filepath, Some(sample_rate), s.offset, s.duration)
        .map(AudioSegment::into_samples)
        .map_err(|e| match e {
            Error::Audio { path, msg } => Error::Audio {
                path,
                msg: format!("{msg} (utterance of {}:{})", s.manifest.display(), s.line),
            },
            Error::Io { path, source } => Error::Audio {
                path,
                msg: format!(
                    "cannot read: {source} (utterance of {}:{})",
                    s.manifest.display(),
                    s.line
                ),
            },
            other => other,
        })
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
    fn config_defaults_match_nemo() -> Result<()> {
        let c: AudioToTextDataLayerConfig =
            serde_json::from_str(r#"{"manifest_filepath": "a.json,b.json", "batch_size": 4}"#)
                .map_err(|e| Error::Config {
                    key: "json".into(),
                    msg: e.to_string(),
                })?;
        assert_eq!(c, AudioToTextDataLayerConfig::new("a.json,b.json", 4));
        assert_eq!(c.sample_rate, 16000);
        assert_eq!(c.min_duration, Some(0.1));
        assert!(c.shuffle && c.normalize_transcripts && !c.drop_last);
        assert_eq!(c.labels.len(), 28);
        assert_eq!(
            c.manifest_paths(),
            vec![PathBuf::from("a.json"), PathBuf::from("b.json")]
        );
        let unknown = serde_json::from_str::<AudioToTextDataLayerConfig>(
            r#"{"manifest_filepath": "a", "batch_size": 4, "shufle": true}"#,
        );
        assert!(unknown.is_err());
        let skip: AudioToTextDataLayerConfig = serde_json::from_str(
            r#"{"manifest_filepath": "a", "batch_size": 4, "on_bad_sample": "skip"}"#,
        )
        .map_err(|e| Error::Config {
            key: "json".into(),
            msg: e.to_string(),
        })?;
        assert_eq!(skip.on_bad_sample, OnBadSample::Skip);
        Ok(())
    }

    #[test]
    fn config_validation() {
        let mut c = AudioToTextDataLayerConfig::new("a.json", 4);
        c.trim_silence = true;
        assert!(c.validate().is_err());
        let mut c = AudioToTextDataLayerConfig::new("a.json", 0);
        assert!(c.validate().is_err());
        c.batch_size = 1;
        c.min_duration = Some(2.0);
        c.max_duration = Some(1.0);
        assert!(c.validate().is_err());
    }

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
