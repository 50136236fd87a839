//! A log-softmax over the last axis written with differentiable ops: candle's fused
//! `softmax_last_dim` records no backward, so a parameter upstream of it would silently never
//! train.

use candle_core::{D, Tensor};

use crate::Result;

/// `x - logsumexp(x)` over the last axis, stable (the maximum is subtracted first; it carries no
/// gradient, as the result does not depend on it).
///
/// # Shapes
/// `(.., C)` → `(.., C)`.
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&lse)?)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    #[test]
    fn rows_normalise_and_gradients_flow() -> Result<()> {
        let x = Var::new(&[[1f32, 2.0, 3.0], [1000.0, 1000.0, 1000.0]], &Device::Cpu)?;
        let y = log_softmax(x.as_tensor())?;
        let sums: Vec<f32> = y.exp()?.sum(1)?.to_vec1()?;
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6), "{sums:?}");
        let g = y.narrow(1, 0, 1)?.sum_all()?.backward()?;
        assert!(g.get(x.as_tensor()).is_some());
        Ok(())
    }
}
