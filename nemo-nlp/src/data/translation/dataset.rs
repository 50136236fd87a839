//! Parallel text tokenised, cleaned and packed into batches (NeMo's `TranslationDataset`), and
//! the collation of one batch into tensors.
//!
//! Line `i` of the source file is paired with line `i` of the target file (both UTF-8, one
//! sentence per line, the same number of lines). Each side is trimmed of surrounding whitespace
//! and tokenised without special tokens; every sequence then gets `<BOS>` in front and `<EOS>`
//! at the end, as NeMo's `dataset_to_ids` does, and the lengths the [cleaning
//! rules](super::cleaning) and the [batching](super::batching) use count them. With `clean`, the
//! pairs that break a rule are dropped and counted ([`CleaningSummary`]). The batches are made
//! once; an epoch visits them in a new order ([`TranslationDataLayer`]).
//!
//! [`collate`] makes a batch's tensors, `S` the longest source with `<BOS>` and `<EOS>`, `T` the
//! longest target plus one:
//!
//! | tensor | shape | dtype | row `i` |
//! |---|---|---|---|
//! | `src_ids` | `(B, S)` | i64 | `<BOS>` source `<EOS>`, then `<PAD>` |
//! | `src_mask` | `(B, S)` | u8 | 1 over the source with `<BOS>`/`<EOS>`, 0 over padding |
//! | `tgt_ids` | `(B, T)` | i64 | `<BOS>` target, then `<PAD>` (the decoder's input) |
//! | `tgt_mask` | `(B, T)` | u8 | 1 where `labels` has a token, 0 over padding |
//! | `labels` | `(B, T)` | i64 | target `<EOS>`, then `<PAD>` (what each position predicts) |
//! | `sent_ids` | `(B)` | i64 | the pair's 0-based line in the files |
//!
//! NeMo pads `<BOS>` target `<EOS>` and then cuts the last column off for `tgt_ids` and the
//! first for `labels`, so in a shorter row `tgt_ids` keeps the `<EOS>` (over a `labels` pad) and
//! `tgt_mask` covers it. Here `tgt_ids` stops before `<EOS>` in every row and `tgt_mask` covers
//! exactly the positions with a label. The loss (which masks `labels == <PAD>`) and, with a causal
//! decoder, every position that has a label are computed the same.
//!
//! [`TranslationDataLayer`]: super::TranslationDataLayer

use candle_core::{Device, Tensor};

use super::batching::{batch_tokens, pack_into_batches};
use super::cleaning::CleaningSummary;
use super::data_layer::{TranslationBatch, TranslationDataLayerConfig};
use crate::text_file::read_lines;
use crate::tokenizer::{BOS_ID, EOS_ID, PAD_ID, TranslationTokenizers};
use crate::{Error, Result};

/// One sentence pair of the dataset: token ids without `<BOS>`/`<EOS>` and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranslationPair<'a> {
    /// The 0-based line of the pair in the source and target files (the batch's `sent_ids`).
    pub line: usize,
    /// Source token ids.
    pub src: &'a [u32],
    /// Target token ids.
    pub tgt: &'a [u32],
}

/// Tokenised, cleaned parallel text packed into batches (NeMo's `TranslationDataset`).
#[derive(Clone)]
pub struct TranslationDataset {
    src: Vec<Vec<u32>>,
    tgt: Vec<Vec<u32>>,
    lines: Vec<usize>,
    batches: Vec<Vec<usize>>,
    summary: CleaningSummary,
}

