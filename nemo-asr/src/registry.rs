//! The ASR modules by NeMo type name, for models written as YAML graphs
//! ([`nemo_core::config::ModelConfig`]); each takes NeMo's config keys.
//!
//! | type (aliases)                                                     | config                                     |
//! |--------------------------------------------------------------------|--------------------------------------------|
//! | `AudioToMelSpectrogramPreprocessor` (`AudioToMelSpectrogramPreprocessor`)          | [`AudioToMelSpectrogramPreprocessorConfig`] |
//! | `SpectrogramAugmentation` (`SpecAugment`)                          | [`SpecAugmentConfig`]                      |
//! | `ConvASREncoder` (`JasperEncoder`)                                 | [`ConvASREncoderConfig`]                   |
//! | `ConvASRDecoder` (`JasperDecoderForCTC`)                           | [`ConvASRDecoderConfig`]                   |
//! | `CTCLossNM` (`CTCLoss`)                                            | [`CTCLossNMConfig`]                        |
//!
//! A module's weights go under its node name (`encoder.blocks.0.conv.weight`); whether a call
//! trains, and its random draws (dither, SpecAugment masks), come with the call
//! ([`nemo_core::ForwardCtx`]).
//!
//! Registrations are statics collected at link time, and the linker keeps only what a binary
//! references: a binary that builds models from YAML should call [`ensure_registered`] once,
//! which references this file and so keeps its registrations.

use nemo_core::register_module;
use nemo_core::registry::BuildContext;
use serde::{Deserialize, Serialize};

use crate::losses::{CtcLossConfig, CtcReduction};
use crate::modules::{
    CTCLossNM, ConvASRDecoder, ConvASRDecoderConfig, ConvASREncoder, ConvASREncoderConfig,
    SpectrogramAugmentation,
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
    "AudioToMelSpectrogramPreprocessor" | "AudioToMelSpectrogramPreprocessor",
    |config: AudioToMelSpectrogramPreprocessorConfig, ctx| {
        config.init().map_err(|e| relocate(ctx, "preprocessor", e))
    }
);

register_module!(
    "SpectrogramAugmentation" | "SpecAugment",
    |config: SpecAugmentConfig, ctx| {
        SpectrogramAugmentation::new(config).map_err(|e| relocate(ctx, "spec_augment", e))
    }
);

register_module!(
    "ConvASREncoder" | "JasperEncoder",
    |config: ConvASREncoderConfig, ctx| {
        config.validate().map_err(|e| relocate(ctx, "encoder", e))?;
        ConvASREncoder::new(config, ctx.vb()).map_err(|e| relocate(ctx, "encoder", e))
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
