//! Seeded test values: the same numbers on every run, from a named generator (ChaCha8), one
//! stream per seed so tests share no state.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Result;

/// What a test returns: any error, reported with its message.
pub type TestResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A generator seeded with `seed` (ChaCha8: fast, portable, reproducible).
pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `n` values uniform in `[-1, 1)`, drawn from [`seeded_rng`]`(seed)`.
pub fn uniform_values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = seeded_rng(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A tensor of `shape` holding [`uniform_values`] in `dtype` on `device`.
pub fn uniform_tensor(shape: &[usize], seed: u64, dtype: DType, device: &Device) -> Result<Tensor> {
    let n = shape.iter().product();
    Ok(Tensor::from_vec(uniform_values(n, seed), shape, device)?.to_dtype(dtype)?)
}

/// The elements of `t` in row-major order, as f64 (on the host).
pub fn to_f64_vec(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_seeded_and_in_range() {
        let a = uniform_values(1000, 7);
        assert_eq!(a, uniform_values(1000, 7));
        assert_ne!(a, uniform_values(1000, 8));
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
        let mean = a.iter().sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.1, "mean {mean}");
    }
}
