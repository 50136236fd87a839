//! Module factories by NeMo type name, collected across crates at link time, so a module named in
//! a YAML config (`type: ConvAsrEncoder`) can be built through the dynamic path.
//!
//! A factory takes the module's `config:` section as a `serde_norway::Value` and a
//! [`BuildContext`] (the node's name, the [`VarBuilder`] scoped to it, device, dtype) and
//! returns the module as an `Arc<dyn DynModule>`. Collections register their modules with
//! [`register_module!`](crate::register_module), which deserializes the config with
//! `serde_path_to_error`, so a bad value is reported at its full key path
//! (`modules.encoder.config.jasper[3].kernel`):
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use nemo_core::prelude::*;
//! use nemo_core::params::Parameters;
//! use nemo_core::registry::{BuildContext, build_module};
//!
//! /// `y = x * weight`, weight `(dim)`.
//! #[neural_module(inputs(x: (B, D = dim) Channel), outputs(y: (B, D = dim) Channel))]
//! struct Scale { dim: usize, weight: Tensor }
//!
//! impl Forward for Scale {
//!     fn forward_tensors(&self, x: ScaleInputTensors, _ctx: &ForwardCtx) -> nemo_core::Result<ScaleOutputTensors> {
//!         Ok(ScaleOutputTensors { y: x.x.broadcast_mul(&self.weight)? })
//!     }
//! }
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct ScaleConfig { dim: usize }
//!
//! nemo_core::register_module!("Scale", |config: ScaleConfig, ctx| {
//!     let weight = ctx.vb().get_with_hints(config.dim, "weight", candle_nn::init::ONE)?;
//!     Ok::<_, nemo_core::Error>(Scale { dim: config.dim, weight })
//! });
//!
//! # fn main() -> nemo_core::Result<()> {
//! let params = Parameters::new();
//! let ctx = BuildContext::new("scale", "modules.scale.config", &params, &Device::Cpu, DType::F32);
//! let config: serde_norway::Value = serde_norway::from_str("{dim: 3}").map_err(|e| nemo_core::Error::Config { key: "".into(), msg: e.to_string() })?;
//! let module = build_module("Scale", &config, &ctx)?;
//! assert_eq!(module.dyn_input_types().to_string(), "x: (B, D:3) Channel");
//! assert_eq!(params.num_weights("scale"), 3);
//!
//! let bad: serde_norway::Value = serde_norway::from_str("{dim: three}").map_err(|e| nemo_core::Error::Config { key: "".into(), msg: e.to_string() })?;
//! let err = build_module("Scale", &bad, &ctx).err().map(|e| e.to_string()).unwrap_or_default();
//! assert!(err.contains("`modules.scale.config.dim`: invalid type: string \"three\""), "{err}");
//! # Ok(())
//! # }
//! ```
//!
//! Registration is a static collected by the linker (`inventory`): a crate's factories exist in
//! a binary only if that crate is linked into it. A binary that names no item of the collection
//! should call its `ensure_registered()` (e.g. `nemo_asr::registry::ensure_registered()`).
//!
//! [`build_module`] looks a type up and builds it; an unknown type is an error listing the known
//! types with the closest one suggested ([`crate::suggest`]). [`crate::config::ModelConfig`] builds whole models.

use std::sync::Arc;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::de::DeserializeOwned;

use crate::module::DynModule;
use crate::params::Parameters;
use crate::suggest::closest;
use crate::yaml::{ConfigError, ConfigProblem, from_value, join_key};
use crate::{Error, Result};

/// Builds a module from its config section and the build context.
pub type BuildFn = fn(&serde_norway::Value, &BuildContext<'_>) -> Result<Arc<dyn DynModule>>;

/// A registered module constructor: a type name (NeMo's class name), accepted aliases, and the
/// function that builds it.
#[derive(Debug)]
pub struct ModuleFactory {
    /// The type name used in configs, e.g. `ConvAsrEncoder`.
    pub type_name: &'static str,
    /// Other accepted names, e.g. NeMo's `JasperEncoder` for `ConvAsrEncoder`.
    pub aliases: &'static [&'static str],
    /// The constructor.
    pub build: BuildFn,
}

