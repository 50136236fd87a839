//! `nemo-asr`: train a Jasper/QuartzNet CTC model or the attention model that re-uses its encoder
//! on NeMo manifests, transcribe WAV files, and measure WER. The model kind follows the config (a
//! `connector` section is the attention model) and, for a model directory, its `model.yaml`.
//!
//! ```text
//! nemo-asr train --config configs/quartznet_5x5.yaml --train-manifest train.json --val-manifest dev.json --out model/
//! nemo-asr train --config configs/las_small.yaml --init-encoder model/ ... --out las/
//! nemo-asr transcribe --model model/ a.wav b.wav
//! nemo-asr eval --model model/ --manifest test.json      # last line: WER: 12.34%
//! nemo-asr lm --manifest train.json --order 3 --out lm.arpa
//! nemo-asr eval --model model/ --manifest test.json --lm lm.arpa --lexicon
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use clap::{Parser, Subcommand};

use nemo_asr::data::{AudioSegment, Manifest, Vocabulary, normalize_transcript};
use nemo_asr::decoding::{CtcBeamSearch, CtcBeamSearchConfig, NgramLm};
use nemo_asr::models::{
    AsrModel, EncDecAttentionModel, EncDecCtcModel, ModelKind, SpeechModel, eval_data_layer,
};
use nemo_asr::train::{SpeechTrainTask, read_run_config, train_data_layer};
use nemo_cli::{GlobalArgs, TrainArgs};
use nemo_host::ElementwisePool;

