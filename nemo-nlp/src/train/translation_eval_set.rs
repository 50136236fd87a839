//! Held-out parallel text and what training reports on it: the loss per target token and
//! SacreBLEU-compatible BLEU of detokenised translations against the raw reference lines.

use std::path::Path;

use candle_core::DType;
use nemo_core::ForwardCtx;

use crate::data::TranslationDataLayer;
use crate::metrics::{Bleu, BleuScore};
use crate::models::MtEncDecModel;
use crate::modules::BeamSearchTranslatorNmConfig;
use crate::text_file::read_lines;
use crate::tokenizer::TranslationTokenizers;
use crate::{Error, Result};

use super::translation_data_config::TranslationDataConfig;

/// What [`TranslationEvalSet::evaluate`] measures.
#[derive(Debug, Clone)]
pub struct TranslationEval {
    /// Label-smoothed loss per target token over every pair.
    pub loss: f64,
    /// Corpus BLEU of the translated sentences.
    pub bleu: BleuScore,
    /// The translations, in file order.
    pub hypotheses: Vec<String>,
}

/// A validation set: its batches for the loss, its source lines to translate and its reference
/// lines to score against.
#[derive(Debug)]
pub struct TranslationEvalSet {
    layer: TranslationDataLayer,
    sources: Vec<String>,
    references: Vec<String>,
    tokens_in_batch: usize,
}

impl TranslationEvalSet {
    /// Reads the aligned files `src` and `tgt` (every pair kept, none cleaned); with
    /// `config.eval_max_sentences`, BLEU covers only the first that many.
    pub fn new(
        config: &TranslationDataConfig,
        src: &Path,
        tgt: &Path,
        tokenizers: &TranslationTokenizers,
    ) -> Result<Self> {
        let layer = TranslationDataLayer::new(config.eval_layer(src, tgt), tokenizers)?;
        let mut sources = read_lines(src)?;
        let mut references = read_lines(tgt)?;
        if let Some(n) = config.eval_max_sentences {
            sources.truncate(n);
            references.truncate(n);
        }
        Ok(TranslationEvalSet {
            layer,
            sources,
            references,
            tokens_in_batch: config.eval_tokens_in_batch,
        })
    }

    /// The data layer of the loss.
    pub fn layer(&self) -> &TranslationDataLayer {
        &self.layer
    }

    /// Sentences BLEU is scored on.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether there is no sentence to score.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Loss and BLEU of `model`, translating with `decoding` (training evaluates greedily:
    /// [`BeamSearchTranslatorNmConfig::greedy`]).
    pub fn evaluate(
        &self,
        model: &MtEncDecModel,
        decoding: &BeamSearchTranslatorNmConfig,
    ) -> Result<TranslationEval> {
        let loss = self.loss(model)?;
        let hypotheses =
            model.translate_with(&self.sources, decoding, self.tokens_in_batch, |_| {})?;
        let bleu = Bleu::default().corpus_score(&hypotheses, &[&self.references])?;
        Ok(TranslationEval {
            loss,
            bleu,
            hypotheses,
        })
    }

    /// The loss per target token of `model` over every pair, in eval mode.
    pub fn loss(&self, model: &MtEncDecModel) -> Result<f64> {
        let (mut sum, mut tokens) = (0.0, 0.0);
        for batch in self.layer.epoch(0, model.device()) {
            let batch = batch?;
            let n = f64::from(
                batch
                    .tgt_mask
                    .to_dtype(DType::U32)?
                    .sum_all()?
                    .to_scalar::<u32>()?,
            );
            let loss = model.batch_loss(&batch, &ForwardCtx::eval())?;
            sum += f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?) * n;
            tokens += n;
        }
        if tokens == 0.0 {
            return Err(Error::Metric {
                metric: "loss",
                msg: "the validation set has no target tokens".into(),
            });
        }
        Ok(sum / tokens)
    }
}
