//! A tiny Transformer learns a few dozen verse pairs of the committed Genesis fixture by heart:
//! the whole pipeline (tokenizer, data layer, typed modules, token-normalised loss, the core
//! runner, search over the decoder's cache, detokenisation, BLEU) has to work for corpus BLEU
//! on its own training pairs to pass 90.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use nemo_core::train::{RunOptions, TrainSection};
use nemo_nlp::data::TranslationDataLayer;
use nemo_nlp::metrics::Bleu;
use nemo_nlp::models::{MtEncDecModel, MtEncDecModelConfig};
use nemo_nlp::text_file::read_lines;
use nemo_nlp::tokenizer::TranslationTokenizersConfig;
use nemo_nlp::train::{TranslationDataConfig, TranslationTrainTask};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fixture(lang: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/text/genesis.{lang}"))
}

const PAIRS: usize = 32;

const MODEL: &str = r#"
name: TinyGenesis
tokenizer: {shared_tokenizer: true, vocab_size: 600}
encoder: {d_model: 64, d_inner: 128, num_layers: 1, num_attn_heads: 4, max_seq_length: 160}
decoder: {d_model: 64, d_inner: 128, num_layers: 1, num_attn_heads: 4, max_seq_length: 160}
loss: {label_smoothing: 0.0}
decoding: {beam_size: 2, max_delta_length: 20}
"#;

const TRAIN: &str = r#"
trainer: {seed: 5, max_steps: 150, log_every: 50, progress: false, plot: false, grad_clip: 1.0}
optim: {name: adamw, betas: [0.9, 0.98], weight_decay: 0.0}
sched: {name: CosineAnnealing, lr: 0.005, warmup_steps: 15, min_lr: 0.0001}
"#;

#[test]
fn a_tiny_model_learns_a_few_dozen_verse_pairs_by_heart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (src, tgt) = (dir.path().join("train.en"), dir.path().join("train.es"));
    let en = read_lines(fixture("en"))?;
    let es = read_lines(fixture("es"))?;
    let (en, es) = (&en[..PAIRS], &es[..PAIRS]);
    std::fs::write(&src, en.join("\n") + "\n")?;
    std::fs::write(&tgt, es.join("\n") + "\n")?;

    let config: MtEncDecModelConfig = serde_norway::from_str(MODEL)?;
    let tokenizers = TranslationTokenizersConfig {
        vocab_size: 600,
        ..config.tokenizer.clone()
    }
    .train(&[fixture("en")], &[fixture("es")])?;
    let model = MtEncDecModel::new(config, tokenizers, 5, &Device::Cpu)?;
    let data = TranslationDataConfig {
        tokens_in_batch: 1 << 20,
        clean: false,
        ..TranslationDataConfig::default()
    };
    let layer = TranslationDataLayer::new(data.train_layer(&src, &tgt, 5), model.tokenizers())?;
    assert_eq!(layer.num_batches(), 1);
    let train: TrainSection = serde_norway::from_str(TRAIN)?;
    let mut task = TranslationTrainTask::new(&model, &layer, None, 1)?;
    let started = Instant::now();
    let summary = nemo_core::train::run(
        &mut task,
        &train,
        &RunOptions::new(dir.path().join("model")),
    )?;
    let trained = started.elapsed();

    let started = Instant::now();
    let greedy = model.translate_with(en, &model.config().decoding.greedy(), 1 << 16, |_| {})?;
    let beam = model.translate(en)?;
    let decoded = started.elapsed();
    let bleu = |hyps: &[String]| Bleu::default().corpus_score(hyps, &[es]);
    let (g, b) = (bleu(&greedy)?, bleu(&beam)?);
    eprintln!(
        "{PAIRS} pairs, {} steps in {trained:.1?}, last loss {:?}; decoding {decoded:.1?}\n\
         greedy {}\nbeam   {}\n{:?}\n{:?}",
        summary.steps,
        summary.history.last().map(|r| r.loss),
        g.format(2),
        b.format(2),
        greedy.first(),
        es.first()
    );
    assert!(g.score > 90.0, "greedy: {}", g.format(2));
    assert!(b.score > 90.0, "beam: {}", b.format(2));
    Ok(())
}
