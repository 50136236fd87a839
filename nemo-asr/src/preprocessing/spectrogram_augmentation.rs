//! SpecAugment and SpecCutout on `(B, D, T)` spectrograms: NeMo's `SpectrogramAugmentation`
//! (`nemo/collections/asr/modules/audio_preprocessing.py`, with `SpecAugment` and `SpecCutout`
//! from `nemo/collections/asr/parts/submodules/spectr_augment.py`).
//!
//! Per row `b` with `L = length[b]` valid frames:
//! - `rect_masks` rectangles (Cutout, <https://arxiv.org/abs/1708.04552>): frequency start
//!   uniform in `0..=D - rect_freq`, time start uniform in `0..=L - rect_time`, widths uniform
//!   in `0..=rect_freq` and `0..=rect_time`, clipped to `D` and `L`;
//! - `time_masks` time stripes (SpecAugment, <https://arxiv.org/abs/1904.08779>), as NeMo's
//!   vectorized code draws them: `width = floor(U * W)`, `start = floor(U' * (L - width))`, with
//!   `W = time_width` frames, or `time_width * L` when it is a fraction; `W` is capped at `L`;
//! - `freq_masks` frequency stripes: the same with `W = min(freq_width, D)` over `D` bins.
//!
//! Masked cells are set to `mask_value`. Unlike NeMo, nothing is ever masked at or past a row's
//! length: NeMo's frequency stripes run over the whole padded time axis, and its Cutout and an
//! absolute `time_width` larger than `L` can reach the padding.
//! Randomness comes from the caller's `rng`, so a seeded generator reproduces a run.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use nemo_asr::preprocessing::SpectrogramAugmentationConfig;
//! use rand::SeedableRng;
//! # fn main() -> nemo_asr::Result<()> {
//! let aug = SpectrogramAugmentationConfig::default().init()?;
//! let spec = Tensor::ones((2, 64, 100), candle_core::DType::F32, &Device::Cpu)?; // (B, D, T)
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let out = aug.augment(&spec, &[100, 60], &mut rng)?;
//! assert_eq!(out.dims(), &[2, 64, 100]);
//! # Ok(())
//! # }
//! ```

use std::ops::Range;

use candle_core::Tensor;
use rand::Rng;
use serde::{Deserialize, Serialize};

use nemo_core::{Forward, ForwardCtx, neural_module};

use crate::{Error, Result};

/// The name this module reports in shape errors.
const OP: &str = "SpecAugment";

/// Maximum width of a time mask (NeMo's `time_width`): an integer is a number of frames, a
/// float in `[0, 1]` a fraction of the row's length. In YAML/JSON, `10` is absolute and `0.05`
/// (or `1.0`) a fraction, as NeMo tells them apart by Python type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TimeWidth {
    /// At most this many frames.
    Absolute(usize),
    /// At most this fraction of the row's valid length.
    Fraction(f64),
}

/// Settings of [`SpectrogramAugmentation`], with NeMo's `SpectrogramAugmentation` key names.
///
/// The defaults are the SpecAugment values of NeMo's Conformer/Citrinet recipes (2 frequency
/// masks of up to 27 bins, 2 time masks of up to 5% of the length); NeMo's own class defaults
/// are all-off. [`SpectrogramAugmentationConfig::quartznet`] gives the QuartzNet 15x5 recipe (Cutout only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpectrogramAugmentationConfig {
    /// Hydra's class path (`_target_`), kept only so NeMo YAML parses; not used.
    #[serde(rename = "_target_", skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Frequency stripes per row. Default 2.
    pub freq_masks: usize,
    /// Time stripes per row. Default 2.
    pub time_masks: usize,
    /// Maximum width of a frequency stripe, in bins. Default 27.
    pub freq_width: usize,
    /// Maximum width of a time stripe. Default `Fraction(0.05)`.
    pub time_width: TimeWidth,
    /// Cutout rectangles per row. Default 0.
    pub rect_masks: usize,
    /// Maximum time extent of a rectangle, in frames. Default 5.
    pub rect_time: usize,
    /// Maximum frequency extent of a rectangle, in bins. Default 20.
    pub rect_freq: usize,
    /// Value written into masked cells. Default 0.
    pub mask_value: f64,
    /// NeMo's Python random generator; ignored (randomness comes from `forward`'s `rng`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rng: Option<String>,
    /// NeMo's GPU kernel switch; ignored. Default false.
    pub use_numba_spec_augment: bool,
    /// NeMo's implementation switch; ignored (the vectorized sampling is used). Default true.
    pub use_vectorized_spec_augment: bool,
}