/// Counts only: the ids of a corpus are too many to print.
impl std::fmt::Debug for TranslationDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranslationDataset")
            .field("pairs", &self.len())
            .field("batches", &self.num_batches())
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl TranslationDataset {
    /// Reads, tokenises, cleans (with `clean`) and batches the files of `config` with the
    /// source and target tokenizers.
    #[doc(alias = "dataset_to_ids")]
    pub fn new(
        config: &TranslationDataLayerConfig,
        tokenizers: &TranslationTokenizers,
    ) -> Result<Self> {
        config.validate()?;
        let (src_path, tgt_path) = (&config.dataset_src, &config.dataset_tgt);
        let src_text = read_lines(src_path)?;
        let tgt_text = read_lines(tgt_path)?;
        if src_text.len() != tgt_text.len() {
            return Err(Error::Alignment {
                first: src_path.clone(),
                second: tgt_path.clone(),
                msg: format!(
                    "{} source lines but {} target lines",
                    src_text.len(),
                    tgt_text.len()
                ),
            });
        }
        let trim = |lines: &[String]| -> Vec<String> {
            lines.iter().map(|l| l.trim().to_owned()).collect()
        };
        let (src_text, tgt_text) = (trim(&src_text), trim(&tgt_text));
        let src = tokenizers.source().batch_text_to_ids(&src_text)?;
        let tgt = tokenizers.target().batch_text_to_ids(&tgt_text)?;
        let same: Vec<bool> = src_text
            .iter()
            .zip(&tgt_text)
            .map(|(s, t)| s == t)
            .collect();
        let dataset = Self::build(src, tgt, &same, config).map_err(|msg| Error::Alignment {
            first: src_path.clone(),
            second: tgt_path.clone(),
            msg,
        })?;
        tracing::info!(
            "{} / {}: {}; {} batches",
            src_path.display(),
            tgt_path.display(),
            dataset.summary,
            dataset.num_batches()
        );
        Ok(dataset)
    }

    /// A dataset of already tokenised pairs (ids without `<BOS>`/`<EOS>`; pair `i` is "line"
    /// `i`); for `clean`, a source equals its target when their ids are equal. `config`'s file
    /// paths are not read.
    pub fn from_token_ids(
        src: Vec<Vec<u32>>,
        tgt: Vec<Vec<u32>>,
        config: &TranslationDataLayerConfig,
    ) -> Result<Self> {
        config.validate()?;
        if src.len() != tgt.len() {
            return Err(Error::Shape {
                op: "TranslationDataset",
                msg: format!("{} sources but {} targets", src.len(), tgt.len()),
            });
        }
        let same: Vec<bool> = src.iter().zip(&tgt).map(|(s, t)| s == t).collect();
        Self::build(src, tgt, &same, config).map_err(|msg| Error::Shape {
            op: "TranslationDataset",
            msg,
        })
    }

    fn build(
        src: Vec<Vec<u32>>,
        tgt: Vec<Vec<u32>>,
        same: &[bool],
        config: &TranslationDataLayerConfig,
    ) -> std::result::Result<Self, String> {
        let rules = config.cleaning_rules();
        let mut summary = CleaningSummary::default();
        let mut dataset = Self {
            src: Vec::with_capacity(src.len()),
            tgt: Vec::with_capacity(tgt.len()),
            lines: Vec::with_capacity(src.len()),
            batches: Vec::new(),
            summary: CleaningSummary::default(),
        };
        for (line, ((s, t), &same)) in src.into_iter().zip(tgt).zip(same).enumerate() {
            let reason = if config.clean {
                rules.check(s.len() + 2, t.len() + 2, same)
            } else {
                None
            };
            summary.count(reason);
            if reason.is_none() {
                dataset.src.push(s);
                dataset.tgt.push(t);
                dataset.lines.push(line);
            }
        }
        dataset.summary = summary;
        if dataset.src.is_empty() {
            return Err(format!("no sentence pair to make batches of ({summary})"));
        }
        dataset.batches = pack_into_batches(
            &dataset.lengths(),
            config.tokens_in_batch,
            config.batch_size_multiple,
        );
        Ok(dataset)
    }

    /// `(source, target)` lengths of the pairs, with `<BOS>` and `<EOS>`.
    pub fn lengths(&self) -> Vec<(usize, usize)> {
        self.src
            .iter()
            .zip(&self.tgt)
            .map(|(s, t)| (s.len() + 2, t.len() + 2))
            .collect()
    }

    /// Number of sentence pairs kept.
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// Whether no pair was kept (never, for a dataset that was built).
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }

    /// Pair `i` (`< len()`).
    pub fn pair(&self, i: usize) -> Option<TranslationPair<'_>> {
        Some(TranslationPair {
            line: *self.lines.get(i)?,
            src: self.src.get(i)?,
            tgt: self.tgt.get(i)?,
        })
    }

    /// The batches, as indices of pairs, in NeMo's (unshuffled) order.
    pub fn batches(&self) -> &[Vec<usize>] {
        &self.batches
    }

    /// Number of batches.
    pub fn num_batches(&self) -> usize {
        self.batches.len()
    }

    /// The padded token count of batch `b`: pairs × (longest source + longest target), with
    /// `<BOS>` and `<EOS>` (what `tokens_in_batch` bounds).
    pub fn batch_tokens(&self, b: usize) -> usize {
        self.batches
            .get(b)
            .map_or(0, |batch| batch_tokens(batch, &self.lengths()))
    }

    /// Pairs read, kept and dropped.
    pub fn summary(&self) -> CleaningSummary {
        self.summary
    }

    /// The tensors of batch `b` on `device`.
    pub fn collate_batch(&self, b: usize, device: &Device) -> Result<TranslationBatch> {
        let batch = self.batches.get(b).ok_or_else(|| Error::Shape {
            op: "TranslationDataset",
            msg: format!("batch {b} of {}", self.batches.len()),
        })?;
        let pairs: Vec<TranslationPair<'_>> = batch.iter().filter_map(|&i| self.pair(i)).collect();
        collate(&pairs, device)
    }
}

