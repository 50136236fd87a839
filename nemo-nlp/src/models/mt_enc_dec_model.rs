//! `MtEncDecModel`: the paper's Transformer NMT (§4.2.1) as one object — the typed
//! [`TransformerEncoderNm`], [`TransformerDecoderNm`], [`TransformerLogSoftmaxNm`] and
//! [`PaddedSmoothedCrossEntropyLossNm`] wired as the paper's graph, the tokenizer(s) they index,
//! translation by beam or greedy search over the decoder's key/value cache, and a
//! self-contained model directory.
//!
//! ```text
//! src_hiddens = encoder(input_ids = src_ids, input_mask_src = src_mask)          (B, S, D)
//! tgt_hiddens = decoder(input_ids_tgt = tgt_ids, hidden_states_src = src_hiddens,
//!                       input_mask_src = src_mask, input_mask_tgt = tgt_mask)   (B, T, D)
//! log_probs   = log_softmax(hidden_states = tgt_hiddens)                        (B, T, C)
//! loss        = loss(log_probs, target_ids = labels)                            scalar
//! ```
//!
//! Embeddings are tied as NeMo's recipe ties them: the output projection's weight is the
//! decoder's token table, and with a shared tokenizer the decoder's table is the encoder's — one
//! variable, stored once (`encoder.embedding_layer.token_embedding.weight`).
//!
//! Model directory: `model.yaml` (this config, vocabulary sizes filled in), `weights.safetensors`
//! and the tokenizer file(s) of [`TranslationTokenizers`] (`tokenizer.json`, or
//! `tokenizer.source.json` and `tokenizer.target.json`); each file is written atomically.
//!
//! NeMo 0.x has no model class (its scripts wire the modules); NeMo 1.x's is `MTEncDecModel`.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use nemo_core::nn::seeded_var_builder;
use nemo_core::params::Parameters;
use nemo_core::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{TranslationBatch, TranslationDataLayerOutputs};
use crate::element_types::{SourceMask, TargetMask, TokenIds};
use crate::losses::{
    PaddedSmoothedCrossEntropyLossNm, PaddedSmoothedCrossEntropyLossNmConfig,
    PaddedSmoothedCrossEntropyLossNmInputs,
};
use crate::modules::translation_search::search;
use crate::modules::{
    BeamSearchTranslatorNmConfig, TransformerDecoderNm, TransformerDecoderNmConfig,
    TransformerDecoderNmInputs, TransformerEncoderNm, TransformerEncoderNmConfig,
    TransformerEncoderNmInputs, TransformerLogSoftmaxNm, TransformerLogSoftmaxNmConfig,
    TransformerLogSoftmaxNmInputs,
};
use crate::tokenizer::{
    BOS_ID, EOS_ID, PAD_ID, TranslationTokenizers, TranslationTokenizersConfig,
};
use crate::{Error, Result};

/// The config file of a model directory.
pub const MODEL_CONFIG_FILE: &str = "model.yaml";
/// The weights file of a model directory.
pub const WEIGHTS_FILE: &str = "weights.safetensors";

fn default_name() -> String {
    "TransformerNMT".into()
}

/// Source tokens per batch when translating text (padded rows × longest row).
pub const TRANSLATE_TOKENS_IN_BATCH: usize = 4096;

/// A translation model's `model:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[doc(alias = "MTEncDecModel")]
pub struct MtEncDecModelConfig {
    /// A name for logs (default `TransformerNMT`).
    #[serde(default = "default_name")]
    pub name: String,
    /// How the tokenizer(s) are trained from the training text (shared by default, 8192 tokens).
    #[serde(default)]
    pub tokenizer: TranslationTokenizersConfig,
    /// The encoder (NeMo's `TransformerEncoderNM` arguments); `vocab_size` comes from the
    /// source tokenizer when left out.
    pub encoder: TransformerEncoderNmConfig,
    /// The decoder; `d_model` must be the encoder's, `vocab_size` comes from the target
    /// tokenizer when left out.
    pub decoder: TransformerDecoderNmConfig,
    /// The loss (`label_smoothing`, `pad_id`).
    #[serde(default)]
    pub loss: PaddedSmoothedCrossEntropyLossNmConfig,
    /// How `translate` searches (beam 4, `len^α` length penalty with α = 0, 50 tokens more
    /// than the source at most).
    #[serde(default)]
    pub decoding: BeamSearchTranslatorNmConfig,
}

