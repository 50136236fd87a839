//! The shipped graph config `configs/graphs/jasper_ctc_graph.yaml` — the small AN4 Jasper CTC
//! model written as modules and connections — builds through the registry into the one graph,
//! runs on the committed WAV fixtures, and with the typed `EncDecCtcModel`'s weights gives the
//! same CTC loss and log-probabilities under the same `ForwardCtx`, in eval and in training mode
//! (dither, SpecAugment, batch statistics); bound to a data layer it trains, evaluates and infers
//! through the graph's actions. Miswired variants fail at build time with readable errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use nemo_asr::data::AudioToTextBatch;
use nemo_asr::models::eval_data_layer;
use nemo_asr::models::{EncDecCtcModel, EncDecCtcModelConfig};
use nemo_core::ForwardCtx;
use nemo_core::config::{BuiltModel, ModelConfig};
use nemo_core::params::Parameters;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn graph_path() -> PathBuf {
    repo().join("configs/graphs/jasper_ctc_graph.yaml")
}

/// The typed model of `configs/an4_small.yaml` with seed 7 and the first fixture batch.
fn typed_model_and_batch() -> Result<(EncDecCtcModel, AudioToTextBatch), Box<dyn std::error::Error>>
{
    let config = EncDecCtcModelConfig::from_yaml_file(&repo().join("configs/an4_small.yaml"))?;
    let model = EncDecCtcModel::new(config, 7, &Device::Cpu)?;
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests/small.json");
    let layer = eval_data_layer::<EncDecCtcModel>(model.config(), &manifest, 5)?;
    let batch = layer.epoch(0, &Device::Cpu).next().ok_or("no batch")??;
    Ok((model, batch))
}

fn graph_inputs(batch: &AudioToTextBatch) -> HashMap<String, Tensor> {
    HashMap::from([
        ("audio_signal".into(), batch.audio_signal.clone()),
        ("a_sig_length".into(), batch.a_sig_length.clone()),
        ("transcripts".into(), batch.transcripts.clone()),
        ("transcript_length".into(), batch.transcript_length.clone()),
    ])
}

