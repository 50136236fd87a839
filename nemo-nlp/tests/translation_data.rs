//! The translation data layer: typed ports, NeMo's cleaning on files, batches by token count
//! (property tests of the invariants), seeded epochs, and errors that name the files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use candle_core::Device;
use nemo_core::NeuralModule;
use nemo_core::dag::{DataLayer, Graph};
use nemo_nlp::data::{
    TranslationBatch, TranslationDataLayer, TranslationDataLayerConfig, TranslationDataset,
};
use nemo_nlp::tokenizer::{
    BOS_ID, EOS_ID, PAD_ID, TranslationTokenizers, TranslationTokenizersConfig,
};
use proptest::prelude::*;

use nemo_core::testing::TestResult;

fn text(lang: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/text/genesis.{lang}"))
}

static TOKENIZERS: LazyLock<TranslationTokenizers> = LazyLock::new(|| {
    TranslationTokenizersConfig {
        vocab_size: 1000,
        ..TranslationTokenizersConfig::default()
    }
    .train(&[text("en")], &[text("es")])
    .unwrap_or_else(|e| panic!("training failed: {e}"))
});

fn genesis_layer(tokens_in_batch: usize) -> nemo_nlp::Result<TranslationDataLayer> {
    let mut config = TranslationDataLayerConfig::new(text("en"), text("es"));
    config.tokens_in_batch = tokens_in_batch;
    TranslationDataLayer::new(config, &TOKENIZERS)
}

#[test]
fn ports_carry_the_declared_neural_types() -> TestResult {
    let layer = genesis_layer(2000)?;
    assert_eq!(
        layer.output_types().to_string(),
        "src_ids: (B, T) TokenIds, src_mask: (B, T) SourceMask, tgt_ids: (B, T) TokenIds, \
         tgt_mask: (B, T) TargetMask, labels: (B, T) TokenIds, sent_ids: (B) Index"
    );
    let batch = layer.epoch(0, &Device::Cpu).next().ok_or("no batch")??;
    let typed = layer.wrap_outputs(batch)?;
    let types = [
        typed.src_ids.neural_type().to_string(),
        typed.src_mask.neural_type().to_string(),
        typed.tgt_ids.neural_type().to_string(),
        typed.tgt_mask.neural_type().to_string(),
        typed.labels.neural_type().to_string(),
        typed.sent_ids.neural_type().to_string(),
    ];
    assert_eq!(
        types,
        [
            "(B, T) TokenIds",
            "(B, T) SourceMask",
            "(B, T) TokenIds",
            "(B, T) TargetMask",
            "(B, T) TokenIds",
            "(B) Index"
        ]
    );
    // A batch whose target ports disagree on their time axis is refused by the runtime check.
    let mut bad = layer.epoch(0, &Device::Cpu).next().ok_or("no batch")??;
    bad.labels = bad.labels.narrow(1, 0, 1)?;
    let e = layer.wrap_outputs(bad).err().ok_or("accepted")?.to_string();
    assert!(e.contains("labels") && e.contains("tgt_time"), "{e}");
    Ok(())
}

#[test]
fn the_layer_feeds_a_graph_and_names_a_batch_past_the_end() -> TestResult {
    let layer = Arc::new(genesis_layer(2000)?);
    let graph = Graph::new();
    let handles = layer.call(&graph)?;
    assert_eq!(
        handles.tgt_mask.neural_type().to_string(),
        "(B, T) TargetMask"
    );
    let n = DataLayer::num_batches(layer.as_ref());
    let named = layer.batch(3, n - 1)?;
    let mut ports: Vec<&str> = named.keys().map(String::as_str).collect();
    ports.sort_unstable();
    assert_eq!(
        ports,
        [
            "labels", "sent_ids", "src_ids", "src_mask", "tgt_ids", "tgt_mask"
        ]
    );
    let e = layer.batch(3, n).err().ok_or("no error")?.to_string();
    assert!(
        e.contains(&format!(
            "batch {n} of epoch 3 is past the layer's {n} batches"
        )),
        "{e}"
    );
    Ok(())
}