impl MtEncDecModelConfig {
    /// Reads a model config file (a model directory's `model.yaml`); errors name the file,
    /// line and key.
    pub fn from_yaml_file(path: &Path) -> Result<Self> {
        let config: MtEncDecModelConfig = nemo_core::yaml::read_yaml_file(path)?;
        config.validate().map_err(|e| in_file(path, e))?;
        Ok(config)
    }

    /// The output projection's settings.
    pub fn log_softmax(&self) -> TransformerLogSoftmaxNmConfig {
        TransformerLogSoftmaxNmConfig::new(self.decoder.vocab_size, self.decoder.d_model)
    }

    /// The config with the vocabulary sizes of `tokenizers` filled in (where 0), and the
    /// tokenizer layout recorded. A size given that differs from the tokenizer's is an error.
    pub fn with_vocab_sizes(mut self, tokenizers: &TranslationTokenizers) -> Result<Self> {
        let fill = |key: &str, given: &mut usize, actual: usize| -> Result<()> {
            match *given {
                0 => {
                    *given = actual;
                    Ok(())
                }
                g if g == actual => Ok(()),
                g => Err(Error::Config {
                    key: key.into(),
                    msg: format!("{g}, but the tokenizer has {actual} tokens"),
                }),
            }
        };
        fill(
            "encoder.vocab_size",
            &mut self.encoder.vocab_size,
            tokenizers.source().vocab_size(),
        )?;
        fill(
            "decoder.vocab_size",
            &mut self.decoder.vocab_size,
            tokenizers.target().vocab_size(),
        )?;
        self.tokenizer.shared_tokenizer = tokenizers.is_shared();
        Ok(self)
    }

    /// Checks every section and that they agree; vocabulary sizes may still be 0 (unset).
    pub fn validate(&self) -> Result<()> {
        let with_sizes = |vocab_size: usize| vocab_size.max(1);
        TransformerEncoderNmConfig {
            vocab_size: with_sizes(self.encoder.vocab_size),
            ..self.encoder.clone()
        }
        .validate()?;
        TransformerDecoderNmConfig {
            vocab_size: with_sizes(self.decoder.vocab_size),
            ..self.decoder.clone()
        }
        .validate()?;
        if self.encoder.d_model != self.decoder.d_model {
            return Err(Error::Config {
                key: "decoder.d_model".into(),
                msg: format!(
                    "{} differs from encoder.d_model {}: the decoder attends to the encoder's states",
                    self.decoder.d_model, self.encoder.d_model
                ),
            });
        }
        if self.tokenizer.shared_tokenizer
            && self.encoder.vocab_size != 0
            && self.decoder.vocab_size != 0
            && self.encoder.vocab_size != self.decoder.vocab_size
        {
            return Err(Error::Config {
                key: "decoder.vocab_size".into(),
                msg: format!(
                    "{} differs from encoder.vocab_size {} under a shared tokenizer",
                    self.decoder.vocab_size, self.encoder.vocab_size
                ),
            });
        }
        self.loss.validate()?;
        self.decoding.validate()
    }
}

/// An error of a config read from `path`, its key prefixed with the file.
fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::Config { key, msg } => Error::Config {
            key: format!("{}: {key}", path.display()),
            msg,
        },
        e => e,
    }
}

/// The Transformer translation model; see the [module docs](self).
#[derive(Debug)]
#[doc(alias = "MTEncDecModel")]
#[doc(alias = "TransformerNMT")]
pub struct MtEncDecModel {
    config: MtEncDecModelConfig,
    tokenizers: TranslationTokenizers,
    params: Parameters,
    device: Device,
    encoder: TransformerEncoderNm,
    decoder: TransformerDecoderNm,
    log_softmax: TransformerLogSoftmaxNm,
    loss: PaddedSmoothedCrossEntropyLossNm,
}

