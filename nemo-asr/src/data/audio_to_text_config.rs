//! [`AudioToTextDataLayerConfig`]: the settings of the ASR data layer, with NeMo 0.x's keys and
//! defaults, and what to do with an utterance that cannot be used ([`OnBadSample`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::vocabulary::ENGLISH_LABELS;
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

/// Settings of [`AudioToTextDataLayer`](super::AudioToTextDataLayer), with NeMo 0.x's keys and defaults.
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
    /// Clean transcripts with [`normalize_transcript`](super::normalize_transcript) before encoding (default true); when
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

    pub(crate) fn validate(&self) -> Result<()> {
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
}
