//! One training step (and its forward, and forward + backward) of the NMT model of `configs/nmt_bible.yaml` (teacher-forced forward,
//! label-smoothed loss, backward, gradient clipping, AdamW update) on a batch of 64 sentence
//! pairs of varied lengths (4128 source + target tokens, about the config's `tokens_in_batch`),
//! with the vocabulary at the config's 8192 tokens.
//!
//! Run: `cargo bench -p nemo-nlp --bench nmt_train_step`; the PyTorch twin of the same model,
//! shapes, lengths and optimizer: `/usr/bin/python3 scripts/nmt_twin/bench_train_step.py
//! [OURS_MS]` (prints its time, the tokens/s of both and the throughput ratio). The process is
//! tuned as the `nemo-nlp` binary tunes it (crate `nemo-host`).

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{Criterion, criterion_group};
use nemo_core::ForwardCtx;
use nemo_core::optim::{AdamWConfig, Optimizer, OptimizerConfig, clip_grad_norm};
use nemo_core::train::RunConfig;
use nemo_nlp::data::TranslationBatch;
use nemo_nlp::models::{MtEncDecModel, MtEncDecModelConfig};
use nemo_nlp::train::TranslationDataConfig;
use rand::Rng;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Sentence pairs in the batch; their lengths are the twin's formula.
const BATCH: usize = 64;

fn src_len(i: usize) -> usize {
    20 + (i * 7) % 24
}

fn tgt_len(i: usize) -> usize {
    22 + (i * 5) % 24
}

/// Text whose BPE vocabulary reaches `vocab_size` (thousands of distinct random words), so the
/// model has the config's vocabulary size without the corpus.
fn write_corpus(path: &Path) -> BenchResult<()> {
    let mut rng = nemo_core::testing::seeded_rng(3);
    let words: Vec<String> = (0..6000)
        .map(|_| {
            let n = rng.random_range(3..9);
            (0..n)
                .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                .collect()
        })
        .collect();
    let lines: Vec<String> = (0..20000)
        .map(|_| {
            let line: Vec<&str> = (0..12)
                .map(|_| words[rng.random_range(0..words.len())].as_str())
                .collect();
            line.join(" ")
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n")?;
    Ok(())
}

/// A `(B, width)` batch of random ids padded after `lens`, and its mask.
fn padded(lens: &[usize], vocab: usize, seed: u64) -> BenchResult<(Tensor, Tensor)> {
    let width = lens.iter().copied().max().unwrap_or(0);
    let mut rng = nemo_core::testing::seeded_rng(seed);
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for &n in lens {
        for j in 0..width {
            let valid = j < n;
            ids.push(if valid {
                rng.random_range(4..vocab as i64)
            } else {
                0
            });
            mask.push(u8::from(valid));
        }
    }
    let shape = (lens.len(), width);
    Ok((
        Tensor::from_vec(ids, shape, &Device::Cpu)?,
        Tensor::from_vec(mask, shape, &Device::Cpu)?,
    ))
}

struct Setup {
    model: MtEncDecModel,
    batch: TranslationBatch,
    optimizer: Box<dyn Optimizer>,
}

impl Setup {
    fn new() -> BenchResult<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let run: RunConfig<MtEncDecModelConfig, TranslationDataConfig> =
            RunConfig::from_yaml_file(&root.join("configs/nmt_bible.yaml"))?;
        let dir = tempfile::tempdir()?;
        let corpus = dir.path().join("corpus.txt");
        write_corpus(&corpus)?;
        let tokenizers = run.model.tokenizer.train(&[&corpus], &[&corpus])?;
        let model = MtEncDecModel::new(run.model, tokenizers, 1, &Device::Cpu)?;
        let vocab = model.config().decoder.vocab_size;
        let src_lens: Vec<usize> = (0..BATCH).map(src_len).collect();
        let tgt_lens: Vec<usize> = (0..BATCH).map(tgt_len).collect();
        let (src_ids, src_mask) = padded(&src_lens, vocab, 1)?;
        let (tgt_ids, tgt_mask) = padded(&tgt_lens, vocab, 2)?;
        let (labels, _) = padded(&tgt_lens, vocab, 3)?;
        let sent_ids = Tensor::arange(0i64, BATCH as i64, &Device::Cpu)?;
        let batch = TranslationBatch {
            src_ids,
            src_mask,
            tgt_ids,
            tgt_mask,
            labels,
            sent_ids,
        };
        let adamw = AdamWConfig {
            betas: [0.9, 0.98],
            weight_decay: 0.0,
            ..AdamWConfig::default()
        };
        let optimizer = OptimizerConfig::from(adamw).build(model.params().trainable_vars())?;
        eprintln!(
            "vocabulary {vocab}, {} weights, {} tokens (source + target)",
            model.params().num_weights(""),
            src_lens.iter().sum::<usize>() + tgt_lens.iter().sum::<usize>()
        );
        Ok(Setup {
            model,
            batch,
            optimizer,
        })
    }

    fn loss(&self, step: u64) -> BenchResult<Tensor> {
        Ok(self
            .model
            .batch_loss(&self.batch, &ForwardCtx::train(step))?)
    }

    fn train_step(&mut self, step: u64) -> BenchResult<f32> {
        let loss = self
            .model
            .batch_loss(&self.batch, &ForwardCtx::train(step))?;
        let mut grads = loss.backward()?;
        let vars = self.model.params().trainable_vars();
        clip_grad_norm(&mut grads, &vars, 1.0, &|_| false)?;
        self.optimizer.step(&grads, 1e-4, &|_| false)?;
        Ok(loss.to_scalar::<f32>()?)
    }
}

fn bench(c: &mut Criterion) {
    let mut setup = match Setup::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("setup failed: {e}");
            return;
        }
    };
    let mut g = c.benchmark_group("nmt_bible_b64");
    g.sample_size(10);
    g.bench_function("forward_loss", |b| {
        b.iter(|| black_box(setup.loss(0).map_err(|e| e.to_string())))
    });
    g.bench_function("forward_backward", |b| {
        b.iter(|| {
            let grads = setup.loss(0).and_then(|l| Ok(l.backward()?));
            black_box(grads.map_err(|e| e.to_string()))
        })
    });
    let mut step = 0;
    g.bench_function("train_step", |b| {
        b.iter(|| {
            step += 1;
            black_box(setup.train_step(step).map_err(|e| e.to_string()))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(30)).warm_up_time(Duration::from_secs(5));
    targets = bench
}

fn main() {
    // SAFETY: first thing in `main`, before criterion or candle start any thread.
    let tuning = unsafe { nemo_host::tune_for_training(nemo_host::ElementwisePool::CandlePool) };
    eprintln!("host tuning: {tuning}");
    benches();
    Criterion::default().configure_from_args().final_summary();
}
