//! Seeded initialization: a [`VarBuilder`] over a [`VarMap`] whose fresh variables draw their
//! initial values from a generator seeded by a run seed and the variable's full name.
//!
//! candle's CPU device cannot be seeded (`Device::set_seed` fails there), so `Init::Randn` and
//! `Init::Uniform` draw different weights in every run. Here each new variable gets its own
//! ChaCha8 stream from `(seed, name)`: a model's initial weights are a pure function of the seed,
//! whatever order its layers are built in and whatever else is built beside it. Variables the
//! map already holds (loaded from a checkpoint, or shared) are returned as they are, with their
//! shape checked, exactly as a plain `VarBuilder::from_varmap` does.
//!
//! ```
//! # fn main() -> nemo_core::Result<()> {
//! use candle_core::{DType, Device};
//! use candle_nn::{Init, VarMap};
//! use nemo_core::nn::seeded_var_builder;
//!
//! let init = Init::Randn { mean: 0.0, stdev: 1.0 };
//! let draw = |seed| -> nemo_core::Result<Vec<f32>> {
//!     let vb = seeded_var_builder(&VarMap::new(), seed, DType::F32, &Device::Cpu);
//!     Ok(vb.pp("enc").get_with_hints(4, "weight", init)?.to_vec1()?)
//! };
//! assert_eq!(draw(7)?, draw(7)?);
//! assert_ne!(draw(7)?, draw(8)?);
//! # Ok(())
//! # }
//! ```

use candle_core::{DType, Device, Shape, Tensor, Var, bail};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A [`VarBuilder`] that creates missing variables in `varmap` with values drawn from
/// `(seed, full name)` (see the [module docs](self)) and returns existing ones unchanged.
pub fn seeded_var_builder(
    varmap: &VarMap,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> VarBuilder<'static> {
    let backend = SeededVarMap {
        varmap: varmap.clone(),
        seed,
    };
    VarBuilder::from_backend(Box::new(backend), dtype, device.clone())
}

/// The backend behind [`seeded_var_builder`].
struct SeededVarMap {
    varmap: VarMap,
    seed: u64,
}

impl SimpleBackend for SeededVarMap {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        // A poisoned lock only means another thread panicked while inserting; the map is intact.
        let mut data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(var) = data.get(name) {
            if var.shape() != &shape {
                bail!("shape mismatch on {name}: {shape:?} <> {:?}", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let values = draw(&shape, init, stream_seed(self.seed, name));
        let tensor = Tensor::from_vec(values, shape, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&tensor)?;
        let out = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(out)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        bail!("seeded_var_builder: `{name}` needs a shape and an initialization (use `get`)")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(name)
    }
}

/// The seed of variable `name`'s stream: FNV-1a of the name mixed with the run seed
/// (SplitMix64's finaliser).
fn stream_seed(seed: u64, name: &str) -> u64 {
    let h = name.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    let mut z = seed ^ h;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The initial values of a variable of `shape`, as candle's `Init::var` defines them.
fn draw(shape: &Shape, init: Init, seed: u64) -> Vec<f64> {
    let n = shape.elem_count();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut uniform = |lo: f64, up: f64| -> Vec<f64> {
        (0..n)
            .map(|_| lo + (up - lo) * rng.random::<f64>())
            .collect()
    };
    match init {
        Init::Const(v) => vec![v; n],
        Init::Uniform { lo, up } => uniform(lo, up),
        Init::Randn { mean, stdev } => normal(n, mean, stdev, &mut rng),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    uniform(-bound, bound)
                }
                NormalOrUniform::Normal => normal(n, 0.0, std, &mut rng),
            }
        }
    }
}

/// `n` normal draws (Box–Muller, both values of each pair).
fn normal(n: usize, mean: f64, stdev: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // 1 − u ∈ (0, 1]: the logarithm stays finite.
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        out.push(mean + stdev * r * c);
        out.push(mean + stdev * r * s);
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_init_and_existing_variables_are_kept() -> crate::Result<()> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 3, DType::F64, &Device::Cpu);
        let n = 20_000;
        let x = vb
            .get_with_hints(
                n,
                "a",
                Init::Randn {
                    mean: 1.0,
                    stdev: 2.0,
                },
            )?
            .to_vec1::<f64>()?;
        let mean = x.iter().sum::<f64>() / n as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            (mean - 1.0).abs() < 0.05 && (var.sqrt() - 2.0).abs() < 0.05,
            "{mean} {var}"
        );
        let u = vb
            .get_with_hints(n, "u", Init::Uniform { lo: -0.5, up: 0.5 })?
            .to_vec1::<f64>()?;
        assert!(u.iter().all(|v| (-0.5..0.5).contains(v)));
        // Asking again returns the same variable; a different shape is refused.
        let again = vb
            .get_with_hints(n, "a", Init::Const(0.0))?
            .to_vec1::<f64>()?;
        assert_eq!(again, x);
        assert!(vb.get_with_hints(3, "a", Init::Const(0.0)).is_err());
        assert!(vb.contains_tensor("u") && !vb.contains_tensor("v"));
        Ok(())
    }
}
