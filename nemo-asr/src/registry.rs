//! The ASR modules by NeMo type name, for models written as YAML graphs
//! ([`nemo_core::config::ModelConfig`]); each takes NeMo's config keys.
//!
//! | type (NeMo's spellings, also accepted)                         | config                                      |
//! |----------------------------------------------------------------|---------------------------------------------|
//! | `AudioToMelSpectrogramPreprocessor` (`AudioPreprocessor`)      | [`AudioToMelSpectrogramPreprocessorConfig`] |
//! | `SpectrogramAugmentation` (`SpecAugment`)                      | [`SpectrogramAugmentationConfig`]           |
//! | `ConvAsrEncoder` (`ConvASREncoder`, `JasperEncoder`)           | [`ConvAsrEncoderConfig`]                    |
//! | `ConvAsrDecoder` (`ConvASRDecoder`, `JasperDecoderForCTC`)     | [`ConvAsrDecoderConfig`]                    |
//! | `CtcLoss` (`CTCLoss`, `CTCLossNM`)                             | [`CtcLossConfig`]                           |
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

use crate::losses::CtcLossConfig;
use crate::modules::{ConvAsrDecoderConfig, ConvAsrEncoderConfig};
use crate::preprocessing::{
    AudioToMelSpectrogramPreprocessorConfig, SpectrogramAugmentationConfig,
};

/// The type names this crate registers.
pub const MODULE_TYPES: &[&str] = &[
    "AudioToMelSpectrogramPreprocessor",
    "SpectrogramAugmentation",
    "ConvAsrEncoder",
    "ConvAsrDecoder",
    "CtcLoss",
];

/// Makes sure this crate — and so its module registrations — is linked into the binary. Calling
/// it costs nothing; it returns the registered type names.
#[inline(never)]
pub fn ensure_registered() -> &'static [&'static str] {
    std::hint::black_box(MODULE_TYPES)
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
        config.init().map_err(|e| relocate(ctx, "preprocessor", e))
    }
);

register_module!(
    "SpectrogramAugmentation" | "SpecAugment",
    |config: SpectrogramAugmentationConfig, ctx| {
        config.init().map_err(|e| relocate(ctx, "spec_augment", e))
    }
);

register_module!(
    "ConvAsrEncoder" | "ConvASREncoder" | "JasperEncoder",
    |config: ConvAsrEncoderConfig, ctx| {
        config.validate().map_err(|e| relocate(ctx, "encoder", e))?;
        config
            .init(ctx.vb())
            .map_err(|e| relocate(ctx, "encoder", e))
    }
);

register_module!(
    "ConvAsrDecoder" | "ConvASRDecoder" | "JasperDecoderForCTC",
    |config: ConvAsrDecoderConfig, ctx| {
        if config.feat_in == 0 {
            return Err(ctx.invalid("feat_in", 0, "a positive number of channels"));
        }
        if config.num_classes == 0 {
            return Err(ctx.invalid("num_classes", 0, "a positive number of labels"));
        }
        config
            .init(ctx.vb())
            .map_err(|e| relocate(ctx, "decoder", e))
    }
);

register_module!(
    "CtcLoss" | "CTCLoss" | "CTCLossNM",
    |config: CtcLossConfig, ctx| config.init().map_err(|e| relocate(ctx, "loss", e))
);

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