impl MtEncDecModel {
    /// Builds the model for `tokenizers` (its vocabulary sizes fill the config's unset ones),
    /// weights drawn from `seed` with NeMo's initialization, in f32 on `device`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key of a bad or inconsistent setting.
    pub fn new(
        config: MtEncDecModelConfig,
        tokenizers: TranslationTokenizers,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let config = config.with_vocab_sizes(&tokenizers)?;
        config.validate()?;
        let params = Parameters::new();
        let vb = seeded_var_builder(params.varmap(), seed, DType::F32, device);
        let encoder = config.encoder.init(vb.pp("encoder"))?;
        // Tied as NeMo's recipe ties them: the decoder's table (with a shared vocabulary) and
        // the output projection are the encoder's table, one variable stored once.
        let decoder = if tokenizers.is_shared() {
            config
                .decoder
                .init_tied(encoder.embedding().token_embedding(), vb.pp("decoder"))?
        } else {
            config.decoder.init(vb.pp("decoder"))?
        };
        let log_softmax = config
            .log_softmax()
            .init_tied(decoder.embedding().token_embedding(), vb.pp("log_softmax"))?;
        let loss = config.loss.init()?;
        Ok(MtEncDecModel {
            config,
            tokenizers,
            params,
            device: device.clone(),
            encoder,
            decoder,
            log_softmax,
            loss,
        })
    }

    /// The configuration, vocabulary sizes filled in.
    pub fn config(&self) -> &MtEncDecModelConfig {
        &self.config
    }

    /// The source and target tokenizers.
    pub fn tokenizers(&self) -> &TranslationTokenizers {
        &self.tokenizers
    }