#[test]
fn batches_hold_the_tokenised_lines() -> TestResult {
    let layer = genesis_layer(1500)?;
    let en = nemo_nlp::text_file::read_lines(text("en"))?;
    let es = nemo_nlp::text_file::read_lines(text("es"))?;
    let mut seen = 0;
    for batch in layer.epoch(0, &Device::Cpu) {
        let batch = batch?;
        let src = batch.src_ids.to_vec2::<i64>()?;
        let tgt = batch.tgt_ids.to_vec2::<i64>()?;
        let lines = batch.sent_ids.to_vec1::<i64>()?;
        for ((s, t), line) in src.iter().zip(&tgt).zip(&lines) {
            let ids = |row: &[i64]| row.iter().map(|&x| x as u32).collect::<Vec<u32>>();
            let line = *line as usize;
            assert_eq!(TOKENIZERS.source().ids_to_text(&ids(s))?, en[line].trim());
            assert_eq!(TOKENIZERS.target().ids_to_text(&ids(t))?, es[line].trim());
            seen += 1;
        }
    }
    assert_eq!(seen, 200);
    Ok(())
}

/// Writes aligned source/target files into a temporary directory.
fn files(
    src: &[&str],
    tgt: &[&str],
) -> Result<(tempfile::TempDir, PathBuf, PathBuf), std::io::Error> {
    let dir = tempfile::tempdir()?;
    let (s, t) = (dir.path().join("x.en"), dir.path().join("x.es"));
    std::fs::write(&s, src.join("\n") + "\n")?;
    std::fs::write(&t, tgt.join("\n") + "\n")?;
    Ok((dir, s, t))
}

#[test]
fn cleaning_drops_and_counts_noisy_pairs_of_files() -> TestResult {
    let long = "and ".repeat(150);
    let (short_side, long_side) = ("the earth ".repeat(15), "la tierra ".repeat(30));
    let src = [
        "In the beginning God created the heaven and the earth.",
        "",                    // too short: an empty line
        long.as_str(),         // too long
        "Let there be light.", // copied to the target
        "And God said",        // ratio: three words against 13 tokens
        short_side.as_str(),   // 30 tokens against 60: length difference
        "And the evening and the morning were the first day.",
    ];
    let tgt = [
        "En el principio crió Dios los cielos y la tierra.",
        "Y",
        "y",
        "Let there be light.",
        "Y dijo Dios: Sea la luz: y fué la luz.",
        long_side.as_str(),
        "Y fué la tarde y la mañana un día.",
    ];
    let (_dir, s, t) = files(&src, &tgt)?;
    let mut config = TranslationDataLayerConfig::new(&s, &t);
    config.shuffle = false;
    let unclean = TranslationDataLayer::new(config.clone(), &TOKENIZERS)?;
    assert_eq!(unclean.len(), 7, "without `clean`, every pair is kept");
    config.clean = true;
    let layer = TranslationDataLayer::new(config, &TOKENIZERS)?;
    let summary = layer.summary();
    assert_eq!(
        (
            summary.pairs,
            summary.kept,
            summary.too_short,
            summary.too_long
        ),
        (7, 2, 1, 1)
    );
    assert_eq!(
        (
            summary.same_as_source,
            summary.length_difference,
            summary.length_ratio
        ),
        (1, 1, 1)
    );
    // The kept pairs keep their line numbers.
    let mut lines: Vec<i64> = Vec::new();
    for batch in layer.epoch(0, &Device::Cpu) {
        lines.extend(batch?.sent_ids.to_vec1::<i64>()?);
    }
    lines.sort_unstable();
    assert_eq!(lines, [0, 6]);
    Ok(())
}

