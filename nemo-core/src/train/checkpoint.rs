//! Checkpoints: weights, optimizer state, the step and the loss scaler's state, in one directory
//! per step, written to a temporary directory and renamed into place so a crash never leaves a
//! half checkpoint.
//!
//! Layout: `<run>/checkpoints/step-00000100/{weights.safetensors, optimizer.safetensors,
//! trainer.json}`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::precision::GradScalerState;
use super::step_record::nan_if_null;
use crate::optim::Optimizer;
use crate::params::Parameters;
use crate::{Error, Result};

/// What `trainer.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Steps completed.
    pub step: u64,
    /// The optimizer's name.
    pub optimizer: String,
    /// The last training loss (NaN before the first applied update; JSON has no NaN, so it is
    /// written as `null` and read back as NaN).
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f64,
    /// The loss scaler's state (absent in checkpoints written before mixed precision existed;
    /// the scaler then restarts from its initial scale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaler: Option<GradScalerState>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn step_dir(root: &Path, step: u64) -> PathBuf {
    root.join(format!("step-{step:08}"))
}

/// Writes a checkpoint under `root` and deletes all but the newest `keep`.
pub(crate) fn save(
    root: &Path,
    ckpt: &Checkpoint,
    params: &Parameters,
    optimizer: &dyn Optimizer,
    keep: usize,
) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    // A unique staging directory: two writers (threads, processes) never share one.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".tmp-step-{:08}-", ckpt.step))
        .tempdir_in(root)
        .map_err(io(root))?;
    let tmp = staging.path();
    params.save(&tmp.join("weights.safetensors"))?;
    let state: HashMap<String, Tensor> = optimizer.state_dict()?.into_iter().collect();
    crate::io::write_safetensors_atomic(&state, &tmp.join("optimizer.safetensors"))?;
    let json = serde_json::to_vec_pretty(ckpt).map_err(|e| Error::Checkpoint {
        path: tmp.to_path_buf(),
        msg: e.to_string(),
    })?;
    crate::io::write_atomic(&tmp.join("trainer.json"), &json)?;
    let dest = step_dir(root, ckpt.step);
    let _ = std::fs::remove_dir_all(&dest);
    // Renamed away, the staging directory is no longer there for its drop to delete.
    std::fs::rename(tmp, &dest).map_err(io(&dest))?;
    crate::io::sync_dir(root)?;
    let mut all = list_checkpoints(root)?;
    all.sort();
    let excess = all.len().saturating_sub(keep.max(1));
    for (_, old) in all.into_iter().take(excess) {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(dest)
}

/// The checkpoint directories under `root` with their steps, in no particular order.
pub(crate) fn list_checkpoints(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(out);
    };
    for entry in entries {
        let entry = entry.map_err(io(root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name
            .strip_prefix("step-")
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((step, entry.path()));
        }
    }
    Ok(out)
}

/// The newest checkpoint directory under `root`, if any.
pub fn latest_checkpoint(root: &Path) -> Result<Option<PathBuf>> {
    let mut all = list_checkpoints(root)?;
    all.sort();
    Ok(all.pop().map(|(_, p)| p))
}

/// Restores weights and optimizer state from a checkpoint directory. Everything is read and
/// validated before anything changes, so a truncated or corrupt checkpoint leaves the model as it
/// was and the error names the file.
pub(crate) fn load(
    dir: &Path,
    params: &Parameters,
    optimizer: &mut dyn Optimizer,
) -> Result<Checkpoint> {
    let json_path = dir.join("trainer.json");
    let json = std::fs::read(&json_path).map_err(io(&json_path))?;
    let ckpt: Checkpoint = serde_json::from_slice(&json).map_err(|e| Error::Checkpoint {
        path: json_path.clone(),
        msg: e.to_string(),
    })?;
    let opt_path = dir.join("optimizer.safetensors");
    let state = crate::io::read_safetensors(&opt_path)?;
    // Validate the weights file fully before touching the model.
    crate::io::read_safetensors(&dir.join("weights.safetensors"))?;
    params.load(&dir.join("weights.safetensors"))?;
    let mut state: Vec<(String, Tensor)> = state.into_iter().collect();
    state.sort_by(|a, b| a.0.cmp(&b.0));
    optimizer.load_state_dict(&state)?;
    Ok(ckpt)
}
