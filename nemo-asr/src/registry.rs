//! The ASR modules by NeMo type name, for models written as YAML graphs
//! ([`nemo_core::config::ModelConfig`]); each takes NeMo's config keys.
//!
//! | type (aliases)                                                     | config                                     |
//! |--------------------------------------------------------------------|--------------------------------------------|
//! | `AudioToMelSpectrogramPreprocessor` (`AudioPreprocessor`)          | [`AudioToMelSpectrogramPreprocessorConfig`] |
//! | `SpectrogramAugmentation` (`SpecAugment`)                          | [`SpecAugmentConfig`] + `features` (ours)  |
//! | `ConvASREncoder` (`JasperEncoder`)                                 | [`ConvASREncoderConfig`]                   |
//! | `ConvASRDecoder` (`JasperDecoderForCTC`)                           | [`ConvASRDecoderConfig`]                   |
//! | `CTCLossNM` (`CTCLoss`)                                            | [`CTCLossNMConfig`]                        |
//!
//! A module's weights go under its node name (`encoder.blocks.0.conv.weight`), and its train/eval
//! mode and seed (dither, SpecAugment masks) come from the build context.
//!
//! Registrations are statics collected at link time, and the linker keeps only what a binary
//! references: a binary that builds models from YAML should call [`ensure_registered`] once,
//! which references this file and so keeps its registrations.

use std::sync::Arc;

use nemo_core::check::{Direction, Problem, TypeError};
use nemo_core::module::{DynModule, ModuleKind, NamedTensors, PortTypes};
use nemo_core::register_module;
use nemo_core::registry::BuildContext;
use nemo_core::types::{AxisKind, NeuralType};
use serde::{Deserialize, Serialize};

use crate::losses::{CtcLossConfig, CtcReduction};
use crate::modules::{
    AudioPreprocessor, CTCLossNM, ConvASRDecoder, ConvASRDecoderConfig, ConvASREncoder,
    ConvASREncoderConfig, SpectrogramAugmentation,
};
use crate::preprocessing::{AudioToMelSpectrogramPreprocessorConfig, SpecAugmentConfig};

/// The type names this crate registers.
pub const MODULE_TYPES: &[&str] = &[
    "AudioToMelSpectrogramPreprocessor",
    "SpectrogramAugmentation",
    "ConvASREncoder",
    "ConvASRDecoder",
    "CTCLossNM",
];

/// Makes sure this crate — and so its module registrations — is linked into the binary. Calling
/// it costs nothing; it returns the registered type names.
#[inline(never)]
pub fn ensure_registered() -> &'static [&'static str] {
    std::hint::black_box(MODULE_TYPES)
}

/// The config of `CTCLossNM`, NeMo's `CTCLoss` keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CTCLossNMConfig {
    /// Labels, not counting the blank (the blank is class `num_classes`, the last).
    pub num_classes: usize,
    /// How per-sample losses are combined; default `mean_batch`.
    #[serde(default)]
    pub reduction: CtcReduction,
    /// Replace infinite losses by zero; default false.
    #[serde(default)]
    pub zero_infinity: bool,
}

/// Maps a collection config error (`encoder.jasper[2].kernel`) to the model config's key path.
fn relocate(ctx: &BuildContext<'_>, section: &str, e: crate::Error) -> nemo_core::Error {
    match e {
        crate::Error::Config { key, msg } => {
            let rel = key
                .strip_prefix(section)
                .map(|k| k.trim_start_matches('.'))
                .unwrap_or(&key);
            ctx.error_at(rel, msg)
        }
        other => other.into(),
    }
}

register_module!(
    "AudioToMelSpectrogramPreprocessor" | "AudioPreprocessor",
    |config: AudioToMelSpectrogramPreprocessorConfig, ctx| {
        AudioPreprocessor::new(config, ctx.seed(), ctx.params(), ctx.name())
            .map_err(|e| relocate(ctx, "preprocessor", e))
    }
);

/// `SpectrogramAugmentation` as a graph node whose `D` axis has a fixed size.
///
/// SpecAugment keeps its input's shape, but its ports are declared `(B, D, T)` without a size,
/// and NeMo's type comparison (ours too) rejects an unsized `D` output feeding a sized
/// `(B, D: 64, T)` encoder input as `DIM_INCOMPATIBLE`. A graph config may therefore give the
/// feature count under the extra key `features` (not one of NeMo's keys); the node then declares
/// `(B, D: features, T)` on both spectrogram ports and checks the size when called.
struct SizedSpectrogramAugmentation {
    inner: SpectrogramAugmentation,
    features: usize,
    inputs: PortTypes,
    outputs: PortTypes,
}