#[derive(Parser)]
#[command(
    author,
    version,
    about = "Speech recognition with typed neural modules (Jasper/QuartzNet + CTC or attention)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Trains a model and writes a self-contained model directory.
    Train {
        #[command(flatten)]
        run: TrainArgs,
        /// NeMo JSON-lines manifest of training utterances.
        #[arg(long)]
        train_manifest: PathBuf,
        /// Manifest of validation utterances (WER during training).
        #[arg(long)]
        val_manifest: Option<PathBuf>,
        /// Starts from the encoder of this trained model directory (same `preprocessor` and
        /// `encoder` sections); freeze it with `train.trainer.freeze` or `--freeze-encoder`.
        #[arg(long)]
        init_encoder: Option<PathBuf>,
        /// Keeps the encoder frozen for the whole run (adds `encoder: -1` to
        /// `train.trainer.freeze`): with `--init-encoder`, only the new decoder trains, and the
        /// encoder runs no backward pass.
        #[arg(long, requires = "init_encoder")]
        freeze_encoder: bool,
    },
    /// Prints the transcript of each WAV file.
    Transcribe {
        /// Model directory written by `train`.
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        decoding: CtcDecodingArgs,
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
        #[command(flatten)]
        decoding: CtcDecodingArgs,
    },
    /// Estimates a word n-gram language model (interpolated Kneser-Ney, ARPA format) from the
    /// transcripts of manifests, for `--lm`.
    Lm {
        /// NeMo manifests whose `text` fields are the training text (normalized as the data
        /// layer does).
        #[arg(long, required = true)]
        manifest: Vec<PathBuf>,
        /// The n-gram order.
        #[arg(long, default_value_t = 3)]
        order: usize,
        /// Counts a transcript once per utterance; by default each distinct transcript counts
        /// once (a prompt read by several speakers is one sentence of text).
        #[arg(long)]
        keep_duplicates: bool,
        /// The ARPA file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// CTC beam search settings of `eval` and `transcribe` (greedy decoding without them). The
/// default weights are the ones tuned on the dev set of `scripts/make_corpus.sh`'s corpus for an
/// LM with `--lexicon` (docs/benchmarks.md, "Word error rate").
#[derive(clap::Args)]
struct CtcDecodingArgs {
    /// CTC prefix beam search with this many prefixes (1 = greedy).
    #[arg(long, default_value_t = 1)]
    beam_size: usize,
    /// A word n-gram language model (ARPA, e.g. from `nemo-asr lm` or KenLM); implies beam
    /// search (16 prefixes unless `--beam-size` says otherwise).
    #[arg(long)]
    lm: Option<PathBuf>,
    /// Weight of the LM's log-probability.
    #[arg(long, default_value_t = 1.0)]
    beam_alpha: f64,
    /// Score bonus per word.
    #[arg(long, default_value_t = 0.5)]
    beam_beta: f64,
    /// Only words of the LM's vocabulary.
    #[arg(long)]
    lexicon: bool,
}

impl CtcDecodingArgs {
    /// The beam search these options ask for, or `None` for greedy decoding.
    fn search(&self, model: &AsrModel) -> Result<Option<CtcBeamSearch>> {
        if self.beam_size <= 1 && self.lm.is_none() {
            if self.lexicon {
                bail!("--lexicon needs --lm (its words are the lexicon)");
            }
            return Ok(None);
        }
        let AsrModel::Ctc(ctc) = model else {
            bail!(
                "--beam-size/--lm apply to CTC models; this {} model searches with its `decoding:` section",
                model.kind().name()
            );
        };
        let lm = match &self.lm {
            Some(path) => {
                let lm = NgramLm::read_arpa(path)?;
                eprintln!(
                    "{}: {}-gram model, {} words",
                    path.display(),
                    lm.order(),
                    lm.vocab_size()
                );
                Some(Arc::new(lm))
            }
            None => None,
        };
        let config = CtcBeamSearchConfig {
            beam_size: if self.beam_size > 1 {
                self.beam_size
            } else {
                16
            },
            beam_alpha: self.beam_alpha,
            beam_beta: self.beam_beta,
            lexicon: self.lexicon,
            ..CtcBeamSearchConfig::default()
        };
        Ok(Some(CtcBeamSearch::new(config, ctc.labels(), lm)?))
    }
}

/// The element-wise pool that suits the model a command runs. Unreadable files get the default
/// here; the command itself reports them.
fn elementwise_pool(command: &Command) -> ElementwisePool {
    let kind = match command {
        Command::Train { run, .. } => ModelKind::of_run_config(&run.config).ok(),
        Command::Transcribe { model, .. } | Command::Eval { model, .. } => {
            ModelKind::of_model_dir(model).ok()
        }
        Command::Lm { .. } => None,
    };
    match kind {
        Some(ModelKind::Attention) => ElementwisePool::CandlePool,
        Some(ModelKind::Ctc) | None => ElementwisePool::CallingThread,
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let pool = elementwise_pool(&cli.command);
    // SAFETY: parsing arguments and reading YAML start no thread, and no candle op has run.
    let tuning = unsafe { nemo_host::tune_for_training(pool) };
    nemo_cli::logging::init(cli.global.log.as_deref())?;
    tracing::info!("host tuning: {tuning}");
    let device = cli.global.device.open()?;
    match cli.command {
        Command::Train {
            run,
            train_manifest,
            val_manifest,
            init_encoder,
            freeze_encoder,
        } => {
            let job = TrainJob {
                options: run.options(if freeze_encoder {
                    vec!["encoder".into()]
                } else {
                    Vec::new()
                }),
                run,
                train_manifest,
                val_manifest,
                init_encoder,
            };
            let kind = ModelKind::of_run_config(&job.run.config)?;
            eprintln!("{}: {} model", job.run.config.display(), kind.name());
            match kind {
                ModelKind::Ctc => job.train::<EncDecCtcModel>(&device)?,
                ModelKind::Attention => job.train::<EncDecAttentionModel>(&device)?,
            }
        }
        Command::Transcribe {
            model,
            decoding,
            wavs,
        } => {
            let model = AsrModel::load(&model, &device)
                .with_context(|| format!("loading model from {}", model.display()))?;
            let search = decoding.search(&model)?;
            for wav in wavs {
                let samples = AudioSegment::from_file(&wav, Some(model.sample_rate()), 0.0, 0.0)?
                    .into_samples();
                let n = samples.len();
                let audio = Tensor::from_vec(samples, (1, n), &device)?;
                let len = Tensor::new(&[n as i64], &device)?;
                let text = model.transcribe(&audio, &len, search.as_ref())?;
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
            decoding,
        } => {
            let model = AsrModel::load(&model, &device)
                .with_context(|| format!("loading model from {}", model.display()))?;
            let search = decoding.search(&model)?;
            let layer = model.data_layer(&manifest, batch_size)?;
            let wer = model.evaluate(&layer, search.as_ref())?;
            let (Some(w), Some(c)) = (wer.wer(), wer.cer()) else {
                bail!("{}: no reference words to score", manifest.display());
            };
            println!("utterances: {}", wer.utterances());
            println!("CER: {:.2}%", c * 100.0);
            println!("WER: {:.2}%", w * 100.0);
        }
        Command::Lm {
            manifest,
            order,
            keep_duplicates,
            out,
        } => {
            let labels = Vocabulary::english();
            let mut text = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for m in &manifest {
                for e in Manifest::from_file(m)?.entries() {
                    let t = normalize_transcript(&e.text, &labels);
                    if keep_duplicates || seen.insert(t.clone()) {
                        text.push(t);
                    }
                }
            }
            let lm = NgramLm::estimate(text.iter().map(String::as_str), order)?;
            lm.write_arpa(&out)?;
            eprintln!(
                "{}: {order}-gram model of {} sentences, {} words",
                out.display(),
                text.len(),
                lm.vocab_size()
            );
        }
    }
    Ok(())
}

/// A `train` command: the same steps for either model.
struct TrainJob {
    run: TrainArgs,
    options: nemo_core::train::RunOptions,
    train_manifest: PathBuf,
    val_manifest: Option<PathBuf>,
    init_encoder: Option<PathBuf>,
}

impl TrainJob {
    /// Builds model `M` from the run config, loads `--init-encoder`, makes the data layers,
    /// trains through the core runner and writes the model directory.
    fn train<M: SpeechModel>(&self, device: &Device) -> Result<()> {
        let cfg = read_run_config::<M>(&self.run.config)?;
        let seed = cfg.train.seed();
        let model = M::new(cfg.model.clone(), seed, device)?;
        if let Some(dir) = &self.init_encoder {
            let n = model
                .load_pretrained_encoder(dir)
                .with_context(|| format!("--init-encoder {}", dir.display()))?;
            eprintln!("encoder: {n} tensors from {}", dir.display());
        }
        let frozen: usize = self
            .options
            .freeze
            .iter()
            .map(|m| model.params().num_weights(m))
            .sum();
        eprintln!(
            "{}: {} trainable weights",
            M::name(&cfg.model),
            model.params().num_weights("") - frozen
        );
        let train = train_data_layer(&model, &self.train_manifest, &cfg.train_ds, seed)?;
        eprintln!("train: {}", train.summary());
        let val = match &self.val_manifest {
            Some(m) => Some(eval_data_layer::<M>(
                &cfg.model,
                m,
                cfg.train_ds.batch_size,
            )?),
            None => None,
        };
        if let Some(v) = &val {
            eprintln!("val: {}", v.summary());
        }
        let mut task = SpeechTrainTask::new(
            &model,
            &train,
            val.as_ref(),
            cfg.train.trainer.batches_per_step,
        )?;
        let summary = nemo_core::train::run(&mut task, &cfg.train, &self.options)?;
        model.save(&self.options.out)?;
        eprintln!("model written to {}", self.options.out.display());
        if let Some(w) = summary.last_eval.get("wer") {
            println!("dev WER: {:.2}%", w * 100.0);
        }
        Ok(())
    }
}
