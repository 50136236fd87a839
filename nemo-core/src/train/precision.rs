//! Mixed precision: f16 or bf16 compute over f32 master weights, with dynamic loss scaling
//! ([`GradScaler`]) as `torch.amp.GradScaler` / apex's dynamic scaler, which NeMo uses.
//!
//! The model's `Var`s stay f32 (the master weights the optimizer updates). A task that supports
//! mixed precision casts its weights and activations to the compute dtype inside its forward pass
//! (`w.as_tensor().to_dtype(dtype)`); candle's `to_dtype` records a backward op that casts the
//! gradient back to the source dtype, so every `Var` receives an f32 gradient. Reductions such as
//! the loss are best computed in f32 (upcast the f16 activations first).
//!
//! With `mode: f16`, every step runs:
//!
//! 1. each micro-batch loss is cast to f32 and multiplied by the current scale `S` (and by
//!    `1 / batches_per_step`) before backward, so small f16 gradients do not flush to zero;
//! 2. the accumulated gradients are unscaled (multiplied by `1 / S`, in f32) before clipping and
//!    the update;
//! 3. if the loss or any gradient that would be applied is inf or NaN, the update is skipped
//!    (weights and optimizer state stay bit-identical) and `S *= backoff_factor`;
//! 4. after `growth_interval` consecutive clean steps, `S *= growth_factor`.
//!
//! More than `max_consecutive_skips` skipped steps in a row stop the run with an error: from the
//! default scale of 2^16, 16 halvings bring `S` to 1, so overflows that continue past that come
//! from the model, not from the scale. `mode: bf16` computes in bf16 without loss scaling (bf16
//! has f32's exponent range), and `mode: f32` is plain single precision; in both a non-finite
//! loss or gradient stops the run under `stop_on_nan_loss` and is skipped otherwise.
//!
//! ```yaml
//! precision: {mode: f16, init_scale: 65536, growth_factor: 2.0, backoff_factor: 0.5,
//!             growth_interval: 2000}
//! ```

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::optim::with_cpu_f32;
use crate::{Error, Result};

/// The dtype the forward and backward passes compute in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionMode {
    /// Single precision throughout (the default).
    #[default]
    #[serde(alias = "fp32", alias = "32")]
    F32,
    /// Half precision compute with dynamic loss scaling (Lightning's `16-mixed`).
    #[serde(alias = "fp16", alias = "16-mixed")]
    F16,
    /// bfloat16 compute, no loss scaling (Lightning's `bf16-mixed`).
    #[serde(alias = "bf16-mixed")]
    Bf16,
}

impl PrecisionMode {
    /// The dtype the task computes in: F32, F16 or BF16.
    pub fn compute_dtype(self) -> DType {
        match self {
            PrecisionMode::F32 => DType::F32,
            PrecisionMode::F16 => DType::F16,
            PrecisionMode::Bf16 => DType::BF16,
        }
    }

    /// Whether the loss is scaled dynamically (f16 only).
    pub fn uses_loss_scaling(self) -> bool {
        self == PrecisionMode::F16
    }
}

/// The `precision:` section of the trainer config; the defaults are `torch.amp.GradScaler`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixedPrecision {
    /// The compute dtype. Default `f32`.
    pub mode: PrecisionMode,
    /// The first loss scale (f16 only). Default 65536 (2^16).
    pub init_scale: f64,
    /// Factor applied to the scale after `growth_interval` clean steps. Default 2.
    pub growth_factor: f64,
    /// Factor applied to the scale after an overflow. Default 0.5.
    pub backoff_factor: f64,
    /// Consecutive clean steps before the scale grows. Default 2000.
    pub growth_interval: u64,
    /// Skipped (overflowed) steps in a row after which the run stops with an error. Default 16.
    pub max_consecutive_skips: u64,
}

