//! [`NgramLm`]: a word n-gram language model in the ARPA backoff format, for CTC beam search.
//!
//! NeMo decodes CTC models with a KenLM n-gram model (`beam_alpha` weighting its log-probability,
//! `beam_beta` per word). This reads and writes the same ARPA text files KenLM's `lmplz` does, and
//! estimates one from transcripts itself: interpolated Kneser–Ney (Chen & Goodman 1998) with one
//! discount per order, `D = n1 / (n1 + 2 n2)`, and the lower orders on continuation counts (the
//! number of distinct words seen before an n-gram; raw counts for n-grams starting with `<s>`).
//! An interpolated model is exactly a backoff model whose backoff weight for a context is the
//! interpolation weight `γ(h) = D · types(h) / count(h)`, so the estimate is written as ARPA
//! without approximation. The lowest order interpolates with the uniform distribution, so every
//! word (and `<unk>`) has a non-zero probability.
//!
//! Probabilities are log10 in the file and in [`NgramLm::log10_prob`], as in ARPA; the decoder
//! converts to natural logs.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use crate::{Error, Result};

/// Sentence start.
pub const BOS: &str = "<s>";
/// Sentence end.
pub const EOS: &str = "</s>";
/// Unknown word.
pub const UNK: &str = "<unk>";

/// log10 probability given to `<s>` as a predicted word (it never is), as ARPA files do.
const NEVER: f32 = -99.0;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    /// log10 probability.
    logp: f32,
    /// log10 backoff weight (0 when the n-gram is no context).
    bow: f32,
}

/// A word n-gram model with backoff; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct NgramLm {
    order: usize,
    words: Vec<String>,
    ids: HashMap<String, u32>,
    /// Order n at index n - 1: n-gram → entry.
    grams: Vec<HashMap<Box<[u32]>, Entry>>,
    bos: u32,
    eos: u32,
    unk: Option<u32>,
}

impl NgramLm {
    /// The model's order (3 for a trigram model).
    pub fn order(&self) -> usize {
        self.order
    }

    /// The number of words, `<s>`, `</s>` and `<unk>` included.
    pub fn vocab_size(&self) -> usize {
        self.words.len()
    }

