//! The paper's §4.1.2 pipeline, wired by hand through typed ports: the *same* data layer, mel
//! preprocessor and Jasper encoder as the CTC example, then NeMo's attention modules —
//! `JasperRnnConnector` → `DecoderRnn` → `SequenceLoss` — trained with AdamW, then greedy and
//! beam-search decoding and WER. Every `forward` call below is checked by the compiler (element
//! types and axes) and at run time (sizes from the config, batch sizes agree, 16 kHz audio).
//!
//! Run: `cargo run --release --example las [-- --train-manifest M --steps N]`
//! (defaults: the committed WAV fixtures, `configs/las_small.yaml`'s model, 200 steps).

use std::path::PathBuf;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use nemo::asr::data::AudioToTextDataLayer;
use nemo::asr::decoding::{BeamSearchConfig, beam_search, greedy_search};
use nemo::asr::metrics::WordErrorRate;
use nemo::asr::models::eval_data_layer;
use nemo::asr::models::{EncDecAttentionModel, EncDecAttentionModelConfig, SpeechModel};
use nemo::asr::modules::*;
use nemo::core::nn::lengths_to_vec;
use nemo::core::optim::{LrPolicy, LrSchedule, OptimizerConfig, clip_grad_norm};
use nemo::core::params::Parameters;
use nemo::core::prelude::*;

