//! One item's beam under [`FinishedHypotheses::Nemo`](super::FinishedHypotheses::Nemo): NeMo
//! 0.x's `BeamSearchSequenceGenerator.forward` (`nemo/collections/nlp/nm/trainables/common/
//! transformer/transformer_generators.py`, v0.11.1), rewritten per item instead of over
//! `(B·k, k)` tensors. NeMo's `pad_profile` is [`NemoHyp::finished`], `prefixes_len` is
//! [`NemoHyp::len`], and its `scores` tensor is [`NemoHyp::score`].

use super::beam_search::{BeamSearchConfig, ItemStep, top_k};

/// The tokens that end a hypothesis: EOS and, if given, PAD.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ends {
    pub(super) eos: u32,
    pub(super) pad: Option<u32>,
}

impl Ends {
    fn contains(self, token: u32) -> bool {
        token == self.eos || self.pad == Some(token)
    }
}

#[derive(Debug, Clone)]
struct NemoHyp {
    /// Tokens after BOS as chosen, EOS included (an ended hypothesis's PADs are not stored).
    tokens: Vec<u32>,
    /// NeMo's running score: the sum of log-probabilities, but for the slot quirk (see
    /// [`NemoBeam::advance`]).
    score: f64,
    /// NeMo's length: 1 + the prefix's tokens (BOS included) that are neither EOS nor PAD.
    len: usize,
    /// Ended: its last token is EOS or PAD (NeMo's `pad_profile`; never after the first step).
    finished: bool,
}

/// One item's beam; see the [module docs](self).
#[derive(Debug)]
pub(super) struct NemoBeam {
    hyps: Vec<NemoHyp>,
    limit: usize,
    done: bool,
}

impl NemoBeam {
    /// The beam before the first step: BOS alone.
    pub(super) fn new(limit: usize) -> Self {
        NemoBeam {
            hyps: vec![NemoHyp {
                tokens: Vec::new(),
                score: 0.0,
                len: 2,
                finished: false,
            }],
            limit,
            done: false,
        }
    }

    /// Whether the item has run all its steps (its hypotheses may have ended earlier and still
    /// be re-ranked).
    pub(super) fn done(&self) -> bool {
        self.done
    }

    /// The tokens of the hypotheses the next step runs (those not ended), in row order.
    pub(super) fn live_tokens(&self) -> impl Iterator<Item = &[u32]> {
        self.hyps
            .iter()
            .filter(move |h| !self.done && !h.finished)
            .map(|h| h.tokens.as_slice())
    }

    /// One step: `step.rows` are the log-probabilities after each live hypothesis in order;
    /// the rows of the next step's hypotheses are appended to `kept`.
    ///
    /// NeMo's ranking: candidate `c` of parent `p` ranks by `(score_p + log p_c) / lp(len_p)`
    /// (an ended `p` offers itself, `score_p / lp(len_p)`); the best `k` fill slots `0..k` in
    /// order, and slot `r` keeps `rank × lp(len of slot r's previous hypothesis)`.
    pub(super) fn advance(
        &mut self,
        step: &ItemStep,
        kept: &mut Vec<u32>,
        config: &BeamSearchConfig,
        ends: Ends,
    ) {
        let ItemStep {
            step_no,
            rows,
            first_row,
            ..
        } = *step;
        let k = config.beam_size;
        let done = step_no + 1 >= self.limit;
        let mut next: Vec<NemoHyp> = Vec::with_capacity(k);
        let mut next_rows: Vec<u32> = Vec::with_capacity(k);
        if step_no == 0 {
            // The first step: the k best tokens after BOS, raw log-probabilities, all live and
            // of length 3 (NeMo's `prefixes_len.fill_(3)`), EOS included.
            for (tok, lp) in rows.first().map(|r| top_k(r, k)).unwrap_or_default() {
                next.push(NemoHyp {
                    tokens: vec![tok as u32],
                    score: f64::from(lp),
                    len: 3,
                    finished: false,
                });
                next_rows.push(first_row as u32);
            }
        } else {
            // (rank, parent, token: None for an ended parent's PAD, row of the parent)
            let mut cands: Vec<(f64, usize, Option<u32>, u32)> = Vec::new();
            let mut live = 0usize;
            for (p, h) in self.hyps.iter().enumerate() {
                let div = config.penalty(h.len);
                if h.finished {
                    cands.push((h.score / div, p, None, 0));
                    continue;
                }
                let Some(row) = rows.get(live) else { continue };
                let row_no = (first_row + live) as u32;
                live += 1;
                for (tok, lp) in top_k(row, k) {
                    cands.push(((h.score + f64::from(lp)) / div, p, Some(tok as u32), row_no));
                }
            }
            // Stable: equal ranks keep the order of parent, then the parent's token rank.
            cands.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (slot, (rank, p, tok, row_no)) in cands.into_iter().take(k).enumerate() {
                let Some(parent) = self.hyps.get(p) else {
                    continue;
                };
                let mut tokens = parent.tokens.clone();
                tokens.extend(tok);
                let finished = parent.finished || tok.is_some_and(|t| ends.contains(t));
                let slot_len = self.hyps.get(slot).map_or(parent.len, |h| h.len);
                let len = 2 + tokens.iter().filter(|&&t| !ends.contains(t)).count();
                next.push(NemoHyp {
                    tokens,
                    score: rank * config.penalty(slot_len),
                    len,
                    finished,
                });
                if !finished {
                    next_rows.push(row_no);
                }
            }
        }
        self.hyps = next;
        self.done = done;
        if !done {
            kept.extend(next_rows);
        }
    }

    /// The argmax of `score / lp(len)` (first maximum), without EOS and PAD.
    pub(super) fn best(&self, config: &BeamSearchConfig, ends: Ends) -> Vec<u32> {
        let mut best: Option<(f64, &NemoHyp)> = None;
        for h in &self.hyps {
            let norm = h.score / config.penalty(h.len);
            if best.is_none_or(|(b, _)| norm > b) {
                best = Some((norm, h));
            }
        }
        best.map(|(_, h)| {
            h.tokens
                .iter()
                .copied()
                .filter(|&t| !ends.contains(t))
                .collect()
        })
        .unwrap_or_default()
    }
}
