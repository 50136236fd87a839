//! [`RealFunctionDataLayer`]: `n` samples `x` drawn uniformly from `[x_lo, x_hi)` with a seeded
//! generator and their images `y = f(x)` under a named function (NeMo 0.x
//! `RealFunctionDataLayer`), served in batches of `batch_size` (the last one may be smaller),
//! in a seeded per-epoch random order when `shuffle` is set.
//!
//! Outputs: `x: (B, D:1) Channel`, `y: (B, D:1) Labels`.

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dag::DataLayer;
use crate::module::{NamedTensors, NeuralModule, PortTypes, TensorStruct};
use crate::prelude::*;
use crate::{Error, Result};

/// The function a [`RealFunctionDataLayer`] samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RealFunction {
    /// `sin x`.
    Sin,
    /// `cos x`.
    Cos,
    /// `x²`.
    Square,
    /// `x`.
    Identity,
}

impl RealFunction {
    /// `f(x)`.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            RealFunction::Sin => x.sin(),
            RealFunction::Cos => x.cos(),
            RealFunction::Square => x * x,
            RealFunction::Identity => x,
        }
    }
}

/// Settings of [`RealFunctionDataLayer`] (NeMo 0.x's arguments, plus `seed` and `shuffle`);
/// missing keys take the [`Default`] values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealFunctionDataLayerConfig {
    /// Samples per epoch. Default 10000.
    pub n: usize,
    /// Samples per batch. Default 128.
    pub batch_size: usize,
    /// The function (NeMo's `f_name`): `sin`, `cos`, `square` or `identity`. Default `sin`.
    pub f_name: RealFunction,
    /// Lower end of the range of `x`. Default -4.
    pub x_lo: f64,
    /// Upper end of the range of `x`. Default 4.
    pub x_hi: f64,
    /// Seed of the samples and of the shuffling. Default 0.
    pub seed: u64,
    /// Reorder the samples every epoch (seeded by `seed` and the epoch). Default false.
    pub shuffle: bool,
}

impl Default for RealFunctionDataLayerConfig {
    fn default() -> Self {
        RealFunctionDataLayerConfig {
            n: 10_000,
            batch_size: 128,
            f_name: RealFunction::Sin,
            x_lo: -4.0,
            x_hi: 4.0,
            seed: 0,
            shuffle: false,
        }
    }
}

/// Samples of a real function, `x` and `f(x)`, in batches (NeMo 0.x `RealFunctionDataLayer`).
#[neural_module(
    kind = data_layer,
    outputs(
        x: (B, D: 1) Channel,
        y: (B, D: 1) Labels,
    ),
)]
#[derive(Debug, Clone)]
pub struct RealFunctionDataLayer {
    config: RealFunctionDataLayerConfig,
    x: Vec<f32>,
    y: Vec<f32>,
    device: Device,
}