    /// The weights (for the optimizer, freezing, checkpoints).
    pub fn params(&self) -> &Parameters {
        &self.params
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The encoder module.
    pub fn encoder(&self) -> &TransformerEncoderNm {
        &self.encoder
    }

    /// The decoder module.
    pub fn decoder(&self) -> &TransformerDecoderNm {
        &self.decoder
    }

    /// The output projection and log-softmax.
    pub fn log_softmax(&self) -> &TransformerLogSoftmaxNm {
        &self.log_softmax
    }

    /// The loss module.
    pub fn loss_module(&self) -> &PaddedSmoothedCrossEntropyLossNm {
        &self.loss
    }

    /// The teacher-forced log-probabilities of a typed batch, through the modules' typed ports
    /// (the paper's graph); dropout as `ctx` says.
    pub fn forward(
        &self,
        batch: &TranslationDataLayerOutputs,
        ctx: &ForwardCtx,
    ) -> Result<NTensor<(B, T, C), Logprobs>> {
        let src = self.encoder.forward_t(
            TransformerEncoderNmInputs {
                input_ids: &batch.src_ids,
                input_mask_src: &batch.src_mask,
            },
            &ctx.for_module("encoder"),
        )?;
        let tgt = self.decoder.forward_t(
            TransformerDecoderNmInputs {
                input_ids_tgt: &batch.tgt_ids,
                hidden_states_src: &src.hidden_states,
                input_mask_src: &batch.src_mask,
                input_mask_tgt: &batch.tgt_mask,
            },
            &ctx.for_module("decoder"),
        )?;
        let out = self.log_softmax.forward_t(
            TransformerLogSoftmaxNmInputs {
                hidden_states: &tgt.hidden_states,
            },
            &ctx.for_module("log_softmax"),
        )?;
        Ok(out.log_probs)
    }

    /// The loss of a typed batch: the label-smoothed NLL averaged over its target tokens.
    pub fn loss(&self, batch: &TranslationDataLayerOutputs, ctx: &ForwardCtx) -> Result<Tensor> {
        let log_probs = self.forward(batch, ctx)?;
        let loss = self.loss.forward(PaddedSmoothedCrossEntropyLossNmInputs {
            log_probs: &log_probs,
            target_ids: &batch.labels,
        })?;
        Ok(loss.loss.into_tensor())
    }

    /// [`loss`](Self::loss) of a batch of plain tensors (the data layer's), typed first.
    pub fn batch_loss(&self, batch: &TranslationBatch, ctx: &ForwardCtx) -> Result<Tensor> {
        self.loss(&typed_batch(batch, &self.device)?, ctx)
    }

    /// The encoder's states of `src_ids` `(B, S)` with mask `(B, S)`, in eval mode.
    pub fn encode(&self, src_ids: &Tensor, src_mask: &Tensor) -> Result<Tensor> {
        self.encoder.encode(src_ids, src_mask, &ForwardCtx::eval())
    }

    /// Target ids of a batch of source ids `(B, S)` (`<BOS>` … `<EOS>`, padded) with mask
    /// `(B, S)`, searched as `decoding` says; without `<BOS>` and `<EOS>`.
    pub fn translate_ids(
        &self,
        src_ids: &Tensor,
        src_mask: &Tensor,
        decoding: &BeamSearchTranslatorNmConfig,
    ) -> Result<Vec<Vec<u32>>> {
        let hidden = self.encode(src_ids, src_mask)?; // (B, S, D)
        search(
            &self.decoder,
            &self.log_softmax,
            &hidden,
            src_mask,
            &decoding.search_config(),
        )
    }

    /// Translates sentences with the config's `decoding:` section (see
    /// [`translate_with`](Self::translate_with)).
    pub fn translate<S: AsRef<str>>(&self, lines: &[S]) -> Result<Vec<String>> {
        self.translate_with(
            lines,
            &self.config.decoding,
            TRANSLATE_TOKENS_IN_BATCH,
            |_| {},
        )
    }

    /// Translates sentences, one output per input in input order: each line is trimmed and
    /// tokenised, sources longer than the encoder's position table are cut (with a warning),
    /// the sentences are sorted by length and batched by at most `tokens_in_batch` padded
    /// source tokens (at least one sentence a batch), searched as `decoding` says and
    /// detokenised. An empty line gives an empty translation. `progress` gets the number of
    /// sentences translated after each batch.
    pub fn translate_with<S: AsRef<str>>(
        &self,
        lines: &[S],
        decoding: &BeamSearchTranslatorNmConfig,
        tokens_in_batch: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<String>> {
        let texts: Vec<&str> = lines.iter().map(|l| l.as_ref().trim()).collect();
        let ids = self.tokenizers.source().batch_text_to_ids(&texts)?;
        let max_src = self.config.encoder.max_seq_length;
        let sources: Vec<Vec<u32>> = ids
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                if s.len() + 2 > max_src {
                    tracing::warn!(
                        "sentence {}: {} tokens, cut to the encoder's {}",
                        i + 1,
                        s.len(),
                        max_src.saturating_sub(2)
                    );
                    s.truncate(max_src.saturating_sub(2));
                }
                s
            })
            .collect();
        let mut order: Vec<usize> = (0..sources.len())
            .filter(|&i| sources.get(i).is_some_and(|s| !s.is_empty()))
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sources.get(i).map_or(0, Vec::len)));
        let mut out = vec![String::new(); sources.len()];
        let mut done = sources.len() - order.len();
        progress(done);
        let mut start = 0;
        while start < order.len() {
            // Sorted longest first: the first row of a batch is its longest.
            let longest = order
                .get(start)
                .and_then(|&i| sources.get(i))
                .map_or(0, Vec::len)
                + 2;
            let rows = (tokens_in_batch / longest).max(1);
            let end = (start + rows).min(order.len());
            let batch: Vec<usize> = order.get(start..end).unwrap_or(&[]).to_vec();
            let (src_ids, src_mask) = source_batch(
                batch.iter().filter_map(|&i| sources.get(i)),
                longest,
                &self.device,
            )?;
            let hyps = self.translate_ids(&src_ids, &src_mask, decoding)?;
            for (&i, ids) in batch.iter().zip(&hyps) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = self.tokenizers.target().ids_to_text(ids)?;
                }
            }
            done += batch.len();
            progress(done);
            start = end;
        }
        Ok(out)
    }

    /// Writes the self-contained model directory `dir` (created if missing): `model.yaml`,
    /// `weights.safetensors` and the tokenizer file(s), each atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.save_config(dir)?;
        self.params.save(&dir.join(WEIGHTS_FILE))?;
        Ok(())
    }

    /// Writes `model.yaml` and the tokenizer file(s) into `dir`, not the weights: what a
    /// training run puts in its model directory at the start, so that its checkpoints can be
    /// averaged into a model before it ends.
    pub fn save_config(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.into(),
            source,
        })?;
        let yaml = serde_norway::to_string(&self.config).map_err(|e| Error::Config {
            key: "model".into(),
            msg: e.to_string(),
        })?;
        nemo_core::io::write_atomic(&dir.join(MODEL_CONFIG_FILE), yaml.as_bytes())?;
        self.tokenizers.save(dir)
    }

    /// Loads a model directory written by [`save`](Self::save) onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_weights(dir, &dir.join(WEIGHTS_FILE), device)
    }

    /// The model of directory `dir` (its `model.yaml` and tokenizers) with the weights of
    /// `weights` (a safetensors file, e.g. a checkpoint's or an average).
    pub fn load_weights(dir: &Path, weights: &Path, device: &Device) -> Result<Self> {
        let config = MtEncDecModelConfig::from_yaml_file(&dir.join(MODEL_CONFIG_FILE))?;
        let tokenizers = TranslationTokenizers::load(dir)?;
        let model = MtEncDecModel::new(config, tokenizers, 0, device)
            .map_err(|e| in_file(&dir.join(MODEL_CONFIG_FILE), e))?;
        model.params.load(weights)?;
        Ok(model)
    }
}

