//! The paper's Transformer NMT (§4.2.1), wired by hand through typed ports exactly as the paper
//! wires it, on the first verses of the committed Genesis fixture (English → Spanish):
//!
//! ```text
//! src, src_mask, tgt, tgt_mask, labels, sent_ids = train_data_layer()
//! src_hiddens = encoder(input_ids=src, input_mask_src=src_mask)
//! tgt_hiddens = decoder(input_ids_tgt=tgt, hidden_states_src=src_hiddens,
//!                       input_mask_src=src_mask, input_mask_tgt=tgt_mask)
//! log_softmax = log_softmax(hidden_states=tgt_hiddens)
//! train_loss  = loss(log_probs=log_softmax, target_ids=labels)
//! ```
//!
//! Each connection is checked when it is made (element types and axes at build, sizes when
//! the graph is wired); the graph trains briefly, then a `BeamSearchTranslatorNm` over the
//! trained decoder translates a few verses (eager calls on the same modules).
//!
//! Run: `cargo run --release --example nmt` (writes `runs/nmt/`, replaced on each run; about a
//! minute on 2 shared CPU cores after the build). For the real corpus and the CLI, see
//! `scripts/nmt_demo.sh`.

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device};
use nemo::core::dag::Graph;
use nemo::core::optim::{AdamW, AdamWConfig, LrPolicy, LrSchedule};
use nemo::core::train::TrainerConfig;
use nemo::nlp::data::{TranslationDataLayer, TranslationDataLayerConfig};
use nemo::nlp::losses::{
    PaddedSmoothedCrossEntropyLossNmConfig, PaddedSmoothedCrossEntropyLossNmInputs,
};
use nemo::nlp::modules::*;
use nemo::nlp::tokenizer::{PAD_ID, TranslationTokenizersConfig};

/// Verse pairs learned.
const PAIRS: usize = 32;

