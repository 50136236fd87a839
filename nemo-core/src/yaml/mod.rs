//! Reading YAML configuration with errors that say where: [`ConfigError`] names the file, the
//! line and column ([`Location`], found by walking the text to the key path) and the key path
//! (`modules.encoder.config.jasper[3].kernel`); [`from_value`] deserializes a section and names
//! the full key path of whatever is wrong.
//!
//! [`read_yaml_file`] reads a whole file into a typed config (a run config, a model directory's
//! `model.yaml`) with the same precision.
//!
//! A leaf below [`config`](crate::config) (whole models), [`registry`](crate::registry) (module
//! factories) and [`train`](crate::train) (run configs), which all report through it;
//! `nemo_core::config` re-exports the error types.

mod error;
mod locate;
mod read;

pub(crate) use error::from_value_boxed;
pub use error::{ConfigError, ConfigProblem, from_value, join_key, path_to_key};
pub use locate::Location;
pub use read::{from_yaml_str, read_yaml_file};
