//! [`AsrModel`]: either ASR model behind one interface, so the CLI can load any model directory
//! and train from any run config without being told which kind it is: a `model:` section with a
//! `connector` is the attention model (paper §4.1.2), otherwise the CTC model (§4.1.1).

use std::path::Path;

use candle_core::{Device, Tensor};
use nemo_core::params::Parameters;

use crate::data::AudioToTextDataLayer;
use crate::decoding::CtcBeamSearch;
use crate::metrics::WordErrorRate;
use crate::{Error, Result};

use super::{EncDecAttentionModel, EncDecCtcModel, eval_data_layer, evaluate, evaluate_with};

fn read_yaml_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    Ok(nemo_core::yaml::read_yaml_file(path)?)
}

/// Which decoder a model has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Jasper/QuartzNet encoder + CTC decoder ([`EncDecCtcModel`]).
    Ctc,
    /// The same encoder + connector + attention RNN decoder ([`EncDecAttentionModel`]).
    Attention,
}

impl ModelKind {
    /// The kind of a model section (a `model.yaml` or a run config's `model:`).
    pub fn of_model_section(model: &serde_norway::Value) -> ModelKind {
        if model.get("connector").is_some() {
            ModelKind::Attention
        } else {
            ModelKind::Ctc
        }
    }

    /// The kind of the model a run config (`model:` + `train:`) trains.
    pub fn of_run_config(path: &Path) -> Result<ModelKind> {
        let value: serde_norway::Value = read_yaml_file(path)?;
        let model = value.get("model").ok_or_else(|| Error::Config {
            key: format!("{}: model", path.display()),
            msg: "missing: a run config has `model:` and `train:` sections".into(),
        })?;
        Ok(ModelKind::of_model_section(model))
    }

    /// The kind of the model in a model directory.
    pub fn of_model_dir(dir: &Path) -> Result<ModelKind> {
        let value: serde_norway::Value = read_yaml_file(&dir.join("model.yaml"))?;
        Ok(ModelKind::of_model_section(&value))
    }

    /// The name users see (`ctc`, `attention`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Ctc => "ctc",
            ModelKind::Attention => "attention",
        }
    }
}

/// A trained ASR model of either kind.
#[derive(Debug)]
pub enum AsrModel {
    /// A CTC model.
    Ctc(Box<EncDecCtcModel>),
    /// An attention model.
    Attention(Box<EncDecAttentionModel>),
}

impl AsrModel {
    /// Loads a model directory written by either model's `save`.
    pub fn load(dir: &Path, device: &Device) -> Result<AsrModel> {
        Ok(match ModelKind::of_model_dir(dir)? {
            ModelKind::Ctc => AsrModel::Ctc(Box::new(EncDecCtcModel::load(dir, device)?)),
            ModelKind::Attention => {
                AsrModel::Attention(Box::new(EncDecAttentionModel::load(dir, device)?))
            }
        })
    }

    /// The model's kind.
    pub fn kind(&self) -> ModelKind {
        match self {
            AsrModel::Ctc(_) => ModelKind::Ctc,
            AsrModel::Attention(_) => ModelKind::Attention,
        }
    }

    /// The audio sample rate the model expects.
    pub fn sample_rate(&self) -> u32 {
        match self {
            AsrModel::Ctc(m) => m.config().sample_rate,
            AsrModel::Attention(m) => m.config().sample_rate,
        }
    }

    /// The model's parameters (for train/eval mode).
    pub fn params(&self) -> &Parameters {
        match self {
            AsrModel::Ctc(m) => m.params(),
            AsrModel::Attention(m) => m.params(),
        }
    }

    /// Transcripts of a batch `(B, T)` of audio with lengths `(B)`: greedy CTC decoding or a CTC
    /// beam `search`, or the attention model's own `decoding:` section (beam search when
    /// `beam_size > 1`; a CTC search is refused).
    pub fn transcribe(
        &self,
        audio: &Tensor,
        lengths: &Tensor,
        search: Option<&CtcBeamSearch>,
    ) -> Result<Vec<String>> {
        match (self, search) {
            (AsrModel::Ctc(m), None) => m.transcribe(audio, lengths),
            (AsrModel::Ctc(m), Some(s)) => m.transcribe_beam(audio, lengths, s),
            (AsrModel::Attention(m), None) => m.transcribe(audio, lengths),
            (AsrModel::Attention(_), Some(_)) => Err(ctc_only()),
        }
    }

    /// An evaluation data layer over `manifest` in this model's label encoding.
    pub fn data_layer(&self, manifest: &Path, batch_size: usize) -> Result<AudioToTextDataLayer> {
        match self {
            AsrModel::Ctc(m) => eval_data_layer::<EncDecCtcModel>(m.config(), manifest, batch_size),
            AsrModel::Attention(m) => {
                eval_data_layer::<EncDecAttentionModel>(m.config(), manifest, batch_size)
            }
        }
    }

    /// WER and CER over every utterance of `layer` (from [`AsrModel::data_layer`]), decoded as
    /// [`AsrModel::transcribe`] does.
    pub fn evaluate(
        &self,
        layer: &AudioToTextDataLayer,
        search: Option<&CtcBeamSearch>,
    ) -> Result<WordErrorRate> {
        match (self, search) {
            (AsrModel::Ctc(m), None) => evaluate(m.as_ref(), layer),
            (AsrModel::Ctc(m), Some(s)) => evaluate_with(layer, m.labels(), m.device(), |b| {
                m.transcribe_beam(&b.audio_signal, &b.a_sig_length, s)
            }),
            (AsrModel::Attention(m), None) => evaluate_with(layer, m.labels(), m.device(), |b| {
                m.transcribe(&b.audio_signal, &b.a_sig_length)
            }),
            (AsrModel::Attention(_), Some(_)) => Err(ctc_only()),
        }
    }
}

fn ctc_only() -> Error {
    Error::Config {
        key: "decoding".into(),
        msg: "CTC beam search and language models apply to CTC models; the attention model \
              searches with its own `decoding:` section"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_follows_the_connector_section() -> Result<()> {
        let yaml = |s: &str| serde_norway::from_str::<serde_norway::Value>(s);
        let ctc =
            yaml("name: x\nencoder: {feat_in: 64}\ndecoder: {num_classes: 28}\n").map_err(|e| {
                Error::Config {
                    key: "test".into(),
                    msg: e.to_string(),
                }
            })?;
        let las = yaml("name: x\nconnector: {in_channels: 8}\ndecoder: {voc_size: 31}\n").map_err(
            |e| Error::Config {
                key: "test".into(),
                msg: e.to_string(),
            },
        )?;
        assert_eq!(ModelKind::of_model_section(&ctc), ModelKind::Ctc);
        assert_eq!(ModelKind::of_model_section(&las), ModelKind::Attention);
        Ok(())
    }

    #[test]
    fn shipped_run_configs_have_the_expected_kinds() -> Result<()> {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        for (file, kind) in [
            ("an4_small.yaml", ModelKind::Ctc),
            ("quartznet_5x5.yaml", ModelKind::Ctc),
            ("las_small.yaml", ModelKind::Attention),
        ] {
            assert_eq!(
                ModelKind::of_run_config(&configs.join(file))?,
                kind,
                "{file}"
            );
        }
        Ok(())
    }
}