impl Default for MixedPrecision {
    fn default() -> Self {
        MixedPrecision {
            mode: PrecisionMode::F32,
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            max_consecutive_skips: 16,
        }
    }
}

impl From<PrecisionMode> for MixedPrecision {
    /// The defaults with the given mode.
    fn from(mode: PrecisionMode) -> Self {
        MixedPrecision {
            mode,
            ..Default::default()
        }
    }
}

impl MixedPrecision {
    /// Checks the values; errors name the key (`trainer.precision.init_scale`, ...).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| {
            Err(Error::Config {
                key: format!("trainer.precision.{key}"),
                msg,
            })
        };
        let s = self.init_scale;
        if !(s.is_finite() && s > 0.0 && s <= f64::from(f32::MAX)) {
            return bad(
                "init_scale",
                format!("must be positive and finite in f32, got {s}"),
            );
        }
        let g = self.growth_factor;
        if !(g.is_finite() && g > 1.0) {
            return bad("growth_factor", format!("must be finite and > 1, got {g}"));
        }
        let b = self.backoff_factor;
        if !(b > 0.0 && b < 1.0) {
            return bad("backoff_factor", format!("must be in (0, 1), got {b}"));
        }
        if self.growth_interval == 0 {
            return bad("growth_interval", "must be at least 1".into());
        }
        if self.max_consecutive_skips == 0 {
            return bad("max_consecutive_skips", "must be at least 1".into());
        }
        Ok(())
    }
}

/// The scaler's state, saved in checkpoints (`trainer.json`) and restored on resume.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradScalerState {
    /// The current loss scale.
    pub scale: f64,
    /// Clean steps since the last growth or backoff (torch's `_growth_tracker`).
    pub growth_tracker: u64,
    /// Skipped steps in a row.
    pub consecutive_skips: u64,
}

/// What [`GradScaler::update`] did after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleUpdate {
    /// A clean step; the scale is unchanged.
    Kept,
    /// A clean step completed `growth_interval`; the scale grew.
    Grew,
    /// An overflow; the scale backed off and the step was skipped.
    BackedOff,
}

/// Dynamic loss scaling (active in f16 mode; in the other modes the scale stays 1 and no tensor
/// is touched).
#[derive(Debug, Clone, PartialEq)]
pub struct GradScaler {
    config: MixedPrecision,
    state: GradScalerState,
}

impl GradScaler {
    /// A scaler starting at `config.init_scale` (or 1 without loss scaling).
    pub fn new(config: &MixedPrecision) -> Self {
        let scale = if config.mode.uses_loss_scaling() {
            config.init_scale
        } else {
            1.0
        };
        GradScaler {
            config: config.clone(),
            state: GradScalerState {
                scale,
                growth_tracker: 0,
                consecutive_skips: 0,
            },
        }
    }

    /// A scaler continuing from a saved state.
    ///
    /// # Errors
    /// [`Error::Config`] if the saved scale is not positive and finite.
    pub fn with_state(config: &MixedPrecision, state: GradScalerState) -> Result<Self> {
        if !(state.scale.is_finite() && state.scale > 0.0) {
            return Err(Error::Config {
                key: "trainer.precision".into(),
                msg: format!(
                    "saved loss scale {} is not positive and finite",
                    state.scale
                ),
            });
        }
        let mut scaler = GradScaler::new(config);
        if config.mode.uses_loss_scaling() {
            scaler.state = state;
        } else {
            scaler.state.consecutive_skips = state.consecutive_skips;
        }
        Ok(scaler)
    }

    /// Whether the loss is scaled (f16 mode).
    pub fn is_enabled(&self) -> bool {
        self.config.mode.uses_loss_scaling()
    }

    /// The current loss scale (1 when disabled).
    pub fn scale(&self) -> f64 {
        self.state.scale
    }

    /// The state to checkpoint.
    pub fn state(&self) -> GradScalerState {
        self.state
    }

