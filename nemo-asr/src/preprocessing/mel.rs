//! NeMo's `AudioToMelSpectrogramPreprocessor`: batched audio `(B, T)` to normalized log-mel
//! features `(B, D, T')` and their frame counts `(B)`.
//!
//! The pipeline follows NeMo's `FilterbankFeatures`
//! (`nemo/collections/asr/parts/preprocessing/features.py` at NeMo commit `8cfedd72`, 2025),
//! for each row of the batch:
//!
//! 1. dither (training only): `x += dither * N(0, 1)`;
//! 2. preemphasis `y[0] = x[0]`, `y[t] = x[t] - preemph * x[t - 1]`, and every sample at or after
//!    the row's length set to zero, so padding never leaks into features (NeMo zeroes them only
//!    when `preemph` is set, and with `exact_pad` it counts `len` in the padded signal, cutting
//!    the last `(n_fft - hop) / 2` real samples; here the real end is used in every case);
//! 3. STFT with `torch.stft` semantics: `center=True` with zero (`"constant"`) padding of
//!    `n_fft / 2` on both sides (or, with `exact_pad`, `center=False` after padding
//!    `(n_fft - hop) / 2` zeros on both sides); a symmetric (`periodic=False`) window of
//!    `win_length` samples placed in the middle of the `n_fft` frame;
//! 4. magnitude `|X|`, raised to `mag_power` (2: power spectrum);
//! 5. Slaney-normalized mel filterbank as librosa builds it ([`MelFilterbank`]);
//! 6. `ln(x + 2^-24)` (`log_zero_guard_type: add`) or `ln(max(x, guard))` (`clamp`);
//! 7. per-feature normalization over the row's valid frames: masked mean and unbiased standard
//!    deviation, `(x - mean) / (std + 1e-5)` (a row with one frame gets `std = 0`);
//! 8. frames at or after the row's frame count set to `pad_value`, and the time axis padded
//!    with `pad_value` to a multiple of `pad_to`.
//!
//! Frame counts follow today's NeMo: `len' = floor((len + 2 * (n_fft / 2) - n_fft) / hop)`, i.e.
//! `len / hop` for even `n_fft`. NeMo 1.x–2.3 added 1 to this (and padded by reflection instead
//! of zeros); NeMo changed both in PR #13827 so features no longer depend on batch padding.
//! The output time axis holds all STFT frames of the padded batch,
//! `T' = round_up(1 + T / hop, pad_to)`.
//!
//! The preprocessor is computed on the CPU with `realfft` (one plan, reused), in parallel over
//! the batch and over frames with rayon; the result is moved to the input's device. It is not
//! differentiable (NeMo also runs it under `no_grad`): gradients do not flow into the signal.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use nemo_asr::preprocessing::AudioToMelSpectrogramPreprocessorConfig;
//! use rand::SeedableRng;
//! # fn main() -> nemo_asr::Result<()> {
//! let pre = AudioToMelSpectrogramPreprocessorConfig::default().init()?;
//! let signal = Tensor::zeros((2, 16_000), candle_core::DType::F32, &Device::Cpu)?; // (B, T)
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let (features, lengths) = pre.featurize(&signal, &[16_000, 8_000], true, &mut rng)?;
//! assert_eq!(features.dims(), &[2, 64, 112]); // (B, D, T'): 101 frames padded to 112
//! assert_eq!(lengths, vec![100, 50]);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use candle_core::{DType, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

use nemo_core::{Forward, ForwardCtx, neural_module};

use crate::preprocessing::mel_filters::{MelFilterbank, MelNorm};
use crate::{Error, Result};

/// NeMo's `CONSTANT`: added to the standard deviation in normalization.
const NORMALIZE_EPS: f64 = 1e-5;

/// Frames per rayon task when computing one row's STFT.
const FRAMES_PER_TASK: usize = 64;

/// The name this module reports in shape errors.
const OP: &str = "AudioToMelSpectrogramPreprocessor";

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

/// Settings of [`AudioToMelSpectrogramPreprocessor`], with NeMo's key names and defaults
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

