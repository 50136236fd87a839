//! [`AudioToMelSpectrogramPreprocessorConfig`]: the mel preprocessor's settings with NeMo's keys
//! and defaults, the enums of its choices (window, normalization, log guard), and the resolution
//! of lengths given in seconds or in samples.

use serde::{Deserialize, Serialize};

use super::mel_filters::MelNorm;
use crate::{Error, Result};

/// Window function applied to each STFT frame (NeMo's `window` key). All are symmetric, as
/// NeMo builds them with `torch.*_window(win_length, periodic=False)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowType {
    /// `0.5 - 0.5 cos(2 pi n / (N - 1))`.
    Hann,
    /// `0.54 - 0.46 cos(2 pi n / (N - 1))`.
    Hamming,
    /// `0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1))`.
    Blackman,
    /// `1 - |2 n / (N - 1) - 1|`.
    Bartlett,
}

impl WindowType {
    /// The symmetric window of `len` samples, computed in `f64`.
    pub fn symmetric(self, len: usize) -> Vec<f64> {
        if len == 1 {
            return vec![1.0];
        }
        let denom = len.saturating_sub(1) as f64;
        let tau = 2.0 * std::f64::consts::PI;
        (0..len)
            .map(|n| {
                let x = n as f64 / denom;
                match self {
                    Self::Hann => 0.5 - 0.5 * (tau * x).cos(),
                    Self::Hamming => 0.54 - 0.46 * (tau * x).cos(),
                    Self::Blackman => 0.42 - 0.5 * (tau * x).cos() + 0.08 * (2.0 * tau * x).cos(),
                    Self::Bartlett => 1.0 - (2.0 * x - 1.0).abs(),
                }
            })
            .collect()
    }
}

/// Feature normalization (NeMo's `normalize` key; `null` disables it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Each mel band of each row to zero mean and unit (unbiased) standard deviation over the
    /// row's valid frames.
    PerFeature,
    /// Each row as a whole over its valid frames.
    AllFeatures,
}

/// How the log avoids zero (NeMo's `log_zero_guard_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogZeroGuardType {
    /// `ln(x + guard)`.
    Add,
    /// `ln(max(x, guard))`.
    Clamp,
}

/// Named guard values NeMo accepts (`torch.finfo(float32)` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogZeroGuardName {
    /// Smallest normal `f32`, `1.1754944e-38`.
    Tiny,
    /// `f32` machine epsilon, `1.1920929e-7`.
    Eps,
}

/// The log guard (NeMo's `log_zero_guard_value`): a number, `"tiny"` or `"eps"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogZeroGuardValue {
    /// An explicit value, `2^-24` by default.
    Value(f64),
    /// A named `f32` constant.
    Named(LogZeroGuardName),
}

impl LogZeroGuardValue {
    /// The guard as an `f32`.
    pub fn value(self) -> f32 {
        match self {
            Self::Value(v) => v as f32,
            Self::Named(LogZeroGuardName::Tiny) => f32::MIN_POSITIVE,
            Self::Named(LogZeroGuardName::Eps) => f32::EPSILON,
        }
    }
}

