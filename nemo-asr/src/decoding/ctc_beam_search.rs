//! CTC prefix beam search with an optional word n-gram language model and lexicon: NeMo's
//! `beam` / `pyctcdecode` / `flashlight` strategies of `BeamCTCInfer` in one decoder.
//!
//! Greedy decoding reads the best *path*; the prefix beam search (Hannun et al. 2014) sums every
//! path that collapses to the same text and keeps the `beam_size` best texts per frame. Each
//! prefix carries `log p_blank` and `log p_non_blank` (ending in a blank or not) so repeats
//! collapse correctly: `a a` extends `…a` only through a blank. A prefix is ranked by
//!
//! `log p_ctc(prefix) + beam_alpha · ln p_lm(words) + beam_beta · |words|`
//!
//! where the LM term is added when a word completes (a space, or the end of the utterance, which
//! also scores `</s>`). With `lexicon: true` a prefix may only spell the beginning of an LM word
//! and a word only completes if it is one, so every hypothesis is made of vocabulary words (the
//! flashlight decoder's lexicon mode). Characters with a frame log-probability below
//! `token_min_logp` are not tried (pyctcdecode's pruning): CTC output is peaky, so a handful of
//! characters per frame carry all the mass.
//!
//! Word boundaries are the label set's space; leading, trailing and repeated spaces are not
//! emitted (transcripts are normalized that way).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::ngram_lm::NgramLm;
use crate::data::Vocabulary;
use crate::{Error, Result};

const OP: &str = "ctc_beam_search";

/// Settings of [`CtcBeamSearch`] (NeMo's `beam_size`, `beam_alpha`, `beam_beta` names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CtcBeamSearchConfig {
    /// Prefixes kept per frame.
    pub beam_size: usize,
    /// Weight of the LM's natural-log probability.
    pub beam_alpha: f64,
    /// Bonus per word (balances the LM's preference for short outputs).
    pub beam_beta: f64,
    /// Characters below this frame log-probability are not tried.
    pub token_min_logp: f64,
    /// Only vocabulary words (needs a language model).
    pub lexicon: bool,
}

impl Default for CtcBeamSearchConfig {
    fn default() -> Self {
        CtcBeamSearchConfig {
            beam_size: 16,
            beam_alpha: 0.5,
            beam_beta: 1.0,
            token_min_logp: -8.0,
            lexicon: false,
        }
    }
}

/// The decoder: settings, labels and the optional LM (shared, read-only).
#[derive(Debug, Clone)]
pub struct CtcBeamSearch {
    config: CtcBeamSearchConfig,
    labels: Vec<char>,
    space: Option<usize>,
    lm: Option<Arc<NgramLm>>,
    /// Every prefix of every LM word (lexicon mode).
    word_prefixes: HashSet<String>,
}

/// One hypothesis prefix: a node of the prefix tree, with what its text means to the LM.
#[derive(Debug, Clone)]
struct Node {
    parent: usize,
    /// The label that ended this prefix (`usize::MAX` at the root).
    label: usize,
    /// `beam_alpha · ln p_lm + beam_beta · words` of the completed words.
    lm_score: f64,
    /// LM ids of the completed words, `<s>` first (the LM's history).
    history: Vec<u32>,
    /// The word being spelled.
    partial: String,
}

/// Per-frame probabilities of a prefix.
#[derive(Debug, Clone, Copy)]
struct Probs {
    blank: f64,
    non_blank: f64,
}

impl Probs {
    const NONE: Probs = Probs {
        blank: f64::NEG_INFINITY,
        non_blank: f64::NEG_INFINITY,
    };

