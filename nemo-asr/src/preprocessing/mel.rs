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

use nemo_core::{Forward, ForwardCtx, neural_module};

pub use super::mel_config::{
    AudioToMelSpectrogramPreprocessorConfig, LogZeroGuardName, LogZeroGuardType, LogZeroGuardValue,
    Normalize, WindowType,
};
use super::mel_config::{config_error, samples};
use super::normalize::{mean_inv_std, per_feature_stats};
use crate::preprocessing::mel_filters::MelFilterbank;
use crate::{Error, Result};

/// Frames per rayon task when computing one row's STFT.
const FRAMES_PER_TASK: usize = 64;

/// The name this module reports in shape errors.
const OP: &str = "AudioToMelSpectrogramPreprocessor";

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
}
