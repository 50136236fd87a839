//! Position encodings added to token embeddings: NeMo 0.x's fixed sinusoidal table
//! (`FixedPositionalEncoding`, Vaswani et al. 2017, <https://arxiv.org/abs/1706.03762> §3.5) or a
//! learned table (`learn_positional_encodings: true`).
//!
//! The sinusoidal table, for position `p` and feature `i` of `D`:
//!
//! ```text
//! pe[p, 2k]   = sin(p · 10000^(−2k/D)) / √D
//! pe[p, 2k+1] = cos(p · 10000^(−2k/D)) / √D
//! ```
//!
//! The division by `√D` is NeMo 0.x's (`pos_enc.div_(math.sqrt(hidden_size))`): it puts the
//! table on the scale of token embeddings drawn from `N(0, 1/√D)`, which NeMo does not multiply
//! by `√D` either.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::init::embedding_init;
use crate::{Error, Result};

/// The `(max_len, D)` sinusoidal table above, in `f32`.
///
/// # Errors
/// [`Error::Candle`] when the tensor cannot be made on `device`.
pub fn sinusoidal_position_encoding(max_len: usize, d: usize, device: &Device) -> Result<Tensor> {
    let scale = 1.0 / (d.max(1) as f64).sqrt();
    let mut table = Vec::with_capacity(max_len * d);
    for p in 0..max_len {
        for i in 0..d {
            let freq = (-(10000f64.ln()) * (i / 2 * 2) as f64 / d as f64).exp();
            let angle = p as f64 * freq;
            let v = if i % 2 == 0 { angle.sin() } else { angle.cos() };
            table.push((v * scale) as f32);
        }
    }
    Ok(Tensor::from_vec(table, (max_len, d), device)?)
}

/// Fixed or learned position encodings for positions `0..max_len`.
#[derive(Debug, Clone)]
pub struct PositionEncoding {
    /// `(max_len, D)`.
    table: Tensor,
    learned: bool,
}

impl PositionEncoding {
    /// The fixed sinusoidal table (not a parameter: nothing is read from or stored in a
    /// `VarBuilder`), in `dtype`.
    ///
    /// # Errors
    /// [`Error::Candle`] when the table cannot be made.
    pub fn fixed(max_len: usize, d: usize, dtype: DType, device: &Device) -> Result<Self> {
        Ok(PositionEncoding {
            table: sinusoidal_position_encoding(max_len, d, device)?.to_dtype(dtype)?,
            learned: false,
        })
    }

    /// A learned table `weight` `(max_len, D)` from `vb`, initialized `N(0, 1/√D)` as NeMo's
    /// embeddings.
    ///
    /// # Errors
    /// [`Error::Candle`] when `vb` holds a tensor of another shape under `weight`.
    pub fn learned(max_len: usize, d: usize, vb: VarBuilder) -> Result<Self> {
        Ok(PositionEncoding {
            table: vb.get_with_hints((max_len, d), "weight", embedding_init(d))?,
            learned: true,
        })
    }

    /// Whether the table is a trained parameter.
    pub fn is_learned(&self) -> bool {
        self.learned
    }

    /// The longest sequence (plus start offset) the table covers.
    pub fn max_len(&self) -> usize {
        self.table.dim(0).unwrap_or(0)
    }

    /// The encodings of positions `start..start + len`.
    ///
    /// # Shapes
    /// returns `(T = len, D)`
    ///
    /// # Errors
    /// [`Error::Shape`] when `start + len` exceeds [`max_len`](Self::max_len).
    pub fn forward(&self, start: usize, len: usize) -> Result<Tensor> {
        let max = self.max_len();
        if start + len > max {
            return Err(Error::Shape {
                op: "PositionEncoding",
                msg: format!(
                    "positions {start}..{} exceed the maximum sequence length {max}",
                    start + len
                ),
            });
        }
        Ok(self.table.narrow(0, start, len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_formula_and_bounds_are_checked() -> Result<()> {
        let d = 6;
        let pe = PositionEncoding::fixed(10, d, DType::F32, &Device::Cpu)?;
        let t = pe.forward(3, 2)?.to_vec2::<f32>()?;
        let s = (d as f64).sqrt();
        // Position 3, features 2 and 3: frequency 10000^(−2/6).
        let f = 10000f64.powf(-2.0 / 6.0);
        assert!((f64::from(t[0][2]) - (3.0 * f).sin() / s).abs() < 1e-6);
        assert!((f64::from(t[0][3]) - (3.0 * f).cos() / s).abs() < 1e-6);
        assert!((f64::from(t[1][0]) - 4f64.sin() / s).abs() < 1e-6);
        let err = pe.forward(8, 3).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("PositionEncoding: positions 8..11 exceed the maximum sequence length 10")
        );
        Ok(())
    }
}