    fn total(self) -> f64 {
        log_add(self.blank, self.non_blank)
    }
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

impl CtcBeamSearch {
    /// A decoder over `labels` (the blank is the class after the last label, as the CTC decoder
    /// emits it), with an optional language model.
    pub fn new(
        config: CtcBeamSearchConfig,
        labels: &Vocabulary,
        lm: Option<Arc<NgramLm>>,
    ) -> Result<Self> {
        if config.beam_size == 0 {
            return Err(Error::Config {
                key: "beam_size".into(),
                msg: "must be at least 1".into(),
            });
        }
        if !(config.beam_alpha.is_finite() && config.beam_beta.is_finite()) {
            return Err(Error::Config {
                key: "beam_alpha".into(),
                msg: "beam_alpha and beam_beta must be finite".into(),
            });
        }
        if config.lexicon && lm.is_none() {
            return Err(Error::Config {
                key: "lexicon".into(),
                msg: "lexicon decoding needs a language model (its words are the lexicon)".into(),
            });
        }
        let chars = labels.chars().to_vec();
        let space = chars.iter().position(|&c| c == ' ');
        let mut word_prefixes = HashSet::new();
        if config.lexicon {
            for w in lm.iter().flat_map(|lm| lm.words()) {
                for (i, _) in w.char_indices() {
                    word_prefixes.insert(w[..i].to_string());
                }
                word_prefixes.insert(w.to_string());
            }
        }
        Ok(CtcBeamSearch {
            config,
            labels: chars,
            space,
            lm,
            word_prefixes,
        })
    }

    /// The settings.
    pub fn config(&self) -> &CtcBeamSearchConfig {
        &self.config
    }

    /// Decodes a batch of `(T, D)` log-probability rows (`D = labels + 1`, blank last), each with
    /// its valid length, in parallel.
    pub fn decode_batch(
        &self,
        log_probs: &[Vec<f32>],
        lengths: &[usize],
        classes: usize,
    ) -> Result<Vec<String>> {
        if log_probs.len() != lengths.len() {
            return Err(Error::Shape {
                op: OP,
                msg: format!("{} rows but {} lengths", log_probs.len(), lengths.len()),
            });
        }
        log_probs
            .par_iter()
            .zip(lengths.par_iter())
            .map(|(lp, &len)| self.decode(lp, len, classes))
            .collect()
    }

    /// Decodes one utterance: `log_probs` is `(T, D)` row-major with `D = classes`, of which the
    /// first `frames` are valid.
    pub fn decode(&self, log_probs: &[f32], frames: usize, classes: usize) -> Result<String> {
        if classes != self.labels.len() + 1 {
            return Err(Error::Shape {
                op: OP,
                msg: format!(
                    "{classes} classes, expected {} labels and the blank",
                    self.labels.len()
                ),
            });
        }
        if log_probs.len() < frames * classes {
            return Err(Error::Shape {
                op: OP,
                msg: format!(
                    "{frames} frames of {classes} classes need {} values, got {}",
                    frames * classes,
                    log_probs.len()
                ),
            });
        }
        let blank = classes - 1;
        let bos = self.lm.as_ref().map(|lm| lm.bos());
        let mut nodes = vec![Node {
            parent: usize::MAX,
            label: usize::MAX,
            lm_score: 0.0,
            history: bos.into_iter().collect(),
            partial: String::new(),
        }];
        let mut children: HashMap<(usize, usize), usize> = HashMap::new();
        let mut beams: Vec<(usize, Probs)> = vec![(
            0,
            Probs {
                blank: 0.0,
                non_blank: f64::NEG_INFINITY,
            },
        )];
        let mut next: HashMap<usize, Probs> = HashMap::new();
        for t in 0..frames {
            let row = &log_probs[t * classes..(t + 1) * classes];
            let candidates: Vec<usize> = (0..blank)
                .filter(|&c| f64::from(row[c]) >= self.config.token_min_logp)
                .collect();
            next.clear();
            for &(id, p) in &beams {
                let lp_blank = f64::from(row[blank]);
                let e = next.entry(id).or_insert(Probs::NONE);
                e.blank = log_add(e.blank, p.total() + lp_blank);
                for &c in &candidates {
                    let lp = f64::from(row[c]);
                    let last = nodes[id].label;
                    if c == last {
                        // `a` then `a` without a blank between stays `a`.
                        let e = next.entry(id).or_insert(Probs::NONE);
                        e.non_blank = log_add(e.non_blank, p.non_blank + lp);
                    }
                    let Some(child) = self.extend(&mut nodes, &mut children, id, c) else {
                        continue;
                    };
                    let from = if c == last { p.blank } else { p.total() };
                    let e = next.entry(child).or_insert(Probs::NONE);
                    e.non_blank = log_add(e.non_blank, from + lp);
                }
            }
            beams.clear();
            beams.extend(next.iter().map(|(&id, &p)| (id, p)));
            let score = |&(id, p): &(usize, Probs)| p.total() + nodes[id].lm_score;
            if beams.len() > self.config.beam_size {
                // Ties broken by node id: the result does not depend on hash order.
                beams.select_nth_unstable_by(self.config.beam_size - 1, |a, b| {
                    score(b).total_cmp(&score(a)).then(a.0.cmp(&b.0))
                });
                beams.truncate(self.config.beam_size);
            }
        }
        // Finish: the last word and `</s>`.
        let mut best: Option<(f64, usize)> = None;
        for &(id, p) in &beams {
            let Some(end) = self.finish(&nodes[id]) else {
                continue;
            };
            let s = p.total() + end;
            if best.is_none_or(|(b, bid)| s > b || (s == b && id < bid)) {
                best = Some((s, id));
            }
        }
        let Some((_, mut id)) = best else {
            return Ok(String::new());
        };
        let mut text = Vec::new();
        while id != 0 {
            text.push(self.labels[nodes[id].label]);
            id = nodes[id].parent;
        }
        text.reverse();
        Ok(text.into_iter().collect::<String>().trim_end().to_string())
    }

