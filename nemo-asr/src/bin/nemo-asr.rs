//! `nemo-asr`: train a Jasper/QuartzNet CTC model on NeMo manifests, transcribe WAV files, and
//! measure WER.
//!
//! ```text
//! nemo-asr train --config configs/quartznet_5x5.yaml --train-manifest train.json --val-manifest dev.json --out model/
//! nemo-asr transcribe --model model/ a.wav b.wav
//! nemo-asr eval --model model/ --manifest test.json      # last line: WER: 12.34%
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use clap::{Parser, Subcommand};
use nemo_asr::data::AudioSegment;
use nemo_asr::models::EncDecCTCModel;
use nemo_asr::train::{CtcTrainTask, RunConfig, data_layer, evaluate, train_data_layer};
use nemo_core::train::{Trainer, latest_checkpoint};

#[derive(Parser)]
#[command(
    author,
    version,
    about = "Speech recognition with typed neural modules (Jasper/QuartzNet + CTC)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level filter for tracing output (e.g. `info`, `debug`).
    #[arg(long, global = true, default_value = "info")]
    log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Trains a model and writes a self-contained model directory.
    Train {
        /// Run config (YAML): `model:` and `train:` sections.
        #[arg(long)]
        config: PathBuf,
        /// NeMo JSON-lines manifest of training utterances.
        #[arg(long)]
        train_manifest: PathBuf,
        /// Manifest of validation utterances (WER during training).
        #[arg(long)]
        val_manifest: Option<PathBuf>,
        /// Model directory to write (config, labels, weights); the run's metrics and checkpoints
        /// go to `<out>/run`.
        #[arg(long)]
        out: PathBuf,
        /// Overrides `train.trainer.max_steps`.
        #[arg(long)]
        max_steps: Option<u64>,
        /// Stops after this many minutes of training (evaluates and saves first).
        #[arg(long)]
        minutes: Option<f64>,
        /// Continues from the newest checkpoint in `<out>/run/checkpoints`.
        #[arg(long)]
        resume: bool,
        /// Hides the progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Prints the transcript of each WAV file.
    Transcribe {
        /// Model directory written by `train`.
        #[arg(long)]
        model: PathBuf,
        /// WAV files (any rate, mono or stereo; resampled to the model's rate).
        #[arg(required = true)]
        wavs: Vec<PathBuf>,
    },
    /// Measures CER and WER on a manifest; the last line is `WER: <percent>%`.
    Eval {
        /// Model directory written by `train`.
        #[arg(long)]
        model: PathBuf,
        /// NeMo JSON-lines manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// Utterances per batch.
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).context("bad --log filter")?,
        )
        .with_writer(std::io::stderr)
        .init();
    let device = Device::Cpu;
    match cli.command {
        Command::Train {
            config,
            train_manifest,
            val_manifest,
            out,
            max_steps,
            minutes,
            resume,
            no_progress,
        } => {
            let mut cfg = RunConfig::from_yaml_file(&config)?;
            if let Some(n) = max_steps {
                cfg.train.trainer.max_steps = n;
            }
            if let Some(m) = minutes {
                cfg.train.trainer.max_time_s = Some(m * 60.0);
            }
            if no_progress {
                cfg.train.trainer.progress = false;
            }
            let t = &cfg.train;
            let model = EncDecCTCModel::new(cfg.model.clone(), t.seed, &device)?;
            eprintln!(
                "{}: {} trainable weights",
                cfg.model.name,
                model.params().num_weights("")
            );
            let train = train_data_layer(&cfg.model, &train_manifest, t)?;
            eprintln!("train: {}", train.summary());
            let val = val_manifest
                .as_deref()
                .map(|m| data_layer(&cfg.model, m, t.batch_size, false, t.seed, None))
                .transpose()?;
            if let Some(v) = &val {
                eprintln!("val: {}", v.summary());
            }
            let mut task = CtcTrainTask::new(
                &model,
                &train,
                val.as_ref(),
                t.trainer.batches_per_step,
                t.seed,
            )?;
            let mut optimizer = t.optim.build(model.params().trainable_vars())?;
            let trainer = Trainer::new(t.trainer.clone(), out.join("run"))?;
            let mut start = 0;
            if resume {
                match latest_checkpoint(&trainer.checkpoint_dir())? {
                    Some(dir) => start = trainer.resume(&dir, &mut task, optimizer.as_mut())?,
                    None => bail!(
                        "--resume: no checkpoint in {}",
                        trainer.checkpoint_dir().display()
                    ),
                }
            }
            let summary = trainer.fit(&mut task, optimizer.as_mut(), &t.sched, start)?;
            model.save(&out)?;
            eprintln!("model written to {}", out.display());
            if let Some(w) = summary.last_eval.get("wer") {
                println!("dev WER: {:.2}%", w * 100.0);
            }
        }
        Command::Transcribe { model, wavs } => {
            let model = EncDecCTCModel::load(&model, &device)
                .with_context(|| format!("loading model from {}", model.display()))?;
            model.params().eval();
            for wav in wavs {
                let samples =
                    AudioSegment::from_file(&wav, Some(model.config().sample_rate), 0.0, 0.0)?
                        .into_samples();
                let n = samples.len();
                let audio = Tensor::from_vec(samples, (1, n), &device)?;
                let len = Tensor::new(&[n as i64], &device)?;
                let text = model.transcribe(&audio, &len)?;
                println!(
                    "{}\t{}",
                    wav.display(),
                    text.first().map_or("", String::as_str)
                );
            }
        }
        Command::Eval {
            model,
            manifest,
            batch_size,
        } => {
            let model = EncDecCTCModel::load(&model, &device)
                .with_context(|| format!("loading model from {}", model.display()))?;
            let layer = data_layer(model.config(), &manifest, batch_size, false, 0, None)?;
            let wer = evaluate(&model, &layer)?;
            let (Some(w), Some(c)) = (wer.wer(), wer.cer()) else {
                bail!("{}: no reference words to score", manifest.display());
            };
            println!("utterances: {}", wer.utterances());
            println!("CER: {:.2}%", c * 100.0);
            println!("WER: {:.2}%", w * 100.0);
        }
    }
    Ok(())
}
