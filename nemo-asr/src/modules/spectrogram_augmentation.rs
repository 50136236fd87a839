//! `SpectrogramAugmentation`: SpecAugment as a typed module, active in training mode only.
//!
//! Ports: `input_spec (B, D, T) MelSpectrogram`, `length (B) Lengths` →
//! `augmented_spec (B, D, T) MelSpectrogram` (masking keeps the features mel features).

use std::sync::Mutex;

use nemo_core::params::Parameters;
use nemo_core::{Forward, neural_module};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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
    rng: Mutex<ChaCha8Rng>,
    params: Parameters,
    prefix: String,
}

impl SpectrogramAugmentation {
    /// Builds the augmentation; masks draw from an RNG seeded with `seed`.
    pub fn new(
        config: SpecAugmentConfig,
        seed: u64,
        params: &Parameters,
        prefix: &str,
    ) -> Result<Self> {
        Ok(SpectrogramAugmentation {
            augment: SpecAugment::new(config)?,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            params: params.clone(),
            prefix: prefix.to_string(),
        })
    }

    /// Reseeds the mask RNG (for exact resumption).
    pub fn reseed(&self, seed: u64) {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = ChaCha8Rng::seed_from_u64(seed);
    }
}

impl Forward for SpectrogramAugmentation {
    fn forward_tensors(
        &self,
        x: SpectrogramAugmentationInputTensors,
    ) -> nemo_core::Result<SpectrogramAugmentationOutputTensors> {
        if !self.params.is_training(&self.prefix) {
            return Ok(SpectrogramAugmentationOutputTensors {
                augmented_spec: x.input_spec,
            });
        }
        let lens = lengths_to_vec(&x.length)?;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let augmented_spec = self.augment.forward(&x.input_spec, &lens, &mut *rng)?;
        Ok(SpectrogramAugmentationOutputTensors { augmented_spec })
    }
}