/// `ports` with every unsized `D` axis given size `size`.
fn with_d_size(ports: PortTypes, size: usize) -> PortTypes {
    let d = AxisKind::from_label("D");
    PortTypes::new(
        ports
            .iter()
            .map(|(name, ty)| {
                let axes = ty.axes().map(|axes| {
                    axes.iter()
                        .map(|a| match a.size {
                            None if Some(a.kind) == d && !a.is_list => a.with_size(size),
                            _ => *a,
                        })
                        .collect()
                });
                let sized = NeuralType::new(axes, ty.element().clone());
                let sized = if ty.is_optional() {
                    sized.optional()
                } else {
                    sized
                };
                (name.to_string(), sized)
            })
            .collect(),
    )
}

impl DynModule for SizedSpectrogramAugmentation {
    fn type_name(&self) -> &'static str {
        self.inner.type_name()
    }
    fn kind(&self) -> ModuleKind {
        self.inner.kind()
    }
    fn dyn_input_types(&self) -> PortTypes {
        self.inputs.clone()
    }
    fn dyn_output_types(&self) -> PortTypes {
        self.outputs.clone()
    }
    fn forward_dyn(&self, inputs: NamedTensors) -> nemo_core::Result<NamedTensors> {
        if let Some(spec) = inputs.get("input_spec")
            && let Some(&found) = spec.dims().get(1)
            && found != self.features
        {
            let port_type = self
                .inputs
                .get("input_spec")
                .map(ToString::to_string)
                .unwrap_or_default();
            return Err(nemo_core::Error::Type(Box::new(TypeError::new(
                "SpectrogramAugmentation",
                Direction::Input,
                "input_spec",
                port_type,
                spec.dims(),
                Problem::Size {
                    axis: 1,
                    label: "D".into(),
                    expected: self.features,
                    found,
                    because: "the node's `features`".into(),
                },
            ))));
        }
        self.inner.forward_dyn(inputs)
    }
}

register_module!(
    "SpectrogramAugmentation" | "SpecAugment",
    |config: serde_norway::Value, ctx| {
        // `features` is ours (see `SizedSpectrogramAugmentation`); the rest is NeMo's.
        let mut rest = config;
        let features = match rest.as_mapping_mut().and_then(|m| m.remove("features")) {
            Some(v) => Some(
                v.as_u64()
                    .and_then(|f| usize::try_from(f).ok())
                    .filter(|&f| f > 0)
                    .ok_or_else(|| {
                        ctx.invalid(
                            "features",
                            format!("{v:?}"),
                            "a positive number of mel features",
                        )
                    })?,
            ),
            None => None,
        };
        let spec: SpecAugmentConfig = ctx.config(&rest)?;
        let inner = SpectrogramAugmentation::new(spec, ctx.seed(), ctx.params(), ctx.name())
            .map_err(|e| relocate(ctx, "spec_augment", e))?;
        let module: Arc<dyn DynModule> = match features {
            Some(features) => Arc::new(SizedSpectrogramAugmentation {
                inputs: with_d_size(inner.dyn_input_types(), features),
                outputs: with_d_size(inner.dyn_output_types(), features),
                inner,
                features,
            }),
            None => Arc::new(inner),
        };
        Ok::<_, nemo_core::Error>(module)
    }
);

register_module!(
    "ConvASREncoder" | "JasperEncoder",
    |config: ConvASREncoderConfig, ctx| {
        config.validate().map_err(|e| relocate(ctx, "encoder", e))?;
        ConvASREncoder::new(config, ctx.params(), ctx.name(), ctx.vb())
            .map_err(|e| relocate(ctx, "encoder", e))
    }
);

register_module!(
    "ConvASRDecoder" | "JasperDecoderForCTC",
    |config: ConvASRDecoderConfig, ctx| {
        if config.feat_in == 0 {
            return Err(ctx.invalid("feat_in", 0, "a positive number of channels"));
        }
        if config.num_classes == 0 {
            return Err(ctx.invalid("num_classes", 0, "a positive number of labels"));
        }
        ConvASRDecoder::new(&config, ctx.vb()).map_err(|e| relocate(ctx, "decoder", e))
    }
);

register_module!("CTCLossNM" | "CTCLoss", |config: CTCLossNMConfig, ctx| {
    if config.num_classes == 0 {
        return Err(ctx.invalid("num_classes", 0, "a positive number of labels"));
    }
    let loss = CtcLossConfig {
        blank: None,
        reduction: config.reduction,
        zero_infinity: config.zero_infinity,
    };
    Ok::<_, nemo_core::Error>(CTCLossNM::new(config.num_classes + 1, loss))
});

#[cfg(test)]
mod tests {
    use nemo_core::registry::ModuleFactory;

    use super::*;

    #[test]
    fn every_listed_type_is_registered() {
        for name in MODULE_TYPES {
            assert!(ModuleFactory::lookup(name).is_some(), "{name}");
        }
        assert!(ModuleFactory::lookup("JasperEncoder").is_some());
    }
}