/// Settings of [`AudioToMelSpectrogramPreprocessor`](super::AudioToMelSpectrogramPreprocessor), with NeMo's key names and defaults
/// (`AudioToMelSpectrogramPreprocessorConfig` in `nemo/collections/asr/modules/audio_preprocessing.py`).
///
/// Unknown keys are rejected. Keys NeMo keeps only for compatibility (`stft_conv`,
/// `stft_exact_pad`, `rng`) are accepted and ignored, as NeMo does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioToMelSpectrogramPreprocessorConfig {
    /// Hydra's class path (`_target_`), kept only so NeMo YAML parses; not used.
    #[serde(rename = "_target_", skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Sample rate of the input audio in Hz. Default 16000.
    pub sample_rate: u32,
    /// Window length in seconds; `int(window_size * sample_rate)` samples. Default 0.02.
    /// Set it to `None` when giving `n_window_size`.
    pub window_size: Option<f64>,
    /// Hop length in seconds; `int(window_stride * sample_rate)` samples. Default 0.01.
    /// Set it to `None` when giving `n_window_stride`.
    pub window_stride: Option<f64>,
    /// Window length in samples, instead of `window_size`. Default `None`.
    pub n_window_size: Option<usize>,
    /// Hop length in samples, instead of `window_stride`. Default `None`.
    pub n_window_stride: Option<usize>,
    /// Window function. Default `hann`.
    pub window: WindowType,
    /// Feature normalization, `None` to disable. Default `per_feature`.
    pub normalize: Option<Normalize>,
    /// FFT size; `None` means the smallest power of two >= the window length (512 for the
    /// default 320-sample window). Default `None`.
    pub n_fft: Option<usize>,
    /// Preemphasis coefficient, `None` to disable. Default 0.97.
    pub preemph: Option<f64>,
    /// Number of mel bands `D`. Default 64.
    pub features: usize,
    /// Lowest mel frequency in Hz. Default 0.
    pub lowfreq: f64,
    /// Highest mel frequency in Hz; `None` (or 0) means `sample_rate / 2`. Default `None`.
    pub highfreq: Option<f64>,
    /// Take the log of the mel energies. Default true.
    pub log: bool,
    /// How the log avoids zero. Default `add`.
    pub log_zero_guard_type: LogZeroGuardType,
    /// The guard. Default `2^-24`.
    pub log_zero_guard_value: LogZeroGuardValue,
    /// Standard deviation of the white noise added in training. Default 1e-5.
    pub dither: f64,
    /// Pad the time axis to a multiple of this (0: no padding). Default 16. NeMo's `"max"` is
    /// not supported (it fails inside NeMo too).
    pub pad_to: usize,
    /// Frame stacking factor; only 1 is supported. Default 1.
    pub frame_splicing: usize,
    /// `center=False` STFT after padding `(n_fft - hop) / 2` zeros on each side. Default false.
    pub exact_pad: bool,
    /// Value of frames past a row's length and of the `pad_to` padding. Default 0.
    pub pad_value: f64,
    /// Exponent applied to the STFT magnitude (2: power spectrum). Default 2.
    pub mag_power: f64,
    /// Probability, per row in training, of zeroing all FFT bins above `nb_max_freq`
    /// (narrowband augmentation). Default 0.
    pub nb_augmentation_prob: f64,
    /// Cut-off of the narrowband augmentation in Hz. Default 4000.
    pub nb_max_freq: f64,
    /// Use torchaudio's implementation in NeMo; only `false` is supported. Default false.
    pub use_torchaudio: bool,
    /// Mel filter normalization: `slaney` or `None`. Default `slaney`.
    pub mel_norm: Option<MelNorm>,
    /// Deprecated in NeMo and ignored there; ignored here. Default false.
    pub stft_exact_pad: bool,
    /// Deprecated in NeMo and ignored there; ignored here. Default false.
    pub stft_conv: bool,
    /// NeMo's Python random generator; ignored (randomness comes from `forward`'s `rng`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rng: Option<String>,
}

impl Default for AudioToMelSpectrogramPreprocessorConfig {
    fn default() -> Self {
        Self {
            target: None,
            sample_rate: 16_000,
            window_size: Some(0.02),
            window_stride: Some(0.01),
            n_window_size: None,
            n_window_stride: None,
            window: WindowType::Hann,
            normalize: Some(Normalize::PerFeature),
            n_fft: None,
            preemph: Some(0.97),
            features: 64,
            lowfreq: 0.0,
            highfreq: None,
            log: true,
            log_zero_guard_type: LogZeroGuardType::Add,
            log_zero_guard_value: LogZeroGuardValue::Value(2f64.powi(-24)),
            dither: 1e-5,
            pad_to: 16,
            frame_splicing: 1,
            exact_pad: false,
            pad_value: 0.0,
            mag_power: 2.0,
            nb_augmentation_prob: 0.0,
            nb_max_freq: 4000.0,
            use_torchaudio: false,
            mel_norm: Some(MelNorm::Slaney),
            stft_exact_pad: false,
            stft_conv: false,
            rng: None,
        }
    }
}

pub(crate) fn config_error(key: &str, msg: impl Into<String>) -> Error {
    Error::Config {
        key: key.to_string(),
        msg: msg.into(),
    }
}

/// Resolves a length given in seconds or in samples, as NeMo does (`int(seconds * sr)`).
pub(crate) fn samples(
    seconds: Option<f64>,
    count: Option<usize>,
    sample_rate: u32,
    (seconds_key, count_key): (&str, &str),
) -> Result<usize> {
    let n = match (seconds, count) {
        (Some(s), Some(_)) if s != 0.0 => {
            return Err(config_error(
                seconds_key,
                format!(
                    "both `{seconds_key}` and `{count_key}` are set; set `{seconds_key}` to null"
                ),
            ));
        }
        (Some(s), None) if s != 0.0 => {
            if !(s.is_finite() && s > 0.0) {
                return Err(config_error(seconds_key, format!("must be > 0, got {s}")));
            }
            // Truncation toward zero, as Python's `int()`.
            (s * f64::from(sample_rate)) as usize
        }
        (_, Some(n)) => n,
        _ => {
            return Err(config_error(
                seconds_key,
                format!("one of `{seconds_key}` and `{count_key}` must be set"),
            ));
        }
    };
    if n == 0 {
        let key = if count.is_some() {
            count_key
        } else {
            seconds_key
        };
        return Err(config_error(
            key,
            "resolves to 0 samples; must be at least 1",
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_hann_matches_formula() {
        let w = WindowType::Hann.symmetric(5);
        let want = [0.0, 0.5, 1.0, 0.5, 0.0];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
        assert_eq!(WindowType::Bartlett.symmetric(1), vec![1.0]);
    }
}
