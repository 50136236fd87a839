//! [`Parameters`]: a model's named weights and their trainable flags.
//!
//! Every module of a model takes its weights from one store under its own prefix
//! (`encoder.jasper.0.conv.weight`), through a candle [`VarBuilder`], so one path both initializes
//! for training and loads safetensors. The store remembers which parameters train: NeMo's
//! `freeze()` / `unfreeze()` / `as_frozen()` per module prefix, restoring each parameter's *own*
//! earlier flag. (Whether a call trains is not stored here: it travels with the call, in a
//! [`ForwardCtx`](crate::ForwardCtx); a frozen module runs in eval mode because the trainer lists
//! [`frozen_modules`](Parameters::frozen_modules) in the context it passes.)
//!
//! ```
//! use candle_core::{DType, Device};
//! use nemo_core::params::Parameters;
//! let params = Parameters::new();
//! let vb = params.var_builder(DType::F32, &Device::Cpu);
//! let _w = vb.pp("encoder").get_with_hints((4, 3), "weight", candle_nn::init::ZERO)?;
//! assert_eq!(params.num_weights("encoder"), 12);
//! params.freeze("encoder");
//! assert_eq!(params.num_weights("encoder"), 0);
//! assert_eq!(params.frozen_modules(), ["encoder"]);
//! params.unfreeze("encoder");
//! assert_eq!(params.num_weights(""), 12);
//! # Ok::<(), candle_core::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use crate::{Error, Result};

#[derive(Default)]
struct State {
    /// Parameters whose trainable flag is off, by full name.
    not_trainable: std::collections::HashSet<String>,
    /// Per `freeze(prefix)`, the flags it overrode, to restore on `unfreeze(prefix)`.
    saved: HashMap<String, Vec<(String, bool)>>,
    /// Parameters registered as buffers with [`Parameters::register_buffer`].
    buffers: std::collections::HashSet<String>,
}

/// Last name segments that are buffers (state updated in the forward pass, never by an optimizer)
/// by PyTorch's naming: batch norm's running statistics.
pub const BUFFER_NAMES: &[&str] = &["running_mean", "running_var", "num_batches_tracked"];

/// A model's named parameters with trainable flags and train/eval mode. Cheap to clone (shared).
#[derive(Clone)]
pub struct Parameters {
    varmap: VarMap,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Parameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parameters")
            .field("tensors", &self.named_vars().len())
            .field("trainable_weights", &self.num_weights(""))
            .finish()
    }
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            varmap: VarMap::new(),
            state: Arc::default(),
        }
    }
}

fn is_buffer(st: &State, name: &str) -> bool {
    st.buffers.contains(name)
        || name
            .rsplit('.')
            .next()
            .is_some_and(|last| BUFFER_NAMES.contains(&last))
}

fn under(name: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || name == prefix
        || (name.starts_with(prefix) && name.as_bytes().get(prefix.len()) == Some(&b'.'))
}

