//! Greedy (best-path) CTC decoding: per-frame argmax, merge repeats, drop blanks.
//!
//! For `log_probs (B, T, D)` and valid lengths `(B)`, frame `t` of sample `b` picks
//! `argmax_k log_probs[b, t, k]` (the first index on ties); consecutive equal picks are merged and
//! blanks removed, so `a a ∅ a b b` reads `a a b`. This is the most probable *path*, not the most
//! probable label sequence (that needs a beam search), and it is what NeMo's `GreedyCTCInfer` and
//! `CTCDecoding` report as the greedy hypothesis (NeMo
//! `nemo/collections/asr/parts/submodules/ctc_greedy_decoding.py`). The blank defaults to the last
//! class, as in [`crate::losses::ctc`].
//!
//! The argmax runs on the tensor's device (candle's `argmax`); only `(B, T)` indices are copied to
//! the host.
//!
//! # Example
//!
//! ```
//! # fn main() -> nemo_asr::Result<()> {
//! use candle_core::{Device, Tensor};
//! use nemo_asr::decoding::{ctc_greedy_decode, ids_to_text};
//!
//! // (B, T, D) = (1, 4, 3); labels 'h', 'i'; blank = 2. Frames pick h h ∅ i.
//! let lp = Tensor::new(&[[[0.0f32, -9., -9.], [0., -9., -9.], [-9., -9., 0.], [-9., 0., -9.]]], &Device::Cpu)?;
//! let ids = ctc_greedy_decode(&lp, None, None)?;
//! assert_eq!(ids, vec![vec![0, 1]]);
//! assert_eq!(ids_to_text(&ids[0], &['h', 'i'])?, "hi");
//! # Ok(())
//! # }
//! ```

use candle_core::{D, Tensor};

use crate::kernels::ctc::int_values;
use crate::{Error, Result};

const OP: &str = "ctc_greedy_decode";

/// Greedy CTC decoder (NeMo `GreedyCTCInfer` followed by `CTCDecoding`'s collapse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GreedyCtcDecoder {
    blank: Option<usize>,
}

impl GreedyCtcDecoder {
    /// A decoder with the given blank index; `None` (the default) means the last class.
    pub fn new(blank: Option<usize>) -> Self {
        Self { blank }
    }

    /// The configured blank index (`None`: the last class).
    pub fn blank(&self) -> Option<usize> {
        self.blank
    }

    /// Decodes a batch into label ids; see [`ctc_greedy_decode`].
    ///
    /// # Shapes
    /// - `log_probs`: `(B, T, D)` float (log-probabilities, probabilities or logits: only the
    ///   argmax matters)
    /// - `lengths`: `(B)` integer valid frames per sample, or `None` for all `T`
    /// - returns `B` id sequences
    pub fn decode(&self, log_probs: &Tensor, lengths: Option<&Tensor>) -> Result<Vec<Vec<u32>>> {
        ctc_greedy_decode(log_probs, lengths, self.blank)
    }

    /// Decodes a batch and maps the ids to text with [`ids_to_text`].
    pub fn decode_to_text<L: LabelText>(
        &self,
        log_probs: &Tensor,
        lengths: Option<&Tensor>,
        labels: &[L],
    ) -> Result<Vec<String>> {
        self.decode(log_probs, lengths)?
            .iter()
            .map(|ids| ids_to_text(ids, labels))
            .collect()
    }
}