    /// The child of prefix `id` by label `c`, made on first use; `None` when the text may not
    /// continue that way (a leading or double space, a non-word in lexicon mode).
    fn extend(
        &self,
        nodes: &mut Vec<Node>,
        children: &mut HashMap<(usize, usize), usize>,
        id: usize,
        c: usize,
    ) -> Option<usize> {
        if let Some(&child) = children.get(&(id, c)) {
            return (child != usize::MAX).then_some(child);
        }
        let node = &nodes[id];
        let made = if Some(c) == self.space {
            if node.partial.is_empty() {
                None
            } else {
                self.word_score(node, &node.partial).map(|(gain, word)| {
                    let mut history = node.history.clone();
                    history.extend(word);
                    Node {
                        parent: id,
                        label: c,
                        lm_score: node.lm_score + gain,
                        history,
                        partial: String::new(),
                    }
                })
            }
        } else {
            let mut partial = node.partial.clone();
            partial.push(self.labels[c]);
            (!self.config.lexicon || self.word_prefixes.contains(&partial)).then(|| Node {
                parent: id,
                label: c,
                lm_score: node.lm_score,
                history: node.history.clone(),
                partial,
            })
        };
        let child = made.map(|n| {
            nodes.push(n);
            nodes.len() - 1
        });
        children.insert((id, c), child.unwrap_or(usize::MAX));
        child
    }

    /// The score gain of completing `word` after `node`'s history, and its LM id; `None` when
    /// lexicon mode forbids the word.
    fn word_score(&self, node: &Node, word: &str) -> Option<(f64, Option<u32>)> {
        let Some(lm) = &self.lm else {
            // Without an LM the search is the plain prefix beam search: no word terms.
            return Some((0.0, None));
        };
        if self.config.lexicon && !lm.contains(word) {
            return None;
        }
        let id = lm.id(word).unwrap_or(u32::MAX);
        let ln_p = f64::from(lm.log10_prob(&node.history, id)) * std::f64::consts::LN_10;
        Some((
            self.config.beam_alpha * ln_p + self.config.beam_beta,
            Some(id),
        ))
    }

