//! Mel filterbank matrices as `librosa.filters.mel` builds them (the Slaney mel scale).
//!
//! A filterbank is a `(D, F)` matrix, `D` mel bands by `F = n_fft / 2 + 1` linear-frequency bins:
//! band `i` is a triangle rising from mel point `i` to mel point `i + 1` and falling to mel
//! point `i + 2`, where the `D + 2` mel points are equally spaced on the Slaney mel scale between
//! `fmin` and `fmax` (linear below 1 kHz, logarithmic above). With [`MelNorm::Slaney`] each
//! triangle is divided by its width in Hz over two, so every band has the same area; this is
//! librosa's `norm="slaney"`, which NeMo's `FilterbankFeatures` uses (`mel_norm="slaney"`).
//! Weights are computed in `f64` and rounded to `f32` at the end, as librosa does.
//!
//! ```
//! use nemo_asr::preprocessing::{MelFilterbank, MelNorm};
//! # fn main() -> nemo_asr::Result<()> {
//! let fb = MelFilterbank::new(16_000.0, 512, 64, 0.0, 8_000.0, Some(MelNorm::Slaney))?;
//! assert_eq!((fb.n_mels(), fb.n_bins()), (64, 257));
//! # Ok(())
//! # }
//! ```

use crate::{Error, Result};

/// Start of the logarithmic part of the Slaney mel scale, in Hz.
const MIN_LOG_HZ: f64 = 1000.0;
/// Width of one mel in the linear part of the Slaney scale, in Hz (`200 / 3`).
const F_SP: f64 = 200.0 / 3.0;
/// The mel value at [`MIN_LOG_HZ`].
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

/// Log step of the Slaney scale above 1 kHz: `ln(6.4) / 27`.
fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Converts a frequency in Hz to the Slaney mel scale (librosa's `hz_to_mel(htk=False)`).
pub fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

/// Converts a Slaney mel value back to Hz (librosa's `mel_to_hz(htk=False)`).
pub fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// How each mel triangle is scaled (librosa's `norm` argument, NeMo's `mel_norm`); no
/// normalization (`None`, triangles with peak 1) is spelled `Option::None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MelNorm {
    /// Divide each triangle by half its bandwidth in Hz, so all bands have equal area
    /// (`norm="slaney"`, NeMo's default).
    Slaney,
}

/// A `(D, F)` mel filterbank, stored dense and as per-band nonzero spans.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilterbank {
    n_mels: usize,
    n_bins: usize,
    /// Row-major `(D, F)` weights.
    weights: Vec<f32>,
    /// Per band: first nonzero bin and the weights from there to the last nonzero bin.
    spans: Vec<(usize, Vec<f32>)>,
}

impl MelFilterbank {
    /// Builds the filterbank for `n_mels` bands over the `n_fft / 2 + 1` bins of a real FFT of
    /// size `n_fft` at `sample_rate` Hz, between `fmin` and `fmax` Hz, scaled as `norm` says.
    ///
    /// Errors when `sample_rate`, `n_fft` or `n_mels` is zero, or unless
    /// `0 <= fmin < fmax` (all finite).
    pub fn new(
        sample_rate: f64,
        n_fft: usize,
        n_mels: usize,
        fmin: f64,
        fmax: f64,
        norm: Option<MelNorm>,
    ) -> Result<Self> {
        let bad = |key: &str, msg: String| Error::Config {
            key: key.to_string(),
            msg,
        };
        if !(sample_rate.is_finite() && sample_rate > 0.0) {
            return Err(bad(
                "sample_rate",
                format!("must be > 0, got {sample_rate}"),
            ));
        }
        if n_fft == 0 {
            return Err(bad("n_fft", "must be > 0, got 0".to_string()));
        }
        if n_mels == 0 {
            return Err(bad("features", "must be > 0, got 0".to_string()));
        }
        if !(fmin.is_finite() && fmin >= 0.0) {
            return Err(bad("lowfreq", format!("must be >= 0, got {fmin}")));
        }
        if !(fmax.is_finite() && fmax > fmin) {
            return Err(bad(
                "highfreq",
                format!("must be greater than lowfreq ({fmin}), got {fmax}"),
            ));
        }
        let n_bins = n_fft / 2 + 1;
        // Centre frequency of each FFT bin (numpy's `rfftfreq(n_fft, 1 / sr)`).
        let fft_freqs: Vec<f64> = (0..n_bins)
            .map(|k| k as f64 * sample_rate / n_fft as f64)
            .collect();
        // n_mels + 2 points equally spaced in mel between fmin and fmax, back in Hz.
        let (mel_lo, mel_hi) = (hz_to_mel(fmin), hz_to_mel(fmax));
        let n_points = n_mels + 2;
        let mel_f: Vec<f64> = (0..n_points)
            .map(|i| mel_to_hz(mel_lo + (mel_hi - mel_lo) * i as f64 / (n_points - 1) as f64))
            .collect();

        let mut weights = vec![0f32; n_mels * n_bins];
        let mut spans = Vec::with_capacity(n_mels);
        for (row, points) in weights.chunks_exact_mut(n_bins).zip(mel_f.windows(3)) {
            let &[lo, mid, hi] = points else { continue };
            let scale = match norm {
                Some(MelNorm::Slaney) => 2.0 / (hi - lo),
                None => 1.0,
            };
            for (w, &f) in row.iter_mut().zip(&fft_freqs) {
                let rising = (f - lo) / (mid - lo);
                let falling = (hi - f) / (hi - mid);
                *w = (rising.min(falling).max(0.0) * scale) as f32;
            }
            let first = row.iter().position(|&w| w != 0.0);
            let last = row.iter().rposition(|&w| w != 0.0);
            let span = match (first, last) {
                (Some(a), Some(b)) => (a, row.get(a..=b).map(<[f32]>::to_vec).unwrap_or_default()),
                _ => (0, Vec::new()),
            };
            spans.push(span);
        }
        Ok(Self {
            n_mels,
            n_bins,
            weights,
            spans,
        })
    }

