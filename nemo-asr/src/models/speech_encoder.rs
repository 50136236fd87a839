//! [`SpeechEncoder`]: what the CTC and the attention model share (paper §4.1: the attention model
//! re-uses the CTC model's front end) — mel preprocessor, SpecAugment in training, and the
//! Jasper/QuartzNet [`ConvAsrEncoder`], typed from `(B, T) AudioSignal` to
//! `(B, D, T) AcousticEncodedRepresentation` — plus the model directory both save to.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use nemo_core::params::Parameters;
use nemo_core::prelude::*;
use serde::{Deserialize, Serialize};

use crate::modules::*;
use crate::preprocessing::{
    AudioToMelSpectrogramPreprocessorConfig, SpectrogramAugmentationConfig,
};
use crate::{Error, Result};

/// Audio `(B, T)` and its lengths `(B)`, typed as the data layer's ports.
pub type TypedAudio = (NTensor<(B, T), AudioSignal>, NTensor<(B,), Lengths>);

/// Mel preprocessor → (SpecAugment) → `ConvAsrEncoder`, with weights under `preprocessor`,
/// `spec_augment` and `encoder`.
#[derive(Debug)]
pub struct SpeechEncoder {
    sample_rate: u32,
    device: Device,
    preprocessor: AudioToMelSpectrogramPreprocessor,
    spec_augment: Option<SpectrogramAugmentation>,
    encoder: ConvAsrEncoder,
    params: Parameters,
    /// The dtype the encoder computes in ([`ComputeDType`]'s code): features are cast to it and
    /// every convolution casts its (f32) weights to its input's dtype.
    compute_dtype: AtomicU8,
}

/// The dtypes a model can compute in: f32, or f16/bf16 for mixed precision (f32 master weights,
/// f32 BatchNorm statistics, log-softmax and CTC loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum ComputeDType {
    F32 = 0,
    F16 = 1,
    BF16 = 2,
}

impl ComputeDType {
    fn of(dtype: DType) -> Option<Self> {
        match dtype {
            DType::F32 => Some(Self::F32),
            DType::F16 => Some(Self::F16),
            DType::BF16 => Some(Self::BF16),
            _ => None,
        }
    }

    fn from_code(code: u8) -> DType {
        match code {
            1 => DType::F16,
            2 => DType::BF16,
            _ => DType::F32,
        }
    }
}

impl SpeechEncoder {
    /// Checks that the sections agree: the preprocessor's sample rate is the model's, its mel
    /// bands are the encoder's `feat_in`, and the encoder's block list is valid.
    pub fn validate_config(
        sample_rate: u32,
        preprocessor: &AudioToMelSpectrogramPreprocessorConfig,
        encoder: &ConvAsrEncoderConfig,
    ) -> Result<()> {
        let bad = |key: &str, msg: String| {
            Err(Error::Config {
                key: key.into(),
                msg,
            })
        };
        if preprocessor.sample_rate != sample_rate {
            return bad(
                "preprocessor.sample_rate",
                format!(
                    "{} differs from the model's sample_rate {sample_rate}",
                    preprocessor.sample_rate
                ),
            );
        }
        if preprocessor.features != encoder.feat_in {
            return bad(
                "encoder.feat_in",
                format!(
                    "{} differs from preprocessor.features {}",
                    encoder.feat_in, preprocessor.features
                ),
            );
        }
        encoder.validate()
    }

    /// Builds the three modules in `params` on `vb`'s device.
    pub fn new(
        sample_rate: u32,
        preprocessor: &AudioToMelSpectrogramPreprocessorConfig,
        spec_augment: Option<&SpectrogramAugmentationConfig>,
        encoder: &ConvAsrEncoderConfig,
        params: &Parameters,
        vb: &VarBuilder,
    ) -> Result<Self> {
        let preprocessor = preprocessor.init()?;
        let spec_augment = spec_augment.cloned().map(|c| c.init()).transpose()?;
        let encoder = encoder.init(vb.pp("encoder"))?;
        Ok(SpeechEncoder {
            sample_rate,
            device: vb.device().clone(),
            preprocessor,
            spec_augment,
            encoder,
            params: params.clone(),
            compute_dtype: AtomicU8::new(ComputeDType::F32 as u8),
        })
    }

    /// Sets the dtype the encoder computes in: `f32` (the default), or `f16`/`bf16` for mixed
    /// precision (the trainer's `precision.mode` sets it through the training task).
    ///
    /// # Errors
    /// [`Error::Config`] (key `trainer.precision.mode`) for any other dtype.
    pub fn set_compute_dtype(&self, dtype: DType) -> Result<()> {
        let code = ComputeDType::of(dtype).ok_or_else(|| Error::Config {
            key: "trainer.precision.mode".into(),
            msg: format!("ASR models compute in f32, f16 or bf16, not {dtype:?}"),
        })?;
        self.compute_dtype.store(code as u8, Ordering::Relaxed);
        Ok(())
    }

    /// The dtype the encoder computes in.
    pub fn compute_dtype(&self) -> DType {
        ComputeDType::from_code(self.compute_dtype.load(Ordering::Relaxed))
    }