impl Parameters {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update of flags; the flags are
        // still a valid set, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A builder that creates (or finds) parameters in this store.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_varmap(&self.varmap, dtype, device)
    }

    /// The underlying candle map.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Every parameter, sorted by name.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let sorted: BTreeMap<_, _> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        sorted.into_iter().collect()
    }

    /// The parameters under `prefix` (all for `""`), sorted by name.
    pub fn vars_under(&self, prefix: &str) -> Vec<(String, Var)> {
        self.named_vars()
            .into_iter()
            .filter(|(n, _)| under(n, prefix))
            .collect()
    }

    /// Whether parameter `name` is trainable (buffers never are).
    pub fn is_trainable(&self, name: &str) -> bool {
        let st = self.state();
        !st.not_trainable.contains(name) && !is_buffer(&st, name)
    }

    /// Marks `name` as a buffer: saved and loaded with the weights, never trained or counted by
    /// [`num_weights`](Self::num_weights). Names ending in one of [`BUFFER_NAMES`] are buffers
    /// without registration.
    pub fn register_buffer(&self, name: &str) {
        self.state().buffers.insert(name.to_string());
    }

    /// Whether `name` is a buffer (registered, or named like one of [`BUFFER_NAMES`]).
    pub fn is_buffer(&self, name: &str) -> bool {
        is_buffer(&self.state(), name)
    }

    /// Sets the trainable flag of every parameter under `prefix`.
    pub fn set_trainable(&self, prefix: &str, trainable: bool) {
        let names: Vec<String> = self
            .vars_under(prefix)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let mut st = self.state();
        for n in names {
            if trainable {
                st.not_trainable.remove(&n);
            } else {
                st.not_trainable.insert(n);
            }
        }
    }

    /// The number of trainable weights under `prefix` (NeMo's `num_weights`; buffers excluded).
    pub fn num_weights(&self, prefix: &str) -> usize {
        let vars = self.vars_under(prefix);
        let st = self.state();
        vars.iter()
            .filter(|(n, _)| !st.not_trainable.contains(n) && !is_buffer(&st, n))
            .map(|(_, v)| v.elem_count())
            .sum()
    }

    /// Freezes the module at `prefix`: its parameters stop training (each one's earlier flag is
    /// remembered; a training context runs it in eval mode). Freezing twice keeps the first
    /// memory.
    pub fn freeze(&self, prefix: &str) {
        let names: Vec<String> = self
            .vars_under(prefix)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let mut st = self.state();
        if !st.saved.contains_key(prefix) {
            let saved = names
                .iter()
                .map(|n| (n.clone(), !st.not_trainable.contains(n)))
                .collect();
            st.saved.insert(prefix.to_string(), saved);
        }
        for n in names {
            st.not_trainable.insert(n);
        }
    }

    /// Unfreezes the module at `prefix`: each parameter gets back the flag it had before
    /// [`Parameters::freeze`] (a parameter frozen on its own before stays frozen).
    pub fn unfreeze(&self, prefix: &str) {
        let mut st = self.state();
        if let Some(saved) = st.saved.remove(prefix) {
            for (n, trainable) in saved {
                if trainable {
                    st.not_trainable.remove(&n);
                } else {
                    st.not_trainable.insert(n);
                }
            }
        }
    }

    /// Whether the module at `prefix` was frozen with [`Parameters::freeze`] (and not unfrozen).
    pub fn is_frozen(&self, prefix: &str) -> bool {
        self.state().saved.contains_key(prefix)
    }

    /// Freezes `prefix` until the guard drops (NeMo's `as_frozen`).
    pub fn as_frozen(&self, prefix: &str) -> FrozenGuard {
        let was_frozen = self.is_frozen(prefix);
        self.freeze(prefix);
        FrozenGuard {
            params: self.clone(),
            prefix: prefix.to_string(),
            was_frozen,
        }
    }

    /// The module prefixes frozen with [`Parameters::freeze`], sorted: what a training
    /// [`ForwardCtx`](crate::ForwardCtx) runs in eval mode.
    pub fn frozen_modules(&self) -> Vec<String> {
        let mut names: Vec<String> = self.state().saved.keys().cloned().collect();
        names.sort();
        names
    }

    /// The trainable parameters (the ones to give an optimizer), sorted by name.
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        let vars = self.named_vars();
        let st = self.state();
        vars.into_iter()
            .filter(|(n, _)| !st.not_trainable.contains(n) && !is_buffer(&st, n))
            .collect()
    }

    /// The current values of all parameters, by name.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.named_vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect()
    }

    /// Writes all parameters to a safetensors file atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: HashMap<String, Tensor> = self.tensors().into_iter().collect();
        crate::io::write_safetensors_atomic(&tensors, path)
    }

    /// Loads every parameter of this store from a safetensors file: a missing name or a shape
    /// mismatch is an error naming the parameter; nothing is changed unless all load.
    pub fn load(&self, path: &Path) -> Result<()> {
        self.load_prefix(path, "").map(|_| ())
    }

    /// Loads the parameters under module `prefix` (buffers included) from a safetensors file
    /// written by another model — a pretrained encoder into a new decoder's model, say — and
    /// returns how many tensors were loaded. Names must match exactly; a missing name or a shape
    /// mismatch is an error naming the parameter, and nothing is changed unless all load.
    pub fn load_prefix(&self, path: &Path, prefix: &str) -> Result<usize> {
        let loaded = crate::io::read_safetensors(path)?;
        let vars = self.vars_under(prefix);
        if vars.is_empty() && !prefix.is_empty() {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                msg: format!("the model has no parameters under `{prefix}`"),
            });
        }
        let mut updates = Vec::with_capacity(vars.len());
        for (name, var) in &vars {
            let t = loaded.get(name).ok_or_else(|| Error::Checkpoint {
                path: path.to_path_buf(),
                msg: format!("parameter `{name}` is missing"),
            })?;
            if t.dims() != var.dims() {
                return Err(Error::Checkpoint {
                    path: path.to_path_buf(),
                    msg: format!(
                        "parameter `{name}` has shape {:?} in the file, {:?} in the model",
                        t.dims(),
                        var.dims()
                    ),
                });
            }
            updates.push((var, t.to_dtype(var.dtype())?.to_device(var.device())?));
        }
        let n = updates.len();
        for (var, t) in updates {
            var.set(&t)?;
        }
        Ok(n)
    }
}

