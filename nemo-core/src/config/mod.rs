//! Configuration is data: a whole model — graph inputs, modules, connections, outputs — read from
//! YAML and built into the one activation graph ([`dag::Graph`](crate::dag::Graph)), with every
//! connection type-checked and every mandatory input port checked connected before any
//! computation. The built model runs eagerly ([`BuiltModel::forward`]) or, its inputs bound to a
//! data layer's outputs ([`ModelConfig::build_on`]), under the graph's `train` / `eval` / `infer`
//! actions.
//!
//! ```yaml
//! name: JasperCTC                  # optional, for logs
//! inputs:                          # graph inputs: name -> neural type (the parser's text form)
//!   audio_signal: "(B, T) AudioSignal{freq=16000}"
//!   a_sig_length: "(B) Lengths"
//! modules:                         # node name -> {type, config, seed?}; any order
//!   encoder: {type: ConvAsrEncoder, config: {feat_in: 64, jasper: [...]}}
//!   preprocessor: {type: AudioToMelSpectrogramPreprocessor, config: {features: 64}}
//! connections:                     # producer -> consumer; producer: an input or `node.port`
//!   - audio_signal -> preprocessor.input_signal
//!   - a_sig_length -> preprocessor.length
//!   - preprocessor.processed_signal -> encoder.audio_signal
//!   - preprocessor.processed_length -> encoder.length
//! outputs: [encoder.outputs, encoder.encoded_lengths]
//! ```
//!
//! ```ignore
//! nemo_asr::registry::ensure_registered();
//! let config = ModelConfig::from_yaml_file("configs/graphs/jasper_ctc_graph.yaml")?;
//! let params = Parameters::new();
//! let model = config.build(&params, &Device::Cpu)?;    // all checks happen here
//! let out = model.forward(inputs)?;                    // out["loss.loss"]
//! ```
//!
//! Nothing is computed before every check has passed; a config naming an unregistered type
//! fails at `build`:
//!
//! ```
//! use candle_core::Device;
//! use nemo_core::config::ModelConfig;
//! use nemo_core::params::Parameters;
//!
//! let config = ModelConfig::from_yaml_str("modules:\n  enc: {type: NoSuchEncoder}\n")?;
//! let err = config.build(&Parameters::new(), &Device::Cpu).err().map(|e| e.to_string());
//! let err = err.unwrap_or_default();
//! assert!(err.starts_with("line 2, column 15: `modules.enc.type`: unknown module type"), "{err}");
//! # Ok::<(), nemo_core::Error>(())
//! ```
//!
//! Module types come from the [`registry`](crate::registry). Modules are built and run in an
//! order computed from the connections (producers first, ties by name), so the YAML may list them
//! in any order; a cycle is an error naming it. A node's weights live in the [`Parameters`](crate::params::Parameters) under
//! its name (`encoder.blocks.0.conv.weight`), the same names a typed model with the same module
//! names uses, so weights load across the two.
//!
//! Every error is a [`ConfigError`] (inside [`Error::ModelConfig`](crate::Error::ModelConfig)) naming the file, the line and
//! column, the key path (`modules.encoder.config.jasper[3].kernel`), the value and what was
//! expected; a miswired connection names both ports and both types.

mod build;
mod built_model;
mod connection;
mod model_config;
mod topo;

pub use build::BuildOptions;
pub use built_model::{BuiltModel, BuiltNode};
pub use connection::Connection;
pub use model_config::{ModelConfig, ModuleEntry};

pub use crate::yaml::{ConfigError, ConfigProblem, Location, from_value, join_key, path_to_key};
