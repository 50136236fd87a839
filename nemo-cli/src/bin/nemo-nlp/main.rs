//! `nemo-nlp`: train the paper's Transformer NMT on parallel text, translate with it, score it
//! with SacreBLEU-compatible BLEU, and average checkpoints.
//!
//! ```text
//! nemo-nlp train --config configs/nmt_bible.yaml --train-src train.en --train-tgt train.es \
//!     --val-src dev.en --val-tgt dev.es --out model/ [--minutes 20] [--resume]
//! nemo-nlp translate --model model/ [FILE...]          # stdin when no file; one line out per line in
//! nemo-nlp eval --model model/ --src test.en --ref test.es   # last line: BLEU: 12.34
//! nemo-nlp average --model model/ --last 5 --out averaged/
//! ```

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::Device;
use clap::{Parser, Subcommand};

use nemo_cli::{GlobalArgs, TrainArgs};
use nemo_core::train::{last_checkpoints, weights_file, write_average};
use nemo_host::ElementwisePool;
use nemo_nlp::data::TranslationDataLayer;
use nemo_nlp::metrics::Bleu;
use nemo_nlp::models::{MtEncDecModel, TRANSLATE_TOKENS_IN_BATCH, WEIGHTS_FILE};
use nemo_nlp::modules::BeamSearchTranslatorNmConfig;
use nemo_nlp::text_file::read_lines;
use nemo_nlp::tokenizer::TranslationTokenizers;
use nemo_nlp::train::{TranslationEvalSet, TranslationTrainTask, read_run_config};