impl Default for SpectrogramAugmentationConfig {
    fn default() -> Self {
        Self {
            target: None,
            freq_masks: 2,
            time_masks: 2,
            freq_width: 27,
            time_width: TimeWidth::Fraction(0.05),
            rect_masks: 0,
            rect_time: 5,
            rect_freq: 20,
            mask_value: 0.0,
            rng: None,
            use_numba_spec_augment: false,
            use_vectorized_spec_augment: true,
        }
    }
}

impl SpectrogramAugmentationConfig {
    /// QuartzNet 15x5's `spec_augment` (`examples/asr/conf/quartznet/quartznet_15x5.yaml`):
    /// 5 Cutout rectangles of up to 50 bins by 120 frames, no stripes.
    pub fn quartznet() -> Self {
        Self {
            freq_masks: 0,
            time_masks: 0,
            rect_masks: 5,
            rect_time: 120,
            rect_freq: 50,
            ..Self::default()
        }
    }
}

/// The masks drawn for one row; every range lies inside `0..D` (frequency) or `0..L` (time),
/// and frequency stripes cover only the row's `L` valid frames.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowMasks {
    /// The row's valid length `L`.
    pub length: usize,
    /// Cutout rectangles as (frequency range, time range).
    pub rects: Vec<(Range<usize>, Range<usize>)>,
    /// Time stripes.
    pub time: Vec<Range<usize>>,
    /// Frequency stripes.
    pub freq: Vec<Range<usize>>,
}

impl RowMasks {
    /// Whether cell `(d, t)` is masked.
    pub fn contains(&self, d: usize, t: usize) -> bool {
        t < self.length
            && (self.time.iter().any(|r| r.contains(&t))
                || self.freq.iter().any(|r| r.contains(&d))
                || self
                    .rects
                    .iter()
                    .any(|(f, tr)| f.contains(&d) && tr.contains(&t)))
    }
}

/// NeMo's `SpectrogramAugmentation`: Cutout rectangles, then SpecAugment time and frequency
/// stripes, inside each row's valid length. As a typed module it masks only when the call trains,
/// drawing from the call's [`ForwardCtx`]. It records no gradient for masked cells (they are
/// constants) and passes the rest through.
#[neural_module(
    inputs(input_spec: (B, D, T as frames) MelSpectrogram, length: (B) Lengths),
    outputs(augmented_spec: (B, D, T as frames) MelSpectrogram),
)]
#[derive(Debug, Clone)]
#[doc(alias = "SpecAugment")]
pub struct SpectrogramAugmentation {
    config: SpectrogramAugmentationConfig,
    span: tracing::Span,
}

impl SpectrogramAugmentationConfig {
    /// Validates the settings (a fractional `time_width` must lie in `[0, 1]`, `mask_value` must
    /// be finite) and builds the augmentation.
    pub fn init(&self) -> Result<SpectrogramAugmentation> {
        SpectrogramAugmentation::new(self.clone())
    }
}

impl Forward for SpectrogramAugmentation {
    fn forward_tensors(
        &self,
        x: SpectrogramAugmentationInputTensors,
        ctx: &ForwardCtx,
    ) -> nemo_core::Result<SpectrogramAugmentationOutputTensors> {
        if !ctx.is_training() {
            return Ok(SpectrogramAugmentationOutputTensors {
                augmented_spec: x.input_spec,
            });
        }
        let lens = nemo_core::nn::lengths_to_vec(&x.length)?;
        let augmented_spec = self.augment(&x.input_spec, &lens, &mut ctx.rng())?;
        Ok(SpectrogramAugmentationOutputTensors { augmented_spec })
    }
}