#[test]
fn file_errors_name_the_files() -> TestResult {
    let (_dir, s, t) = files(&["a b c", "d e f"], &["x y z"])?;
    let e = TranslationDataLayer::new(TranslationDataLayerConfig::new(&s, &t), &TOKENIZERS)
        .err()
        .ok_or("no error")?
        .to_string();
    assert_eq!(
        e,
        format!(
            "{} and {}: 2 source lines but 1 target lines",
            s.display(),
            t.display()
        )
    );
    std::fs::write(&t, b"x y z\nbad \xff\n")?;
    let e = TranslationDataLayer::new(TranslationDataLayerConfig::new(&s, &t), &TOKENIZERS)
        .err()
        .ok_or("no error")?
        .to_string();
    assert_eq!(
        e,
        format!("{}:2: not UTF-8 at byte 5 of the line", t.display())
    );
    // Cleaning everything away is an error, with what was dropped.
    std::fs::write(&t, "a b c\nd e f\n")?;
    let mut config = TranslationDataLayerConfig::new(&s, &t);
    config.clean = true;
    let e = TranslationDataLayer::new(config, &TOKENIZERS)
        .err()
        .ok_or("no error")?
        .to_string();
    assert!(e.contains("no sentence pair to make batches of (0 of 2 sentence pairs kept; dropped 2 (0 too long, 0 too short, 2 source = target"), "{e}");
    Ok(())
}

/// Checks one epoch's batches against the dataset; returns the `sent_ids` seen.
fn check_epoch(
    layer: &TranslationDataLayer,
    pairs: &[(Vec<u32>, Vec<u32>)],
    epoch: u64,
) -> Result<Vec<i64>, TestCaseError> {
    let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
    let budget = layer.config().tokens_in_batch;
    let mut seen = Vec::new();
    for batch in layer.epoch(epoch, &Device::Cpu) {
        let TranslationBatch {
            src_ids,
            src_mask,
            tgt_ids,
            tgt_mask,
            labels,
            sent_ids,
        } = batch.map_err(|e| fail(&e))?;
        let v2 = |t: &candle_core::Tensor| t.to_dtype(candle_core::DType::I64)?.to_vec2::<i64>();
        let (src, smask) = (
            v2(&src_ids).map_err(|e| fail(&e))?,
            v2(&src_mask).map_err(|e| fail(&e))?,
        );
        let (tgt, tmask) = (
            v2(&tgt_ids).map_err(|e| fail(&e))?,
            v2(&tgt_mask).map_err(|e| fail(&e))?,
        );
        let labels = v2(&labels).map_err(|e| fail(&e))?;
        let lines = sent_ids.to_vec1::<i64>().map_err(|e| fail(&e))?;
        let (b, s) = src_ids.dims2().map_err(|e| fail(&e))?;
        let t = tgt_ids.dim(1).map_err(|e| fail(&e))?;
        // Padded tokens: B × (longest source + longest target), both with <BOS> and <EOS>.
        prop_assert!(
            b == 1 || b * (s + t + 1) <= budget,
            "{b} × ({s} + {t} + 1) > {budget}"
        );
        for i in 0..b {
            let (want_src, want_tgt) = &pairs[lines[i] as usize];
            let n = want_src.len() + 2;
            // Masks match lengths; ids are <BOS> text <EOS>, then padding.
            let expect_src: Vec<i64> = std::iter::once(BOS_ID)
                .chain(want_src.iter().copied())
                .chain([EOS_ID])
                .map(i64::from)
                .chain(std::iter::repeat_n(i64::from(PAD_ID), s - n))
                .collect();
            prop_assert_eq!(&src[i], &expect_src);
            prop_assert!(
                smask[i]
                    .iter()
                    .enumerate()
                    .all(|(j, &m)| m == i64::from(j < n))
            );
            let m = want_tgt.len() + 1;
            prop_assert!(
                tmask[i]
                    .iter()
                    .enumerate()
                    .all(|(j, &x)| x == i64::from(j < m))
            );
            for j in 0..t {
                if j < m {
                    let input = if j == 0 { BOS_ID } else { want_tgt[j - 1] };
                    let output = want_tgt.get(j).copied().unwrap_or(EOS_ID);
                    prop_assert_eq!(
                        (tgt[i][j], labels[i][j]),
                        (i64::from(input), i64::from(output))
                    );
                } else {
                    prop_assert_eq!(
                        (tgt[i][j], labels[i][j]),
                        (i64::from(PAD_ID), i64::from(PAD_ID))
                    );
                }
            }
        }
        seen.extend(lines);
    }
    Ok(seen)
}