    /// The encoder.
    pub fn encoder(&self) -> &ConvAsrEncoder {
        &self.encoder
    }

    /// The encoded length (time steps out of the encoder) of `samples` audio samples: the
    /// preprocessor's frame count through every block's stride, as `encode` reports it.
    pub fn encoded_length(&self, samples: usize) -> usize {
        let frames = self.preprocessor.get_seq_len(samples);
        self.encoder
            .config()
            .jasper
            .iter()
            .fold(frames, |len, block| block.out_len(len))
    }

    /// Loads the `encoder` weights (batch-norm statistics included) of another trained model
    /// directory — a CTC model's encoder under a new attention decoder, the paper's module
    /// reuse — and returns how many tensors were loaded. The directory's sample rate,
    /// preprocessor and encoder sections must equal this model's: the same weights over other
    /// features would be silently wrong. Nothing is changed on error.
    pub fn load_pretrained(&self, dir: &Path) -> Result<usize> {
        let yaml = dir.join("model.yaml");
        let theirs: FrontEndSections = nemo_core::yaml::read_yaml_file(&yaml)?;
        let differs = |section: &str| Error::Config {
            key: format!("{}: {section}", yaml.display()),
            msg: format!(
                "differs from this model's `{section}` section; the pretrained encoder cannot be reused"
            ),
        };
        if theirs.sample_rate != self.sample_rate {
            return Err(differs("sample_rate"));
        }
        if &theirs.preprocessor != self.preprocessor.config() {
            return Err(differs("preprocessor"));
        }
        if &theirs.encoder != self.encoder.config() {
            return Err(differs("encoder"));
        }
        Ok(self
            .params
            .load_prefix(&dir.join("weights.safetensors"), "encoder")?)
    }

    /// Wraps plain batch tensors as typed audio (the data layer's ports) on the model's device.
    pub fn typed_audio(&self, audio: &Tensor, lengths: &Tensor) -> Result<TypedAudio> {
        let audio = NTensor::new(audio.to_device(&self.device)?)?
            .with_param("freq", f64::from(self.sample_rate))?;
        Ok((audio, NTensor::new(lengths.to_device(&self.device)?)?))
    }

    /// Audio → mel → (SpecAugment, in training mode) → encoder, each in the mode `ctx` gives
    /// it (under the names `preprocessor`, `spec_augment`, `encoder`).
    pub fn encode(
        &self,
        audio: &NTensor<(B, T), AudioSignal>,
        length: &NTensor<(B,), Lengths>,
        ctx: &ForwardCtx,
    ) -> Result<ConvAsrEncoderOutputs> {
        let mel = self.preprocessor.forward_t(
            AudioToMelSpectrogramPreprocessorInputs {
                input_signal: audio,
                length,
            },
            &ctx.for_module("preprocessor"),
        )?;
        let spec = match &self.spec_augment {
            Some(aug) => {
                aug.forward_t(
                    SpectrogramAugmentationInputs {
                        input_spec: &mel.processed_signal,
                        length: &mel.processed_length,
                    },
                    &ctx.for_module("spec_augment"),
                )?
                .augmented_spec
            }
            None => mel.processed_signal,
        };
        let dtype = self.compute_dtype();
        let spec = if spec.tensor().dtype() == dtype {
            spec
        } else {
            spec.to_dtype(dtype)?
        };
        let out = self.encoder.forward_t(
            ConvAsrEncoderInputs {
                audio_signal: &spec,
                length: &mel.processed_length,
            },
            &ctx.for_module("encoder"),
        )?;
        // A wholly frozen encoder (a pretrained one under a new decoder) needs no backward pass.
        if self.params.num_weights("encoder") == 0 {
            return Ok(ConvAsrEncoderOutputs {
                outputs: out.outputs.detach(),
                encoded_lengths: out.encoded_lengths,
            });
        }
        Ok(out)
    }
}

/// The front-end sections of any model directory's `model.yaml`, whatever decoder it has.
#[derive(Deserialize)]
struct FrontEndSections {
    sample_rate: u32,
    preprocessor: AudioToMelSpectrogramPreprocessorConfig,
    encoder: ConvAsrEncoderConfig,
}

/// Writes a self-contained model directory — `model.yaml` (`config`), `labels.txt` (one label
/// per line) and `weights.safetensors` — each file atomically.
pub fn save_model_dir(
    dir: &Path,
    config: &impl Serialize,
    labels: &[String],
    params: &Parameters,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.into(),
        source,
    })?;
    let yaml = serde_norway::to_string(config).map_err(|e| Error::Config {
        key: "model".into(),
        msg: e.to_string(),
    })?;
    nemo_core::io::write_atomic(&dir.join("model.yaml"), yaml.as_bytes())?;
    let labels: String = labels.iter().map(|l| format!("{l}\n")).collect();
    nemo_core::io::write_atomic(&dir.join("labels.txt"), labels.as_bytes())?;
    params.save(&dir.join("weights.safetensors"))?;
    Ok(())
}