inventory::collect!(ModuleFactory);

impl ModuleFactory {
    /// A factory (usable in `inventory::submit!`).
    pub const fn new(
        type_name: &'static str,
        aliases: &'static [&'static str],
        build: BuildFn,
    ) -> Self {
        ModuleFactory {
            type_name,
            aliases,
            build,
        }
    }

    /// The factory registered under `name` (its type name or an alias).
    pub fn lookup(name: &str) -> Option<&'static ModuleFactory> {
        inventory::iter::<ModuleFactory>
            .into_iter()
            .find(|f| f.type_name == name || f.aliases.contains(&name))
    }

    /// Every registered factory, sorted by type name.
    pub fn all() -> Vec<&'static ModuleFactory> {
        let mut all: Vec<_> = inventory::iter::<ModuleFactory>.into_iter().collect();
        all.sort_by_key(|f| f.type_name);
        all.dedup_by_key(|f| f.type_name);
        all
    }

    /// Every registered type name, sorted.
    pub fn type_names() -> Vec<&'static str> {
        Self::all().into_iter().map(|f| f.type_name).collect()
    }
}

/// What a factory gets besides its config: where its weights go and how to initialize.
#[derive(Clone)]
pub struct BuildContext<'a> {
    name: String,
    key: String,
    params: &'a Parameters,
    vb: VarBuilder<'static>,
    device: Device,
    dtype: DType,
}

impl std::fmt::Debug for BuildContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildContext")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("device", &self.device)
            .field("dtype", &self.dtype)
            .finish_non_exhaustive()
    }
}

impl<'a> BuildContext<'a> {
    /// A context for node `name`: its weights are created in `params` under the prefix `name`
    /// (`encoder.blocks.0.conv.weight`). `key` is the config section's key path for error
    /// messages (`modules.encoder.config`).
    pub fn new(
        name: &str,
        key: &str,
        params: &'a Parameters,
        device: &Device,
        dtype: DType,
    ) -> Self {
        BuildContext {
            name: name.to_string(),
            key: key.to_string(),
            params,
            vb: params.var_builder(dtype, device).pp(name),
            device: device.clone(),
            dtype,
        }
    }

    /// The node's name, also its parameter prefix in [`Parameters`] and its name in the
    /// [`ForwardCtx`](crate::ForwardCtx) paths.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key path of the module's config section, e.g. `modules.encoder.config`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The model's parameter store.
    pub fn params(&self) -> &'a Parameters {
        self.params
    }

    /// A builder for the module's weights, scoped to its name.
    pub fn vb(&self) -> VarBuilder<'static> {
        self.vb.clone()
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The weights' dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Deserializes the module's typed config from `value`; an error names the full key path
    /// (`modules.encoder.config.jasper[3].kernel`), the value found and what was expected.
    pub fn config<T: DeserializeOwned>(&self, value: &serde_norway::Value) -> Result<T> {
        // A missing `config:` section means "all defaults".
        let empty = serde_norway::Value::Mapping(serde_norway::Mapping::new());
        let value = if value.is_null() { &empty } else { value };
        from_value(value, &self.key)
    }

    /// An error about the config value at `rel_key` (relative to the config section, e.g.
    /// `jasper[3].kernel`): `found` and what was `expected`.
    pub fn invalid(&self, rel_key: &str, found: impl ToString, expected: impl ToString) -> Error {
        ConfigError::new(
            join_key(&self.key, rel_key),
            ConfigProblem::Value {
                found: found.to_string(),
                expected: expected.to_string(),
            },
        )
        .into()
    }

    /// An error at `rel_key` of the config section with a free message (e.g. a collection's own
    /// validation error).
    pub fn error_at(&self, rel_key: &str, msg: impl ToString) -> Error {
        ConfigError::new(
            join_key(&self.key, rel_key),
            ConfigProblem::Invalid {
                msg: msg.to_string(),
            },
        )
        .into()
    }
}