/// The tensors of a batch of pairs (see the [module](self) docs); an empty batch is an error.
#[doc(alias = "pad_batches")]
pub fn collate(pairs: &[TranslationPair<'_>], device: &Device) -> Result<TranslationBatch> {
    let b = pairs.len();
    if b == 0 {
        return Err(Error::Shape {
            op: "collate",
            msg: "cannot make a batch of 0 sentence pairs".into(),
        });
    }
    let s = pairs.iter().map(|p| p.src.len() + 2).max().unwrap_or(0);
    let t = pairs.iter().map(|p| p.tgt.len() + 1).max().unwrap_or(0);
    let pad = i64::from(PAD_ID);
    let mut src_ids = vec![pad; b * s];
    let mut src_mask = vec![0u8; b * s];
    let mut tgt_ids = vec![pad; b * t];
    let mut tgt_mask = vec![0u8; b * t];
    let mut labels = vec![pad; b * t];
    let mut sent_ids = Vec::with_capacity(b);
    for (i, p) in pairs.iter().enumerate() {
        let src = std::iter::once(BOS_ID)
            .chain(p.src.iter().copied())
            .chain([EOS_ID]);
        for (j, id) in src.enumerate() {
            // Every row fits: `s` and `t` are the longest rows.
            if let (Some(x), Some(m)) = (src_ids.get_mut(i * s + j), src_mask.get_mut(i * s + j)) {
                (*x, *m) = (i64::from(id), 1);
            }
        }
        let input = std::iter::once(BOS_ID).chain(p.tgt.iter().copied());
        let output = p.tgt.iter().copied().chain([EOS_ID]);
        for (j, (x, y)) in input.zip(output).enumerate() {
            let k = i * t + j;
            if let (Some(a), Some(m), Some(l)) =
                (tgt_ids.get_mut(k), tgt_mask.get_mut(k), labels.get_mut(k))
            {
                (*a, *m, *l) = (i64::from(x), 1, i64::from(y));
            }
        }
        sent_ids.push(i64::try_from(p.line).map_err(|_| Error::Shape {
            op: "collate",
            msg: format!("line {} does not fit in i64", p.line),
        })?);
    }
    Ok(TranslationBatch {
        src_ids: Tensor::from_vec(src_ids, (b, s), device)?,
        src_mask: Tensor::from_vec(src_mask, (b, s), device)?,
        tgt_ids: Tensor::from_vec(tgt_ids, (b, t), device)?,
        tgt_mask: Tensor::from_vec(tgt_mask, (b, t), device)?,
        labels: Tensor::from_vec(labels, (b, t), device)?,
        sent_ids: Tensor::from_vec(sent_ids, b, device)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collate_pads_shifts_and_masks() -> Result<()> {
        let pairs = [
            TranslationPair {
                line: 7,
                src: &[10, 11],
                tgt: &[20],
            },
            TranslationPair {
                line: 2,
                src: &[12],
                tgt: &[21, 22, 23],
            },
        ];
        let b = collate(&pairs, &Device::Cpu)?;
        assert_eq!(b.src_ids.to_vec2::<i64>()?, [[2, 10, 11, 3], [2, 12, 3, 0]]);
        assert_eq!(b.src_mask.to_vec2::<u8>()?, [[1, 1, 1, 1], [1, 1, 1, 0]]);
        assert_eq!(
            b.tgt_ids.to_vec2::<i64>()?,
            [[2, 20, 0, 0], [2, 21, 22, 23]]
        );
        assert_eq!(b.labels.to_vec2::<i64>()?, [[20, 3, 0, 0], [21, 22, 23, 3]]);
        assert_eq!(b.tgt_mask.to_vec2::<u8>()?, [[1, 1, 0, 0], [1, 1, 1, 1]]);
        assert_eq!(b.sent_ids.to_vec1::<i64>()?, [7, 2]);
        assert!(collate(&[], &Device::Cpu).is_err());
        Ok(())
    }
}