/// Unfreezes its module on drop, unless it was frozen before the guard was made.
#[must_use = "the module is unfrozen when the guard drops"]
pub struct FrozenGuard {
    params: Parameters,
    prefix: String,
    was_frozen: bool,
}

impl Drop for FrozenGuard {
    fn drop(&mut self) {
        if !self.was_frozen {
            self.params.unfreeze(&self.prefix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Result<Parameters> {
        let p = Parameters::new();
        let vb = p.var_builder(DType::F32, &Device::Cpu);
        vb.pp("encoder.a")
            .get_with_hints(3, "weight", candle_nn::init::ZERO)?;
        vb.pp("encoder.b")
            .get_with_hints(2, "weight", candle_nn::init::ZERO)?;
        vb.pp("encoderx")
            .get_with_hints(5, "weight", candle_nn::init::ZERO)?;
        vb.pp("decoder")
            .get_with_hints(4, "weight", candle_nn::init::ZERO)?;
        Ok(p)
    }

    #[test]
    fn freeze_restores_each_parameters_own_flag() -> Result<()> {
        let p = store()?;
        assert_eq!(p.num_weights(""), 14);
        assert_eq!(
            p.num_weights("encoder"),
            5,
            "prefix match is by path segment"
        );
        p.set_trainable("encoder.b", false);
        p.freeze("encoder");
        assert_eq!(p.num_weights("encoder"), 0);
        assert_eq!(p.frozen_modules(), ["encoder"]);
        p.unfreeze("encoder");
        assert!(p.is_trainable("encoder.a.weight"));
        assert!(
            !p.is_trainable("encoder.b.weight"),
            "frozen before, frozen after"
        );
        assert!(p.frozen_modules().is_empty());
        Ok(())
    }

    #[test]
    fn as_frozen_is_scoped_and_nests() -> Result<()> {
        let p = store()?;
        {
            let _g = p.as_frozen("decoder");
            assert_eq!(p.num_weights("decoder"), 0);
            {
                let _inner = p.as_frozen("decoder");
            }
            assert_eq!(
                p.num_weights("decoder"),
                0,
                "inner guard leaves the outer freeze"
            );
        }
        assert_eq!(p.num_weights("decoder"), 4);
        Ok(())
    }

    #[test]
    fn buffers_are_saved_but_never_trained_or_counted() -> Result<()> {
        let p = store()?;
        let vb = p.var_builder(DType::F32, &Device::Cpu).pp("encoder.bn");
        vb.get_with_hints(3, "running_mean", candle_nn::init::ZERO)?;
        vb.get_with_hints(3, "weight", candle_nn::init::ONE)?;
        vb.get_with_hints(1, "step_count", candle_nn::init::ZERO)?;
        p.register_buffer("encoder.bn.step_count");
        assert!(p.is_buffer("encoder.bn.running_mean"));
        assert!(!p.is_trainable("encoder.bn.running_mean"));
        assert!(!p.is_trainable("encoder.bn.step_count"));
        assert_eq!(p.num_weights("encoder.bn"), 3, "only the BN weight counts");
        p.freeze("encoder");
        p.unfreeze("encoder");
        let trainable: Vec<String> = p.trainable_vars().into_iter().map(|(n, _)| n).collect();
        assert!(trainable.contains(&"encoder.bn.weight".to_string()));
        assert!(
            !trainable
                .iter()
                .any(|n| n.ends_with("running_mean") || n.ends_with("step_count"))
        );
        assert_eq!(p.tensors().len(), 7, "buffers are still part of the state");
        Ok(())
    }

    #[test]
    fn save_load_round_trip_and_refuse_mismatch() -> Result<()> {
        let p = store()?;
        let dir = tempfile::tempdir().map_err(|e| Error::Io {
            path: "tmp".into(),
            source: e,
        })?;
        let path = dir.path().join("w.safetensors");
        let a = |p: &Parameters| {
            p.named_vars()
                .into_iter()
                .find(|(n, _)| n == "encoder.a.weight")
        };
        if let Some((_, v)) = a(&p) {
            v.set(&Tensor::new(&[1f32, 2., 3.], &Device::Cpu)?)?;
        }
        p.save(&path)?;
        let q = store()?;
        q.load(&path)?;
        let loaded = a(&q)
            .map(|(_, v)| v.as_tensor().to_vec1::<f32>())
            .transpose()?;
        assert_eq!(loaded, Some(vec![1., 2., 3.]));
        let r = Parameters::new();
        r.var_builder(DType::F32, &Device::Cpu)
            .pp("decoder")
            .get_with_hints(7, "weight", candle_nn::init::ZERO)?;
        let err = r
            .load(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("`decoder.weight` has shape [4]"), "{err}");
        Ok(())
    }

    #[test]
    fn load_prefix_takes_one_module_from_another_models_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Io {
            path: "tmp".into(),
            source: e,
        })?;
        let path = dir.path().join("w.safetensors");
        let p = store()?;
        for (_, v) in p.vars_under("") {
            v.set(&v.as_tensor().ones_like()?)?;
        }
        p.save(&path)?;
        // Another model: the same encoder, a different decoder.
        let q = Parameters::new();
        let vb = q.var_builder(DType::F32, &Device::Cpu);
        vb.pp("encoder.a")
            .get_with_hints(3, "weight", candle_nn::init::ZERO)?;
        vb.pp("encoder.b")
            .get_with_hints(2, "weight", candle_nn::init::ZERO)?;
        vb.pp("decoder")
            .get_with_hints(9, "weight", candle_nn::init::ZERO)?;
        assert_eq!(q.load_prefix(&path, "encoder")?, 2);
        let sums: Vec<(String, f32)> = q
            .named_vars()
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().sum_all()?.to_scalar::<f32>()?)))
            .collect::<Result<_>>()?;
        for (n, s) in sums {
            let want = match n.as_str() {
                "encoder.a.weight" => 3.,
                "encoder.b.weight" => 2.,
                _ => 0.,
            };
            assert_eq!(s, want, "{n}");
        }
        let err = q.load_prefix(&path, "joint").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("no parameters under `joint`")));
        Ok(())
    }
}