/// Trains the Jasper encoder + attention decoder on a manifest and prints its WER.
#[derive(Parser)]
struct Args {
    /// Training manifest (NeMo JSON lines). Default: the committed test fixtures.
    #[arg(long)]
    train_manifest: Option<PathBuf>,
    /// Evaluation manifest. Default: the training manifest.
    #[arg(long)]
    val_manifest: Option<PathBuf>,
    /// Model config (YAML with a `model:` section). Default: configs/las_small.yaml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Optimizer steps.
    #[arg(long, default_value_t = 200)]
    steps: u64,
    /// Utterances per batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Peak learning rate (cosine schedule with warmup).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Beam size of the second decoding pass.
    #[arg(long, default_value_t = 4)]
    beam: usize,
    /// Longest training utterance in seconds.
    #[arg(long)]
    max_duration: Option<f64>,
    /// Prints the loss every this many steps (besides the progress bar).
    #[arg(long, default_value_t = 50)]
    log_every: u64,
    /// Seeds weights, data order, dither, masks and dropout.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let train_manifest = args
        .train_manifest
        .unwrap_or_else(|| root.join("nemo-asr/tests/fixtures/manifests/small.json"));
    let val_manifest = args.val_manifest.unwrap_or_else(|| train_manifest.clone());
    let config_path = args
        .config
        .unwrap_or_else(|| root.join("configs/las_small.yaml"));
    let cfg = EncDecAttentionModelConfig::from_yaml_file(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let dev = Device::Cpu;

    // Modules, as in the paper: instantiate, then wire.
    // The model's data-layer settings: its labels and rate, EOS appended and PAD padding.
    let mut train_cfg = EncDecAttentionModel::layer_config(&cfg, &train_manifest, args.batch_size);
    train_cfg.shuffle = true;
    train_cfg.seed = args.seed;
    train_cfg.max_duration = args.max_duration;
    let train = AudioToTextDataLayer::new(train_cfg)?;
    let val = eval_data_layer::<EncDecAttentionModel>(&cfg, &val_manifest, args.batch_size)?;
    let params = Parameters::new();
    let vb = params.var_builder(DType::F32, &dev);
    let preprocessor = cfg.preprocessor.init()?;
    let spec_augment = cfg.spec_augment.clone().map(|c| c.init()).transpose()?;
    let encoder = cfg.encoder.init(vb.pp("encoder"))?;
    let connector = cfg.connector.init(vb.pp("connector"))?;
    let decoder = cfg.decoder.init(vb.pp("decoder"))?;
    let loss_fn = cfg.loss.init()?;
    println!(
        "encoder:   {} -> {}",
        encoder.input_types(),
        encoder.output_types()
    );
    println!(
        "connector: {} -> {}",
        connector.input_types(),
        connector.output_types()
    );
    println!(
        "decoder:   {} -> {}",
        decoder.input_types(),
        decoder.output_types()
    );
    println!(
        "loss:      {} -> {}",
        loss_fn.input_types(),
        loss_fn.output_types()
    );
    println!(
        "{} trainable weights; {} training utterances",
        params.num_weights(""),
        train.len()
    );

    let optim: OptimizerConfig =
        serde_json::from_str(r#"{"name": "adamw", "weight_decay": 0.0001}"#)?;
    let vars = params.trainable_vars();
    let mut optimizer = optim.build(vars.clone())?;
    let schedule = LrSchedule::new(LrPolicy::CosineAnnealing, args.lr)
        .with_warmup_steps((args.steps / 10).max(1));

    let bar = ProgressBar::new(args.steps);
    bar.set_style(ProgressStyle::with_template(
        "[{elapsed_precise}] {msg} {wide_bar} {pos}/{len}",
    )?);
    let mut step = 0u64;
    let mut epoch = 0u64;
    let started = std::time::Instant::now();
    'train: loop {
        for batch in train.epoch(epoch, &dev) {
            let batch = batch?;
            // The data layer's ports, checked and typed.
            let batch = train.wrap_outputs(batch)?;
            // A training call: dither, masks, dropout and batch statistics on, seeded per step.
            let ctx = ForwardCtx::train(args.seed ^ step);

            let mel = preprocessor.forward_t(
                AudioToMelSpectrogramPreprocessorInputs {
                    input_signal: &batch.audio_signal,
                    length: &batch.a_sig_length,
                },
                &ctx.for_module("preprocessor"),
            )?;
            let spec = match &spec_augment {
                Some(aug) => {
                    aug.forward_t(
                        SpectrogramAugmentationInputs {
                            input_spec: &mel.processed_signal,
                            length: &mel.processed_length,
                        },
                        &ctx.for_module("spec_augment"),
                    )?
                    .augmented_spec
                }
                None => mel.processed_signal,
            };
            let enc = encoder.forward_t(
                ConvAsrEncoderInputs {
                    audio_signal: &spec,
                    length: &mel.processed_length,
                },
                &ctx.for_module("encoder"),
            )?;
            let con = connector.forward(JasperRnnConnectorInputs {
                tensor: &enc.outputs,
            })?;
            let dec = decoder.forward_t(
                DecoderRnnInputs {
                    targets: &batch.transcripts,
                    encoder_outputs: &con.tensor,
                    encoder_lengths: Some(enc.encoded_lengths.clone()),
                },
                &ctx.for_module("decoder"),
            )?;
            let loss = loss_fn.forward(SequenceLossInputs {
                log_probs: &dec.log_probs,
                targets: &batch.transcripts,
            })?;

            let mut grads = loss.loss.tensor().backward()?;
            clip_grad_norm(&mut grads, &vars, 5.0, &|_| false)?;
            optimizer.step(&grads, schedule.lr_at(step, args.steps), &|_| false)?;
            let value = loss.loss.tensor().to_scalar::<f32>()?;
            bar.set_message(format!("loss {value:.3}"));
            if args.log_every > 0 && (step + 1).is_multiple_of(args.log_every) {
                bar.suspend(|| {
                    println!(
                        "step {:5}  loss {value:.4}  {:.2} s/step",
                        step + 1,
                        started.elapsed().as_secs_f64() / (step + 1) as f64
                    )
                });
            }
            bar.inc(1);
            step += 1;
            if step >= args.steps {
                break 'train;
            }
        }
        epoch += 1;
    }
    bar.finish();
    println!(
        "trained {step} steps in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // From here on `forward` calls evaluate: no dither, masks or dropout.
    let labels = train.labels().clone();
    let eos = cfg.eos_id();
    let beam = BeamSearchConfig {
        beam_size: args.beam.max(1),
        ..cfg.decoding.clone()
    };
    let mut wer_greedy = WordErrorRate::new();
    let mut wer_beam = WordErrorRate::new();
    let mut shown = 0;
    for batch in val.epoch(0, &dev) {
        let batch = batch?;
        let refs = references(&val, &batch.transcripts, &batch.transcript_length)?;
        let batch = val.wrap_outputs(batch)?;
        let mel = preprocessor.forward(AudioToMelSpectrogramPreprocessorInputs {
            input_signal: &batch.audio_signal,
            length: &batch.a_sig_length,
        })?;
        let enc = encoder.forward(ConvAsrEncoderInputs {
            audio_signal: &mel.processed_signal,
            length: &mel.processed_length,
        })?;
        let con = connector.forward(JasperRnnConnectorInputs {
            tensor: &enc.outputs,
        })?;
        let lens = lengths_to_vec(enc.encoded_lengths.tensor())?;
        let limits: Vec<usize> = lens.iter().map(|&l| beam.limit(l)).collect();
        let bos = decoder.config().bos_id;
        let state = || decoder.search_state(con.tensor.tensor(), &lens);
        let greedy = greedy_search(&decoder, state()?, bos, eos, &limits)?;
        let beamed = beam_search(&decoder, state()?, bos, eos, &limits, &beam)?;
        for ((g, b), r) in greedy.iter().zip(&beamed).zip(&refs) {
            let (g, b) = (text(&labels, g)?, text(&labels, b)?);
            if shown < 5 {
                println!("ref:    {r:?}\ngreedy: {g:?}\nbeam:   {b:?}");
                shown += 1;
            }
            wer_greedy.update(&g, r);
            wer_beam.update(&b, r);
        }
    }
    let pct = |w: &WordErrorRate| w.wer().map_or(f64::NAN, |x| 100.0 * x);
    println!(
        "{} utterances: greedy WER {:.2}%, beam-{} WER {:.2}%",
        wer_greedy.utterances(),
        pct(&wer_greedy),
        beam.beam_size,
        pct(&wer_beam)
    );
    Ok(())
}

/// Decodes label ids to text, dropping ids outside the labels.
fn text(labels: &nemo::asr::data::Vocabulary, ids: &[u32]) -> anyhow::Result<String> {
    let n = labels.len() as u32;
    let ids: Vec<u32> = ids.iter().copied().filter(|&i| i < n).collect();
    Ok(labels.decode(&ids)?)
}

/// The reference texts of a batch (EOS and PAD dropped).
fn references(
    layer: &AudioToTextDataLayer,
    transcripts: &Tensor,
    lengths: &Tensor,
) -> anyhow::Result<Vec<String>> {
    let lens: Vec<i64> = lengths.to_dtype(DType::I64)?.to_vec1()?;
    let rows: Vec<Vec<i64>> = transcripts.to_dtype(DType::I64)?.to_vec2()?;
    rows.into_iter()
        .zip(lens)
        .map(|(row, len)| {
            let ids: Vec<u32> = row
                .into_iter()
                .take(len.max(0) as usize)
                .map(|v| v as u32)
                .collect();
            text(layer.labels(), &ids)
        })
        .collect()
}