    /// The loss to differentiate: `loss * scale / divisor`, in f32 when scaling (an f16 loss is
    /// upcast first, so the scale itself cannot overflow), unchanged in dtype otherwise.
    pub fn scale_loss(&self, loss: &Tensor, divisor: f64) -> Result<Tensor> {
        if !self.is_enabled() {
            return Ok((loss / divisor)?);
        }
        let loss = match loss.dtype() {
            DType::F16 | DType::BF16 => loss.to_dtype(DType::F32)?,
            _ => loss.clone(),
        };
        Ok(loss.affine(self.state.scale / divisor, 0.0)?)
    }

    /// Unscales the gradients of the `vars` for which `used(name)` is true (multiplies them by
    /// `1 / scale`, storing them as f32) and returns whether all of them are finite. When
    /// disabled the gradients are only checked. Gradients of other vars are left as they are.
    pub fn unscale(
        &self,
        grads: &mut GradStore,
        vars: &[(String, Var)],
        used: &dyn Fn(&str) -> bool,
    ) -> Result<bool> {
        if self.is_enabled() {
            let inv = 1.0 / self.state.scale;
            for (name, var) in vars {
                if !used(name) {
                    continue;
                }
                if let Some(g) = grads.remove(var.as_tensor()) {
                    let g = g.detach().to_dtype(DType::F32)?.affine(inv, 0.0)?;
                    grads.insert(var.as_tensor(), g);
                }
            }
        }
        all_finite(grads, vars, used)
    }

    /// Records the outcome of a step: `found_inf` backs the scale off, a clean step counts
    /// towards growth. Returns what changed. When disabled only the run of skips is counted.
    pub fn update(&mut self, found_inf: bool) -> ScaleUpdate {
        let st = &mut self.state;
        if found_inf {
            st.consecutive_skips += 1;
            st.growth_tracker = 0;
            if self.config.mode.uses_loss_scaling() {
                st.scale *= self.config.backoff_factor;
                return ScaleUpdate::BackedOff;
            }
            return ScaleUpdate::Kept;
        }
        st.consecutive_skips = 0;
        if !self.config.mode.uses_loss_scaling() {
            return ScaleUpdate::Kept;
        }
        st.growth_tracker += 1;
        if st.growth_tracker >= self.config.growth_interval {
            st.growth_tracker = 0;
            let grown = st.scale * self.config.growth_factor;
            // As torch: only grow while the scale stays finite in f32.
            if grown <= f64::from(f32::MAX) {
                st.scale = grown;
                return ScaleUpdate::Grew;
            }
        }
        ScaleUpdate::Kept
    }

    /// Whether the run of skipped steps exceeds `max_consecutive_skips`.
    pub fn too_many_skips(&self) -> bool {
        self.state.consecutive_skips > self.config.max_consecutive_skips
    }
}