/// The typed ports of a plain batch, moved to `device`.
pub fn typed_batch(
    batch: &TranslationBatch,
    device: &Device,
) -> Result<TranslationDataLayerOutputs> {
    let ids = |t: &Tensor| -> Result<NTensor<(B, T), TokenIds>> {
        Ok(NTensor::new(t.to_device(device)?)?)
    };
    let src_mask = |t: &Tensor| -> Result<NTensor<(B, T), SourceMask>> {
        Ok(NTensor::new(t.to_device(device)?)?)
    };
    let tgt_mask = |t: &Tensor| -> Result<NTensor<(B, T), TargetMask>> {
        Ok(NTensor::new(t.to_device(device)?)?)
    };
    Ok(TranslationDataLayerOutputs {
        src_ids: ids(&batch.src_ids)?,
        src_mask: src_mask(&batch.src_mask)?,
        tgt_ids: ids(&batch.tgt_ids)?,
        tgt_mask: tgt_mask(&batch.tgt_mask)?,
        labels: ids(&batch.labels)?,
        sent_ids: NTensor::new(batch.sent_ids.to_device(device)?)?,
    })
}

/// `(B, S)` source ids `<BOS>` … `<EOS>` padded with `<PAD>`, and their `u8` mask.
fn source_batch<'a>(
    sources: impl Iterator<Item = &'a Vec<u32>>,
    s: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    let mut b = 0;
    for src in sources {
        let row = std::iter::once(BOS_ID)
            .chain(src.iter().copied())
            .chain([EOS_ID])
            .map(i64::from)
            .chain(std::iter::repeat(i64::from(PAD_ID)))
            .take(s);
        ids.extend(row);
        mask.extend((0..s).map(|j| u8::from(j < src.len() + 2)));
        b += 1;
    }
    Ok((
        Tensor::from_vec(ids, (b, s), device)?,
        Tensor::from_vec(mask, (b, s), device)?,
    ))
}
