//! Dynamic layer freezing as the NeMo docs define it, read from YAML:
//!
//! ```yaml
//! freeze:
//!   enabled: true
//!   modules: {encoder: 200, decoder: [50, -1], joint: [10, 100], transcoder: -1}
//! ```
//! `N` — frozen for the first N steps (0..N); `[a, b]` — frozen for steps a..=b; `[a, -1]` — from
//! step a to the end; `-1` — for the whole run. A frozen module gets no update and its optimizer
//! state is untouched; like NeMo (which calls the module's `freeze()`), it also runs in eval mode
//! while frozen — batch-norm statistics stay put, dropout is off — and a wholly frozen module's
//! backward pass can be skipped by the model.

use std::collections::{BTreeMap, BTreeSet};

use crate::params::Parameters;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// When one module is frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FreezeSpec {
    /// `N`: the first N steps; `-1`: the whole run.
    Steps(i64),
    /// `[a, b]`: steps a..=b; `[a, -1]`: from a on.
    Range([i64; 2]),
}

impl FreezeSpec {
    /// Checks the values; `key` names the module's key for messages.
    pub fn validate(&self, key: &str) -> Result<()> {
        let bad = |msg: String| {
            Err(Error::Config {
                key: key.to_string(),
                msg,
            })
        };
        match *self {
            FreezeSpec::Steps(n) if n < -1 => {
                bad(format!("{n}: use N >= 0 steps or -1 for the whole run"))
            }
            FreezeSpec::Range([a, _]) if a < 0 => {
                bad(format!("[{a}, ..]: the first step must be >= 0"))
            }
            FreezeSpec::Range([a, b]) if b != -1 && b < a => {
                bad(format!("[{a}, {b}]: the range is empty"))
            }
            _ => Ok(()),
        }
    }

    /// Whether the module is frozen at `step` (0-based).
    pub fn frozen_at(&self, step: u64) -> bool {
        let s = i64::try_from(step).unwrap_or(i64::MAX);
        match *self {
            FreezeSpec::Steps(-1) => true,
            FreezeSpec::Steps(n) => s < n,
            FreezeSpec::Range([a, -1]) => s >= a,
            FreezeSpec::Range([a, b]) => s >= a && s <= b,
        }
    }
}

/// The `freeze:` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeConfig {
    /// Whether the schedule applies.
    #[serde(default)]
    pub enabled: bool,
    /// Module prefix → when it is frozen.
    #[serde(default)]
    pub modules: BTreeMap<String, FreezeSpec>,
}

impl FreezeConfig {
    /// Checks every entry.
    pub fn validate(&self) -> Result<()> {
        for (module, spec) in &self.modules {
            spec.validate(&format!("freeze.modules.{module}"))?;
        }
        Ok(())
    }

    /// The module prefixes frozen at `step`.
    pub fn frozen_at(&self, step: u64) -> Vec<&str> {
        if !self.enabled {
            return Vec::new();
        }
        self.modules
            .iter()
            .filter(|(_, s)| s.frozen_at(step))
            .map(|(m, _)| m.as_str())
            .collect()
    }
}

/// Applies a schedule step by step through the model's own [`Parameters::freeze`] /
/// [`Parameters::unfreeze`]; unfreezes whatever it froze when dropped, so a run that ends (or
/// fails) leaves the model as it found it. A module the user froze beforehand is left alone.
pub(crate) struct DynamicFreezer {
    params: Parameters,
    frozen: BTreeSet<String>,
}

impl DynamicFreezer {
    pub(crate) fn new(params: Parameters) -> Self {
        DynamicFreezer {
            params,
            frozen: BTreeSet::new(),
        }
    }

    /// Makes exactly the `wanted` modules frozen by this schedule.
    pub(crate) fn apply(&mut self, wanted: &[&str]) {
        let thawed: Vec<String> = self
            .frozen
            .iter()
            .filter(|m| !wanted.contains(&m.as_str()))
            .cloned()
            .collect();
        for m in thawed {
            self.params.unfreeze(&m);
            self.frozen.remove(&m);
        }
        for &m in wanted {
            if !self.frozen.contains(m) && !self.params.is_frozen(m) {
                self.params.freeze(m);
                self.frozen.insert(m.to_string());
            }
        }
    }
}

impl Drop for DynamicFreezer {
    fn drop(&mut self) {
        for m in std::mem::take(&mut self.frozen) {
            self.params.unfreeze(&m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemo_doc_example() -> Result<()> {
        let yaml = "enabled: true\nmodules: {encoder: 200, decoder: [50, -1], joint: [10, 100], transcoder: -1}";
        let cfg: FreezeConfig = serde_norway::from_str(yaml).map_err(|e| Error::Config {
            key: "freeze".into(),
            msg: e.to_string(),
        })?;
        cfg.validate()?;
        assert_eq!(cfg.frozen_at(0), ["encoder", "transcoder"]);
        assert_eq!(cfg.frozen_at(10), ["encoder", "joint", "transcoder"]);
        assert_eq!(
            cfg.frozen_at(50),
            ["decoder", "encoder", "joint", "transcoder"]
        );
        assert_eq!(
            cfg.frozen_at(100),
            ["decoder", "encoder", "joint", "transcoder"]
        );
        assert_eq!(cfg.frozen_at(101), ["decoder", "encoder", "transcoder"]);
        assert_eq!(cfg.frozen_at(199), ["decoder", "encoder", "transcoder"]);
        assert_eq!(cfg.frozen_at(200), ["decoder", "transcoder"]);
        assert_eq!(cfg.frozen_at(10_000), ["decoder", "transcoder"]);
        Ok(())
    }

    #[test]
    fn bad_entries_name_the_key() {
        let cfg = FreezeConfig {
            enabled: true,
            modules: [("enc".to_string(), FreezeSpec::Range([5, 2]))].into(),
        };
        let msg = cfg
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("freeze.modules.enc") && msg.contains("empty"),
            "{msg}"
        );
        assert!(FreezeSpec::Steps(-2).validate("k").is_err());
    }

    #[test]
    fn disabled_freezes_nothing() {
        let cfg = FreezeConfig {
            enabled: false,
            modules: [("enc".to_string(), FreezeSpec::Steps(-1))].into(),
        };
        assert!(cfg.frozen_at(3).is_empty());
    }

    #[test]
    fn freezer_uses_the_modules_freeze_and_leaves_user_freezes_alone() -> Result<()> {
        let p = Parameters::new();
        let vb = p.var_builder(candle_core::DType::F32, &candle_core::Device::Cpu);
        for m in ["encoder", "decoder", "joint"] {
            vb.pp(m)
                .get_with_hints(2, "weight", candle_nn::init::ZERO)?;
        }
        p.freeze("joint");
        {
            let mut f = DynamicFreezer::new(p.clone());
            f.apply(&["encoder", "joint"]);
            assert_eq!(p.num_weights(""), 2);
            assert_eq!(p.frozen_modules(), ["encoder", "joint"]);
            f.apply(&["decoder"]);
            assert_eq!(p.frozen_modules(), ["decoder", "joint"]);
            assert_eq!(p.num_weights("encoder"), 2);
            assert!(p.is_frozen("joint"), "the user's freeze stays");
        }
        assert!(!p.is_frozen("decoder"), "unfrozen on drop");
        assert!(p.is_frozen("joint"));
        assert_eq!(p.num_weights(""), 4);
        Ok(())
    }
}