fn config_error(key: &str, msg: impl Into<String>) -> Error {
    Error::Config {
        key: key.to_string(),
        msg: msg.into(),
    }
}

/// Resolves a length given in seconds or in samples, as NeMo does (`int(seconds * sr)`).
fn samples(
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

/// Per-task buffers of the STFT.
struct Scratch {
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl Scratch {
    fn new(fft: &dyn RealToComplex<f32>) -> Self {
        let spectrum = fft.make_output_vec();
        let power = vec![0f32; spectrum.len()];
        Self {
            frame: fft.make_input_vec(),
            spectrum,
            fft_scratch: fft.make_scratch_vec(),
            power,
        }
    }
}

/// NeMo's mel preprocessor: `(B, T)` audio to `(B, D, T')` features; see the module docs. As a
/// typed module its dither and narrowband augmentation run when the call trains, drawing from the
/// call's [`ForwardCtx`].
#[neural_module(
    inputs(
        input_signal: (B, T) AudioSignal{freq = {self.config.sample_rate}},
        length: (B) Lengths,
    ),
    outputs(
        processed_signal: (B, D = {self.config.features}, T) MelSpectrogram,
        processed_length: (B) Lengths,
    ),
)]
pub struct AudioToMelSpectrogramPreprocessor {
    config: AudioToMelSpectrogramPreprocessorConfig,
    win_length: usize,
    hop_length: usize,
    n_fft: usize,
    /// Zeros added before the first sample (the STFT's left padding).
    stft_pad: usize,
    /// The window zero-padded to `n_fft`, centred as `torch.stft` places it.
    window: Vec<f32>,
    /// First and one-past-last nonzero-capable index of `window`.
    window_span: (usize, usize),
    filterbank: MelFilterbank,
    fft: Arc<dyn RealToComplex<f32>>,
    log_guard: f32,
    /// First FFT bin zeroed by narrowband augmentation, when it is active.
    nb_max_bin: Option<usize>,
    span: tracing::Span,
}

impl AudioToMelSpectrogramPreprocessorConfig {
    /// Validates the settings and builds the preprocessor (window, mel filterbank, FFT plan).
    ///
    /// # Errors
    /// [`Error::Config`] naming the offending key; see [`AudioToMelSpectrogramPreprocessor`].
    pub fn init(&self) -> Result<AudioToMelSpectrogramPreprocessor> {
        AudioToMelSpectrogramPreprocessor::new(self.clone())
    }
}

impl Forward for AudioToMelSpectrogramPreprocessor {
    fn forward_tensors(
        &self,
        x: AudioToMelSpectrogramPreprocessorInputTensors,
        ctx: &ForwardCtx,
    ) -> nemo_core::Result<AudioToMelSpectrogramPreprocessorOutputTensors> {
        let mut rng = ctx.rng();
        let (processed_signal, processed_length) =
            self.featurize_tensors(&x.input_signal, &x.length, ctx.is_training(), &mut rng)?;
        Ok(AudioToMelSpectrogramPreprocessorOutputTensors {
            processed_signal,
            processed_length,
        })
    }
}

impl std::fmt::Debug for AudioToMelSpectrogramPreprocessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioToMelSpectrogramPreprocessor")
            .field("config", &self.config)
            .field("win_length", &self.win_length)
            .field("hop_length", &self.hop_length)
            .field("n_fft", &self.n_fft)
            .finish_non_exhaustive()
    }
}

