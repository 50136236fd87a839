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
//! nemo-asr eval --model model/ --manifest test.json --lm lm.arpa --beam-size 16
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use clap::{Parser, Subcommand};
use std::sync::Arc;

use nemo_asr::data::{
    AudioSegment, AudioToTextDataLayer, Manifest, Vocabulary, normalize_transcript,
};
use nemo_asr::decoding::{CtcBeamSearch, CtcBeamSearchConfig, NgramLm};
use nemo_asr::models::{AsrModel, EncDecAttentionModel, EncDecCtcModel, ModelKind};
use nemo_asr::train::{CtcTrainTask, RunConfig, TrainSection, data_layer, train_data_layer};
use nemo_asr::train_attention::{
    AttentionRunConfig, AttentionTrainTask, attention_data_layer, attention_train_data_layer,
};
use nemo_core::host::ElementwisePool;
use nemo_core::params::Parameters;
use nemo_core::train::{FreezeSpec, TrainTask, Trainer, TrainerConfig, latest_checkpoint};

#[derive(Parser)]
#[command(
    author,
    version,
    about = "Speech recognition with typed neural modules (Jasper/QuartzNet + CTC or attention)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level filter for tracing output (e.g. `info`, `debug`).
    #[arg(long, global = true, default_value = "info")]
    log: String,
    /// Where models run: `cpu`, or `cuda` / `cuda:N` (GPU N; needs a build with `--features
    /// cuda`). A model directory loads on any device, whichever it was trained on.
    #[arg(long, global = true, default_value = "cpu", value_parser = parse_device)]
    device: DeviceArg,
}

/// The `--device` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceArg {
    Cpu,
    Cuda(usize),
}

