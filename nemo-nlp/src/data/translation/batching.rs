//! Packing sentence pairs into batches by token count, as NeMo's `TranslationDataset`
//! (`pack_data_into_batches`, NeMo v0.11) does, so that a batch holds pairs of similar lengths
//! and little padding.
//!
//! Pairs are put in buckets by source length, each bucket sorted by target length (then by
//! position, for determinism), and the buckets visited from the shortest source up. The next pair
//! is the head of the current bucket, or the head of the next bucket when taking it instead makes
//! the batch's padded source + target width smaller (NeMo's look-ahead). A pair joins the batch
//! while
//!
//! ```text
//! (pairs in the batch + 1) · (longest source + longest target) ≤ tokens_in_batch
//! ```
//!
//! with lengths counting `<BOS>` and `<EOS>` on both sides (NeMo's measure). When the next pair
//! does not fit, the batch is closed at the largest multiple of `batch_size_multiple` (8 by
//! default, NeMo's; tensor cores like multiples of 8) and its other pairs start the next batch.
//! So every batch's padded token count is at most `tokens_in_batch`, except a batch of one pair
//! that alone exceeds it. (NeMo closes the batch *after* the pair that overflows it and keeps
//! it there in batches of fewer than 9 pairs, so its batches may exceed the budget; this one
//! never does.)

use std::collections::{BTreeMap, VecDeque};

/// Batches of indices into `lengths`, each pair `(source length, target length)` counting
/// `<BOS>` and `<EOS>`. Every index is in exactly one batch; no batch is empty. A
/// `batch_size_multiple` of 0 counts as 1.
#[doc(alias = "pack_data_into_batches")]
pub fn pack_into_batches(
    lengths: &[(usize, usize)],
    tokens_in_batch: usize,
    batch_size_multiple: usize,
) -> Vec<Vec<usize>> {
    let multiple = batch_size_multiple.max(1);
    let mut by_source: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, &(src, tgt)) in lengths.iter().enumerate() {
        by_source.entry(src).or_default().push((tgt, i));
    }
    let mut buckets: Vec<(usize, VecDeque<(usize, usize)>)> = by_source
        .into_iter()
        .map(|(src, mut pairs)| {
            pairs.sort_unstable();
            (src, VecDeque::from(pairs))
        })
        .collect();

    let mut batches = Vec::new();
    let mut batch: Vec<usize> = Vec::new();
    let (mut max_src, mut max_tgt) = (0, 0);
    let mut current = 0;
    loop {
        while buckets.get(current).is_some_and(|(_, q)| q.is_empty()) {
            current += 1;
        }
        let Some(pick) = choose(&buckets, current, max_src, max_tgt) else {
            break;
        };
        let Some((src, tgt)) = buckets
            .get(pick)
            .and_then(|(src, q)| q.front().map(|&(tgt, _)| (*src, tgt)))
        else {
            break;
        };
        let (new_src, new_tgt) = (max_src.max(src), max_tgt.max(tgt));
        if !batch.is_empty() && (batch.len() + 1) * (new_src + new_tgt) > tokens_in_batch {
            let keep = if batch.len() >= multiple {
                batch.len() / multiple * multiple
            } else {
                batch.len()
            };
            let carry = batch.split_off(keep);
            batches.push(std::mem::replace(&mut batch, carry));
            (max_src, max_tgt) = widest(&batch, lengths);
            continue;
        }
        if let Some((_, idx)) = buckets.get_mut(pick).and_then(|(_, q)| q.pop_front()) {
            batch.push(idx);
            (max_src, max_tgt) = (new_src, new_tgt);
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// The bucket the next pair comes from: `current`, or the next non-empty bucket if its head
/// widens the batch less; `None` when every bucket is empty.
fn choose(
    buckets: &[(usize, VecDeque<(usize, usize)>)],
    current: usize,
    max_src: usize,
    max_tgt: usize,
) -> Option<usize> {
    let width = |b: usize| {
        buckets.get(b).and_then(|(src, q)| {
            q.front()
                .map(|&(tgt, _)| max_src.max(*src) + max_tgt.max(tgt))
        })
    };
    let here = width(current)?;
    let next =
        (current + 1..buckets.len()).find(|&b| buckets.get(b).is_some_and(|(_, q)| !q.is_empty()));
    match next.and_then(|b| width(b).map(|w| (b, w))) {
        Some((b, there)) if there < here => Some(b),
        _ => Some(current),
    }
}

/// The longest source and target among `batch`.
fn widest(batch: &[usize], lengths: &[(usize, usize)]) -> (usize, usize) {
    batch
        .iter()
        .filter_map(|&i| lengths.get(i))
        .fold((0, 0), |(s, t), &(a, b)| (s.max(a), t.max(b)))
}

/// The padded token count of a batch: pairs × (longest source + longest target).
pub fn batch_tokens(batch: &[usize], lengths: &[(usize, usize)]) -> usize {
    let (src, tgt) = widest(batch, lengths);
    batch.len() * (src + tgt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_lengths_share_batches() {
        // Four short pairs and four long ones: two batches, no long pair with the short ones.
        let lengths = [
            (5, 5),
            (20, 21),
            (5, 6),
            (20, 20),
            (6, 5),
            (21, 20),
            (5, 5),
            (20, 20),
        ];
        let batches = pack_into_batches(&lengths, 4 * 42, 1);
        assert_eq!(batches, vec![vec![0, 6, 2, 4], vec![3, 7, 1, 5]]);
        for b in &batches {
            assert!(batch_tokens(b, &lengths) <= 4 * 42);
        }
    }

    #[test]
    fn the_look_ahead_takes_the_next_bucket_when_it_pads_less() {
        // Source 5 with target 30 vs source 6 with target 5: after (5, 5) the second pads less.
        let lengths = [(5, 5), (5, 30), (6, 5)];
        assert_eq!(pack_into_batches(&lengths, 1000, 1), vec![vec![0, 2, 1]]);
    }

    #[test]
    fn batches_are_cut_at_multiples_of_eight() {
        // Ten equal pairs of 10 tokens in a budget of 9 pairs: 8, then 2.
        let lengths = [(5, 5); 10];
        let batches = pack_into_batches(&lengths, 90, 8);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [8, 2]);
        // Without the rule: 9, then 1.
        let batches = pack_into_batches(&lengths, 90, 1);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [9, 1]);
    }

    #[test]
    fn a_pair_over_the_budget_is_a_batch_of_its_own() {
        let lengths = [(3, 3), (100, 100), (3, 4)];
        let batches = pack_into_batches(&lengths, 50, 8);
        assert_eq!(batches, vec![vec![0, 2], vec![1]]);
        assert!(pack_into_batches(&[], 50, 8).is_empty());
    }

    proptest::proptest! {
        /// Every index once; within the budget unless alone; in bucket order the batches are
        /// made deterministically.
        #[test]
        fn every_pair_once_and_within_the_budget(
            lengths in proptest::collection::vec((2usize..200, 2usize..200), 0..300),
            budget in 1usize..5000,
            multiple in 1usize..10,
        ) {
            let batches = pack_into_batches(&lengths, budget, multiple);
            let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
            seen.sort_unstable();
            proptest::prop_assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
            for b in &batches {
                proptest::prop_assert!(!b.is_empty());
                proptest::prop_assert!(b.len() == 1 || batch_tokens(b, &lengths) <= budget);
            }
            proptest::prop_assert_eq!(batches, pack_into_batches(&lengths, budget, multiple));
        }
    }
}