    /// The final score of a prefix: its completed words, the word it ends in, and `</s>`.
    fn finish(&self, node: &Node) -> Option<f64> {
        let mut score = node.lm_score;
        let mut history = node.history.clone();
        if !node.partial.is_empty() {
            let (gain, word) = self.word_score(node, &node.partial)?;
            score += gain;
            history.extend(word);
        }
        if let Some(lm) = &self.lm {
            let ln_p = f64::from(lm.log10_prob(&history, lm.eos())) * std::f64::consts::LN_10;
            score += self.config.beam_alpha * ln_p;
        }
        Some(score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vocabulary {
        Vocabulary::english()
    }

    /// `(T, 29)` log-probs where frame t puts `1 - eps` on `path[t]` (a char, or `_` for the
    /// blank) and spreads `eps` over the rest.
    fn peaky(path: &str, eps: f32) -> Vec<f32> {
        let l = labels();
        let classes = l.len() + 1;
        let mut out = Vec::new();
        for ch in path.chars() {
            let k = if ch == '_' {
                classes - 1
            } else {
                l.id(ch).map_or(classes - 1, |i| i as usize)
            };
            for c in 0..classes {
                let p = if c == k {
                    1.0 - eps
                } else {
                    eps / (classes - 1) as f32
                };
                out.push(p.ln());
            }
        }
        out
    }

    #[test]
    fn without_lm_it_reads_the_best_path() -> Result<()> {
        let d = CtcBeamSearch::new(CtcBeamSearchConfig::default(), &labels(), None)?;
        let lp = peaky("hh_e_ll_l_oo", 0.01);
        assert_eq!(d.decode(&lp, 12, 29)?, "hello");
        let lp = peaky("a_a a", 0.01);
        assert_eq!(d.decode(&lp, 5, 29)?, "aa a");
        Ok(())
    }

    #[test]
    fn sums_paths_where_the_best_path_is_wrong() -> Result<()> {
        // Two frames; p(a) = 0.4 each, p(blank) = 0.6 / 0.6 split... the single best path is
        // "__" (empty, 0.36) but "a" collects a_, _a, aa = 0.24 + 0.24 + 0.16 = 0.64.
        let l = labels();
        let classes = l.len() + 1;
        let a = l.id('a').map_or(0, |i| i as usize);
        let mut lp = vec![f32::NEG_INFINITY; 2 * classes];
        for t in 0..2 {
            lp[t * classes + a] = 0.4f32.ln();
            lp[t * classes + classes - 1] = 0.6f32.ln();
        }
        let config = CtcBeamSearchConfig {
            token_min_logp: -100.0,
            ..CtcBeamSearchConfig::default()
        };
        let d = CtcBeamSearch::new(config, &l, None)?;
        assert_eq!(d.decode(&lp, 2, classes)?, "a");
        Ok(())
    }

    #[test]
    fn the_lm_and_lexicon_repair_a_misheard_word() -> Result<()> {
        let lm = NgramLm::estimate(["the cat sat", "the cat ran", "a cat sat"], 3)?;
        let lm = Some(Arc::new(lm));
        // The acoustics say "the cet sat" with the vowel uncertain between e and a.
        let l = labels();
        let classes = l.len() + 1;
        let mut lp = peaky("the c_e_t sat", 0.01);
        let t = 6;
        let (a, e) = (
            l.id('a').map_or(0, |i| i as usize),
            l.id('e').map_or(0, |i| i as usize),
        );
        lp[t * classes + e] = 0.55f32.ln();
        lp[t * classes + a] = 0.4f32.ln();
        let plain = CtcBeamSearch::new(CtcBeamSearchConfig::default(), &l, None)?;
        assert_eq!(plain.decode(&lp, 13, classes)?, "the cet sat");
        let with_lm = CtcBeamSearch::new(
            CtcBeamSearchConfig {
                beam_alpha: 1.0,
                ..CtcBeamSearchConfig::default()
            },
            &l,
            lm.clone(),
        )?;
        assert_eq!(with_lm.decode(&lp, 13, classes)?, "the cat sat");
        let lexicon = CtcBeamSearch::new(
            CtcBeamSearchConfig {
                beam_alpha: 0.0,
                beam_beta: 0.0,
                lexicon: true,
                ..CtcBeamSearchConfig::default()
            },
            &l,
            lm,
        )?;
        assert_eq!(lexicon.decode(&lp, 13, classes)?, "the cat sat");
        Ok(())
    }

    #[test]
    fn lexicon_needs_an_lm_and_shapes_are_checked() -> Result<()> {
        let cfg = CtcBeamSearchConfig {
            lexicon: true,
            ..CtcBeamSearchConfig::default()
        };
        let err = CtcBeamSearch::new(cfg, &labels(), None)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("lexicon")));
        let d = CtcBeamSearch::new(CtcBeamSearchConfig::default(), &labels(), None)?;
        assert!(d.decode(&[0.0; 10], 1, 10).is_err());
        assert!(d.decode(&[0.0; 29], 2, 29).is_err());
        Ok(())
    }
}
