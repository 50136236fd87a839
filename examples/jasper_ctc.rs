//! The paper's §4.1.1 pipeline, wired by hand through typed ports: data layer → mel
//! preprocessor → Jasper encoder → CTC decoder → CTC loss, trained with NovoGrad, then greedy
//! decoding. Every `forward` call below is checked by the compiler (element types and axes) and
//! at run time (mel bands = `feat_in`, batch sizes agree, 16 kHz audio).
//!
//! Run: `cargo run --release --example jasper_ctc [-- MANIFEST [STEPS]]` (defaults: the committed
//! WAV fixtures, 150 steps). For real training use the `nemo-asr` CLI (README).

use std::path::PathBuf;

use anyhow::Context;
use candle_core::{DType, Device};
use nemo::asr::data::{AudioToTextDataLayer, AudioToTextDataLayerConfig};
use nemo::asr::decoding::ctc_greedy_decode;
use nemo::asr::losses::CtcLossConfig;
use nemo::asr::modules::*;
use nemo::asr::preprocessing::AudioToMelSpectrogramPreprocessorConfig;
use nemo::core::params::Parameters;
use nemo::optim::{LrPolicy, LrSchedule, OptimizerConfig};
use nemo::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let manifest = args.first().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("nemo-asr/tests/fixtures/manifests/small.json")
    });
    let steps: u64 = args
        .get(1)
        .map(|s| s.parse())
        .transpose()
        .context("STEPS must be a number")?
        .unwrap_or(150);
    let dev = Device::Cpu;

    // Modules, as in the paper: instantiate, then wire.
    let mut data_cfg = AudioToTextDataLayerConfig::new(manifest.display().to_string(), 8);
    data_cfg.preload = true;
    let data = AudioToTextDataLayer::new(data_cfg)?;
    let labels = data.labels().clone();
    let params = Parameters::new();
    let vb = params.var_builder(DType::F32, &dev);
    let preprocessor = (AudioToMelSpectrogramPreprocessorConfig {
        features: 64,
        ..Default::default()
    })
    .init()?;
    let encoder_cfg: ConvAsrEncoderConfig = serde_norway::from_str(
        "feat_in: 64\njasper:\n  - {filters: 128, kernel: [11], stride: [2], separable: true}\n  - {filters: 128, repeat: 2, kernel: [13], residual: true, separable: true}\n  - {filters: 256, kernel: [1]}",
    )?;
    let encoder = encoder_cfg.init(vb.pp("encoder"))?;
    let decoder = (ConvAsrDecoderConfig {
        feat_in: 256,
        num_classes: labels.len(),
    })
    .init(vb.pp("decoder"))?;
    let ctc = CtcLossConfig::new(labels.len()).init()?;
    println!(
        "encoder ports: {}  ->  {}",
        encoder.input_types(),
        encoder.output_types()
    );
    println!(
        "decoder ports: {}  ->  {}",
        decoder.input_types(),
        decoder.output_types()
    );

    let optim: OptimizerConfig =
        serde_json::from_str(r#"{"name": "novograd", "betas": [0.9, 0.5]}"#)?;
    let mut optimizer = optim.build(params.trainable_vars())?;
    let schedule = LrSchedule::new(LrPolicy::CosineAnnealing, 0.02).with_warmup_steps(10);

    let mut step = 0;
    // Each epoch reshuffles with its own number as the seed offset.
    'train: for epoch in 0.. {
        for batch in data.epoch(epoch, &dev) {
            let batch = batch?;
            // The data layer's ports, checked and typed.
            let batch = data.wrap_outputs(batch)?;
            // A training call: dither and batch statistics on, draws seeded by the step.
            let ctx = ForwardCtx::train(step);

            let mel = preprocessor.forward_t(
                AudioToMelSpectrogramPreprocessorInputs {
                    input_signal: &batch.audio_signal,
                    length: &batch.a_sig_length,
                },
                &ctx.for_module("preprocessor"),
            )?;
            let enc = encoder.forward_t(
                ConvAsrEncoderInputs {
                    audio_signal: &mel.processed_signal,
                    length: &mel.processed_length,
                },
                &ctx.for_module("encoder"),
            )?;
            let dec = decoder.forward(ConvAsrDecoderInputs {
                encoder_output: &enc.outputs,
            })?;
            let loss = ctc.forward(CtcLossInputs {
                log_probs: &dec.logprobs,
                targets: &batch.transcripts,
                input_length: &enc.encoded_lengths,
                target_length: &batch.transcript_length,
            })?;

            let grads = loss.loss.tensor().backward()?;
            optimizer.step(&grads, schedule.lr_at(step, steps), &|_| false)?;
            if step % 25 == 0 {
                println!(
                    "step {step:4}  loss {:.3}",
                    loss.loss.tensor().to_scalar::<f32>()?
                );
            }
            step += 1;
            if step >= steps {
                break 'train;
            }
        }
    }

    // `forward` is the evaluation call: no dither, running statistics.
    for batch in data.epoch(0, &dev) {
        let batch = batch?;
        let batch = data.wrap_outputs(batch)?;
        let mel = preprocessor.forward(AudioToMelSpectrogramPreprocessorInputs {
            input_signal: &batch.audio_signal,
            length: &batch.a_sig_length,
        })?;
        let enc = encoder.forward(ConvAsrEncoderInputs {
            audio_signal: &mel.processed_signal,
            length: &mel.processed_length,
        })?;
        let dec = decoder.forward(ConvAsrDecoderInputs {
            encoder_output: &enc.outputs,
        })?;
        let ids = ctc_greedy_decode(
            dec.logprobs.tensor(),
            Some(enc.encoded_lengths.tensor()),
            None,
        )?;
        for row in ids {
            println!("greedy: {:?}", labels.decode(&row)?);
        }
    }
    Ok(())
}
