//! `EncDecCtcModel`: the paper's §4.1.1 pipeline — mel preprocessor, (SpecAugment in training),
//! Jasper/QuartzNet encoder, CTC decoder and CTC loss — wired through typed ports, with its
//! configuration, weights and labels saved together in a self-contained model directory.
//!
//! A model directory holds `model.yaml` (this config), `weights.safetensors`, and `labels.txt`
//! (one label per line, for humans and other tools); `transcribe` and `eval` need nothing else.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use nemo_core::params::Parameters;
use nemo_core::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{AudioToTextBatch, AudioToTextDataLayer, AudioToTextDataLayerConfig, Vocabulary};
use crate::decoding::{CtcBeamSearch, ctc_greedy_decode};
use crate::losses::CtcLossConfig;
use crate::modules::jasper_block::lengths_to_vec;
use crate::modules::*;
use crate::preprocessing::{
    AudioToMelSpectrogramPreprocessorConfig, SpectrogramAugmentationConfig,
};
use crate::{Error, Result};

use super::ModelKind;
use super::speech_encoder::{SpeechEncoder, save_model_dir};
use super::speech_model::{SpeechModel, speech_layer_config};

/// The model's configuration: NeMo's `model:` section in one YAML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncDecCtcModelConfig {
    /// A name for logs, e.g. `QuartzNet5x5`.
    pub name: String,
    /// The audio sample rate in Hz; the data layer resamples to it.
    pub sample_rate: u32,
    /// The output labels (characters); the CTC blank is added after them.
    pub labels: Vec<String>,
    /// The mel front end.
    pub preprocessor: AudioToMelSpectrogramPreprocessorConfig,
    /// SpecAugment during training; none if absent.
    #[serde(default)]
    pub spec_augment: Option<SpectrogramAugmentationConfig>,
    /// The encoder.
    pub encoder: ConvAsrEncoderConfig,
    /// The decoder.
    pub decoder: ConvAsrDecoderConfig,
}

impl EncDecCtcModelConfig {
    /// Reads a YAML config; errors name the file and the key.
    pub fn from_yaml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|e| match e {
            Error::Config { key, msg } => Error::Config {
                key: format!("{}: {key}", path.display()),
                msg,
            },
            other => other,
        })
    }

    /// Parses YAML text (the whole file, or its `model:` section).
    pub fn from_yaml(text: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Wrapped {
            model: EncDecCtcModelConfig,
        }
        let value: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| Error::Config {
                key: e
                    .location()
                    .map_or("(yaml)".into(), |l| format!("line {}", l.line())),
                msg: e.to_string(),
            })?;
        let config = if value.get("model").is_some() {
            serde_norway::from_value::<Wrapped>(value).map(|w| w.model)
        } else {
            serde_norway::from_value::<EncDecCtcModelConfig>(value)
        }
        .map_err(|e| Error::Config {
            key: "model".into(),
            msg: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that the sections agree with each other (sizes, labels, sample rate).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| {
            Err(Error::Config {
                key: key.into(),
                msg,
            })
        };
        SpeechEncoder::validate_config(self.sample_rate, &self.preprocessor, &self.encoder)?;
        if self.decoder.feat_in != self.encoder.feat_out() {
            return bad(
                "decoder.feat_in",
                format!(
                    "{} differs from the encoder's last filters {}",
                    self.decoder.feat_in,
                    self.encoder.feat_out()
                ),
            );
        }
        if self.decoder.num_classes != self.labels.len() {
            return bad(
                "decoder.num_classes",
                format!(
                    "{} differs from the {} labels",
                    self.decoder.num_classes,
                    self.labels.len()
                ),
            );
        }
        Vocabulary::from_strings(&self.labels)?;
        Ok(())
    }
}