impl AudioToMelSpectrogramPreprocessor {
    /// Validates `config` and builds the window, mel filterbank and FFT plan.
    ///
    /// Errors ([`Error::Config`]) name the offending key: sizes that resolve to zero samples, a
    /// window longer than `n_fft`, non-positive `mag_power` or guard, negative `dither`,
    /// `frame_splicing != 1`, `use_torchaudio`, an empty or inverted frequency range, ...
    fn new(config: AudioToMelSpectrogramPreprocessorConfig) -> Result<Self> {
        let c = &config;
        if c.sample_rate == 0 {
            return Err(config_error("sample_rate", "must be > 0, got 0"));
        }
        let win_length = samples(
            c.window_size,
            c.n_window_size,
            c.sample_rate,
            ("window_size", "n_window_size"),
        )?;
        let hop_length = samples(
            c.window_stride,
            c.n_window_stride,
            c.sample_rate,
            ("window_stride", "n_window_stride"),
        )?;
        let n_fft = match c.n_fft {
            Some(0) => return Err(config_error("n_fft", "must be > 0, got 0")),
            Some(n) => n,
            None => win_length.next_power_of_two(),
        };
        if win_length > n_fft {
            return Err(config_error(
                "n_fft",
                format!("must be >= the window length ({win_length} samples), got {n_fft}"),
            ));
        }
        if c.features == 0 {
            return Err(config_error("features", "must be > 0, got 0"));
        }
        if c.frame_splicing != 1 {
            return Err(config_error(
                "frame_splicing",
                format!("only 1 is supported, got {}", c.frame_splicing),
            ));
        }
        if c.use_torchaudio {
            return Err(config_error("use_torchaudio", "only `false` is supported"));
        }
        if c.exact_pad && hop_length % 2 == 1 {
            return Err(config_error(
                "exact_pad",
                format!("needs an even hop length, got {hop_length} samples"),
            ));
        }
        if let Some(p) = c.preemph
            && !p.is_finite()
        {
            return Err(config_error("preemph", format!("must be finite, got {p}")));
        }
        if !(c.dither.is_finite() && c.dither >= 0.0) {
            return Err(config_error(
                "dither",
                format!("must be >= 0, got {}", c.dither),
            ));
        }
        if !(c.mag_power.is_finite() && c.mag_power > 0.0) {
            return Err(config_error(
                "mag_power",
                format!("must be > 0, got {}", c.mag_power),
            ));
        }
        let log_guard = c.log_zero_guard_value.value();
        if c.log && !(log_guard.is_finite() && log_guard > 0.0) {
            return Err(config_error(
                "log_zero_guard_value",
                format!("must be > 0 as an f32, got {:?}", c.log_zero_guard_value),
            ));
        }
        if !c.pad_value.is_finite() {
            return Err(config_error(
                "pad_value",
                format!("must be finite, got {}", c.pad_value),
            ));
        }
        if !(0.0..=1.0).contains(&c.nb_augmentation_prob) {
            return Err(config_error(
                "nb_augmentation_prob",
                format!("must be in [0, 1], got {}", c.nb_augmentation_prob),
            ));
        }
        let nyquist = f64::from(c.sample_rate) / 2.0;
        // NeMo: `highfreq or sample_rate / 2`, so 0 also means Nyquist.
        let highfreq = match c.highfreq {
            Some(h) if h != 0.0 => h,
            _ => nyquist,
        };
        let filterbank = MelFilterbank::new(
            f64::from(c.sample_rate),
            n_fft,
            c.features,
            c.lowfreq,
            highfreq,
            c.mel_norm,
        )?;
        if filterbank.empty_bands() > 0 {
            tracing::warn!(
                empty = filterbank.empty_bands(),
                features = c.features,
                n_fft,
                "some mel bands cover no FFT bin; use fewer `features` or a larger `n_fft`"
            );
        }
        if c.stft_conv || c.stft_exact_pad {
            tracing::warn!("`stft_conv` and `stft_exact_pad` are deprecated and ignored");
        }
        let nb_max_bin = if c.nb_augmentation_prob > 0.0 && c.nb_max_freq < nyquist {
            if !(c.nb_max_freq.is_finite() && c.nb_max_freq >= 0.0) {
                return Err(config_error(
                    "nb_max_freq",
                    format!("must be >= 0, got {}", c.nb_max_freq),
                ));
            }
            Some((c.nb_max_freq / f64::from(c.sample_rate) * n_fft as f64) as usize)
        } else {
            None
        };

        // torch.stft zero-pads a shorter window to n_fft, centred: left = (n_fft - win) / 2.
        let offset = (n_fft - win_length) / 2;
        let mut window = vec![0f32; n_fft];
        for (w, v) in window
            .iter_mut()
            .skip(offset)
            .zip(c.window.symmetric(win_length))
        {
            *w = v as f32;
        }
        let stft_pad = if c.exact_pad {
            (n_fft - hop_length) / 2
        } else {
            n_fft / 2
        };
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        Ok(Self {
            win_length,
            hop_length,
            n_fft,
            stft_pad,
            window,
            window_span: (offset, offset + win_length),
            filterbank,
            fft,
            log_guard,
            nb_max_bin,
            span: tracing::span!(tracing::Level::TRACE, "mel-preprocessor"),
            config,
        })
    }