fn pairs_strategy() -> impl Strategy<Value = Vec<(Vec<u32>, Vec<u32>)>> {
    let sentence = || prop::collection::vec(4u32..60, 0..40);
    prop::collection::vec((sentence(), sentence()), 1..80)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_pair_once_per_epoch_within_the_budget(
        pairs in pairs_strategy(),
        tokens_in_batch in 1usize..400,
        multiple in prop::sample::select(vec![1usize, 2, 8]),
        seed in any::<u64>(),
        clean in any::<bool>(),
    ) {
        let mut config = TranslationDataLayerConfig::new("unused.en", "unused.es");
        config.tokens_in_batch = tokens_in_batch;
        config.batch_size_multiple = multiple;
        config.seed = seed;
        config.clean = clean;
        let (src, tgt): (Vec<_>, Vec<_>) = pairs.iter().cloned().unzip();
        let dataset = match TranslationDataset::from_token_ids(src, tgt, &config) {
            Ok(d) => d,
            // Cleaning may leave nothing; then the error says so.
            Err(e) => {
                prop_assert!(clean && e.to_string().contains("no sentence pair"), "{e}");
                return Ok(());
            }
        };
        let rules = config.cleaning_rules();
        let kept: BTreeSet<i64> = pairs
            .iter()
            .enumerate()
            .filter(|(_, (s, t))| !clean || rules.check(s.len() + 2, t.len() + 2, s == t).is_none())
            .map(|(i, _)| i as i64)
            .collect();
        let layer = TranslationDataLayer::from_dataset(config.clone(), dataset);
        for epoch in 0..2 {
            let seen = check_epoch(&layer, &pairs, epoch)?;
            let unique: BTreeSet<i64> = seen.iter().copied().collect();
            prop_assert_eq!(seen.len(), unique.len(), "a pair was seen twice");
            prop_assert_eq!(&unique, &kept);
        }
        // The order of an epoch depends only on the seed and the epoch.
        let again = TranslationDataLayer::from_dataset(
            config.clone(),
            TranslationDataset::from_token_ids(
                pairs.iter().map(|p| p.0.clone()).collect(),
                pairs.iter().map(|p| p.1.clone()).collect(),
                &config,
            ).map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
        for epoch in 0..3 {
            prop_assert_eq!(layer.epoch_order(epoch), again.epoch_order(epoch));
            let mut order = layer.epoch_order(epoch);
            order.sort_unstable();
            prop_assert_eq!(order, (0..layer.num_batches()).collect::<Vec<_>>());
        }
    }
}

#[test]
fn epochs_are_shuffled_by_seed_and_not_without_shuffle() -> TestResult {
    let mut config = TranslationDataLayerConfig::new(text("en"), text("es"));
    config.tokens_in_batch = 600;
    let layer = TranslationDataLayer::new(config.clone(), &TOKENIZERS)?;
    let n = layer.num_batches();
    assert!(n > 10, "{n} batches");
    assert_ne!(layer.epoch_order(0), layer.epoch_order(1));
    config.seed = 1;
    let other = TranslationDataLayer::new(config.clone(), &TOKENIZERS)?;
    assert_ne!(layer.epoch_order(0), other.epoch_order(0));
    config.shuffle = false;
    let fixed = TranslationDataLayer::new(config, &TOKENIZERS)?;
    assert_eq!(fixed.epoch_order(5), (0..n).collect::<Vec<_>>());
    // In packing order, batches go from the shortest sources to the longest.
    let widths: Vec<usize> = fixed
        .epoch(0, &Device::Cpu)
        .map(|b| b.and_then(|b| Ok(b.src_ids.dim(1)?)))
        .collect::<nemo_nlp::Result<_>>()?;
    assert!(widths.first() < widths.last(), "{widths:?}");
    Ok(())
}
