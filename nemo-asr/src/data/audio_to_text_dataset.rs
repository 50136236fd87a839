//! [`AudioToTextDataset`]: the utterances of one or more NeMo manifests with encoded transcripts,
//! filtered by duration, checked for audio, preloaded or decoded per batch, with a
//! [`DatasetSummary`] of what was kept, filtered and skipped.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use super::audio::AudioSegment;
use super::audio_to_text_config::{AudioToTextDataLayerConfig, OnBadSample};
use super::manifest::Manifest;
use super::vocabulary::{Vocabulary, normalize_transcript};
use crate::{Error, Result};

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

/// One decoded utterance of a batch: its audio and its label ids.
pub(crate) type DecodedUtterance<'a> = (Cow<'a, [f32]>, &'a [u32]);

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

    pub(crate) fn failed_count(&self) -> usize {
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

    /// Decodes utterances `indices` (in parallel when not preloaded) with their label ids. With
    /// `on_bad_sample: skip`, utterances that fail to decode are left out (and remembered, so
    /// later batches skip them without decoding).
    pub(crate) fn decode_batch(&self, indices: &[usize]) -> Result<Vec<DecodedUtterance<'_>>> {
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
        let mut items: Vec<DecodedUtterance<'_>> = Vec::with_capacity(decoded.len());
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
        Ok(items)
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
