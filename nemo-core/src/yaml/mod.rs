//! Reading YAML configuration with errors that say where: [`ConfigError`] names the file, the
//! line and column ([`Location`], found by walking the text to the key path) and the key path
//! (`modules.encoder.config.jasper[3].kernel`); [`from_value`] deserializes a section and names
//! the full key path of whatever is wrong.
//!
//! A leaf below [`config`](crate::config) (whole models) and [`registry`](crate::registry)
//! (module factories), which both report through it; the public paths are
//! `nemo_core::config::{ConfigError, ...}`.

mod error;
mod locate;

pub(crate) use error::from_value_boxed;
pub use error::{ConfigError, ConfigProblem, from_value, join_key, path_to_key};
pub use locate::Location;
