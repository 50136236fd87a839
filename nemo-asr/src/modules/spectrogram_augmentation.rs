//! `SpectrogramAugmentation`: SpecAugment as a typed module, active in training mode only.
//!
//! Ports: `input_spec (B, D, T) MelSpectrogram`, `length (B) Lengths` →
//! `augmented_spec (B, D, T) MelSpectrogram` (masking keeps the features mel features).

use nemo_core::{Forward, ForwardCtx, neural_module};

use super::jasper_block::lengths_to_vec;
use crate::Result;
use crate::preprocessing::{SpecAugment, SpecAugmentConfig};

/// SpecAugment: frequency and time masks inside each row's length.
#[neural_module(
    inputs(input_spec: (B, D, T as frames) MelSpectrogram, length: (B) Lengths),
    outputs(augmented_spec: (B, D, T as frames) MelSpectrogram),
)]
#[derive(Debug)]
pub struct SpectrogramAugmentation {
    augment: SpecAugment,
}

impl SpectrogramAugmentation {
    /// Builds the augmentation; a training call draws its masks from its context.
    pub fn new(config: SpecAugmentConfig) -> Result<Self> {
        Ok(SpectrogramAugmentation {
            augment: SpecAugment::new(config)?,
        })
    }
}

impl Forward for SpectrogramAugmentation {
    fn forward_tensors(
        &self,
        x: SpectrogramAugmentationInputTensors,
        ctx: &ForwardCtx,
    ) -> nemo_core::Result<SpectrogramAugmentationOutputTensors> {
        if !ctx.is_training() {
            return Ok(SpectrogramAugmentationOutputTensors {
                augmented_spec: x.input_spec,
            });
        }
        let lens = lengths_to_vec(&x.length)?;
        let augmented_spec = self.augment.forward(&x.input_spec, &lens, &mut ctx.rng())?;
        Ok(SpectrogramAugmentationOutputTensors { augmented_spec })
    }
}