    /// The configuration this preprocessor was built from.
    pub fn config(&self) -> &AudioToMelSpectrogramPreprocessorConfig {
        &self.config
    }

    /// Window length in samples.
    pub fn win_length(&self) -> usize {
        self.win_length
    }

    /// Hop length in samples.
    pub fn hop_length(&self) -> usize {
        self.hop_length
    }

    /// FFT size.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// The mel filterbank.
    pub fn filterbank(&self) -> &MelFilterbank {
        &self.filterbank
    }

    /// The mel filterbank as a `(D, n_fft / 2 + 1)` f32 tensor on the CPU (NeMo's `filter_banks`).
    pub fn filter_banks(&self) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            self.filterbank.weights(),
            (self.filterbank.n_mels(), self.filterbank.n_bins()),
            &candle_core::Device::Cpu,
        )?)
    }

    /// Valid frames of a row of `len` samples (NeMo's `get_seq_len`):
    /// `floor((len + 2 * pad - n_fft) / hop)`, at least 0, where `pad` is `n_fft / 2` (or
    /// `(n_fft - hop) / 2` with `exact_pad`).
    pub fn get_seq_len(&self, len: usize) -> usize {
        (len + 2 * self.stft_pad).saturating_sub(self.n_fft) / self.hop_length
    }

    /// STFT frames of a batch padded to `max_len` samples, before `pad_to` padding.
    pub fn num_frames(&self, max_len: usize) -> usize {
        let padded = max_len + 2 * self.stft_pad;
        if padded < self.n_fft {
            0
        } else {
            (padded - self.n_fft) / self.hop_length + 1
        }
    }

    /// Output time size `T'` for a batch padded to `max_len` samples: [`Self::num_frames`]
    /// rounded up to a multiple of `pad_to`.
    pub fn output_len(&self, max_len: usize) -> usize {
        let frames = self.num_frames(max_len);
        match self.config.pad_to {
            0 => frames,
            p => frames.div_ceil(p) * p,
        }
    }

    /// Features of a batch.
    ///
    /// # Shapes
    /// - `signal`: `(B, T)` audio (any float dtype; computed in f32), rows padded past their
    ///   length with anything;
    /// - `lengths`: `B` valid sample counts, each `<= T`;
    /// - returns `(B, D, T')` f32 features on `signal`'s device and the `B` frame counts.
    ///
    /// `train` turns on dither and narrowband augmentation; their noise is drawn from generators
    /// seeded from `rng` (one seed per row, in row order), so a seeded `rng` reproduces a run.
    /// In evaluation `rng` is not used.
    pub fn featurize<R: Rng + ?Sized>(
        &self,
        signal: &Tensor,
        lengths: &[usize],
        train: bool,
        rng: &mut R,
    ) -> Result<(Tensor, Vec<usize>)> {
        let _enter = self.span.enter();
        let (batch, max_len) = signal.dims2().map_err(|_| Error::Shape {
            op: OP,
            msg: format!("expected a (B, T) signal, got shape {:?}", signal.dims()),
        })?;
        if lengths.len() != batch {
            return Err(Error::Shape {
                op: OP,
                msg: format!("{} lengths for a batch of {batch}", lengths.len()),
            });
        }
        if let Some((i, &len)) = lengths.iter().enumerate().find(|&(_, &l)| l > max_len) {
            return Err(Error::Shape {
                op: OP,
                msg: format!("length[{i}] = {len} exceeds the signal's {max_len} samples"),
            });
        }
        let n_mels = self.filterbank.n_mels();
        let t_out = self.output_len(max_len);
        let seq_lens: Vec<usize> = lengths.iter().map(|&l| self.get_seq_len(l)).collect();
        let device = signal.device();
        if batch == 0 || t_out == 0 {
            let empty = Tensor::zeros((batch, n_mels, t_out), DType::F32, device)?;
            return Ok((empty, seq_lens));
        }
        let augment = train && (self.config.dither > 0.0 || self.nb_max_bin.is_some());
        let seeds: Vec<Option<u64>> = (0..batch)
            .map(|_| augment.then(|| rng.random::<u64>()))
            .collect();
        let audio = signal
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;

        let mut out = vec![0f32; batch * n_mels * t_out];
        out.par_chunks_mut(n_mels * t_out)
            .zip(lengths.par_iter().zip(&seq_lens).zip(&seeds))
            .enumerate()
            .try_for_each(|(b, (dst, ((&len, &frames), &seed)))| {
                let row = audio.get(b * max_len..b * max_len + len).unwrap_or(&[]);
                self.row_features(row, frames, seed, t_out, dst)
            })?;
        let features = Tensor::from_vec(out, (batch, n_mels, t_out), device)?;
        Ok((features, seq_lens))
    }

    /// [`Self::featurize`] with the lengths as a `(B)` integer tensor; the frame counts come back
    /// in the same dtype and on the same device.
    pub fn featurize_tensors<R: Rng + ?Sized>(
        &self,
        signal: &Tensor,
        lengths: &Tensor,
        train: bool,
        rng: &mut R,
    ) -> Result<(Tensor, Tensor)> {
        let as_i64 = lengths
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()
            .map_err(|_| Error::Shape {
                op: OP,
                msg: format!("expected (B) lengths, got shape {:?}", lengths.dims()),
            })?;
        let lens = as_i64
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                usize::try_from(l).map_err(|_| Error::Shape {
                    op: OP,
                    msg: format!("length[{i}] = {l} is negative"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (features, frames) = self.featurize(signal, &lens, train, rng)?;
        let frames: Vec<i64> = frames.iter().map(|&f| f as i64).collect();
        let n = frames.len();
        let frames = Tensor::from_vec(frames, n, lengths.device())?.to_dtype(lengths.dtype())?;
        Ok((features, frames))
    }

    /// One row: `row` holds its valid samples, `frames` its valid frame count; writes the
    /// `(D, T')` features into `dst`.
    fn row_features(
        &self,
        row: &[f32],
        frames: usize,
        seed: Option<u64>,
        t_out: usize,
        dst: &mut [f32],
    ) -> Result<()> {
        let n_mels = self.filterbank.n_mels();
        let mut noise_rng = seed.map(ChaCha8Rng::seed_from_u64);
        let mut x = row.to_vec();
        if let Some(g) = noise_rng.as_mut()
            && self.config.dither > 0.0
        {
            add_gaussian_noise(&mut x, self.config.dither, g);
        }
        let narrowband = match (noise_rng.as_mut(), self.nb_max_bin) {
            (Some(g), Some(bin)) => g
                .random_bool(self.config.nb_augmentation_prob)
                .then_some(bin),
            _ => None,
        };
        if let Some(a) = self.config.preemph {
            let a = a as f32;
            let mut prev = 0.0;
            for v in x.iter_mut() {
                let cur = *v;
                *v = cur - a * prev;
                prev = cur;
            }
        }

        // Log-mel features, frame-major (frames, D).
        let mut feats = vec![0f32; frames * n_mels];
        feats
            .par_chunks_mut(FRAMES_PER_TASK * n_mels)
            .enumerate()
            .try_for_each_init(
                || Scratch::new(self.fft.as_ref()),
                |scratch, (task, chunk)| {
                    for (i, mel) in chunk.chunks_exact_mut(n_mels).enumerate() {
                        let t = task * FRAMES_PER_TASK + i;
                        self.frame_features(&x, t, narrowband, scratch, mel)?;
                    }
                    Ok::<(), Error>(())
                },
            )?;

        let pad = self.config.pad_value as f32;
        let stats = match self.config.normalize {
            Some(Normalize::PerFeature) => per_feature_stats(&feats, n_mels, frames),
            Some(Normalize::AllFeatures) => {
                let (mean, inv) = mean_inv_std(feats.iter().copied(), feats.len());
                vec![(mean, inv); n_mels]
            }
            None => vec![(0.0, 1.0); n_mels],
        };
        for (d, (dst_row, &(mean, inv))) in dst.chunks_exact_mut(t_out).zip(&stats).enumerate() {
            let valid = feats.iter().skip(d).step_by(n_mels);
            let (head, tail) = dst_row.split_at_mut(frames.min(t_out));
            for (o, &v) in head.iter_mut().zip(valid) {
                *o = ((f64::from(v) - mean) * inv) as f32;
            }
            tail.fill(pad);
        }
        Ok(())
    }

    /// The `D` mel features of frame `t` of the preemphasized row `x`.
    fn frame_features(
        &self,
        x: &[f32],
        t: usize,
        narrowband: Option<usize>,
        s: &mut Scratch,
        mel: &mut [f32],
    ) -> Result<()> {
        // Frame t covers samples [start, start + n_fft) of the row; outside [0, len) is zero.
        let start = (t * self.hop_length) as isize - self.stft_pad as isize;
        let (w_lo, w_hi) = self.window_span;
        let lo = (w_lo as isize).max(-start).max(0) as usize;
        let hi = (w_hi as isize)
            .min(x.len() as isize - start)
            .max(lo as isize) as usize;
        s.frame.fill(0.0);
        let src = x.get((start + lo as isize) as usize..).unwrap_or(&[]);
        if let (Some(dst), Some(win)) = (s.frame.get_mut(lo..hi), self.window.get(lo..hi)) {
            for ((d, &w), &v) in dst.iter_mut().zip(win).zip(src) {
                *d = v * w;
            }
        }
        self.fft
            .process_with_scratch(&mut s.frame, &mut s.spectrum, &mut s.fft_scratch)
            .map_err(|e| Error::Shape {
                op: OP,
                msg: format!("fft: {e}"),
            })?;
        let power = self.config.mag_power;
        for (p, c) in s.power.iter_mut().zip(&s.spectrum) {
            let sq = c.re * c.re + c.im * c.im;
            *p = if power == 2.0 {
                sq
            } else if power == 1.0 {
                sq.sqrt()
            } else {
                sq.sqrt().powf(power as f32)
            };
        }
        if let Some(bin) = narrowband
            && let Some(high) = s.power.get_mut(bin..)
        {
            high.fill(0.0);
        }
        self.filterbank.apply(&s.power, mel);
        if self.config.log {
            let g = self.log_guard;
            match self.config.log_zero_guard_type {
                LogZeroGuardType::Add => mel.iter_mut().for_each(|m| *m = (*m + g).ln()),
                LogZeroGuardType::Clamp => mel.iter_mut().for_each(|m| *m = m.max(g).ln()),
            }
        }
        Ok(())
    }
}

/// Adds `scale * N(0, 1)` noise to every sample (Marsaglia's polar method on `rng`, in f32:
/// no trigonometry, one log per pair of samples).
fn add_gaussian_noise(x: &mut [f32], scale: f64, rng: &mut ChaCha8Rng) {
    let scale = scale as f32;
    for pair in x.chunks_mut(2) {
        let (u, v, s) = loop {
            let u = rng.random::<f32>() * 2.0 - 1.0;
            let v = rng.random::<f32>() * 2.0 - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                break (u, v, s);
            }
        };
        let f = scale * (-2.0 * s.ln() / s).sqrt();
        for (x, n) in pair.iter_mut().zip([u * f, v * f]) {
            *x += n;
        }
    }
}

/// Mean and `1 / (unbiased std + 1e-5)` of `n` values (std 0 for fewer than two values).
fn mean_inv_std(values: impl Iterator<Item = f32> + Clone, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let mean = values.clone().map(f64::from).sum::<f64>() / n as f64;
    let std = if n > 1 {
        let ss: f64 = values.map(|v| (f64::from(v) - mean).powi(2)).sum();
        (ss / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (mean, 1.0 / (std + NORMALIZE_EPS))
}

/// Per-band mean and inverse std over the valid frames of a frame-major `(frames, D)` buffer.
fn per_feature_stats(feats: &[f32], n_mels: usize, frames: usize) -> Vec<(f64, f64)> {
    let mut mean = vec![0f64; n_mels];
    for frame in feats.chunks_exact(n_mels) {
        for (m, &v) in mean.iter_mut().zip(frame) {
            *m += f64::from(v);
        }
    }
    let n = frames.max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    let mut ss = vec![0f64; n_mels];
    for frame in feats.chunks_exact(n_mels) {
        for ((s, &v), &m) in ss.iter_mut().zip(frame).zip(&mean) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    mean.into_iter()
        .zip(ss)
        .map(|(m, s)| {
            let std = if frames > 1 {
                (s / (frames - 1) as f64).sqrt()
            } else {
                0.0
            };
            (m, 1.0 / (std + NORMALIZE_EPS))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_noise_has_unit_moments() {
        let mut x = vec![0f32; 200_001];
        add_gaussian_noise(&mut x, 2.0, &mut ChaCha8Rng::seed_from_u64(1));
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let kurt = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(4))
            .sum::<f64>()
            / n
            / (var * var);
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 4.0).abs() < 0.05, "var {var}");
        assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
    }

    #[test]
    fn defaults_are_nemo_defaults() -> Result<()> {
        let c = AudioToMelSpectrogramPreprocessorConfig::default();
        assert_eq!(c.sample_rate, 16_000);
        assert_eq!((c.window_size, c.window_stride), (Some(0.02), Some(0.01)));
        assert_eq!(c.window, WindowType::Hann);
        assert_eq!(c.normalize, Some(Normalize::PerFeature));
        assert_eq!((c.preemph, c.features, c.dither), (Some(0.97), 64, 1e-5));
        assert_eq!(c.log_zero_guard_value.value(), 2f32.powi(-24));
        assert_eq!((c.pad_to, c.pad_value, c.mag_power), (16, 0.0, 2.0));
        let p = AudioToMelSpectrogramPreprocessor::new(c)?;
        assert_eq!((p.win_length(), p.hop_length(), p.n_fft()), (320, 160, 512));
        Ok(())
    }

    #[test]
    fn symmetric_hann_matches_formula() {
        let w = WindowType::Hann.symmetric(5);
        let want = [0.0, 0.5, 1.0, 0.5, 0.0];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
        assert_eq!(WindowType::Bartlett.symmetric(1), vec![1.0]);
    }

    #[test]
    fn window_is_centred_in_the_frame() -> Result<()> {
        let p = AudioToMelSpectrogramPreprocessor::new(Default::default())?;
        assert_eq!(p.window_span, (96, 416));
        assert_eq!(p.window.iter().filter(|&&w| w != 0.0).count(), 318);
        Ok(())
    }

    #[test]
    fn lengths_follow_nemo_formula() -> Result<()> {
        let p = AudioToMelSpectrogramPreprocessor::new(Default::default())?;
        assert_eq!(p.get_seq_len(16_000), 100);
        assert_eq!(p.get_seq_len(16_159), 100);
        assert_eq!(p.get_seq_len(159), 0);
        assert_eq!(p.num_frames(16_000), 101);
        assert_eq!(p.output_len(16_000), 112);
        let exact =
            AudioToMelSpectrogramPreprocessor::new(AudioToMelSpectrogramPreprocessorConfig {
                exact_pad: true,
                ..Default::default()
            })?;
        // pad (512 - 160) / 2 = 176 each side: floor((16000 + 352 - 512) / 160) = 99.
        assert_eq!(exact.get_seq_len(16_000), 99);
        assert_eq!(exact.num_frames(16_000), 100);
        Ok(())
    }

    #[test]
    fn mean_inv_std_is_unbiased() {
        let (m, inv) = mean_inv_std([1.0f32, 2.0, 3.0, 4.0].into_iter(), 4);
        assert!((m - 2.5).abs() < 1e-12);
        let std = (5.0f64 / 3.0).sqrt();
        assert!((inv - 1.0 / (std + 1e-5)).abs() < 1e-9);
        assert_eq!(mean_inv_std([7.0f32].into_iter(), 1), (7.0, 1.0 / 1e-5));
    }
}