    /// The words of the vocabulary (without `<s>`, `</s>`, `<unk>`).
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words
            .iter()
            .map(String::as_str)
            .filter(|w| ![BOS, EOS, UNK].contains(w))
    }

    /// The id of `word`; `<unk>`'s for a word outside the vocabulary (`None` if the model has
    /// no `<unk>` either).
    pub fn id(&self, word: &str) -> Option<u32> {
        self.ids.get(word).copied().or(self.unk)
    }

    /// Whether `word` is in the vocabulary.
    pub fn contains(&self, word: &str) -> bool {
        self.ids.contains_key(word)
    }

    /// The id of `<s>`: the history a sentence starts with.
    pub fn bos(&self) -> u32 {
        self.bos
    }

    /// The id of `</s>`.
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// log10 p(`word` | `history`), by backoff: the longest n-gram of the history's last words
    /// and `word` that the model has, times the backoff weights of the longer contexts it has not.
    pub fn log10_prob(&self, history: &[u32], word: u32) -> f32 {
        let h = &history[history.len().saturating_sub(self.order - 1)..];
        let mut backoff = 0.0;
        let mut key = Vec::with_capacity(h.len() + 1);
        for start in 0..=h.len() {
            let ctx = &h[start..];
            key.clear();
            key.extend_from_slice(ctx);
            key.push(word);
            if let Some(e) = self.grams[ctx.len()].get(key.as_slice()) {
                return backoff + e.logp;
            }
            if !ctx.is_empty()
                && let Some(e) = self.grams[ctx.len() - 1].get(ctx)
            {
                backoff += e.bow;
            }
        }
        backoff + NEVER
    }

    /// log10 probability of a whole sentence of words (`</s>` included).
    pub fn sentence_log10_prob(&self, sentence: &str) -> f32 {
        let mut history = vec![self.bos];
        let mut total = 0.0;
        for w in sentence.split_whitespace() {
            let id = self.id(w).unwrap_or(u32::MAX);
            total += self.log10_prob(&history, id);
            history.push(id);
        }
        total + self.log10_prob(&history, self.eos)
    }

    /// Estimates an interpolated Kneser–Ney model of `order` from sentences (one per item, words
    /// separated by whitespace; empty ones are skipped).
    pub fn estimate<'a>(
        sentences: impl IntoIterator<Item = &'a str>,
        order: usize,
    ) -> Result<Self> {
        if !(1..=6).contains(&order) {
            return Err(Error::Config {
                key: "order".into(),
                msg: format!("{order}: an n-gram order is 1 to 6"),
            });
        }
        let mut lm = NgramLm::with_specials(order);
        let mut raw: Vec<HashMap<Box<[u32]>, u64>> = vec![HashMap::new(); order];
        let mut sentences_seen = 0;
        for s in sentences {
            let mut ids = vec![lm.bos];
            ids.extend(s.split_whitespace().map(|w| lm.intern(w)));
            if ids.len() == 1 {
                continue;
            }
            sentences_seen += 1;
            ids.push(lm.eos);
            for n in 1..=order {
                for g in ids.windows(n) {
                    // `<s>` is only ever a context, never a predicted unigram.
                    if n == 1 && g[0] == lm.bos {
                        continue;
                    }
                    *raw[n - 1].entry(g.into()).or_insert(0) += 1;
                }
            }
        }
        if sentences_seen == 0 {
            return Err(Error::Config {
                key: "text".into(),
                msg: "no words to estimate a language model from".into(),
            });
        }
        // Adjusted counts: raw at the top order and for n-grams starting with <s>, otherwise the
        // number of distinct words seen before the n-gram.
        let mut adjusted: Vec<HashMap<Box<[u32]>, u64>> = vec![HashMap::new(); order];
        adjusted[order - 1] = raw[order - 1].clone();
        for n in 1..order {
            for (g, &c) in &raw[n - 1] {
                if g[0] == lm.bos {
                    adjusted[n - 1].insert(g.clone(), c);
                }
            }
            for g in raw[n].keys() {
                let tail: Box<[u32]> = g[1..].into();
                if tail[0] != lm.bos {
                    *adjusted[n - 1].entry(tail).or_insert(0) += 1;
                }
            }
        }
        // Every vocabulary word is a unigram (those never seen get the uniform share).
        let predictable: Vec<u32> = (0..lm.words.len() as u32)
            .filter(|&w| w != lm.bos)
            .collect();
        let uniform = 1.0 / predictable.len() as f64;
        let mut probs: Vec<HashMap<Box<[u32]>, f64>> = vec![HashMap::new(); order];
        let mut gammas: Vec<HashMap<Box<[u32]>, f64>> = vec![HashMap::new(); order];
        for n in 1..=order {
            let counts = &adjusted[n - 1];
            let d = discount(counts.values());
            // Per context: total adjusted count and number of word types.
            let mut ctx: HashMap<&[u32], (u64, u64)> = HashMap::new();
            for (g, &c) in counts {
                let e = ctx.entry(&g[..n - 1]).or_insert((0, 0));
                e.0 += c;
                e.1 += 1;
            }
            for (h, &(total, types)) in &ctx {
                gammas[n - 1].insert((*h).into(), d * types as f64 / total as f64);
            }
            let lower = |g: &[u32]| -> f64 {
                if n == 1 {
                    uniform
                } else {
                    probs[n - 2].get(&g[1..]).copied().unwrap_or(0.0)
                }
            };
            let mut level = HashMap::with_capacity(counts.len());
            for (g, &c) in counts {
                let (total, _) = ctx[&g[..n - 1]];
                let gamma = gammas[n - 1][&g[..n - 1]];
                let p = (c as f64 - d).max(0.0) / total as f64 + gamma * lower(g);
                level.insert(g.clone(), p);
            }
            if n == 1 {
                let gamma = gammas[0].get(&[][..]).copied().unwrap_or(1.0);
                for &w in &predictable {
                    level.entry([w].into()).or_insert(gamma * uniform);
                }
            }
            probs[n - 1] = level;
        }
        for n in 1..=order {
            let mut level = HashMap::with_capacity(probs[n - 1].len() + 1);
            for (g, &p) in &probs[n - 1] {
                let bow = if n < order {
                    gammas[n].get(g).map_or(0.0, |&gm| gm.log10() as f32)
                } else {
                    0.0
                };
                level.insert(
                    g.clone(),
                    Entry {
                        logp: p.log10() as f32,
                        bow,
                    },
                );
            }
            if n == 1 {
                let bow = if order > 1 {
                    gammas[1]
                        .get(&[lm.bos][..])
                        .map_or(0.0, |&gm| gm.log10() as f32)
                } else {
                    0.0
                };
                level.insert([lm.bos].into(), Entry { logp: NEVER, bow });
            }
            lm.grams[n - 1] = level;
        }
        Ok(lm)
    }

    /// Reads an ARPA file (KenLM's, SRILM's or [`NgramLm::write_arpa`]'s).
    pub fn read_arpa(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        Self::parse_arpa(&text, path)
    }

    /// Parses ARPA text; errors name `path` and the line.
    pub fn parse_arpa(text: &str, path: &Path) -> Result<Self> {
        let bad = |line: usize, msg: String| Error::LanguageModel {
            path: path.into(),
            line,
            msg,
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
        // Header: `\data\` then `ngram N=count` lines.
        let mut declared: BTreeMap<usize, usize> = BTreeMap::new();
        let mut in_data = false;
        let mut section = None;
        for (no, line) in lines.by_ref() {
            if line == "\\data\\" {
                in_data = true;
            } else if in_data && line.starts_with("ngram ") {
                let (n, c) = line[6..]
                    .split_once('=')
                    .and_then(|(n, c)| Some((n.trim().parse().ok()?, c.trim().parse().ok()?)))
                    .ok_or_else(|| bad(no, format!("`{line}`: expected `ngram N=count`")))?;
                declared.insert(n, c);
            } else if in_data && line.starts_with('\\') {
                section = Some((no, line));
                break;
            }
        }
        if !in_data {
            return Err(bad(0, "no `\\data\\` header: not an ARPA file".into()));
        }
        let order = declared.keys().copied().max().unwrap_or(0);
        if order == 0 || declared.keys().copied().ne(1..=order) {
            return Err(bad(
                0,
                format!(
                    "the header declares orders {:?}; expected 1..=N",
                    declared.keys()
                ),
            ));
        }
        let mut lm = NgramLm::empty(order);
        let mut current = 0usize;
        let mut pending = section;
        loop {
            let (no, line) = match pending.take() {
                Some(x) => x,
                None => match lines.next() {
                    Some(x) => x,
                    None => return Err(bad(0, "missing `\\end\\`".into())),
                },
            };
            if line.is_empty() {
                continue;
            }
            if line == "\\end\\" {
                break;
            }
            if let Some(rest) = line.strip_prefix('\\') {
                current = rest
                    .strip_suffix("-grams:")
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=order).contains(n))
                    .ok_or_else(|| {
                        bad(
                            no,
                            format!("`{line}`: expected `\\N-grams:` with N in 1..={order}"),
                        )
                    })?;
                continue;
            }
            if current == 0 {
                return Err(bad(no, format!("`{line}` before any `\\N-grams:` section")));
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() != current + 1 && fields.len() != current + 2 {
                return Err(bad(
                    no,
                    format!(
                        "a {current}-gram line has a log10 prob, {current} words and an optional backoff; found `{line}`"
                    ),
                ));
            }
            let num = |s: &str| {
                s.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| bad(no, format!("`{s}` is not a number")))
            };
            let logp = num(fields[0])?;
            let bow = fields
                .get(current + 1)
                .map(|s| num(s))
                .transpose()?
                .unwrap_or(0.0);
            let mut key = Vec::with_capacity(current);
            for w in &fields[1..=current] {
                if current == 1 {
                    key.push(lm.intern(w));
                } else {
                    key.push(
                        *lm.ids.get(*w).ok_or_else(|| {
                            bad(no, format!("word `{w}` is not among the 1-grams"))
                        })?,
                    );
                }
            }
            lm.grams[current - 1].insert(key.into(), Entry { logp, bow });
        }
        for (n, &count) in &declared {
            let found = lm.grams[n - 1].len();
            if found != count {
                return Err(bad(
                    0,
                    format!("the header declares {count} {n}-grams; the file has {found}"),
                ));
            }
        }
        lm.bos = *lm
            .ids
            .get(BOS)
            .ok_or_else(|| bad(0, format!("no `{BOS}` 1-gram")))?;
        lm.eos = *lm
            .ids
            .get(EOS)
            .ok_or_else(|| bad(0, format!("no `{EOS}` 1-gram")))?;
        lm.unk = lm.ids.get(UNK).copied();
        Ok(lm)
    }

    /// The model as ARPA text, n-grams sorted by their words.
    pub fn to_arpa(&self) -> String {
        let mut out = String::from("\\data\\\n");
        for (n, level) in self.grams.iter().enumerate() {
            let _ = writeln!(out, "ngram {}={}", n + 1, level.len());
        }
        for (n, level) in self.grams.iter().enumerate() {
            let _ = write!(out, "\n\\{}-grams:\n", n + 1);
            let mut rows: Vec<(Vec<&str>, &Entry)> = level
                .iter()
                .map(|(g, e)| {
                    (
                        g.iter().map(|&w| self.words[w as usize].as_str()).collect(),
                        e,
                    )
                })
                .collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            for (words, e) in rows {
                let _ = write!(out, "{:.7}\t{}", e.logp, words.join(" "));
                if n + 1 < self.order && e.bow != 0.0 {
                    let _ = write!(out, "\t{:.7}", e.bow);
                }
                out.push('\n');
            }
        }
        out.push_str("\n\\end\\\n");
        out
    }

    /// Writes the model as an ARPA file, atomically.
    pub fn write_arpa(&self, path: &Path) -> Result<()> {
        Ok(nemo_core::io::write_atomic(
            path,
            self.to_arpa().as_bytes(),
        )?)
    }

    fn empty(order: usize) -> Self {
        NgramLm {
            order,
            words: Vec::new(),
            ids: HashMap::new(),
            grams: vec![HashMap::new(); order],
            bos: 0,
            eos: 0,
            unk: None,
        }
    }

    fn with_specials(order: usize) -> Self {
        let mut lm = NgramLm::empty(order);
        lm.bos = lm.intern(BOS);
        lm.eos = lm.intern(EOS);
        lm.unk = Some(lm.intern(UNK));
        lm
    }

    fn intern(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.ids.get(word) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(word.to_string());
        self.ids.insert(word.to_string(), id);
        id
    }
}