/// Re-draws the weights from a seeded RNG so a seed gives the same model on every run (candle's
/// CPU initializers cannot be seeded): conv weights Kaiming-uniform, `U(±1/sqrt(fan_in))` as
/// PyTorch's default, conv biases zero; BatchNorm scales and statistics keep their constant init.
fn seeded_init(params: &Parameters, seed: u64) -> Result<()> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in params.named_vars() {
        let dims = var.dims().to_vec();
        let n = var.elem_count();
        let values: Vec<f32> = if dims.len() >= 2 {
            let fan_in = n / dims[0].max(1);
            let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        } else if name.ends_with(".bias") && !name.contains(".bn.") {
            vec![0.0; n]
        } else {
            continue;
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

pub use super::speech_encoder::TypedAudio;

/// Outputs of one forward pass.
#[derive(Debug, Clone)]
pub struct CtcForward {
    /// `(B, T, classes)` log-probabilities.
    pub log_probs: NTensor<(B, T, D), Logprobs>,
    /// `(B)` encoded lengths.
    pub encoded_lengths: NTensor<(B,), Lengths>,
}

/// The Jasper/QuartzNet CTC model.
#[derive(Debug)]
#[doc(alias = "EncDecCTCModel")]
pub struct EncDecCtcModel {
    config: EncDecCtcModelConfig,
    labels: Vocabulary,
    params: Parameters,
    device: Device,
    front: SpeechEncoder,
    decoder: ConvAsrDecoder,
    loss: CtcLoss,
}

impl EncDecCtcModel {
    /// Builds the model with freshly initialized weights, drawn from `seed`.
    pub fn new(config: EncDecCtcModelConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let params = Parameters::new();
        let vb = params.var_builder(DType::F32, device);
        let labels = Vocabulary::from_strings(&config.labels)?;
        let front = SpeechEncoder::new(
            config.sample_rate,
            &config.preprocessor,
            config.spec_augment.as_ref(),
            &config.encoder,
            &params,
            &vb,
        )?;
        let decoder = config.decoder.init(vb.pp("decoder"))?;
        let loss = CtcLossConfig::new(config.decoder.num_classes).init()?;
        seeded_init(&params, seed)?;
        Ok(EncDecCtcModel {
            config,
            labels,
            params,
            device: device.clone(),
            front,
            decoder,
            loss,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EncDecCtcModelConfig {
        &self.config
    }

    /// The labels.
    pub fn labels(&self) -> &Vocabulary {
        &self.labels
    }

    /// The weights, freezing and train/eval mode.
    pub fn params(&self) -> &Parameters {
        &self.params
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The encoder.
    pub fn encoder(&self) -> &ConvAsrEncoder {
        self.front.encoder()
    }

    /// CTC time steps the model gives `samples` audio samples (the encoded length).
    pub fn encoded_length(&self, samples: usize) -> usize {
        self.front.encoded_length(samples)
    }

    /// Sets the dtype the encoder and decoder compute in: `f32` (default), or `f16`/`bf16` for
    /// mixed precision from the f32 weights (see [`SpeechEncoder::set_compute_dtype`]).
    pub fn set_compute_dtype(&self, dtype: candle_core::DType) -> Result<()> {
        self.front.set_compute_dtype(dtype)
    }

    /// The dtype the encoder and decoder compute in.
    pub fn compute_dtype(&self) -> candle_core::DType {
        self.front.compute_dtype()
    }

    /// Wraps plain batch tensors as typed audio (the data layer's ports).
    pub fn typed_audio(&self, audio: &Tensor, lengths: &Tensor) -> Result<TypedAudio> {
        self.front.typed_audio(audio, lengths)
    }

    /// The forward pass, typed end to end: audio → mel → (SpecAugment) → encoder → decoder, in
    /// the mode `ctx` gives (modules named `preprocessor`, `spec_augment`, `encoder`,
    /// `decoder`).
    pub fn forward(
        &self,
        audio: &NTensor<(B, T), AudioSignal>,
        length: &NTensor<(B,), Lengths>,
        ctx: &ForwardCtx,
    ) -> Result<CtcForward> {
        let enc = self.front.encode(audio, length, ctx)?;
        let dec = self.decoder.forward_t(
            ConvAsrDecoderInputs {
                encoder_output: &enc.outputs,
            },
            &ctx.for_module("decoder"),
        )?;
        Ok(CtcForward {
            log_probs: dec.logprobs,
            encoded_lengths: enc.encoded_lengths,
        })
    }

    /// The CTC loss of a batch (mean over the batch) and the forward outputs, in the mode `ctx`
    /// gives.
    pub fn loss(
        &self,
        audio: &Tensor,
        audio_len: &Tensor,
        transcripts: &Tensor,
        transcript_len: &Tensor,
        ctx: &ForwardCtx,
    ) -> Result<(Tensor, CtcForward)> {
        let (audio, len) = self.typed_audio(audio, audio_len)?;
        let out = self.forward(&audio, &len, ctx)?;
        let targets: NTensor<(B, T), Labels> = NTensor::new(transcripts.to_device(&self.device)?)?;
        let target_length: NTensor<(B,), Lengths> =
            NTensor::new(transcript_len.to_device(&self.device)?)?;
        let loss = self.loss.forward(CtcLossInputs {
            log_probs: &out.log_probs,
            targets: &targets,
            input_length: &out.encoded_lengths,
            target_length: &target_length,
        })?;
        Ok((loss.loss.into_tensor(), out))
    }

    /// Greedy transcripts of a batch of audio `(B, T)` with lengths `(B)`.
    pub fn transcribe(&self, audio: &Tensor, lengths: &Tensor) -> Result<Vec<String>> {
        let (audio, len) = self.typed_audio(audio, lengths)?;
        let out = self.forward(&audio, &len, &ForwardCtx::eval())?;
        let ids = ctc_greedy_decode(
            out.log_probs.tensor(),
            Some(out.encoded_lengths.tensor()),
            Some(self.labels.blank_id() as usize),
        )?;
        ids.iter().map(|row| self.labels.decode(row)).collect()
    }

    /// Transcripts of a batch by CTC prefix beam search (with the searcher's LM, if any).
    pub fn transcribe_beam(
        &self,
        audio: &Tensor,
        lengths: &Tensor,
        search: &CtcBeamSearch,
    ) -> Result<Vec<String>> {
        let (audio, len) = self.typed_audio(audio, lengths)?;
        let out = self.forward(&audio, &len, &ForwardCtx::eval())?;
        let lp = out.log_probs.tensor().to_dtype(DType::F32)?;
        let (_, _, classes) = lp.dims3()?;
        let rows: Vec<Vec<f32>> = lp.to_device(&Device::Cpu)?.flatten_from(1)?.to_vec2()?;
        let frames: Vec<usize> = lengths_to_vec(out.encoded_lengths.tensor())?;
        search.decode_batch(&rows, &frames, classes)
    }

    /// Starts from the encoder of another trained model directory with the same `preprocessor`
    /// and `encoder` sections (fine-tuning a new decoder, or a model of other labels). Returns
    /// the number of tensors loaded.
    pub fn load_pretrained_encoder(&self, dir: &Path) -> Result<usize> {
        self.front.load_pretrained(dir)
    }

    /// Writes the self-contained model directory (config, labels, weights), each file atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_model_dir(dir, &self.config, &self.config.labels, &self.params)
    }

    /// Loads a model directory written by [`EncDecCtcModel::save`].
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config = EncDecCtcModelConfig::from_yaml_file(&dir.join("model.yaml"))?;
        let model = EncDecCtcModel::new(config, 0, device)?;
        model.params.load(&dir.join("weights.safetensors"))?;
        Ok(model)
    }
}

impl SpeechModel for EncDecCtcModel {
    type Config = EncDecCtcModelConfig;
    const KIND: ModelKind = ModelKind::Ctc;

    fn new(config: EncDecCtcModelConfig, seed: u64, device: &Device) -> Result<Self> {
        EncDecCtcModel::new(config, seed, device)
    }

    fn validate_config(config: &EncDecCtcModelConfig) -> Result<()> {
        config.validate()
    }

    fn name(config: &EncDecCtcModelConfig) -> &str {
        &config.name
    }

    fn layer_config(
        config: &EncDecCtcModelConfig,
        manifest: &Path,
        batch_size: usize,
    ) -> AudioToTextDataLayerConfig {
        speech_layer_config(manifest, &config.labels, config.sample_rate, batch_size)
    }

    fn config(&self) -> &EncDecCtcModelConfig {
        &self.config
    }

    fn params(&self) -> &Parameters {
        &self.params
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn labels(&self) -> &Vocabulary {
        &self.labels
    }

    /// CTC needs at least one time step per label (two between repeated labels).
    fn retain_trainable(&self, layer: &mut AudioToTextDataLayer) -> Result<()> {
        layer.retain_alignable(|samples| self.encoded_length(samples))?;
        Ok(())
    }

    fn batch_loss(&self, batch: &AudioToTextBatch, ctx: &ForwardCtx) -> Result<Tensor> {
        let (loss, _) = self.loss(
            &batch.audio_signal,
            &batch.a_sig_length,
            &batch.transcripts,
            &batch.transcript_length,
            ctx,
        )?;
        Ok(loss)
    }

    fn transcribe_greedy(&self, batch: &AudioToTextBatch) -> Result<Vec<String>> {
        self.transcribe(&batch.audio_signal, &batch.a_sig_length)
    }

    fn set_compute_dtype(&self, dtype: DType) -> Result<()> {
        EncDecCtcModel::set_compute_dtype(self, dtype)
    }

    fn load_pretrained_encoder(&self, dir: &Path) -> Result<usize> {
        EncDecCtcModel::load_pretrained_encoder(self, dir)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        EncDecCtcModel::save(self, dir)
    }
}
