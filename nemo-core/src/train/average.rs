//! Checkpoint averaging: the element-wise mean of the weights of several checkpoints of one run.
//! The last few checkpoints of a run sit around the same minimum; their mean usually scores
//! better than any one of them (a standard step of NMT recipes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};

use super::checkpoint::list_checkpoints;
use crate::{Error, Result};

/// The weights file of `path`: the file itself, or `weights.safetensors` in a checkpoint or
/// model directory.
pub fn weights_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("weights.safetensors")
    } else {
        path.to_path_buf()
    }
}

/// The newest `n` checkpoint directories under `root` (a run's `checkpoints/`), oldest first.
pub fn last_checkpoints(root: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let mut all = list_checkpoints(root)?;
    all.sort();
    let skip = all.len().saturating_sub(n);
    Ok(all.into_iter().skip(skip).map(|(_, p)| p).collect())
}

/// The mean of the weights of `paths` (checkpoint or model directories, or `.safetensors`
/// files), tensor by tensor, accumulated in f64 and returned in each tensor's dtype. Every file
/// must hold the same names with the same shapes and dtypes; integer tensors must be equal.
/// Errors name the file and the tensor.
pub fn average_checkpoints(paths: &[PathBuf]) -> Result<HashMap<String, Tensor>> {
    let Some((first, rest)) = paths.split_first() else {
        return Err(Error::Config {
            key: "checkpoints".into(),
            msg: "nothing to average: no checkpoint given".into(),
        });
    };
    let first_file = weights_file(first);
    let base = crate::io::read_safetensors(&first_file)?;
    let mut sums: HashMap<String, (Tensor, DType)> = HashMap::new();
    for (name, t) in &base {
        let dtype = t.dtype();
        let acc = if dtype.is_float() {
            t.to_dtype(DType::F64)?
        } else {
            t.clone()
        };
        sums.insert(name.clone(), (acc, dtype));
    }
    for path in rest {
        let file = weights_file(path);
        let weights = crate::io::read_safetensors(&file)?;
        let mismatch = |msg: String| Error::Checkpoint {
            path: file.clone(),
            msg: format!("{msg} (compared with {})", first_file.display()),
        };
        if let Some(extra) = weights.keys().find(|k| !sums.contains_key(*k)) {
            return Err(mismatch(format!(
                "tensor `{extra}` is not in the first checkpoint"
            )));
        }
        for (name, (acc, dtype)) in sums.iter_mut() {
            let t = weights
                .get(name)
                .ok_or_else(|| mismatch(format!("tensor `{name}` is missing")))?;
            if t.dims() != acc.dims() || t.dtype() != *dtype {
                return Err(mismatch(format!(
                    "tensor `{name}` is {:?} {:?}, the first checkpoint's is {:?} {:?}",
                    t.dtype(),
                    t.dims(),
                    dtype,
                    acc.dims()
                )));
            }
            if dtype.is_float() {
                *acc = (&*acc + t.to_dtype(DType::F64)?)?;
            } else {
                let differs = acc
                    .ne(t)?
                    .to_dtype(DType::U32)?
                    .sum_all()?
                    .to_scalar::<u32>()?;
                if differs > 0 {
                    return Err(mismatch(format!(
                        "integer tensor `{name}` differs and cannot be averaged"
                    )));
                }
            }
        }
    }
    let n = paths.len() as f64;
    sums.into_iter()
        .map(|(name, (acc, dtype))| {
            let t = if dtype.is_float() {
                (acc / n)?.to_dtype(dtype)?
            } else {
                acc
            };
            Ok((name, t))
        })
        .collect()
}

/// Averages `paths` and writes the result to `out` (a `.safetensors` file) atomically.
pub fn write_average(paths: &[PathBuf], out: &Path) -> Result<()> {
    let avg = average_checkpoints(paths)?;
    crate::io::write_safetensors_atomic(&avg, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    use crate::testing::TestResult;

    fn write(dir: &Path, name: &str, tensors: &[(&str, Tensor)]) -> Result<PathBuf> {
        let path = dir.join(name);
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        crate::io::write_safetensors_atomic(&map, &path)?;
        Ok(path)
    }

    #[test]
    fn the_average_is_the_elementwise_mean_in_the_original_dtype() -> TestResult {
        let dir = tempfile::tempdir()?;
        let d = &Device::Cpu;
        let a = write(
            dir.path(),
            "a.safetensors",
            &[
                ("w", Tensor::new(&[1f32, 2., 3.], d)?),
                ("h", Tensor::new(&[1f32], d)?.to_dtype(DType::F16)?),
                ("ids", Tensor::new(&[7u32, 8], d)?),
            ],
        )?;
        let b = write(
            dir.path(),
            "b.safetensors",
            &[
                ("w", Tensor::new(&[3f32, 4., 8.], d)?),
                ("h", Tensor::new(&[2f32], d)?.to_dtype(DType::F16)?),
                ("ids", Tensor::new(&[7u32, 8], d)?),
            ],
        )?;
        let avg = average_checkpoints(&[a, b])?;
        assert_eq!(avg["w"].to_vec1::<f32>()?, vec![2., 3., 5.5]);
        assert_eq!(avg["h"].dtype(), DType::F16);
        assert_eq!(avg["h"].to_dtype(DType::F32)?.to_vec1::<f32>()?, vec![1.5]);
        assert_eq!(avg["ids"].to_vec1::<u32>()?, vec![7, 8]);
        Ok(())
    }

    #[test]
    fn mismatched_checkpoints_are_refused_naming_file_and_tensor() -> TestResult {
        let dir = tempfile::tempdir()?;
        let d = &Device::Cpu;
        let a = write(
            dir.path(),
            "a.safetensors",
            &[("w", Tensor::zeros(3, DType::F32, d)?)],
        )?;
        let b = write(
            dir.path(),
            "b.safetensors",
            &[("w", Tensor::zeros(4, DType::F32, d)?)],
        )?;
        let c = write(
            dir.path(),
            "c.safetensors",
            &[("v", Tensor::zeros(3, DType::F32, d)?)],
        )?;
        for (other, what) in [(b.clone(), "`w` is F32 [4]"), (c.clone(), "`v`")] {
            match average_checkpoints(&[a.clone(), other.clone()]) {
                Err(Error::Checkpoint { path, msg }) => {
                    assert_eq!(path, other);
                    assert!(msg.contains(what), "{msg}");
                }
                r => panic!("expected a checkpoint error, got {r:?}"),
            }
        }
        assert!(average_checkpoints(&[]).is_err());
        Ok(())
    }

    #[test]
    fn last_checkpoints_are_the_newest_in_step_order() -> TestResult {
        let dir = tempfile::tempdir()?;
        for step in [100u64, 300, 200, 400] {
            std::fs::create_dir_all(dir.path().join(format!("step-{step:08}")))?;
        }
        let last = last_checkpoints(dir.path(), 3)?;
        let names: Vec<String> = last
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, ["step-00000200", "step-00000300", "step-00000400"]);
        Ok(())
    }
}
