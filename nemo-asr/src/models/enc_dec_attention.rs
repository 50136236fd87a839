//! `EncDecAttentionModel`: the paper's §4.1.2 pipeline — the *same* mel preprocessor,
//! SpecAugment and Jasper/QuartzNet [`ConvAsrEncoder`] as [`EncDecCtcModel`](super::EncDecCtcModel),
//! followed by a [`JasperRnnConnector`], an attention [`DecoderRnn`] and a [`SequenceLoss`], wired
//! through typed ports, with its configuration, weights and labels in a self-contained model
//! directory (`model.yaml`, `weights.safetensors`, `labels.txt`).
//!
//! Token ids: the labels are `0..L`; the model appends `BOS = L`, `EOS = L + 1` and `PAD = L + 2`
//! (`voc_size = L + 3`). Targets are the transcript ids followed by EOS, padded with PAD (the data
//! layer configured by [`SpeechModel::layer_config`] makes
//! them); the decoder is fed BOS first.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use nemo_core::params::Parameters;
use nemo_core::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{AudioToTextBatch, AudioToTextDataLayerConfig, Vocabulary};
use crate::decoding::{BeamSearchConfig, beam_search, greedy_search};
use crate::modules::jasper_block::lengths_to_vec;
use crate::modules::*;
use crate::preprocessing::{
    AudioToMelSpectrogramPreprocessorConfig, SpectrogramAugmentationConfig,
};
use crate::{Error, Result};

use super::ModelKind;
use super::speech_encoder::{SpeechEncoder, TypedAudio, save_model_dir};
use super::speech_model::{SpeechModel, speech_layer_config};

/// The model's configuration: NeMo's `model:` section in one YAML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncDecAttentionModelConfig {
    /// A name for logs, e.g. `LASSmall`.
    pub name: String,
    /// The audio sample rate in Hz; the data layer resamples to it.
    pub sample_rate: u32,
    /// The output labels (characters); BOS, EOS and PAD ids follow them.
    pub labels: Vec<String>,
    /// The mel front end (the CTC model's section).
    pub preprocessor: AudioToMelSpectrogramPreprocessorConfig,
    /// SpecAugment during training; none if absent.
    #[serde(default)]
    pub spec_augment: Option<SpectrogramAugmentationConfig>,
    /// The encoder (the CTC model's section).
    pub encoder: ConvAsrEncoderConfig,
    /// Encoder channels to decoder width.
    pub connector: JasperRnnConnectorConfig,
    /// The attention decoder.
    pub decoder: DecoderRnnConfig,
    /// The sequence loss; its `pad_id` must be the model's PAD (labels + 2).
    pub loss: SequenceLossConfig,
    /// Greedy (`beam_size: 1`, the default) or beam search for `transcribe`.
    #[serde(default)]
    pub decoding: BeamSearchConfig,
}

impl EncDecAttentionModelConfig {
    /// Reads a YAML config (the whole file or its `model:` section); errors name the file and key.
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

    /// Parses YAML text (the whole file, or its `model:` section) and validates it.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let value: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| Error::Config {
                key: e
                    .location()
                    .map_or("(yaml)".into(), |l| format!("line {}", l.line())),
                msg: e.to_string(),
            })?;
        let value = match value.get("model") {
            Some(m) => m.clone(),
            None => value,
        };
        let config: EncDecAttentionModelConfig =
            serde_norway::from_value(value).map_err(|e| Error::Config {
                key: "model".into(),
                msg: e.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// The BOS id: the number of labels.
    pub fn bos_id(&self) -> u32 {
        self.labels.len() as u32
    }

    /// The EOS id: labels + 1.
    pub fn eos_id(&self) -> u32 {
        self.labels.len() as u32 + 1
    }

    /// The PAD id: labels + 2.
    pub fn pad_id(&self) -> u32 {
        self.labels.len() as u32 + 2
    }

    /// Checks that the sections agree with each other (sizes, special ids, sample rate).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| {
            Err(Error::Config {
                key: key.into(),
                msg,
            })
        };
        Vocabulary::from_strings(&self.labels)?;
        SpeechEncoder::validate_config(self.sample_rate, &self.preprocessor, &self.encoder)?;
        self.connector.validate()?;
        if self.connector.in_channels != self.encoder.feat_out() {
            return bad(
                "connector.in_channels",
                format!(
                    "{} differs from the encoder's last filters {}",
                    self.connector.in_channels,
                    self.encoder.feat_out()
                ),
            );
        }
        if self.connector.out_channels != self.decoder.hidden_size {
            return bad(
                "connector.out_channels",
                format!(
                    "{} differs from decoder.hidden_size {}",
                    self.connector.out_channels, self.decoder.hidden_size
                ),
            );
        }
        self.decoder.validate()?;
        if self.decoder.voc_size != self.labels.len() + 3 {
            return bad(
                "decoder.voc_size",
                format!(
                    "{} is not the {} labels + 3 (BOS, EOS, PAD)",
                    self.decoder.voc_size,
                    self.labels.len()
                ),
            );
        }
        if self.decoder.bos_id != self.bos_id() {
            return bad(
                "decoder.bos_id",
                format!(
                    "{} is not {} (the number of labels)",
                    self.decoder.bos_id,
                    self.bos_id()
                ),
            );
        }
        self.loss.validate()?;
        if self.loss.pad_id != self.pad_id() {
            return bad(
                "loss.pad_id",
                format!("{} is not {} (labels + 2)", self.loss.pad_id, self.pad_id()),
            );
        }
        self.decoding.validate()?;
        Ok(())
    }
}