/// Whether every gradient in `grads` of the `vars` with `used(name)` is free of inf and NaN.
///
/// f32 CPU gradients are scanned in parallel; others are reduced on their device as
/// `sum(g - g)` (0 when finite, NaN otherwise), with a single device-to-host transfer.
pub fn all_finite(
    grads: &GradStore,
    vars: &[(String, Var)],
    used: &dyn Fn(&str) -> bool,
) -> Result<bool> {
    use rayon::prelude::*;
    let mut on_device = Vec::new();
    let mut device = None;
    for (name, var) in vars {
        if !used(name) {
            continue;
        }
        let Some(g) = grads.get(var.as_tensor()) else {
            continue;
        };
        let scanned = with_cpu_f32(&[g], |s| {
            Ok(s.iter().all(|data| {
                data.par_chunks(1 << 14)
                    .all(|c| c.iter().all(|v| v.is_finite()))
            }))
        })?;
        match scanned {
            Some(false) => return Ok(false),
            Some(true) => {}
            None => {
                let g = g.detach().to_dtype(DType::F32)?;
                // g - g is 0 where g is finite and NaN where it is inf or NaN.
                let probe = g.sub(&g)?.sum_all()?;
                let device = device.get_or_insert_with(|| probe.device().clone());
                on_device.push(probe.to_device(device)?);
            }
        }
    }
    if on_device.is_empty() {
        return Ok(true);
    }
    let total = Tensor::stack(&on_device, 0)?
        .sum_all()?
        .to_scalar::<f32>()?;
    Ok(total.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn yaml_defaults_and_aliases() -> TestResult {
        let p: MixedPrecision = serde_norway::from_str("mode: f16")?;
        assert_eq!(p, MixedPrecision::from(PrecisionMode::F16));
        assert_eq!(p.init_scale, 65536.0);
        let p: MixedPrecision = serde_norway::from_str("mode: bf16-mixed\ngrowth_interval: 5")?;
        assert_eq!((p.mode, p.growth_interval), (PrecisionMode::Bf16, 5));
        assert!(serde_norway::from_str::<MixedPrecision>("mode: f16\nscale: 2").is_err());
        let mut bad = MixedPrecision::from(PrecisionMode::F16);
        bad.backoff_factor = 1.0;
        let msg = bad
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("precision.backoff_factor"), "{msg}");
        Ok(())
    }

    #[test]
    fn backs_off_grows_and_counts_skips() {
        let mut cfg = MixedPrecision::from(PrecisionMode::F16);
        cfg.init_scale = 8.0;
        cfg.growth_interval = 2;
        cfg.max_consecutive_skips = 2;
        let mut s = GradScaler::new(&cfg);
        assert_eq!(s.update(true), ScaleUpdate::BackedOff);
        assert_eq!(s.scale(), 4.0);
        assert_eq!(s.update(false), ScaleUpdate::Kept);
        assert_eq!(s.update(false), ScaleUpdate::Grew);
        assert_eq!(s.scale(), 8.0);
        for _ in 0..3 {
            s.update(true);
        }
        assert!(s.too_many_skips());
        assert_eq!(s.scale(), 1.0);
        let off = GradScaler::new(&MixedPrecision::default());
        assert!(!off.is_enabled());
        assert_eq!(off.scale(), 1.0);
    }

    #[test]
    fn unscales_and_detects_non_finite() -> TestResult {
        let dev = Device::Cpu;
        let a = Var::zeros(3, DType::F32, &dev)?;
        let b = Var::zeros(2, DType::F32, &dev)?;
        let vars = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let mut cfg = MixedPrecision::from(PrecisionMode::F16);
        cfg.init_scale = 4.0;
        let scaler = GradScaler::new(&cfg);
        let mut grads = GradStore::default();
        grads.insert(a.as_tensor(), Tensor::new(&[4f32, 8.0, -4.0], &dev)?);
        grads.insert(
            b.as_tensor(),
            Tensor::new(&[f32::INFINITY, 1.0], &dev)?.to_dtype(DType::F16)?,
        );
        // `b` unused: its inf is ignored and it stays f16.
        assert!(scaler.unscale(&mut grads, &vars, &|n| n == "a")?);
        let ga = grads.get(a.as_tensor()).ok_or("lost")?.to_vec1::<f32>()?;
        assert_eq!(ga, [1.0, 2.0, -1.0]);
        assert_eq!(grads.get(b.as_tensor()).ok_or("lost")?.dtype(), DType::F16);
        // The device path (non-f32) and the CPU path both see the inf.
        assert!(!all_finite(&grads, &vars, &|_| true)?);
        assert!(!scaler.unscale(&mut grads, &vars, &|_| true)?);
        let nan = Tensor::new(&[f32::NAN, 0.0], &dev)?;
        grads.insert(b.as_tensor(), nan.to_dtype(DType::F64)?);
        assert!(!all_finite(&grads, &vars, &|n| n == "b")?);
        Ok(())
    }
}
