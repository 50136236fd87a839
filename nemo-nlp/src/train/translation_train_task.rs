//! The training task the core runner fits for a translation model: micro-batch `g` of a run is
//! batch `g mod n` of epoch `g / n` in the data layer's seeded order (so `--resume` replays
//! exactly the batches of an uninterrupted run), and the loss of an update is normalised by the
//! target tokens of all its micro-batches.
//!
//! Token normalisation: batches are packed by token count, so their numbers of target tokens
//! differ. Each micro-batch's loss (a mean over its tokens) is weighted by its share of the
//! update's tokens — the trainer's `1 / batches_per_step` scaling included — so the gradient
//! of an update is that of the mean over all its target tokens, as fairseq and NeMo (which
//! counts tokens per batch) normalise.

use std::collections::BTreeMap;

use candle_core::Tensor;
use nemo_core::ForwardCtx;
use nemo_core::params::Parameters;
use nemo_core::train::TrainTask;

use crate::data::TranslationDataLayer;
use crate::models::MtEncDecModel;
use crate::{Error, Result};

use super::translation_eval_set::TranslationEvalSet;

/// Trains an [`MtEncDecModel`] on a [`TranslationDataLayer`], evaluating on a
/// [`TranslationEvalSet`]: `val_loss` and greedy `val_bleu`.
#[derive(Debug)]
pub struct TranslationTrainTask<'a> {
    model: &'a MtEncDecModel,
    train: &'a TranslationDataLayer,
    val: Option<&'a TranslationEvalSet>,
    batches_per_step: usize,
    /// The epoch whose order is cached, and that order.
    order: (u64, Vec<usize>),
    /// Target tokens (labels) of each batch, in packing order.
    label_tokens: Vec<usize>,
}

impl<'a> TranslationTrainTask<'a> {
    /// A task training `model` on `train` with `batches_per_step` micro-batches per update,
    /// evaluating on `val`.
    pub fn new(
        model: &'a MtEncDecModel,
        train: &'a TranslationDataLayer,
        val: Option<&'a TranslationEvalSet>,
        batches_per_step: usize,
    ) -> Result<Self> {
        if train.num_batches() == 0 {
            return Err(Error::Config {
                key: "train_ds".into(),
                msg: "the training text gave no batch".into(),
            });
        }
        fits(model, train)?;
        if let Some(v) = val {
            fits(model, v.layer())?;
        }
        let dataset = train.dataset();
        let label_tokens = dataset
            .batches()
            .iter()
            .map(|batch| {
                batch
                    .iter()
                    .filter_map(|&i| dataset.pair(i))
                    .map(|p| p.tgt.len() + 1)
                    .sum()
            })
            .collect();
        Ok(TranslationTrainTask {
            model,
            train,
            val,
            batches_per_step: batches_per_step.max(1),
            order: (0, train.epoch_order(0)),
            label_tokens,
        })
    }

    /// The packed batch (index into the dataset's batches) of global micro-batch `g`.
    fn batch_of(&mut self, g: u64) -> usize {
        let n = self.train.num_batches().max(1) as u64;
        let (epoch, pos) = (g / n, (g % n) as usize);
        if self.order.0 != epoch {
            self.order = (epoch, self.train.epoch_order(epoch));
        }
        self.order.1.get(pos).copied().unwrap_or(0)
    }

    /// Target tokens of global micro-batch `g`.
    fn tokens_of(&mut self, g: u64) -> usize {
        let b = self.batch_of(g);
        self.label_tokens.get(b).copied().unwrap_or(0)
    }
}

/// Checks that every pair of `layer` fits the model's position tables, so that a long pair is
/// refused before training with its file and line, not by the embedding in the middle of a run.
fn fits(model: &MtEncDecModel, layer: &TranslationDataLayer) -> Result<()> {
    let config = layer.config();
    let dataset = layer.dataset();
    let limits = [
        (
            "encoder",
            &config.dataset_src,
            model.config().encoder.max_seq_length,
        ),
        (
            "decoder",
            &config.dataset_tgt,
            model.config().decoder.max_seq_length,
        ),
    ];
    for i in 0..dataset.len() {
        let Some(pair) = dataset.pair(i) else {
            continue;
        };
        // The source row is `<BOS>` s `<EOS>`; the target rows are `<BOS>` t and t `<EOS>`.
        for ((section, file, max), len) in
            limits.iter().zip([pair.src.len() + 2, pair.tgt.len() + 1])
        {
            if len > *max {
                return Err(Error::Config {
                    key: format!("model.{section}.max_seq_length"),
                    msg: format!(
                        "{}:{}: {len} tokens with <BOS>/<EOS>, more than the {max} positions (raise \
                         max_seq_length, or clean the data with a smaller train_ds.max_tokens)",
                        file.display(),
                        pair.line + 1
                    ),
                });
            }
        }
    }
    Ok(())
}

impl TrainTask for TranslationTrainTask<'_> {
    fn params(&self) -> &Parameters {
        self.model.params()
    }

    fn loss(&mut self, step: u64, micro: usize, ctx: &ForwardCtx) -> nemo_core::Result<Tensor> {
        let bps = self.batches_per_step as u64;
        let first = step * bps;
        let total: usize = (first..first + bps).map(|g| self.tokens_of(g)).sum();
        let g = first + micro as u64;
        let tokens = self.tokens_of(g);
        let b = self.batch_of(g);
        let batch = self.train.dataset().collate_batch(b, self.model.device())?;
        let mean = self.model.batch_loss(&batch, ctx)?;
        // The trainer divides by `batches_per_step`; this makes the sum over the update the
        // mean over all its target tokens.
        let weight = (tokens as f64 * bps as f64) / total.max(1) as f64;
        Ok(if bps == 1 { mean } else { (mean * weight)? })
    }

    fn evaluate(&mut self, _step: u64) -> nemo_core::Result<BTreeMap<String, f64>> {
        let Some(val) = self.val else {
            return Ok(BTreeMap::new());
        };
        let decoding = self.model.config().decoding.greedy();
        let eval = val.evaluate(self.model, &decoding)?;
        Ok(BTreeMap::from([
            ("val_loss".to_string(), eval.loss),
            ("val_bleu".to_string(), eval.bleu.score),
        ]))
    }
}
