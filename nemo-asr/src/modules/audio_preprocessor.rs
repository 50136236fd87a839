//! `AudioPreprocessor`: the mel front end as a typed module (NeMo's
//! `AudioToMelSpectrogramPreprocessor`), wrapping [`AudioToMelSpectrogramPreprocessor`] with its
//! seeded dither RNG and the model's train/eval mode.
//!
//! Ports: `input_signal (B, T) AudioSignal{freq = sample_rate}`, `length (B) Lengths` →
//! `processed_signal (B, D = features, T) MelSpectrogram`, `processed_length (B) Lengths`.

use std::sync::Mutex;

use nemo_core::params::Parameters;
use nemo_core::{Forward, neural_module};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Result;
use crate::preprocessing::{
    AudioToMelSpectrogramPreprocessor, AudioToMelSpectrogramPreprocessorConfig,
};

/// The mel front end.
#[neural_module(
    inputs(
        input_signal: (B, T) AudioSignal{freq = sample_rate},
        length: (B) Lengths,
    ),
    outputs(
        processed_signal: (B, D = features, T) MelSpectrogram,
        processed_length: (B) Lengths,
    ),
)]
#[derive(Debug)]
pub struct AudioPreprocessor {
    sample_rate: u32,
    features: usize,
    mel: AudioToMelSpectrogramPreprocessor,
    rng: Mutex<ChaCha8Rng>,
    params: Parameters,
    prefix: String,
}

impl AudioPreprocessor {
    /// Builds the front end; dither draws from an RNG seeded with `seed`; train/eval mode comes
    /// from `params` at `prefix`.
    pub fn new(
        config: AudioToMelSpectrogramPreprocessorConfig,
        seed: u64,
        params: &Parameters,
        prefix: &str,
    ) -> Result<Self> {
        Ok(AudioPreprocessor {
            sample_rate: config.sample_rate,
            features: config.features,
            mel: AudioToMelSpectrogramPreprocessor::new(config)?,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            params: params.clone(),
            prefix: prefix.to_string(),
        })
    }

    /// The wrapped preprocessor.
    pub fn preprocessor(&self) -> &AudioToMelSpectrogramPreprocessor {
        &self.mel
    }

    /// Reseeds the dither RNG (for exact resumption).
    pub fn reseed(&self, seed: u64) {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = ChaCha8Rng::seed_from_u64(seed);
    }
}

impl Forward for AudioPreprocessor {
    fn forward_tensors(
        &self,
        x: AudioPreprocessorInputTensors,
    ) -> nemo_core::Result<AudioPreprocessorOutputTensors> {
        let train = self.params.is_training(&self.prefix);
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let (processed_signal, processed_length) =
            self.mel
                .forward_tensors(&x.input_signal, &x.length, train, &mut *rng)?;
        Ok(AudioPreprocessorOutputTensors {
            processed_signal,
            processed_length,
        })
    }
}