    /// Number of mel bands `D`.
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Number of linear-frequency bins `F = n_fft / 2 + 1`.
    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// The dense row-major `(D, F)` weights.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Number of bands whose triangle covers no FFT bin (librosa warns about these: too many
    /// mel bands for the FFT size).
    pub fn empty_bands(&self) -> usize {
        self.spans.iter().filter(|(_, w)| w.is_empty()).count()
    }

    /// Applies the filterbank to one power spectrum: `out[d] = sum_f W[d, f] * spec[f]`.
    ///
    /// `spec` must hold `F` values and `out` `D` values; extra entries are ignored.
    pub fn apply(&self, spec: &[f32], out: &mut [f32]) {
        for ((start, w), o) in self.spans.iter().zip(out.iter_mut()) {
            let s = spec.get(*start..).unwrap_or(&[]);
            *o = w.iter().zip(s).map(|(a, b)| a * b).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scale_round_trips_and_is_continuous_at_1khz() {
        for hz in [0.0, 100.0, 999.0, 1000.0, 1001.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(999.999_999) - 15.0).abs() < 1e-6);
    }

    #[test]
    fn slaney_bands_have_equal_area() -> Result<()> {
        // With a fine frequency grid each normalized triangle integrates to ~1 (in Hz units).
        let fb = MelFilterbank::new(16_000.0, 8192, 40, 0.0, 8000.0, Some(MelNorm::Slaney))?;
        let df = 8000.0 / (fb.n_bins() - 1) as f64;
        for row in fb.weights().chunks_exact(fb.n_bins()) {
            let area: f64 = row.iter().map(|&w| w as f64 * df).sum();
            assert!((area - 1.0).abs() < 0.05, "area {area}");
        }
        assert_eq!(fb.empty_bands(), 0);
        Ok(())
    }

    #[test]
    fn sparse_apply_matches_dense() -> Result<()> {
        let fb = MelFilterbank::new(16_000.0, 512, 64, 0.0, 8000.0, Some(MelNorm::Slaney))?;
        let spec: Vec<f32> = (0..fb.n_bins())
            .map(|k| (k as f32 * 0.37).sin().abs())
            .collect();
        let mut out = vec![0f32; 64];
        fb.apply(&spec, &mut out);
        for (row, o) in fb.weights().chunks_exact(fb.n_bins()).zip(&out) {
            let dense: f32 = row.iter().zip(&spec).map(|(a, b)| a * b).sum();
            assert!((dense - o).abs() <= 1e-6 * dense.abs().max(1.0));
        }
        Ok(())
    }

    #[test]
    fn rejects_bad_ranges() {
        assert!(MelFilterbank::new(16_000.0, 512, 64, 100.0, 50.0, Some(MelNorm::Slaney)).is_err());
        assert!(MelFilterbank::new(16_000.0, 512, 0, 0.0, 8000.0, Some(MelNorm::Slaney)).is_err());
        assert!(MelFilterbank::new(16_000.0, 0, 64, 0.0, 8000.0, None).is_err());
    }
}