impl SpectrogramAugmentation {
    fn new(config: SpectrogramAugmentationConfig) -> Result<Self> {
        if let TimeWidth::Fraction(f) = config.time_width
            && !(0.0..=1.0).contains(&f)
        {
            return Err(Error::Config {
                key: "time_width".to_string(),
                msg: format!("a fractional width must be in [0, 1], got {f}"),
            });
        }
        if !config.mask_value.is_finite() {
            return Err(Error::Config {
                key: "mask_value".to_string(),
                msg: format!("must be finite, got {}", config.mask_value),
            });
        }
        Ok(Self {
            config,
            span: tracing::span!(tracing::Level::TRACE, "spec-augment"),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SpectrogramAugmentationConfig {
        &self.config
    }

    /// Draws the masks of one row with `n_freq` bins and `length` valid frames.
    pub fn sample_row<R: Rng + ?Sized>(
        &self,
        n_freq: usize,
        length: usize,
        rng: &mut R,
    ) -> RowMasks {
        let c = &self.config;
        let mut masks = RowMasks {
            length,
            ..RowMasks::default()
        };
        if length == 0 || n_freq == 0 {
            return masks;
        }
        for _ in 0..c.rect_masks {
            let f0 = rng.random_range(0..=n_freq.saturating_sub(c.rect_freq));
            let t0 = rng.random_range(0..=length.saturating_sub(c.rect_time));
            let fw = rng.random_range(0..=c.rect_freq);
            let tw = rng.random_range(0..=c.rect_time);
            masks
                .rects
                .push((f0..(f0 + fw).min(n_freq), t0..(t0 + tw).min(length)));
        }
        let time_max = match c.time_width {
            TimeWidth::Absolute(w) => w as f64,
            TimeWidth::Fraction(f) => f * length as f64,
        }
        .min(length as f64);
        for _ in 0..c.time_masks {
            masks.time.push(stripe(time_max, length, rng));
        }
        let freq_max = c.freq_width.min(n_freq) as f64;
        for _ in 0..c.freq_masks {
            masks.freq.push(stripe(freq_max, n_freq, rng));
        }
        masks
    }

    /// Draws the masks of every row, in row order.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        n_freq: usize,
        lengths: &[usize],
        rng: &mut R,
    ) -> Vec<RowMasks> {
        lengths
            .iter()
            .map(|&l| self.sample_row(n_freq, l, rng))
            .collect()
    }

    /// Masks a batch.
    ///
    /// # Shapes
    /// - `spec`: `(B, D, T)` features (any float dtype, any device);
    /// - `lengths`: `B` valid frame counts, each `<= T`;
    /// - returns `(B, D, T)`, same dtype and device.
    pub fn augment<R: Rng + ?Sized>(
        &self,
        spec: &Tensor,
        lengths: &[usize],
        rng: &mut R,
    ) -> Result<Tensor> {
        let _enter = self.span.enter();
        let (batch, n_freq, n_time) = spec.dims3().map_err(|_| Error::Shape {
            op: OP,
            msg: format!(
                "expected a (B, D, T) spectrogram, got shape {:?}",
                spec.dims()
            ),
        })?;
        if lengths.len() != batch {
            return Err(Error::Shape {
                op: OP,
                msg: format!("{} lengths for a batch of {batch}", lengths.len()),
            });
        }
        if let Some((i, &len)) = lengths.iter().enumerate().find(|&(_, &l)| l > n_time) {
            return Err(Error::Shape {
                op: OP,
                msg: format!("length[{i}] = {len} exceeds the spectrogram's {n_time} frames"),
            });
        }
        let masks = self.sample(n_freq, lengths, rng);
        if masks
            .iter()
            .all(|m| m.rects.is_empty() && m.time.is_empty() && m.freq.is_empty())
        {
            return Ok(spec.clone());
        }
        self.apply(spec, &masks)
    }

    /// Writes `mask_value` into the cells `masks` cover; `masks` holds one entry per row.
    pub fn apply(&self, spec: &Tensor, masks: &[RowMasks]) -> Result<Tensor> {
        let (batch, n_freq, n_time) = spec.dims3()?;
        if masks.len() != batch {
            return Err(Error::Shape {
                op: OP,
                msg: format!("{} row masks for a batch of {batch}", masks.len()),
            });
        }
        let mut cells = vec![0u8; batch * n_freq * n_time];
        if n_freq * n_time > 0 {
            for (row, m) in cells.chunks_exact_mut(n_freq * n_time).zip(masks) {
                for (f, t) in &m.rects {
                    for line in row.chunks_exact_mut(n_time).skip(f.start).take(f.len()) {
                        fill_range(line, t.clone());
                    }
                }
                for line in row.chunks_exact_mut(n_time) {
                    for t in &m.time {
                        fill_range(line, t.clone());
                    }
                }
                for f in &m.freq {
                    for line in row.chunks_exact_mut(n_time).skip(f.start).take(f.len()) {
                        fill_range(line, 0..m.length);
                    }
                }
            }
        }
        let device = spec.device();
        let cells = Tensor::from_vec(cells, (batch, n_freq, n_time), device)?;
        let fill = Tensor::full(self.config.mask_value, (batch, n_freq, n_time), device)?
            .to_dtype(spec.dtype())?;
        Ok(cells.where_cond(&fill, spec)?)
    }
}

/// A stripe of width `floor(U * max_width)` starting at `floor(U' * (extent - width))`, as
/// NeMo's vectorized SpecAugment draws it; `max_width <= extent`.
fn stripe<R: Rng + ?Sized>(max_width: f64, extent: usize, rng: &mut R) -> Range<usize> {
    let width = ((rng.random::<f64>() * max_width) as usize).min(extent);
    let start = (rng.random::<f64>() * (extent - width) as f64) as usize;
    start..(start + width).min(extent)
}

/// Sets `line[range]` to 1, clipped to the line.
fn fill_range(line: &mut [u8], range: Range<usize>) {
    let end = range.end.min(line.len());
    if let Some(cells) = line.get_mut(range.start.min(end)..end) {
        cells.fill(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn defaults_and_quartznet_preset() {
        let c = SpectrogramAugmentationConfig::default();
        assert_eq!((c.freq_masks, c.time_masks, c.freq_width), (2, 2, 27));
        assert_eq!(c.time_width, TimeWidth::Fraction(0.05));
        let q = SpectrogramAugmentationConfig::quartznet();
        assert_eq!((q.rect_masks, q.rect_time, q.rect_freq), (5, 120, 50));
        assert_eq!((q.freq_masks, q.time_masks), (0, 0));
    }

    #[test]
    fn time_width_parses_by_type() -> std::result::Result<(), serde_json::Error> {
        let c: SpectrogramAugmentationConfig = serde_json::from_str(r#"{"time_width": 10}"#)?;
        assert_eq!(c.time_width, TimeWidth::Absolute(10));
        let c: SpectrogramAugmentationConfig = serde_json::from_str(r#"{"time_width": 0.05}"#)?;
        assert_eq!(c.time_width, TimeWidth::Fraction(0.05));
        let c: SpectrogramAugmentationConfig = serde_json::from_str(r#"{"time_width": 1.0}"#)?;
        assert_eq!(c.time_width, TimeWidth::Fraction(1.0));
        Ok(())
    }

    #[test]
    fn rejects_fraction_above_one() {
        let c = SpectrogramAugmentationConfig {
            time_width: TimeWidth::Fraction(1.5),
            ..Default::default()
        };
        assert!(matches!(c.init(), Err(Error::Config { key, .. }) if key == "time_width"));
    }

    #[test]
    fn zero_length_rows_are_untouched() -> Result<()> {
        let aug = (SpectrogramAugmentationConfig::quartznet()).init()?;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(aug.sample_row(64, 0, &mut rng), RowMasks::default());
        assert!(!aug.sample_row(64, 0, &mut rng).contains(0, 0));
        Ok(())
    }
}
