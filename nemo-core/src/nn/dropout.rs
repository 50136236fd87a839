//! Inverted dropout with a mask drawn from a seeded generator: candle's `ops::dropout` draws from
//! the device's own generator, which a run cannot replay.

use candle_core::Tensor;

use crate::Result;

/// Keeps each element of `x` with probability `1 − p`, scaling kept ones by `1 / (1 − p)`; the
/// mask comes from `rng`. The identity for `p = 0`.
///
/// # Shapes
/// Any; the result has `x`'s shape, dtype and device.
pub fn dropout(x: &Tensor, p: f64, rng: &mut impl rand::Rng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let scale = (1.0 / (1.0 - p)) as f32;
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { scale })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
    Ok((x * mask)?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn keeps_the_expectation_and_is_off_at_zero() -> Result<()> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let x = Tensor::ones((200, 100), candle_core::DType::F32, &Device::Cpu)?;
        let mean = dropout(&x, 0.3, &mut rng)?.mean_all()?.to_scalar::<f32>()?;
        assert!((mean - 1.0).abs() < 0.03, "mean {mean}");
        let same = dropout(&x, 0.0, &mut rng)?;
        assert_eq!(same.to_vec2::<f32>()?, x.to_vec2::<f32>()?);
        Ok(())
    }
}
