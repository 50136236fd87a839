//! [`SpeechModel`]: what training, evaluation and the CLI need of an ASR model, so that one
//! training task, one evaluation and one `train` command serve both models.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use nemo_core::ForwardCtx;
use nemo_core::params::Parameters;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Result;
use crate::data::{AudioToTextBatch, AudioToTextDataLayer, AudioToTextDataLayerConfig, Vocabulary};

use super::ModelKind;

/// An ASR model trained on audio/transcript batches of an [`AudioToTextDataLayer`].
pub trait SpeechModel: Sized {
    /// The model's `model:` section.
    type Config: Clone + Serialize + DeserializeOwned;
    /// Which kind it is.
    const KIND: ModelKind;

    /// Builds the model with weights drawn from `seed`; validates the config first.
    fn new(config: Self::Config, seed: u64, device: &Device) -> Result<Self>;
    /// Checks a config without building the model.
    fn validate_config(config: &Self::Config) -> Result<()>;
    /// The model's name (from its config).
    fn name(config: &Self::Config) -> &str;
    /// How the model's data layers read a manifest: its labels, sample rate and, for a decoder
    /// that needs them, the EOS and PAD ids its transcripts carry.
    fn layer_config(
        config: &Self::Config,
        manifest: &Path,
        batch_size: usize,
    ) -> AudioToTextDataLayerConfig;

    /// The configuration.
    fn config(&self) -> &Self::Config;
    /// The weights.
    fn params(&self) -> &Parameters;
    /// The device the weights live on.
    fn device(&self) -> &Device;
    /// The output labels.
    fn labels(&self) -> &Vocabulary;

    /// Leaves out of a training layer the utterances the model cannot learn from (a CTC model:
    /// transcripts longer than the encoded audio). Default: keeps all.
    fn retain_trainable(&self, _layer: &mut AudioToTextDataLayer) -> Result<()> {
        Ok(())
    }
    /// The training loss of a batch (a mean over it) in the mode and with the draws of `ctx`.
    fn batch_loss(&self, batch: &AudioToTextBatch, ctx: &ForwardCtx) -> Result<Tensor>;
    /// Greedy transcripts of a batch, in eval mode (what evaluation during training scores).
    fn transcribe_greedy(&self, batch: &AudioToTextBatch) -> Result<Vec<String>>;
    /// Sets the dtype the model computes in for mixed precision. Default: f32 only.
    fn set_compute_dtype(&self, dtype: DType) -> Result<()> {
        if dtype == DType::F32 {
            Ok(())
        } else {
            Err(crate::Error::Config {
                key: "train.trainer.precision.mode".into(),
                msg: format!("the {} model computes in f32 only", Self::KIND.name()),
            })
        }
    }
    /// Loads the encoder of another model directory with the same front end; returns the
    /// number of tensors loaded.
    fn load_pretrained_encoder(&self, dir: &Path) -> Result<usize>;
    /// Writes the self-contained model directory.
    fn save(&self, dir: &Path) -> Result<()>;
}

/// The data-layer settings every ASR model shares: its labels and sample rate, audio decoded into
/// memory up front (a few hundred MB for AN4-sized corpora; no decoding in the step).
pub fn speech_layer_config(
    manifest: &Path,
    labels: &[String],
    sample_rate: u32,
    batch_size: usize,
) -> AudioToTextDataLayerConfig {
    let mut cfg = AudioToTextDataLayerConfig::new(manifest.display().to_string(), batch_size);
    cfg.labels = labels.to_vec();
    cfg.sample_rate = sample_rate;
    cfg.preload = true;
    cfg
}