/// Ney's discount `n1 / (n1 + 2 n2)` from the counts of one order, kept inside (0.1, 0.9) when
/// the counts are too few to estimate it (tiny corpora).
fn discount<'a>(counts: impl Iterator<Item = &'a u64>) -> f64 {
    let (mut n1, mut n2) = (0u64, 0u64);
    for &c in counts {
        match c {
            1 => n1 += 1,
            2 => n2 += 1,
            _ => {}
        }
    }
    if n1 == 0 {
        return 0.5;
    }
    (n1 as f64 / (n1 + 2 * n2) as f64).clamp(0.1, 0.9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn total_prob(lm: &NgramLm, history: &[u32]) -> f64 {
        (0..lm.vocab_size() as u32)
            .filter(|&w| w != lm.bos())
            .map(|w| 10f64.powf(f64::from(lm.log10_prob(history, w))))
            .sum()
    }

    #[test]
    fn unigram_model_by_hand() -> Result<()> {
        // Counts a:2 b:1 </s>:2 (<unk> 0); n1 = 1, n2 = 2 → D = 1/5; total 5, 3 types,
        // γ = 0.2 * 3 / 5 = 0.12; uniform over {</s>, <unk>, a, b} = 1/4.
        let lm = NgramLm::estimate(["a b", "a"], 1)?;
        let p = |w: &str| 10f64.powf(f64::from(lm.log10_prob(&[], lm.id(w).unwrap_or(0))));
        assert!((p("a") - (1.8 / 5.0 + 0.03)).abs() < 1e-6, "{}", p("a"));
        assert!((p("b") - (0.8 / 5.0 + 0.03)).abs() < 1e-6);
        assert!((p(UNK) - 0.03).abs() < 1e-6);
        assert!((p("zebra") - 0.03).abs() < 1e-6, "unknown words are <unk>");
        assert!((total_prob(&lm, &[]) - 1.0).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn bigram_prefers_what_followed() -> Result<()> {
        let lm = NgramLm::estimate(["the cat sat", "the cat ran", "a dog sat"], 2)?;
        let id = |w: &str| lm.id(w).unwrap_or(0);
        assert!(lm.log10_prob(&[id("the")], id("cat")) > lm.log10_prob(&[id("the")], id("dog")));
        assert!(lm.sentence_log10_prob("the cat sat") > lm.sentence_log10_prob("sat cat the"));
        Ok(())
    }

    #[test]
    fn arpa_errors_name_the_line() {
        let path = Path::new("lm.arpa");
        let text = "\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\t<s>\n-x\t</s>\n\\end\\\n";
        let err = NgramLm::parse_arpa(text, path).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("lm.arpa:6: `-x` is not a number"));
        let text = "\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\t<s>\n-1\t</s>\n\\end\\\n";
        let err = NgramLm::parse_arpa(text, path).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("lm.arpa:0: the header declares 3 1-grams; the file has 2")
        );
        let err = NgramLm::parse_arpa("hello\n", path)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("not an ARPA file")));
    }

    fn corpus() -> impl Strategy<Value = Vec<String>> {
        let word = prop::sample::select(vec!["a", "b", "c", "d", "e"]);
        let sentence = prop::collection::vec(word, 1..6).prop_map(|w| w.join(" "));
        prop::collection::vec(sentence, 1..12)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// p(· | h) sums to one for every history, seen or not, at every order; and the ARPA
        /// text reads back to the same probabilities.
        #[test]
        fn distributions_sum_to_one_and_survive_arpa(sentences in corpus(), order in 1usize..5,
                                                     history in prop::collection::vec(0u32..8, 0..4)) {
            let lm = NgramLm::estimate(sentences.iter().map(String::as_str), order)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let v = lm.vocab_size() as u32;
            let history: Vec<u32> = history.into_iter().map(|w| w % v).collect();
            let mut contexts = vec![history, vec![lm.bos()]];
            for s in &sentences {
                let ids: Vec<u32> = s.split_whitespace().filter_map(|w| lm.id(w)).collect();
                contexts.push(ids.clone());
                contexts.push([vec![lm.bos()], ids].concat());
            }
            for h in &contexts {
                let t = total_prob(&lm, h);
                prop_assert!((t - 1.0).abs() < 1e-4, "history {h:?}: total {t}");
            }
            let back = NgramLm::parse_arpa(&lm.to_arpa(), Path::new("x.arpa"))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for s in &sentences {
                let (a, b) = (lm.sentence_log10_prob(s), back.sentence_log10_prob(s));
                prop_assert!((a - b).abs() < 1e-4, "{s}: {a} vs {b}");
            }
        }
    }
}