/// The graph model with the typed model's weights (through a safetensors file). Its nodes have
/// the typed model's module names, so a `ForwardCtx` gives both the same random draws.
fn graph_like(
    typed: &EncDecCtcModel,
) -> Result<(BuiltModel, Parameters), Box<dyn std::error::Error>> {
    nemo_asr::registry::ensure_registered();
    let config = ModelConfig::from_yaml_file(graph_path())?;
    let params = Parameters::new();
    let model = config.build(&params, &Device::Cpu)?;
    let dir = tempfile::tempdir()?;
    let weights = dir.path().join("weights.safetensors");
    typed.params().save(&weights)?;
    params.load(&weights)?;
    Ok((model, params))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32, candle_core::Error> {
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}

#[test]
fn the_shipped_graph_builds_with_the_typed_models_parameter_names() -> TestResult {
    nemo_asr::registry::ensure_registered();
    let params = Parameters::new();
    let model = ModelConfig::from_yaml_file(graph_path())?.build(&params, &Device::Cpu)?;
    assert_eq!(model.name(), Some("AN4SmallGraph"));
    assert_eq!(
        model.node_names(),
        ["preprocessor", "spec_augment", "encoder", "decoder", "loss"]
    );
    let (typed, _) = typed_model_and_batch()?;
    let names =
        |p: &Parameters| -> Vec<String> { p.named_vars().into_iter().map(|(n, _)| n).collect() };
    assert_eq!(names(&params), names(typed.params()));
    assert_eq!(params.num_weights(""), typed.params().num_weights(""));
    Ok(())
}

#[test]
fn the_graph_gives_the_typed_models_loss_in_eval_and_training_mode() -> TestResult {
    let (typed, batch) = typed_model_and_batch()?;
    let (graph, params) = graph_like(&typed)?;
    let mut losses = Vec::new();
    let _ = &params;
    for training in [false, true] {
        let ctx = if training {
            ForwardCtx::train(7)
        } else {
            ForwardCtx::eval()
        };
        let (typed_loss, typed_out) = typed.loss(
            &batch.audio_signal,
            &batch.a_sig_length,
            &batch.transcripts,
            &batch.transcript_length,
            &ctx,
        )?;
        let out = graph.forward_t(&graph_inputs(&batch), &ctx)?;
        let loss = out
            .get("loss.loss")
            .ok_or("no loss.loss")?
            .to_scalar::<f32>()?;
        let expected = typed_loss.to_scalar::<f32>()?;
        assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
        assert!(
            (loss - expected).abs() <= 1e-5 * expected.abs(),
            "training={training}: graph loss {loss}, typed loss {expected}"
        );
        losses.push(loss);
        let logprobs = out.get("decoder.logprobs").ok_or("no logprobs")?;
        let diff = max_abs_diff(logprobs, typed_out.log_probs.tensor())?;
        assert!(
            diff <= 1e-5,
            "training={training}: log-probs differ by {diff}"
        );
        let lens = out.get("encoder.encoded_lengths").ok_or("no lengths")?;
        assert_eq!(
            lens.to_vec1::<i64>()?,
            typed_out.encoded_lengths.tensor().to_vec1::<i64>()?
        );
    }
    assert!(
        losses.first() != losses.last(),
        "training mode (dither, SpecAugment, batch statistics) changed nothing: {losses:?}"
    );
    Ok(())
}

/// Builds the shipped config with one line replaced; the build's error message.
fn miswired(from: &str, to: &str) -> Result<String, Box<dyn std::error::Error>> {
    nemo_asr::registry::ensure_registered();
    let text = std::fs::read_to_string(graph_path())?;
    assert!(
        text.contains(from),
        "the shipped config no longer has {from:?}"
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("miswired.yaml");
    std::fs::write(&path, text.replace(from, to))?;
    let params = Parameters::new();
    match ModelConfig::from_yaml_file(&path).and_then(|c| c.build(&params, &Device::Cpu)) {
        Ok(_) => Err("the miswired config was accepted".into()),
        Err(e) => Ok(e
            .to_string()
            .replace(&path.display().to_string(), "miswired.yaml")),
    }
}

#[test]
fn a_miswired_graph_fails_at_build_time_with_a_readable_error() -> TestResult {
    // Raw audio into the encoder instead of the mel spectrogram.
    let msg = miswired(
        "spec_augment.augmented_spec -> encoder.audio_signal",
        "audio_signal -> encoder.audio_signal",
    )?;
    for part in [
        "miswired.yaml:62:5: `connections[4]`",
        "`encoder` input `audio_signal`",
        "cannot connect `audio_signal` of type `(B, T) AudioSignal{freq=16000}`",
        "INCOMPATIBLE",
        "port type: (B, D:64, T) MelSpectrogram",
    ] {
        assert!(msg.contains(part), "missing {part:?} in\n{msg}");
    }
    // A decoder sized for another encoder: the channel count is checked at the connection.
    let msg = miswired(
        "config: {feat_in: 1024, num_classes: 28}",
        "config: {feat_in: 512, num_classes: 28}",
    )?;
    assert!(
        msg.contains("`encoder.outputs` of type `(B, D:1024, T)"),
        "{msg}"
    );
    assert!(msg.contains("DIM_INCOMPATIBLE"), "{msg}");
    assert!(
        msg.contains("port type: (B, D:512, T) AcousticEncodedRepresentation"),
        "{msg}"
    );
    // A bad value deep in the encoder's block list: the key path, the line, the value.
    let msg = miswired(
        "{filters: 256, repeat: 1, kernel: [15],",
        "{filters: 256, repeat: 1, kernel: [16],",
    )?;
    assert!(
        msg.contains("miswired.yaml:45:")
            && msg.contains("`modules.encoder.config.jasper[2].kernel`"),
        "{msg}"
    );
    assert!(msg.contains("16 is not an odd positive size"), "{msg}");
    // A strided residual block would add tensors of two lengths.
    let msg = miswired("kernel: [15], stride: [1]", "kernel: [15], stride: [2]")?;
    assert!(
        msg.contains("`modules.encoder.config.jasper[2].stride`")
            && msg.contains("a residual block cannot be strided"),
        "{msg}"
    );
    // Forgotten lengths.
    let msg = miswired("  - preprocessor.processed_length -> encoder.length\n", "")?;
    assert!(
        msg.contains("mandatory input `encoder.length` of type `(B) Lengths` is not connected"),
        "{msg}"
    );
    assert!(msg.contains("preprocessor.processed_length"), "{msg}");
    Ok(())
}

/// The YAML model bound to a data layer's outputs is one graph with it: the graph's `train`
/// action lowers its CTC loss, `eval` and `infer` run it in eval mode.
#[test]
fn a_yaml_model_trains_evaluates_and_infers_through_the_graph_actions() -> TestResult {
    use std::sync::Arc;

    use nemo_core::dag::{BatchMean, Graph, TrainAction};
    use nemo_core::optim::{AdamW, AdamWConfig};
    use nemo_core::train::TrainerConfig;

    nemo_asr::registry::ensure_registered();
    let config = EncDecCtcModelConfig::from_yaml_file(&repo().join("configs/an4_small.yaml"))?;
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests/small.json");
    let data = Arc::new(eval_data_layer::<EncDecCtcModel>(&config, &manifest, 5)?);
    let graph = Graph::new();
    let batch = data.call(&graph)?;
    let bindings = [
        ("audio_signal", batch.audio_signal.into_dyn()),
        ("a_sig_length", batch.a_sig_length.into_dyn()),
        ("transcripts", batch.transcripts.into_dyn()),
        ("transcript_length", batch.transcript_length.into_dyn()),
    ];
    let model = ModelConfig::from_yaml_file(graph_path())?.build_on(
        &graph,
        &bindings,
        &Device::Cpu,
        &Default::default(),
    )?;
    let loss = model.handle("loss.loss").ok_or("no loss.loss")?.clone();
    let logprobs = model
        .handle("decoder.logprobs")
        .ok_or("no logprobs")?
        .clone();
    let eval_loss = |graph: &Graph| -> Result<f64, Box<dyn std::error::Error>> {
        let mut mean = BatchMean::new("loss", 0);
        let out = graph.eval(std::slice::from_ref(&loss), &mut [&mut mean])?;
        Ok(*out.get("loss").ok_or("no mean")?)
    };
    let before = eval_loss(&graph)?;
    let mut optimizer = AdamW::new(graph.params().trainable_vars(), AdamWConfig::default())?;
    let mut trainer = TrainerConfig::new(30);
    trainer.progress = false;
    trainer.plot = false;
    let dir = tempfile::tempdir()?;
    let summary = graph.train(TrainAction::new(
        loss.clone(),
        &mut optimizer,
        3e-3,
        trainer,
        dir.path(),
    ))?;
    assert_eq!(summary.steps, 30);
    let after = eval_loss(&graph)?;
    assert!(
        after < 0.8 * before,
        "the CTC loss did not fall: {before} -> {after}"
    );
    let out = graph.infer(&[logprobs])?;
    assert_eq!(out[0].dim(0)?, 5);
    assert_eq!(out[0].dim(2)?, 29);
    Ok(())
}
