//! Attention masks: a `(B, T)` padding mask of 0/1 (any dtype: `f32`, `u8`, `i64`, …) and the
//! causal mask of a decoder, turned into the additive masks [`softmax`](crate::nn::softmax())
//! fuses: 0 where a query may attend to a key, [`MASK_VALUE`] (NeMo 0.x's −10000) where not.
//!
//! NeMo 0.x (`form_attention_mask` in `transformer_utils.py`, v0.11.1) builds
//! `(1 − valid) · −10000` of shape `(B, 1, T_q, T_k)`; the shapes here broadcast to that without
//! materializing it: `(B, 1, 1, T_k)` for padding, `(1, 1, T_q, T_k)` for causality, and their
//! combination `(B, 1, T_q, T_k)` for a decoder's self-attention.

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// The score added where attention is masked: NeMo 0.x's `NEG_INF = -10000.0`. Finite, so
/// that a fully masked row still has a defined (uniform) softmax, and representable in `f16`.
pub const MASK_VALUE: f64 = -10000.0;

/// Validity `(B, T)` — 1 for a real token, 0 for padding, any dtype (nonzero counts as 1) —
/// as an additive key mask.
///
/// # Shapes
/// * `mask`: `(B, T_k)`
/// * returns `(B, 1, 1, T_k)` in `dtype`
///
/// # Errors
/// [`Error::Shape`] when `mask` is not of rank 2.
pub fn padding_mask(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, t) = mask_dims(mask)?;
    let valid = mask.ne(0f64)?.to_dtype(dtype)?;
    Ok(to_additive(&valid)?.reshape((b, 1, 1, t))?)
}

/// The causal mask of `t_q` queries at the last positions of `t_k` keys: query `i` (position
/// `t_k − t_q + i`) may attend to keys `0..=t_k − t_q + i`. With `t_q = t_k` this is the
/// lower-triangular mask of a full sequence; with `t_q = 1` a decoding step sees every key.
///
/// # Shapes
/// returns `(1, 1, T_q, T_k)` in `dtype`
///
/// # Errors
/// [`Error::Shape`] when `t_q > t_k`.
pub fn causal_mask(t_q: usize, t_k: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    to_additive(&causal_validity(t_q, t_k, dtype, device)?)
}

/// The self-attention mask of a decoder: causal, and keys that are padding masked too.
///
/// # Shapes
/// * `key_mask`: validity `(B, T_k)` of all keys (past and new), or `None` for all valid
/// * returns `(B, 1, T_q, T_k)`, or `(1, 1, T_q, T_k)` without `key_mask`
///
/// # Errors
/// [`Error::Shape`] when `t_q > t_k` or `key_mask` is not `(B, T_k)`.
pub fn causal_padding_mask(
    key_mask: Option<&Tensor>,
    t_q: usize,
    t_k: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let causal = causal_validity(t_q, t_k, dtype, device)?;
    let valid = match key_mask {
        Some(m) => {
            let (b, t) = mask_dims(m)?;
            if t != t_k {
                return Err(Error::Shape {
                    op: "attention mask",
                    msg: format!("key mask {:?} does not cover {t_k} keys", m.dims()),
                });
            }
            let keys = m.ne(0f64)?.to_dtype(dtype)?.reshape((b, 1, 1, t))?;
            causal.broadcast_mul(&keys)?
        }
        None => causal,
    };
    to_additive(&valid)
}

/// `(1, 1, T_q, T_k)` of 1 where query `i` may see key `j`, else 0.
fn causal_validity(t_q: usize, t_k: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    if t_q > t_k {
        return Err(Error::Shape {
            op: "attention mask",
            msg: format!("{t_q} queries cannot be the last positions of {t_k} keys"),
        });
    }
    let offset = t_k - t_q;
    let v: Vec<u8> = (0..t_q)
        .flat_map(|i| (0..t_k).map(move |j| u8::from(j <= offset + i)))
        .collect();
    Ok(Tensor::from_vec(v, (1, 1, t_q, t_k), device)?.to_dtype(dtype)?)
}

/// `(valid − 1) · 10000`: 0 where valid, −10000 where not.
fn to_additive(valid: &Tensor) -> Result<Tensor> {
    Ok(valid.affine(-MASK_VALUE, MASK_VALUE)?)
}

fn mask_dims(mask: &Tensor) -> Result<(usize, usize)> {
    match *mask.dims() {
        [b, t] => Ok((b, t)),
        _ => Err(Error::Shape {
            op: "attention mask",
            msg: format!("a padding mask must be (B, T), got {:?}", mask.dims()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_have_nemo_values_and_shapes() -> Result<()> {
        let dev = Device::Cpu;
        let pad = Tensor::new(&[[1u8, 1, 0], [1, 0, 0]], &dev)?;
        let m = padding_mask(&pad, DType::F32)?;
        assert_eq!(m.dims(), &[2, 1, 1, 3]);
        assert_eq!(
            m.flatten_all()?.to_vec1::<f32>()?,
            [0.0, 0.0, -10000.0, 0.0, -10000.0, -10000.0]
        );
        let c = causal_mask(2, 3, DType::F32, &dev)?;
        assert_eq!(
            c.flatten_all()?.to_vec1::<f32>()?,
            [0.0, 0.0, -10000.0, 0.0, 0.0, 0.0]
        );
        let both = causal_padding_mask(Some(&pad), 3, 3, DType::F32, &dev)?;
        assert_eq!(both.dims(), &[2, 1, 3, 3]);
        let row = both.get(1)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(row, [0.0, -1e4, -1e4, 0.0, -1e4, -1e4, 0.0, -1e4, -1e4]);
        assert!(causal_mask(3, 2, DType::F32, &dev).is_err());
        assert!(padding_mask(&pad.flatten_all()?, DType::F32).is_err());
        Ok(())
    }
}