/// Greedy CTC decoding of `log_probs (B, T, D)`: argmax per frame over the first `lengths[b]`
/// frames (all `T` when `lengths` is `None`), repeats merged, blanks dropped.
///
/// # Errors
/// [`Error::Shape`] with op `ctc_greedy_decode` when `log_probs` is not rank 3, `lengths` is not
/// `(B)` integers within `0..=T`, or the blank is not a class.
pub fn ctc_greedy_decode(
    log_probs: &Tensor,
    lengths: Option<&Tensor>,
    blank: Option<usize>,
) -> Result<Vec<Vec<u32>>> {
    let (batch, frames, classes) = match log_probs.dims() {
        &[b, t, d] => (b, t, d),
        dims => {
            return Err(shape_err(format!(
                "`log_probs` must be (B, T, D), got shape {dims:?}"
            )));
        }
    };
    let blank = blank.unwrap_or(classes.saturating_sub(1));
    if blank >= classes {
        return Err(shape_err(format!(
            "blank index {blank} is not a class of `log_probs` with D = {classes}"
        )));
    }
    let blank = u32::try_from(blank)
        .map_err(|_| shape_err(format!("blank index {blank} does not fit in u32")))?;
    let lengths: Vec<usize> = match lengths {
        None => vec![frames; batch],
        Some(t) => {
            if t.dims() != [batch] {
                return Err(shape_err(format!(
                    "`lengths` must be (B) with B = {batch}, got shape {:?}",
                    t.dims()
                )));
            }
            int_values(t, OP, "lengths")?
                .into_iter()
                .enumerate()
                .map(|(b, v)| match usize::try_from(v) {
                    Ok(u) if u <= frames => Ok(u),
                    _ => Err(shape_err(format!(
                        "`lengths` of sample {b} is {v}, outside 0..={frames} (T of `log_probs`)"
                    ))),
                })
                .collect::<Result<_>>()?
        }
    };
    if frames == 0 {
        return Ok(vec![Vec::new(); batch]);
    }
    if !log_probs.dtype().is_float() {
        return Err(shape_err(format!(
            "`log_probs` must be a float tensor, got dtype {:?}",
            log_probs.dtype()
        )));
    }
    let best = log_probs.argmax(D::Minus1)?.to_vec2::<u32>()?; // (B, T)
    Ok(best
        .iter()
        .zip(&lengths)
        .map(|(row, &len)| collapse_ctc_frames(row.get(..len).unwrap_or(row), blank))
        .collect())
}

/// Merges consecutive equal frame ids and removes the blank: `[a, a, ∅, a, b, b]` → `[a, a, b]`.
pub fn collapse_ctc_frames(frame_ids: &[u32], blank: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(frame_ids.len() / 2 + 1);
    let mut prev = None;
    for &id in frame_ids {
        if Some(id) != prev && id != blank {
            out.push(id);
        }
        prev = Some(id);
    }
    out
}

/// A vocabulary entry that can be written as text: a character or a (sub)word string.
pub trait LabelText {
    /// Appends this label's text to `out`.
    fn push_to(&self, out: &mut String);
}

impl LabelText for char {
    fn push_to(&self, out: &mut String) {
        out.push(*self);
    }
}

impl LabelText for String {
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl LabelText for &str {
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

/// Joins the labels of `ids` without separators, as NeMo's character decoding does
/// (`"".join(labels_map[c] for c in prediction)`).
///
/// # Errors
/// [`Error::Shape`] with op `ids_to_text` when an id is not an index of `labels` (e.g. a blank
/// left in the sequence).
pub fn ids_to_text<L: LabelText>(ids: &[u32], labels: &[L]) -> Result<String> {
    let mut text = String::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        let label = labels.get(id as usize).ok_or_else(|| Error::Shape {
            op: "ids_to_text",
            msg: format!(
                "id {id} at position {i} is not a label index (0..{})",
                labels.len()
            ),
        })?;
        label.push_to(&mut text);
    }
    Ok(text)
}

fn shape_err(msg: String) -> Error {
    Error::Shape { op: OP, msg }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_merges_repeats_then_drops_blanks() {
        assert_eq!(
            collapse_ctc_frames(&[0, 0, 2, 0, 1, 1, 2], 2),
            vec![0, 0, 1]
        );
        assert_eq!(collapse_ctc_frames(&[2, 2, 2], 2), Vec::<u32>::new());
        assert_eq!(collapse_ctc_frames(&[], 2), Vec::<u32>::new());
        assert_eq!(collapse_ctc_frames(&[1, 2, 1], 2), vec![1, 1]);
    }
}