impl RealFunctionDataLayer {
    /// Draws the samples; batches are made on `device`.
    ///
    /// # Errors
    /// [`Error::Config`] for `n = 0`, `batch_size = 0` or an empty or non-finite range.
    pub fn new(config: RealFunctionDataLayerConfig, device: &Device) -> Result<Self> {
        let bad = |key: &str, msg: String| {
            Err(Error::Config {
                key: key.into(),
                msg,
            })
        };
        if config.n == 0 {
            return bad("n", "must be at least 1, found 0".into());
        }
        if config.batch_size == 0 {
            return bad("batch_size", "must be at least 1, found 0".into());
        }
        if !(config.x_lo.is_finite() && config.x_hi.is_finite() && config.x_lo < config.x_hi) {
            return bad(
                "x_lo",
                format!(
                    "the range must be finite with x_lo < x_hi, found [{}, {})",
                    config.x_lo, config.x_hi
                ),
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let x: Vec<f64> = (0..config.n)
            .map(|_| rng.random_range(config.x_lo..config.x_hi))
            .collect();
        let y = x.iter().map(|&v| config.f_name.apply(v) as f32).collect();
        Ok(RealFunctionDataLayer {
            x: x.into_iter().map(|v| v as f32).collect(),
            y,
            config,
            device: device.clone(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RealFunctionDataLayerConfig {
        &self.config
    }

    /// The sample indices of batch `index` of epoch `epoch`.
    fn indices(&self, epoch: u64, index: usize) -> Result<Vec<usize>> {
        let start = index * self.config.batch_size;
        if start >= self.config.n {
            return Err(Error::Config {
                key: "batch".into(),
                msg: format!("batch {index} is past the {} batches", self.num_batches()),
            });
        }
        let end = (start + self.config.batch_size).min(self.config.n);
        if !self.config.shuffle {
            return Ok((start..end).collect());
        }
        let mut order: Vec<usize> = (0..self.config.n).collect();
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.config.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        order.shuffle(&mut rng);
        Ok(order
            .get(start..end)
            .map(<[usize]>::to_vec)
            .unwrap_or_default())
    }
}

impl DataLayer for RealFunctionDataLayer {
    fn type_name(&self) -> &'static str {
        <Self as NeuralModule>::NAME
    }

    fn dyn_output_types(&self) -> PortTypes {
        NeuralModule::output_types(self)
    }

    fn num_batches(&self) -> usize {
        self.config.n.div_ceil(self.config.batch_size)
    }

    fn batch(&self, epoch: u64, index: usize) -> Result<NamedTensors> {
        let idx = self.indices(epoch, index)?;
        let pick =
            |v: &[f32]| -> Vec<f32> { idx.iter().filter_map(|&i| v.get(i).copied()).collect() };
        let b = idx.len();
        let x = Tensor::from_vec(pick(&self.x), (b, 1), &self.device)?;
        let y = Tensor::from_vec(pick(&self.y), (b, 1), &self.device)?;
        let out = self.wrap_outputs(RealFunctionDataLayerOutputTensors { x, y })?;
        Ok(RealFunctionDataLayerOutputTensors {
            x: out.x.into_tensor(),
            y: out.y.into_tensor(),
        }
        .into_named())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(shuffle: bool) -> Result<RealFunctionDataLayer> {
        RealFunctionDataLayer::new(
            RealFunctionDataLayerConfig {
                n: 10,
                batch_size: 4,
                shuffle,
                seed: 3,
                ..Default::default()
            },
            &Device::Cpu,
        )
    }

    #[test]
    fn batches_cover_the_samples_and_y_is_f_of_x() -> Result<()> {
        let l = layer(false)?;
        assert_eq!(l.num_batches(), 3);
        let last = l.batch(0, 2)?;
        let (x, y) = (&last["x"], &last["y"]);
        assert_eq!(x.dims(), &[2, 1]);
        for (a, b) in x
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .zip(y.flatten_all()?.to_vec1::<f32>()?)
        {
            assert!((a.sin() - b).abs() < 1e-6);
            assert!((-4.0..4.0).contains(a));
        }
        assert!(l.batch(0, 3).is_err());
        Ok(())
    }

    #[test]
    fn shuffling_is_a_seeded_permutation_per_epoch() -> Result<()> {
        let l = layer(true)?;
        let epoch = |e| -> Result<Vec<f32>> {
            let mut all = Vec::new();
            for i in 0..3 {
                all.extend(l.batch(e, i)?["x"].flatten_all()?.to_vec1::<f32>()?);
            }
            Ok(all)
        };
        let (e0, e1) = (epoch(0)?, epoch(1)?);
        assert_eq!(e0, epoch(0)?);
        assert_ne!(e0, e1);
        let mut a = e0.clone();
        let mut b = l.x.clone();
        a.sort_by(f32::total_cmp);
        b.sort_by(f32::total_cmp);
        assert_eq!(a, b);
        Ok(())
    }

    #[test]
    fn config_from_yaml_rejects_unknown_keys() {
        let ok: std::result::Result<RealFunctionDataLayerConfig, _> =
            serde_norway::from_str("n: 100\nbatch_size: 10\nf_name: cos\n");
        assert!(ok.is_ok_and(|c| c.f_name == RealFunction::Cos && c.x_hi == 4.0));
        let bad: std::result::Result<RealFunctionDataLayerConfig, _> =
            serde_norway::from_str("n: 100\nbatchsize: 10\n");
        assert!(bad.is_err());
    }
}