#[derive(Parser)]
#[command(
    author,
    version,
    about = "Neural machine translation with typed neural modules (the paper's Transformer)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Trains a model and writes a self-contained model directory (config, tokenizer, weights).
    Train {
        #[command(flatten)]
        run: TrainArgs,
        /// Source side of the training text, one sentence a line.
        #[arg(long)]
        train_src: PathBuf,
        /// Target side of the training text, aligned line by line with `--train-src`.
        #[arg(long)]
        train_tgt: PathBuf,
        /// Source side of the validation text (loss and greedy BLEU during training).
        #[arg(long, requires = "val_tgt")]
        val_src: Option<PathBuf>,
        /// Target side of the validation text.
        #[arg(long, requires = "val_src")]
        val_tgt: Option<PathBuf>,
    },
    /// Translates the lines of files (or of stdin) to stdout, one line out per line in.
    Translate {
        #[command(flatten)]
        model: ModelArgs,
        /// Text files to translate in turn; stdin when none.
        files: Vec<PathBuf>,
    },
    /// Translates a source file and scores it against references; the last line is
    /// `BLEU: <score>`.
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        /// Source sentences, one a line.
        #[arg(long)]
        src: PathBuf,
        /// Reference translations, aligned with `--src` (repeat for several references).
        #[arg(long = "ref", required = true)]
        references: Vec<PathBuf>,
        /// Also writes the translations to this file.
        #[arg(long)]
        hyp_out: Option<PathBuf>,
    },
    /// Averages the weights of a run's newest checkpoints (or of the given ones) into a new
    /// model directory.
    Average {
        /// Model directory of the run (written by `train`; its checkpoints are in
        /// `<model>/run/checkpoints`).
        #[arg(long)]
        model: PathBuf,
        /// Averages the newest this many checkpoints of the run.
        #[arg(long, default_value_t = 5, conflicts_with = "checkpoints")]
        last: usize,
        /// Checkpoint directories or weights files to average instead.
        #[arg(long, num_args = 1..)]
        checkpoints: Vec<PathBuf>,
        /// The model directory to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// A model to translate with, and how to search.
#[derive(clap::Args)]
struct ModelArgs {
    /// Model directory written by `train` or `average`.
    #[arg(long)]
    model: PathBuf,
    /// Weights to use instead of the directory's (a checkpoint directory or safetensors file).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Beam size (1: greedy search); default: the model's `decoding.beam_size`.
    #[arg(long)]
    beam_size: Option<usize>,
    /// α of the length penalty; default: the model's `decoding.length_penalty`.
    #[arg(long)]
    len_pen: Option<f64>,
    /// Source tokens per batch (padded).
    #[arg(long, default_value_t = TRANSLATE_TOKENS_IN_BATCH)]
    tokens_in_batch: usize,
}

impl ModelArgs {
    fn load(&self, device: &Device) -> Result<(MtEncDecModel, BeamSearchTranslatorNmConfig)> {
        let model = match &self.weights {
            Some(w) => MtEncDecModel::load_weights(&self.model, &weights_file(w), device),
            None => MtEncDecModel::load(&self.model, device),
        }
        .with_context(|| format!("loading model from {}", self.model.display()))?;
        let mut decoding = model.config().decoding.clone();
        if let Some(b) = self.beam_size {
            decoding.beam_size = b;
        }
        if let Some(a) = self.len_pen {
            decoding.length_penalty = a;
        }
        decoding.validate().context("--beam-size/--len-pen")?;
        Ok((model, decoding))
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // SAFETY: parsing arguments starts no thread, and no candle op has run.
    let tuning = unsafe { nemo_host::tune_for_training(ElementwisePool::CandlePool) };
    nemo_cli::logging::init(cli.global.log.as_deref())?;
    tracing::info!("host tuning: {tuning}");
    let device = cli.global.device.open()?;
    match cli.command {
        Command::Train {
            run,
            train_src,
            train_tgt,
            val_src,
            val_tgt,
        } => {
            let val = val_src.zip(val_tgt);
            train(&run, &train_src, &train_tgt, val.as_ref(), &device)?;
        }
        Command::Translate { model, files } => {
            let (m, decoding) = model.load(&device)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let mut emit = |lines: &[String]| -> Result<()> {
                for line in m.translate_with(lines, &decoding, model.tokens_in_batch, |_| {})? {
                    writeln!(out, "{line}")?;
                }
                Ok(())
            };
            if files.is_empty() {
                let lines = std::io::stdin()
                    .lock()
                    .lines()
                    .collect::<std::io::Result<Vec<String>>>()
                    .context("reading stdin")?;
                emit(&lines)?;
            } else {
                for f in &files {
                    emit(&read_lines(f)?)?;
                }
            }
        }
        Command::Eval {
            model,
            src,
            references,
            hyp_out,
        } => {
            let (m, decoding) = model.load(&device)?;
            let sources = read_lines(&src)?;
            let refs = references
                .iter()
                .map(|r| {
                    let lines = read_lines(r)?;
                    if lines.len() != sources.len() {
                        bail!(
                            "{} has {} lines, {} has {}",
                            r.display(),
                            lines.len(),
                            src.display(),
                            sources.len()
                        );
                    }
                    Ok(lines)
                })
                .collect::<Result<Vec<_>>>()?;
            let started = std::time::Instant::now();
            let hyps = m.translate_with(&sources, &decoding, model.tokens_in_batch, |_| {})?;
            let secs = started.elapsed().as_secs_f64();
            if let Some(path) = &hyp_out {
                let text: String = hyps.iter().map(|h| format!("{h}\n")).collect();
                nemo_core::io::write_atomic(path, text.as_bytes())?;
            }
            let score = Bleu::default().corpus_score(&hyps, &refs)?;
            println!(
                "sentences: {} in {secs:.1} s (beam {})",
                hyps.len(),
                decoding.beam_size
            );
            println!("{}", score.format(2));
            println!("BLEU: {:.2}", score.score);
        }
        Command::Average {
            model,
            last,
            checkpoints,
            out,
        } => {
            let paths = if checkpoints.is_empty() {
                let root = model.join("run").join("checkpoints");
                let found = last_checkpoints(&root, last)?;
                if found.is_empty() {
                    bail!("no checkpoint in {}", root.display());
                }
                found
            } else {
                checkpoints
            };
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let weights = out.join(WEIGHTS_FILE);
            write_average(&paths, &weights)?;
            // Loading checks that the average fits the model; saving the config next to it
            // makes the directory self-contained.
            let averaged = MtEncDecModel::load_weights(&model, &weights, &device)
                .with_context(|| format!("loading the average with {}", model.display()))?;
            averaged.save_config(&out)?;
            for p in &paths {
                eprintln!("averaged {}", p.display());
            }
            eprintln!(
                "{} checkpoints averaged into {}",
                paths.len(),
                out.display()
            );
        }
    }
    Ok(())
}

/// Trains as the run config says and writes the model directory `run.out`.
fn train(
    run: &TrainArgs,
    train_src: &Path,
    train_tgt: &Path,
    val: Option<&(PathBuf, PathBuf)>,
    device: &Device,
) -> Result<()> {
    let cfg = read_run_config(&run.config)?;
    let seed = cfg.train.seed();
    let options = run.options(Vec::new());
    let tokenizers = match &cfg.train_ds.tokenizer_dir {
        Some(dir) => TranslationTokenizers::load(dir)
            .with_context(|| format!("train_ds.tokenizer_dir {}", dir.display()))?,
        None if options.resume => TranslationTokenizers::load(&options.out)
            .with_context(|| format!("--resume: the tokenizer of {}", options.out.display()))?,
        None => cfg.model.tokenizer.train(&[train_src], &[train_tgt])?,
    };
    let model = MtEncDecModel::new(cfg.model.clone(), tokenizers, seed, device)?;
    // The directory is usable (for `average`, `--weights`) while the run goes on.
    model.save_config(&options.out)?;
    eprintln!(
        "{}: {} weights",
        model.config().name,
        model.params().num_weights("")
    );
    let layer = TranslationDataLayer::new(
        cfg.train_ds.train_layer(train_src, train_tgt, seed),
        model.tokenizers(),
    )?;
    eprintln!("train: {} batches", layer.num_batches());
    let val = match val {
        Some((s, t)) => Some(TranslationEvalSet::new(
            &cfg.train_ds,
            s,
            t,
            model.tokenizers(),
        )?),
        None => None,
    };
    let mut task = TranslationTrainTask::new(
        &model,
        &layer,
        val.as_ref(),
        cfg.train.trainer.batches_per_step,
    )?;
    let summary = nemo_core::train::run(&mut task, &cfg.train, &options)?;
    model.save(&options.out)?;
    eprintln!("model written to {}", options.out.display());
    if let Some(b) = summary.last_eval.get("val_bleu") {
        println!("dev BLEU: {b:.2}");
    }
    Ok(())
}