/// Re-draws the weights from a seeded RNG so a seed gives the same model on every run:
/// matrices `U(±1/sqrt(fan_in))`, embeddings `N(0, 1)` (PyTorch's defaults), conv biases zero,
/// RNN and linear biases `U(±1/sqrt(fan_in of their layer))`; BatchNorm keeps its constant init.
fn seeded_init(params: &Parameters, seed: u64) -> Result<()> {
    use rand::{Rng, SeedableRng};
    use rand_distr_like::standard_normal;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let vars = params.named_vars();
    for (name, var) in &vars {
        let dims = var.dims().to_vec();
        let n = var.elem_count();
        let values: Vec<f64> = if name.ends_with("embedding.weight") {
            (0..n).map(|_| standard_normal(&mut rng)).collect()
        } else if dims.len() >= 2 {
            let fan_in = n / dims.first().copied().unwrap_or(1).max(1);
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        } else if name.starts_with("encoder.") && name.ends_with(".bias") && !name.contains(".bn.")
        {
            vec![0.0; n]
        } else if name.starts_with("decoder.") || name.starts_with("connector.") {
            // A bias (`bias`, `bias_ih_l0`): its layer's weight tells the fan-in.
            let weight = name
                .rsplit_once('.')
                .map(|(p, last)| format!("{p}.{}", last.replacen("bias", "weight", 1)));
            let fan_in = weight
                .as_deref()
                .and_then(|w| vars.iter().find(|(n2, _)| n2 == w))
                .map_or(n, |(_, v)| {
                    v.elem_count() / v.dims().first().copied().unwrap_or(1).max(1)
                });
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        } else {
            continue;
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// A standard normal draw (Box–Muller), so no distribution crate is needed.
mod rand_distr_like {
    use rand::Rng;

    /// One `N(0, 1)` sample.
    pub fn standard_normal(rng: &mut impl Rng) -> f64 {
        let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Encoder outputs of one batch, ready for the decoder.
#[derive(Debug, Clone)]
pub struct AttentionEncoded {
    /// `(B, T, H)` connector outputs.
    pub encoded: NTensor<(B, T, D), EncodedRepresentation>,
    /// `(B)` encoded lengths.
    pub encoded_lengths: NTensor<(B,), Lengths>,
}

/// Outputs of one teacher-forced forward pass.
#[derive(Debug, Clone)]
pub struct AttentionForward {
    /// `(B, S, voc_size)` log-probabilities.
    pub log_probs: NTensor<(B, T, D), Logprobs>,
    /// `(B, S, T_enc)` attention weights.
    pub attention_weights: Option<Tensor>,
    /// `(B)` encoded lengths.
    pub encoded_lengths: NTensor<(B,), Lengths>,
}

/// The Jasper encoder + attention decoder model.
#[derive(Debug)]
pub struct EncDecAttentionModel {
    config: EncDecAttentionModelConfig,
    labels: Vocabulary,
    params: Parameters,
    device: Device,
    front: SpeechEncoder,
    connector: JasperRnnConnector,
    decoder: DecoderRnn,
    loss: SequenceLoss,
}

impl EncDecAttentionModel {
    /// Builds the model with weights drawn from `seed`, in f32 on `device`.
    pub fn new(config: EncDecAttentionModelConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::with_dtype(config, seed, DType::F32, device)
    }

    /// [`new`](Self::new) with weights in `dtype` (f64 for gradient checks).
    pub fn with_dtype(
        config: EncDecAttentionModelConfig,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let params = Parameters::new();
        let vb = params.var_builder(dtype, device);
        let labels = Vocabulary::from_strings(&config.labels)?;
        let front = SpeechEncoder::new(
            config.sample_rate,
            &config.preprocessor,
            config.spec_augment.as_ref(),
            &config.encoder,
            &params,
            &vb,
        )?;
        let connector = config.connector.init(vb.pp("connector"))?;
        let decoder = config.decoder.init(vb.pp("decoder"))?;
        let loss = config.loss.init()?;
        seeded_init(&params, seed)?;
        Ok(EncDecAttentionModel {
            config,
            labels,
            params,
            device: device.clone(),
            front,
            connector,
            decoder,
            loss,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EncDecAttentionModelConfig {
        &self.config
    }

    /// The labels (without BOS, EOS, PAD).
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

    /// The encoder (shared with the CTC model's definition).
    pub fn encoder(&self) -> &ConvAsrEncoder {
        self.front.encoder()
    }

    /// The attention decoder.
    pub fn decoder(&self) -> &DecoderRnn {
        &self.decoder
    }

    /// Wraps plain batch tensors as typed audio (the data layer's ports).
    pub fn typed_audio(&self, audio: &Tensor, lengths: &Tensor) -> Result<TypedAudio> {
        self.front.typed_audio(audio, lengths)
    }

    /// Audio → mel → (SpecAugment) → encoder → connector, typed end to end, in the mode `ctx`
    /// gives.
    pub fn encode(
        &self,
        audio: &NTensor<(B, T), AudioSignal>,
        length: &NTensor<(B,), Lengths>,
        ctx: &ForwardCtx,
    ) -> Result<AttentionEncoded> {
        let enc = self.front.encode(audio, length, ctx)?;
        let con = self.connector.forward_t(
            JasperRnnConnectorInputs {
                tensor: &enc.outputs,
            },
            &ctx.for_module("connector"),
        )?;
        Ok(AttentionEncoded {
            encoded: con.tensor,
            encoded_lengths: enc.encoded_lengths,
        })
    }

    /// The teacher-forced forward pass on `targets` `(B, S)` (ids ending in EOS, PAD-padded).
    pub fn forward(
        &self,
        audio: &NTensor<(B, T), AudioSignal>,
        length: &NTensor<(B,), Lengths>,
        targets: &NTensor<(B, T), Labels>,
        ctx: &ForwardCtx,
    ) -> Result<AttentionForward> {
        let enc = self.encode(audio, length, ctx)?;
        let dec = self.decoder.forward_t(
            DecoderRnnInputs {
                targets,
                encoder_outputs: &enc.encoded,
                encoder_lengths: Some(enc.encoded_lengths.clone()),
            },
            &ctx.for_module("decoder"),
        )?;
        Ok(AttentionForward {
            log_probs: dec.log_probs,
            attention_weights: dec.attention_weights.map(NTensor::into_tensor),
            encoded_lengths: enc.encoded_lengths,
        })
    }

    /// The sequence loss of a batch and the forward outputs. `targets` `(B, S)` are label ids
    /// followed by EOS and padded with PAD (as the attention data layer makes them).
    pub fn loss(
        &self,
        audio: &Tensor,
        audio_len: &Tensor,
        targets: &Tensor,
        ctx: &ForwardCtx,
    ) -> Result<(Tensor, AttentionForward)> {
        let (audio, len) = self.typed_audio(audio, audio_len)?;
        let targets: NTensor<(B, T), Labels> = NTensor::new(targets.to_device(&self.device)?)?;
        let out = self.forward(&audio, &len, &targets, ctx)?;
        let loss = self.loss.forward(SequenceLossInputs {
            log_probs: &out.log_probs,
            targets: &targets,
        })?;
        Ok((loss.loss.into_tensor(), out))
    }

    /// Token ids (labels only) of a batch of audio `(B, T)` with lengths `(B)`, decoded with
    /// `decoding` (greedy for beam 1).
    pub fn decode_ids(
        &self,
        audio: &Tensor,
        lengths: &Tensor,
        decoding: &BeamSearchConfig,
    ) -> Result<Vec<Vec<u32>>> {
        let (audio, len) = self.typed_audio(audio, lengths)?;
        let enc = self.encode(&audio, &len, &ForwardCtx::eval())?;
        let lens = lengths_to_vec(enc.encoded_lengths.tensor())?;
        let (bos, eos) = (self.config.decoder.bos_id, self.config.eos_id());
        let limits: Vec<usize> = lens
            .iter()
            .map(|&l| if l == 0 { 0 } else { decoding.limit(l) })
            .collect();
        let state = self.decoder.search_state(enc.encoded.tensor(), &lens)?;
        if decoding.beam_size <= 1 {
            Ok(greedy_search(&self.decoder, state, bos, eos, &limits)?)
        } else {
            Ok(beam_search(
                &self.decoder,
                state,
                bos,
                eos,
                &limits,
                decoding,
            )?)
        }
    }

    /// Transcripts of a batch of audio `(B, T)` with lengths `(B)`, decoded as the config's
    /// `decoding:` section says. Ids outside the labels (a stray BOS or PAD) are dropped.
    pub fn transcribe(&self, audio: &Tensor, lengths: &Tensor) -> Result<Vec<String>> {
        self.transcribe_with(audio, lengths, &self.config.decoding)
    }

    /// [`transcribe`](Self::transcribe) with another decoding setting.
    pub fn transcribe_with(
        &self,
        audio: &Tensor,
        lengths: &Tensor,
        decoding: &BeamSearchConfig,
    ) -> Result<Vec<String>> {
        let n = self.labels.len() as u32;
        self.decode_ids(audio, lengths, decoding)?
            .iter()
            .map(|ids| {
                let ids: Vec<u32> = ids.iter().copied().filter(|&i| i < n).collect();
                self.labels.decode(&ids)
            })
            .collect()
    }

    /// Starts from the encoder of another trained model directory (a CTC model with the same
    /// `preprocessor` and `encoder` sections): the paper's module reuse. Freeze it with
    /// `train.trainer.freeze` (`encoder: -1`) to train only the connector and decoder; a frozen
    /// encoder runs no backward pass. Returns the number of tensors loaded.
    pub fn load_pretrained_encoder(&self, dir: &Path) -> Result<usize> {
        self.front.load_pretrained(dir)
    }

    /// Writes the self-contained model directory (config, labels, weights), each file atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_model_dir(dir, &self.config, &self.config.labels, &self.params)
    }

    /// Loads a model directory written by [`EncDecAttentionModel::save`].
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config = EncDecAttentionModelConfig::from_yaml_file(&dir.join("model.yaml"))?;
        let model = EncDecAttentionModel::new(config, 0, device)?;
        model.params.load(&dir.join("weights.safetensors"))?;
        Ok(model)
    }
}

impl SpeechModel for EncDecAttentionModel {
    type Config = EncDecAttentionModelConfig;
    const KIND: ModelKind = ModelKind::Attention;

    fn new(config: EncDecAttentionModelConfig, seed: u64, device: &Device) -> Result<Self> {
        EncDecAttentionModel::new(config, seed, device)
    }

    fn validate_config(config: &EncDecAttentionModelConfig) -> Result<()> {
        config.validate()
    }

    fn name(config: &EncDecAttentionModelConfig) -> &str {
        &config.name
    }

    /// Transcripts get EOS appended and are padded with PAD: the decoder learns to stop.
    fn layer_config(
        config: &EncDecAttentionModelConfig,
        manifest: &Path,
        batch_size: usize,
    ) -> AudioToTextDataLayerConfig {
        let mut cfg = speech_layer_config(manifest, &config.labels, config.sample_rate, batch_size);
        cfg.eos_id = Some(config.eos_id());
        cfg.pad_id = Some(config.pad_id());
        cfg
    }

    fn config(&self) -> &EncDecAttentionModelConfig {
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

    fn batch_loss(&self, batch: &AudioToTextBatch, ctx: &ForwardCtx) -> Result<Tensor> {
        let (loss, _) = self.loss(
            &batch.audio_signal,
            &batch.a_sig_length,
            &batch.transcripts,
            ctx,
        )?;
        Ok(loss)
    }

    fn transcribe_greedy(&self, batch: &AudioToTextBatch) -> Result<Vec<String>> {
        let greedy = BeamSearchConfig {
            beam_size: 1,
            ..self.config.decoding.clone()
        };
        self.transcribe_with(&batch.audio_signal, &batch.a_sig_length, &greedy)
    }

    fn load_pretrained_encoder(&self, dir: &Path) -> Result<usize> {
        EncDecAttentionModel::load_pretrained_encoder(self, dir)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        EncDecAttentionModel::save(self, dir)
    }
}