/// The error for an unknown type name at `key`, listing the known types and the closest.
pub fn unknown_type(key: &str, found: &str) -> ConfigError {
    let known = ModuleFactory::type_names();
    let candidates = ModuleFactory::all()
        .into_iter()
        .flat_map(|f| std::iter::once(f.type_name).chain(f.aliases.iter().copied()));
    let suggestion = closest(found, candidates).map(|s| {
        // Suggest the canonical name even when an alias was closest.
        ModuleFactory::lookup(s)
            .map_or(s, |f| f.type_name)
            .to_string()
    });
    ConfigError::new(
        key,
        ConfigProblem::UnknownType {
            found: found.to_string(),
            known: known.into_iter().map(String::from).collect(),
            suggestion,
        },
    )
}

/// Builds a module of type `type_name` from its config section. An unknown type is an error at
/// `{ctx.key()}` minus its last segment + `.type`, listing the known types; constructor errors
/// that are not already configuration errors are reported at the config section's key.
pub fn build_module(
    type_name: &str,
    config: &serde_norway::Value,
    ctx: &BuildContext<'_>,
) -> Result<Arc<dyn DynModule>> {
    let Some(factory) = ModuleFactory::lookup(type_name) else {
        let parent = ctx.key.rsplit_once('.').map_or("", |(p, _)| p);
        return Err(unknown_type(&join_key(parent, "type"), type_name).into());
    };
    (factory.build)(config, ctx).map_err(|e| match e {
        e @ Error::ModelConfig(_) => e,
        other => ConfigError::new(ctx.key.clone(), ConfigProblem::Source(Box::new(other))).into(),
    })
}

/// Turns a constructor's result into the core's [`Result`] (used by
/// [`register_module!`](crate::register_module)).
#[doc(hidden)]
pub fn __into_core<M, E: Into<Error>>(r: std::result::Result<M, E>) -> Result<M> {
    r.map_err(Into::into)
}

/// What a registered constructor may return: a module (wrapped in an `Arc` here), or a module
/// already shared as `Arc<dyn DynModule>` (e.g. an adapter chosen at run time).
pub trait IntoDynModule {
    /// The module as a shared trait object.
    fn into_dyn_module(self) -> Arc<dyn DynModule>;
}

impl<M: DynModule + 'static> IntoDynModule for M {
    fn into_dyn_module(self) -> Arc<dyn DynModule> {
        Arc::new(self)
    }
}

impl IntoDynModule for Arc<dyn DynModule> {
    fn into_dyn_module(self) -> Arc<dyn DynModule> {
        self
    }
}

#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use serde_norway::Value;
}

/// Registers a module type for configs: a type name (and `| "Alias"`es), then a closure-like
/// constructor from the deserialized config and the [`BuildContext`] returning
/// `Result<Module, E>` where `E` converts into the core's error and `Module` is a
/// [`DynModule`] or an `Arc<dyn DynModule>` ([`IntoDynModule`]). The config type is anything
/// `Deserialize` — a module's config struct, or `serde_norway::Value` to take it apart by hand.
///
/// ```ignore
/// nemo_core::register_module!("ConvAsrDecoder" | "JasperDecoderForCTC",
///     |config: ConvAsrDecoderConfig, ctx| config.init(ctx.vb()));
/// ```
#[macro_export]
macro_rules! register_module {
    ($type_name:literal $(| $alias:literal)*, |$config:ident : $config_ty:ty, $ctx:ident| $body:expr $(,)?) => {
        const _: () = {
            fn __nemo_build(
                value: &$crate::registry::__private::Value,
                $ctx: &$crate::registry::BuildContext<'_>,
            ) -> $crate::Result<::std::sync::Arc<dyn $crate::module::DynModule>> {
                let $config: $config_ty = $ctx.config(value)?;
                let module = $crate::registry::__into_core($body)?;
                ::std::result::Result::Ok($crate::registry::IntoDynModule::into_dyn_module(module))
            }
            $crate::registry::__private::inventory::submit! {
                $crate::registry::ModuleFactory::new($type_name, &[$($alias),*], __nemo_build)
            }
        };
    };
}