fn main() -> anyhow::Result<()> {
    let run_dir = Path::new("runs/nmt");
    if run_dir.exists() {
        std::fs::remove_dir_all(run_dir)?;
    }
    std::fs::create_dir_all(run_dir)?;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("nemo-nlp/tests/fixtures/text");
    let en = std::fs::read_to_string(fixture.join("genesis.en"))?;
    let es = std::fs::read_to_string(fixture.join("genesis.es"))?;
    let en: Vec<&str> = en.lines().take(PAIRS).collect();
    let es: Vec<&str> = es.lines().take(PAIRS).collect();
    let (src, tgt) = (run_dir.join("train.en"), run_dir.join("train.es"));
    std::fs::write(&src, en.join("\n") + "\n")?;
    std::fs::write(&tgt, es.join("\n") + "\n")?;

    // 1. One BPE vocabulary for both languages (trained on the whole fixture).
    let tokenizers = TranslationTokenizersConfig {
        vocab_size: 600,
        ..Default::default()
    }
    .train(&[fixture.join("genesis.en")], &[fixture.join("genesis.es")])?;
    let vocab = tokenizers.target().vocab_size();

    // 2. Modules. As the paper's script does, the decoder's token table and the output
    //    projection are the encoder's token table: one variable.
    let graph = Graph::new();
    let vb = graph.params().var_builder(DType::F32, &Device::Cpu);
    let layer_config = TranslationDataLayerConfig {
        tokens_in_batch: 1 << 20,
        clean: false,
        ..TranslationDataLayerConfig::new(&src, &tgt)
    };
    let train_data_layer = Arc::new(TranslationDataLayer::new(
        layer_config.clone(),
        &tokenizers,
    )?);
    let (d_model, d_inner, layers, heads) = (64, 128, 1, 4);
    let encoder = Arc::new(
        TransformerEncoderNmConfig::new(vocab, d_model, d_inner, layers, heads)
            .init(vb.pp("encoder"))?,
    );
    let table = encoder.embedding().token_embedding();
    let decoder = Arc::new(
        TransformerDecoderNmConfig::new(vocab, d_model, d_inner, layers, heads)
            .init_tied(table, vb.pp("decoder"))?,
    );
    let log_softmax = Arc::new(
        TransformerLogSoftmaxNmConfig::new(vocab, d_model)
            .init_tied(table, vb.pp("log_softmax"))?,
    );
    let loss = Arc::new(PaddedSmoothedCrossEntropyLossNmConfig::from(0.0).init()?);

    // 3. The paper's graph, on symbolic handles.
    let batch = train_data_layer.call(&graph)?;
    let src_hiddens = encoder.call(TransformerEncoderNmInputs {
        input_ids: &batch.src_ids,
        input_mask_src: &batch.src_mask,
    })?;
    let tgt_hiddens = decoder.call(TransformerDecoderNmInputs {
        input_ids_tgt: &batch.tgt_ids,
        hidden_states_src: &src_hiddens.hidden_states,
        input_mask_src: &batch.src_mask,
        input_mask_tgt: &batch.tgt_mask,
    })?;
    let log_probs = log_softmax.call(TransformerLogSoftmaxNmInputs {
        hidden_states: &tgt_hiddens.hidden_states,
    })?;
    let train_loss = loss.call(PaddedSmoothedCrossEntropyLossNmInputs {
        log_probs: &log_probs.log_probs,
        target_ids: &batch.labels,
    })?;
    println!("graph: {}", graph.node_names().join(" -> "));
    println!("log_probs: {}", log_probs.log_probs.neural_type());

    // 4. Train: AdamW, cosine schedule with warm-up.
    let mut config = TrainerConfig::new(200);
    config.log_every = 50;
    config.grad_clip = Some(1.0);
    let mut optimizer = AdamW::new(
        graph.params().trainable_vars(),
        AdamWConfig {
            betas: [0.9, 0.98],
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let summary = graph.train(nemo::core::dag::TrainAction {
        schedule: LrSchedule {
            warmup_steps: Some(15),
            min_lr: 1e-4,
            ..LrSchedule::new(LrPolicy::CosineAnnealing, 5e-3)
        },
        ..nemo::core::dag::TrainAction::new(
            train_loss.loss.clone(),
            &mut optimizer,
            5e-3,
            config,
            run_dir.join("run"),
        )
    })?;
    let last = summary.history.last().map_or(f64::NAN, |r| r.loss);
    println!("trained {} steps, last loss {last:.4}", summary.steps);

    // 5. Translate the first verses with beam search, eagerly through the same typed ports.
    let translator = BeamSearchTranslatorNmConfig::default().init(&decoder, &log_softmax)?;
    let eval_layer = TranslationDataLayer::new(
        TranslationDataLayerConfig {
            shuffle: false,
            tokens_in_batch: 600,
            ..layer_config
        },
        &tokenizers,
    )?;
    let first = eval_layer
        .epoch(0, &Device::Cpu)
        .next()
        .ok_or_else(|| anyhow::anyhow!("no batch"))??;
    let batch = eval_layer.wrap_outputs(first)?;
    let encoded = encoder.forward(TransformerEncoderNmInputs {
        input_ids: &batch.src_ids,
        input_mask_src: &batch.src_mask,
    })?;
    let out = translator.forward(BeamSearchTranslatorNmInputs {
        hidden_states_src: &encoded.hidden_states,
        input_mask_src: &batch.src_mask,
    })?;
    println!("output_ids: {}\n", out.output_ids.neural_type());
    let rows = out
        .output_ids
        .tensor()
        .to_dtype(DType::U32)?
        .to_vec2::<u32>()?;
    let lines = batch
        .sent_ids
        .tensor()
        .to_dtype(DType::U32)?
        .to_vec1::<u32>()?;
    for (ids, line) in rows.iter().zip(&lines).take(4) {
        let ids: Vec<u32> = ids.iter().copied().filter(|&t| t != PAD_ID).collect();
        let i = *line as usize; // 0-based line of the pair
        println!("en:  {}", en.get(i).unwrap_or(&""));
        println!("ref: {}", es.get(i).unwrap_or(&""));
        println!("hyp: {}\n", tokenizers.target().ids_to_text(&ids)?);
    }
    Ok(())
}
