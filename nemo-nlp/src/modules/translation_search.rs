//! Generating translations: [`search`], the one place every translation path of the
//! collection (the translator modules, the model, evaluation) drives the core's
//! [`TransformerStepDecoder`] with [`beam_search`] or [`greedy_search`].
//!
//! NeMo 0.x's `BeamSearchSequenceGenerator` re-runs the decoder over all earlier positions at
//! every step, caching per-layer hidden states; the core's decoder cache keeps each layer's keys
//! and values instead, so a step costs one position, and the tokens are the same.
//!
//! Each item's length limit is `min(max_seq_length, source length + max_delta_length)`
//! (NeMo's rule), the source length counting `<BOS>` and `<EOS>` as the hidden states do, but
//! per item where NeMo takes the padded length of the whole batch.

use candle_core::{DType, Device, Tensor};
use nemo_core::decoding::{BeamSearchConfig, beam_search, greedy_search};
use nemo_core::nn::TransformerStepDecoder;

use crate::tokenizer::{BOS_ID, EOS_ID, PAD_ID};
use crate::{Error, Result};

use super::transformer_decoder_nm::TransformerDecoderNm;
use super::transformer_log_softmax_nm::TransformerLogSoftmaxNm;

/// Each row's valid length in a `(B, T)` mask.
pub fn mask_lengths(mask: &Tensor) -> Result<Vec<usize>> {
    let counts: Vec<u32> = mask.ne(0f64)?.to_dtype(DType::U32)?.sum(1)?.to_vec1()?;
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
        pad_id: config.pad_id.or(Some(PAD_ID)),
        ..config.clone()
    };
    config.validate()?;
    let limits: Vec<usize> = mask_lengths(input_mask_src)?
        .into_iter()
        .map(|len| config.limit(len))
        .collect();
    let step = TransformerStepDecoder::new(
        decoder.embedding(),
        decoder.decoder(),
        log_softmax.weight(),
        Some(log_softmax.bias()),
    )?;
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