fn parse_device(s: &str) -> std::result::Result<DeviceArg, String> {
    match s {
        "cpu" => Ok(DeviceArg::Cpu),
        "cuda" => Ok(DeviceArg::Cuda(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(DeviceArg::Cuda)
            .ok_or_else(|| format!("expected `cpu`, `cuda` or `cuda:N`, got `{s}`")),
    }
}

impl DeviceArg {
    fn open(self) -> Result<Device> {
        match self {
            DeviceArg::Cpu => Ok(Device::Cpu),
            DeviceArg::Cuda(n) => Device::new_cuda(n).with_context(|| {
                format!(
                    "--device cuda:{n}: no such CUDA device{}",
                    if cfg!(feature = "cuda") {
                        ""
                    } else {
                        " (this nemo-asr was built without `--features cuda`)"
                    }
                )
            }),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Trains a model and writes a self-contained model directory.
    Train {
        /// Run config (YAML): `model:` and `train:` sections; a `model.connector` section makes
        /// it the attention model.
        #[arg(long)]
        config: PathBuf,
        /// Starts from the encoder of this trained model directory (same `preprocessor` and
        /// `encoder` sections); freeze it with `train.trainer.freeze`.
        #[arg(long)]
        init_encoder: Option<PathBuf>,
        /// Keeps the encoder frozen for the whole run (adds `encoder: -1` to
        /// `train.trainer.freeze`): with `--init-encoder`, only the new decoder trains, and the
        /// encoder runs no backward pass.
        #[arg(long, requires = "init_encoder")]
        freeze_encoder: bool,
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
        /// Stops after this many minutes of training (evaluates and saves first); the
        /// learning-rate schedule follows the clock, so the run ends annealed. `max_steps` is
        /// then an upper bound: `--max-steps`, else the config's or 600 steps per minute,
        /// whichever is larger (more than the small QuartzNet runs on a 2-core CPU; a faster
        /// machine reaching it first ends the run annealed, earlier).
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

/// CTC beam search settings of `eval` and `transcribe` (greedy decoding without them).
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
    #[arg(long, default_value_t = 0.5)]
    beam_alpha: f64,
    /// Score bonus per word.
    #[arg(long, default_value_t = 1.0)]
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
        Command::Train { config, .. } => ModelKind::of_run_config(config).ok(),
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
    let tuning = unsafe { nemo_core::host::tune_for_training(pool) };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).context("bad --log filter")?,
        )
        .with_writer(std::io::stderr)
        .init();
    tracing::info!("host tuning: {tuning}");
    let device = cli.device.open()?;
    match cli.command {
        Command::Train {
            config,
            init_encoder,
            freeze_encoder,
            train_manifest,
            val_manifest,
            out,
            max_steps,
            minutes,
            resume,
            no_progress,
        } => {
            let run = Run {
                init_encoder,
                freeze_encoder,
                train_manifest,
                val_manifest,
                out,
                max_steps,
                minutes,
                resume,
                no_progress,
            };
            let kind = ModelKind::of_run_config(&config)?;
            eprintln!("{}: {} model", config.display(), kind.name());
            match kind {
                ModelKind::Ctc => train_ctc(RunConfig::from_yaml_file(&config)?, &run, &device)?,
                ModelKind::Attention => {
                    train_attention(AttentionRunConfig::from_yaml_file(&config)?, &run, &device)?
                }
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

/// The `train` options both model kinds share.
struct Run {
    init_encoder: Option<PathBuf>,
    freeze_encoder: bool,
    train_manifest: PathBuf,
    val_manifest: Option<PathBuf>,
    out: PathBuf,
    max_steps: Option<u64>,
    minutes: Option<f64>,
    resume: bool,
    no_progress: bool,
}

/// The step bound of a `--minutes` run without `--max-steps`, per minute of budget: above the
/// ~460 steps a minute the small QuartzNet runs on the 2-core CPU, so the clock ends such runs.
/// The time-based schedule spans this bound, so it must stay finite (it places the warm-up).
const STEPS_PER_MINUTE_BOUND: f64 = 600.0;

impl Run {
    /// Applies the command-line overrides to the `train:` section.
    fn apply(&self, t: &mut TrainSection) {
        if let Some(n) = self.max_steps {
            t.trainer.max_steps = n;
        }
        if let Some(m) = self.minutes {
            t.trainer.max_time_s = Some(m * 60.0);
            t.trainer.schedule_by_time = true;
            if self.max_steps.is_none() {
                // The config's `max_steps` sizes a step-bounded run: left alone it would end a
                // long time-budgeted run early. (A non-positive `m` is refused by the trainer.)
                let bound = (m.max(0.0) * STEPS_PER_MINUTE_BOUND).ceil() as u64;
                t.trainer.max_steps = t.trainer.max_steps.max(bound);
            }
        }
        if self.no_progress {
            t.trainer.progress = false;
        }
        if self.freeze_encoder {
            t.trainer.freeze.enabled = true;
            t.trainer
                .freeze
                .modules
                .insert("encoder".into(), FreezeSpec::Steps(-1));
        }
    }

    /// Loads `--init-encoder` into the model's parameters through `load`, then prints the
    /// model's size (frozen modules excluded).
    fn prepare(
        &self,
        name: &str,
        params: &Parameters,
        load: impl FnOnce(&std::path::Path) -> nemo_asr::Result<usize>,
    ) -> Result<()> {
        if let Some(dir) = &self.init_encoder {
            let n = load(dir).with_context(|| format!("--init-encoder {}", dir.display()))?;
            eprintln!("encoder: {n} tensors from {}", dir.display());
        }
        let frozen = if self.freeze_encoder {
            params.num_weights("encoder")
        } else {
            0
        };
        eprintln!(
            "{name}: {} trainable weights",
            params.num_weights("") - frozen
        );
        Ok(())
    }

    /// The training and (optional) validation data layers, through the model's constructors.
    fn layers(
        &self,
        train: impl FnOnce(&std::path::Path) -> nemo_asr::Result<AudioToTextDataLayer>,
        val: impl FnOnce(&std::path::Path) -> nemo_asr::Result<AudioToTextDataLayer>,
    ) -> Result<(AudioToTextDataLayer, Option<AudioToTextDataLayer>)> {
        let train = train(&self.train_manifest)?;
        eprintln!("train: {}", train.summary());
        let val = self.val_manifest.as_deref().map(val).transpose()?;
        if let Some(v) = &val {
            eprintln!("val: {}", v.summary());
        }
        Ok((train, val))
    }

    /// Runs the trainer on `task` (resuming when asked), returning the last evaluation's WER.
    fn fit(
        &self,
        t: &TrainSection,
        params: &Parameters,
        task: &mut dyn TrainTask,
    ) -> Result<Option<f64>> {
        let mut optimizer = t.optim.build(params.trainable_vars())?;
        // The run's seed also seeds the forward passes' draws (dither, masks, dropout).
        let config = TrainerConfig {
            seed: t.seed,
            ..t.trainer.clone()
        };
        let trainer = Trainer::new(config, self.out.join("run"))?;
        let mut start = 0;
        if self.resume {
            match latest_checkpoint(&trainer.checkpoint_dir())? {
                Some(dir) => start = trainer.resume(&dir, task, optimizer.as_mut())?,
                None => bail!(
                    "--resume: no checkpoint in {}",
                    trainer.checkpoint_dir().display()
                ),
            }
        }
        let summary = trainer.fit(task, optimizer.as_mut(), &t.sched, start)?;
        Ok(summary.last_eval.get("wer").copied())
    }

    /// Prints where the model went and the last dev WER.
    fn report(&self, wer: Option<f64>) {
        eprintln!("model written to {}", self.out.display());
        if let Some(w) = wer {
            println!("dev WER: {:.2}%", w * 100.0);
        }
    }
}

fn train_ctc(mut cfg: RunConfig, run: &Run, device: &Device) -> Result<()> {
    run.apply(&mut cfg.train);
    let t = &cfg.train;
    let model = EncDecCtcModel::new(cfg.model.clone(), t.seed, device)?;
    run.prepare(&cfg.model.name, model.params(), |dir| {
        model.load_pretrained_encoder(dir)
    })?;
    let (train, val) = run.layers(
        |m| train_data_layer(&model, m, t),
        |m| data_layer(&cfg.model, m, t.batch_size, false, t.seed, None),
    )?;
    let mut task = CtcTrainTask::new(&model, &train, val.as_ref(), t.trainer.batches_per_step)?;
    let wer = run.fit(t, model.params(), &mut task)?;
    model.save(&run.out)?;
    run.report(wer);
    Ok(())
}

fn train_attention(mut cfg: AttentionRunConfig, run: &Run, device: &Device) -> Result<()> {
    run.apply(&mut cfg.train);
    let t = &cfg.train;
    let model = EncDecAttentionModel::new(cfg.model.clone(), t.seed, device)?;
    run.prepare(&cfg.model.name, model.params(), |dir| {
        model.load_pretrained_encoder(dir)
    })?;
    let (train, val) = run.layers(
        |m| attention_train_data_layer(&cfg.model, m, t),
        |m| attention_data_layer(&cfg.model, m, t.batch_size, false, t.seed, None),
    )?;
    let mut task =
        AttentionTrainTask::new(&model, &train, val.as_ref(), t.trainer.batches_per_step)?;
    let wer = run.fit(t, model.params(), &mut task)?;
    model.save(&run.out)?;
    run.report(wer);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(max_steps: Option<u64>, minutes: Option<f64>) -> Run {
        Run {
            init_encoder: None,
            freeze_encoder: false,
            train_manifest: PathBuf::from("train.json"),
            val_manifest: None,
            out: PathBuf::from("out"),
            max_steps,
            minutes,
            resume: false,
            no_progress: false,
        }
    }

    fn shipped_train_section() -> TrainSection {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/an4_small.yaml");
        RunConfig::from_yaml_file(std::path::Path::new(path))
            .expect("configs/an4_small.yaml parses")
            .train
    }

    #[test]
    fn minutes_without_max_steps_lift_the_configs_step_bound() {
        let mut t = shipped_train_section();
        assert_eq!(t.trainer.max_steps, 3000);
        run(None, Some(30.0)).apply(&mut t);
        assert_eq!(t.trainer.max_steps, 18_000);
        assert_eq!(t.trainer.max_time_s, Some(1800.0));
        assert!(t.trainer.schedule_by_time);
    }

    #[test]
    fn a_short_budget_keeps_the_configs_larger_bound() {
        let mut t = shipped_train_section();
        run(None, Some(1.0)).apply(&mut t);
        assert_eq!(t.trainer.max_steps, 3000);
    }

    #[test]
    fn max_steps_bounds_a_time_budgeted_run() {
        let mut t = shipped_train_section();
        run(Some(500), Some(30.0)).apply(&mut t);
        assert_eq!(t.trainer.max_steps, 500);
        let mut t = shipped_train_section();
        run(Some(500), None).apply(&mut t);
        assert_eq!((t.trainer.max_steps, t.trainer.max_time_s), (500, None));
        assert!(!t.trainer.schedule_by_time);
    }
}
