//! Sequence lengths `(B)` — the `Lengths` ports — read into host vectors for the masking and
//! packing loops that need them.

use candle_core::{DType, Tensor};

use crate::{Error, Result};

/// Reads lengths `(B)` of any integer or float dtype into a vector.
///
/// # Errors
/// [`Error::Shape`] for a value that is not a non-negative integer, or a tensor not of rank 1.
pub fn lengths_to_vec(lengths: &Tensor) -> Result<Vec<usize>> {
    let v = lengths.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    v.into_iter()
        .map(|x| {
            if x >= 0.0 && x.fract() == 0.0 {
                Ok(x as usize)
            } else {
                Err(Error::Shape {
                    op: "lengths",
                    msg: format!("length {x} is not a non-negative integer"),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn reads_any_dtype_and_refuses_non_integers() -> Result<()> {
        let dev = Device::Cpu;
        assert_eq!(lengths_to_vec(&Tensor::new(&[3i64, 0], &dev)?)?, vec![3, 0]);
        assert_eq!(
            lengths_to_vec(&Tensor::new(&[2f32, 5.0], &dev)?)?,
            vec![2, 5]
        );
        assert!(lengths_to_vec(&Tensor::new(&[1.5f32], &dev)?).is_err());
        assert!(lengths_to_vec(&Tensor::new(&[-1i64], &dev)?).is_err());
        Ok(())
    }
}
