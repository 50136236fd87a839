//! Every weight of the translation model learns: one backward of the label-smoothed loss reaches
//! every trainable variable with a non-zero, finite gradient (candle's fused LayerNorm and
//! softmax record no backward, so a module built on them would silently leave weights upstream
//! untouched; see NLP.md §4). Checked with a shared and with per-language vocabularies, pre-LN
//! and post-LN.

use std::path::{Path, PathBuf};

use candle_core::Device;
use nemo_core::ForwardCtx;
use nemo_core::testing::assert_all_vars_receive_gradients;
use nemo_nlp::data::TranslationDataLayer;
use nemo_nlp::models::{MtEncDecModel, MtEncDecModelConfig};
use nemo_nlp::train::TranslationDataConfig;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fixture(lang: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/text/genesis.{lang}"))
}

fn every_weight_gets_a_gradient(model_yaml: &str) -> TestResult {
    let config: MtEncDecModelConfig = serde_norway::from_str(model_yaml)?;
    let tokenizers = config.tokenizer.train(&[fixture("en")], &[fixture("es")])?;
    let model = MtEncDecModel::new(config, tokenizers, 3, &Device::Cpu)?;
    let data = TranslationDataConfig {
        tokens_in_batch: 600,
        ..TranslationDataConfig::default()
    };
    let layer = TranslationDataLayer::new(
        data.train_layer(&fixture("en"), &fixture("es"), 3),
        model.tokenizers(),
    )?;
    let batch = layer.epoch(0, &Device::Cpu).next().ok_or("no batch")??;
    // Training mode: dropout on, as in a training step.
    let loss = model.batch_loss(&batch, &ForwardCtx::train(7))?;
    assert!(model.params().trainable_vars().len() > 20);
    assert_all_vars_receive_gradients(&loss, model.params())?;
    Ok(())
}

#[test]
fn every_weight_of_a_shared_vocabulary_post_ln_model_gets_a_gradient() -> TestResult {
    every_weight_gets_a_gradient(
        r#"
tokenizer: {shared_tokenizer: true, vocab_size: 300}
encoder: {d_model: 16, d_inner: 32, num_layers: 2, num_attn_heads: 2, ffn_dropout: 0.1, attn_score_dropout: 0.1}
decoder: {d_model: 16, d_inner: 32, num_layers: 2, num_attn_heads: 2, embedding_dropout: 0.1}
loss: {label_smoothing: 0.1}
"#,
    )
}

#[test]
fn every_weight_of_a_two_vocabulary_pre_ln_model_gets_a_gradient() -> TestResult {
    every_weight_gets_a_gradient(
        r#"
tokenizer: {shared_tokenizer: false, vocab_size: 300}
encoder: {d_model: 16, d_inner: 32, num_layers: 1, num_attn_heads: 2, pre_ln: true}
decoder: {d_model: 16, d_inner: 32, num_layers: 1, num_attn_heads: 2, pre_ln: true}
"#,
    )
}
