//! Generating translations: the decoder and the output projection as a core [`StepDecoder`]
//! over the decoder's key/value cache, and [`search`], the one place every translation path of
//! the collection (the translator modules, the model, evaluation) calls the core's
//! [`beam_search`] or [`greedy_search`].
//!
//! NeMo 0.x's `BeamSearchSequenceGenerator` re-runs the decoder over all earlier positions at
//! every step, caching per-layer hidden states; the [`DecoderCache`] keeps each layer's keys and
//! values instead, so a step costs one position, and the tokens are the same.
//!
//! Each item's length limit is `min(max_seq_length, source length + max_delta_length)`
//! (NeMo's rule), the source length counting `<BOS>` and `<EOS>` as the hidden states do, but
//! per item where NeMo takes the padded length of the whole batch.

use candle_core::{DType, Device, Tensor};
use nemo_core::decoding::{
    BeamSearchConfig, StepDecoder, StepOutput, beam_search, greedy_search,
};
use nemo_core::nn::DecoderCache;

use crate::tokenizer::{BOS_ID, EOS_ID, PAD_ID};
use crate::{Error, Result};

use super::transformer_decoder_nm::TransformerDecoderNm;
use super::transformer_log_softmax_nm::TransformerLogSoftmaxNm;

/// The decoder and output projection driven one token at a time over a [`DecoderCache`].
#[derive(Debug, Clone, Copy)]
pub struct TranslationStepDecoder<'a> {
    decoder: &'a TransformerDecoderNm,
    log_softmax: &'a TransformerLogSoftmaxNm,
    device: &'a Device,
}

impl<'a> TranslationStepDecoder<'a> {
    /// Steps `decoder` and `log_softmax` on `device`.
    pub fn new(
        decoder: &'a TransformerDecoderNm,
        log_softmax: &'a TransformerLogSoftmaxNm,
        device: &'a Device,
    ) -> Self {
        TranslationStepDecoder {
            decoder,
            log_softmax,
            device,
        }
    }
}

impl StepDecoder for TranslationStepDecoder<'_> {
    type State = DecoderCache;

    fn step(
        &self,
        prev: &[u32],
        state: &DecoderCache,
    ) -> nemo_core::Result<StepOutput<DecoderCache>> {
        let ids = Tensor::from_vec(prev.to_vec(), (prev.len(), 1), self.device)?; // (N, 1)
        let mut cache = state.clone();
        let h = self.decoder.step(&ids, &mut cache)?; // (N, 1, D)
        let log_probs = self.log_softmax.log_probs(&h)?.squeeze(1)?; // (N, C)
        Ok(StepOutput {
            log_probs,
            attention: None,
            state: cache,
        })
    }

    fn select(&self, state: &DecoderCache, rows: &[u32]) -> nemo_core::Result<DecoderCache> {
        let rows = Tensor::from_vec(rows.to_vec(), rows.len(), self.device)?;
        state.index_select(&rows)
    }
}

/// Each row's valid length in a `(B, T)` mask.
pub fn mask_lengths(mask: &Tensor) -> Result<Vec<usize>> {
    let counts: Vec<u32> = mask
        .ne(0f64)?
        .to_dtype(DType::U32)?
        .sum(1)?
        .to_vec1()?;
    Ok(counts.into_iter().map(|c| c as usize).collect())
}

/// Translates the encoded batch: greedy search when `config.beam_size` is 1, else beam search.
/// Returns each row's tokens without `<BOS>` and `<EOS>`. `config.max_len` is capped at the
/// decoder's position table.
///
/// # Shapes
/// * `hidden_states_src`: `(B, S, D)`; `input_mask_src`: `(B, S)`
pub fn search(
    decoder: &TransformerDecoderNm,
    log_softmax: &TransformerLogSoftmaxNm,
    hidden_states_src: &Tensor,
    input_mask_src: &Tensor,
    config: &BeamSearchConfig,
) -> Result<Vec<Vec<u32>>> {
    let config = BeamSearchConfig {
        max_len: config.max_len.min(decoder.config().max_seq_length),
        ..config.clone()
    };
    config.validate()?;
    let limits: Vec<usize> = mask_lengths(input_mask_src)?
        .into_iter()
        .map(|len| config.limit(len))
        .collect();
    let device = hidden_states_src.device();
    let step = TranslationStepDecoder::new(decoder, log_softmax, device);
    let state = decoder.start(hidden_states_src, input_mask_src)?;
    let out = if config.beam_size <= 1 {
        greedy_search(&step, state, BOS_ID, EOS_ID, &limits)?
    } else {
        beam_search(&step, state, BOS_ID, EOS_ID, &limits, &config)?
    };
    Ok(out)
}

/// Rows of ids as a `(B, T)` `i64` tensor padded with `<PAD>`, `T` the longest row (at least 1).
pub fn ids_to_tensor(rows: &[Vec<u32>], device: &Device) -> Result<Tensor> {
    let b = rows.len();
    let t = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut flat = vec![i64::from(PAD_ID); b * t];
    for (row, ids) in flat.chunks_mut(t).zip(rows) {
        for (x, &id) in row.iter_mut().zip(ids) {
            *x = i64::from(id);
        }
    }
    if b == 0 {
        return Err(Error::Shape {
            op: "ids_to_tensor",
            msg: "no rows".into(),
        });
    }
    Ok(Tensor::from_vec(flat, (b, t), device)?)
}
