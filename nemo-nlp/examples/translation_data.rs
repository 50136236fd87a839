//! The data side of the translation recipe on the Bible corpus, end to end without a model:
//! train a shared BPE tokenizer on the training split, save it into a model directory, build the
//! cleaned training layer and the (uncleaned) dev layer, then put the dev batches' target
//! sentences back in file order by `sent_ids`, detokenise them and score them with BLEU against
//! the dev references: 100 shows that tokenisation, batching and detokenisation lose nothing.
//!
//! ```text
//! scripts/make_bible_corpus.sh            # corpus/bible/{train,dev,test}.{en,es}
//! cargo run -p nemo-nlp --example translation_data -- corpus/bible runs/bible-tokenizer
//! ```

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use nemo_nlp::data::{TranslationDataLayer, TranslationDataLayerConfig};
use nemo_nlp::metrics::Bleu;
use nemo_nlp::text_file::read_lines;
use nemo_nlp::tokenizer::{TranslationTokenizers, TranslationTokenizersConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let corpus = PathBuf::from(args.next().unwrap_or_else(|| "corpus/bible".into()));
    let model_dir = PathBuf::from(args.next().unwrap_or_else(|| "runs/bible-tokenizer".into()));
    let split = |name: &str, lang: &str| corpus.join(format!("{name}.{lang}"));

    let start = Instant::now();
    let tokenizers = TranslationTokenizersConfig::default()
        .train(&[split("train", "en")], &[split("train", "es")])?;
    tokenizers.save(&model_dir)?;
    let tokenizers = TranslationTokenizers::load(&model_dir)?;
    println!(
        "shared BPE tokenizer, {} tokens, trained in {:.1} s, saved to {}",
        tokenizers.source().vocab_size(),
        start.elapsed().as_secs_f64(),
        model_dir.display()
    );

    let mut config = TranslationDataLayerConfig::new(split("train", "en"), split("train", "es"));
    config.tokens_in_batch = 8192;
    config.clean = true;
    let start = Instant::now();
    let train = TranslationDataLayer::new(config, &tokenizers)?;
    println!(
        "train: {}; {} batches of at most 8192 tokens ({:.1} s)",
        train.summary(),
        train.num_batches(),
        start.elapsed().as_secs_f64()
    );

    let dev_config = TranslationDataLayerConfig::new(split("dev", "en"), split("dev", "es"));
    let dev = TranslationDataLayer::new(dev_config, &tokenizers)?;
    let references = read_lines(split("dev", "es"))?;
    let mut restored = vec![String::new(); references.len()];
    for batch in dev.epoch(0, &Device::Cpu) {
        let batch = batch?;
        let rows = batch.labels.to_vec2::<i64>()?;
        for (row, line) in rows.iter().zip(batch.sent_ids.to_vec1::<i64>()?) {
            let ids: Vec<u32> = row.iter().map(|&id| id as u32).collect();
            if let Some(slot) = restored.get_mut(line as usize) {
                *slot = tokenizers.target().ids_to_text(&ids)?;
            }
        }
    }
    let score = Bleu::default().corpus_score(&restored, &[&references])?;
    println!("dev targets through batches and back: {score}");
    Ok(())
}
