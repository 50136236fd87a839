//! The `nemo-asr` command line as a user runs it: train a small CTC model on the WAV fixtures,
//! train the attention model on top of its frozen encoder (`--init-encoder --freeze-encoder`), then
//! `eval` and `transcribe` both model directories; and a mismatched encoder is refused by name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::Tensor;
use nemo_asr::data::ENGLISH_LABELS;

use nemo_core::testing::TestResult;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../nemo-asr/tests/fixtures")
}

/// Runs `nemo-asr`: `$NEMO_ASR_BIN` (the packed binary on the GPU machine, `scripts/gpu_run.sh`),
/// else the one cargo built for this test.
fn nemo_asr(args: &[&str]) -> Result<Output, std::io::Error> {
    let bin = std::env::var_os("NEMO_ASR_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_nemo-asr")),
        PathBuf::from,
    );
    Command::new(bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
}

/// `nemo-asr train` with the arguments every run here shares, then `extra`.
fn train(
    config: &str,
    manifest: &str,
    out: &str,
    extra: &[&str],
) -> Result<Output, std::io::Error> {
    let mut args = vec![
        "train",
        "--config",
        config,
        "--train-manifest",
        manifest,
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args.push("--no-progress");
    nemo_asr(&args)
}

fn ok(out: &Output) -> Result<String, String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The sections both models share: labels, preprocessor and a tiny Jasper encoder (`filters` of
/// the middle block is the knob the mismatch test turns).
fn front_end(filters: usize) -> String {
    let labels = ENGLISH_LABELS.map(String::from);
    format!(
        r#"  sample_rate: 16000
  labels: {labels:?}
  preprocessor: {{sample_rate: 16000, features: 32, dither: 0.0}}
  encoder:
    feat_in: 32
    jasper:
      - {{filters: 64, kernel: [11], stride: [2], separable: true}}
      - {{filters: {filters}, repeat: 2, kernel: [13], separable: true}}
      - {{filters: 128, kernel: [1]}}
"#
    )
}

fn train_section(steps: u64, lr: f64, optim: &str, freeze: &str) -> String {
    format!(
        r#"train_ds:
  batch_size: 6
train:
  trainer:
    seed: 3
    max_steps: {steps}
    log_every: 10
    eval_every: {steps}
    plot: false
    freeze: {freeze}
  optim: {optim}
  sched: {{name: CosineAnnealing, lr: {lr}, warmup_steps: 5}}
"#
    )
}

fn ctc_config(filters: usize) -> String {
    format!(
        "model:\n  name: TinyCTC\n{}  decoder: {{feat_in: 128, num_classes: 28}}\n{}",
        front_end(filters),
        train_section(
            80,
            0.02,
            "{name: novograd, betas: [0.9, 0.5], weight_decay: 0.0}",
            "{enabled: false}"
        )
    )
}

fn las_config(filters: usize) -> String {
    format!(
        r#"model:
  name: TinyLAS
{}  connector: {{in_channels: 128, out_channels: 64}}
  decoder: {{voc_size: 31, bos_id: 28, hidden_size: 64, in_dropout: 0.0, gru_dropout: 0.0}}
  loss: {{pad_id: 30}}
  decoding: {{beam_size: 2, max_len: 40}}
{}"#,
        front_end(filters),
        train_section(
            30,
            0.003,
            "{name: adamw, betas: [0.9, 0.999], weight_decay: 0.0}",
            "{enabled: false}"
        )
    )
}

fn encoder_tensors(model_dir: &Path) -> Result<HashMap<String, Tensor>, candle_core::Error> {
    let all = candle_core::safetensors::load(
        model_dir.join("weights.safetensors"),
        &candle_core::Device::Cpu,
    )?;
    Ok(all
        .into_iter()
        .filter(|(k, _)| k.starts_with("encoder."))
        .collect())
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or_default()
}

#[test]
fn train_eval_transcribe_and_reuse_the_encoder_under_an_attention_decoder() -> TestResult {
    let dir = tempfile::tempdir()?;
    let manifest = fixtures().join("manifests/small.json");
    let manifest = manifest.to_str().ok_or("fixture path")?;
    let path = |name: &str| dir.path().join(name);
    let arg = |p: &PathBuf| p.to_string_lossy().into_owned();

    std::fs::write(path("ctc.yaml"), ctc_config(64))?;
    let (ctc_yaml, ctc_dir) = (arg(&path("ctc.yaml")), arg(&path("ctc")));
    let out = ok(&train(
        &ctc_yaml,
        manifest,
        &ctc_dir,
        &["--val-manifest", manifest],
    )?)?;
    assert!(last_line(&out).starts_with("dev WER: "), "{out}");
    for f in ["model.yaml", "labels.txt", "weights.safetensors"] {
        assert!(path("ctc").join(f).is_file(), "{f} in the model dir");
    }

    let out = ok(&nemo_asr(&[
        "eval",
        "--model",
        &ctc_dir,
        "--manifest",
        manifest,
    ])?)?;
    let wer = last_line(&out);
    let value: f64 = wer
        .strip_prefix("WER: ")
        .and_then(|w| w.strip_suffix('%'))
        .ok_or_else(|| format!("last line `{wer}`"))?
        .parse()?;
    assert!((0.0..=100.0).contains(&value), "{wer}");
    assert!(out.contains("CER: "), "{out}");

    let wav = fixtures().join("wav/a_s16_16k.wav");
    let wav = arg(&wav);
    let out = ok(&nemo_asr(&["transcribe", "--model", &ctc_dir, &wav])?)?;
    assert!(out.starts_with(&format!("{wav}\t")), "{out}");

    // A trigram LM of the transcripts, then beam search with it (lexicon-constrained).
    let lm = arg(&path("lm.arpa"));
    ok(&nemo_asr(&[
        "lm",
        "--manifest",
        manifest,
        "--order",
        "3",
        "--out",
        &lm,
    ])?)?;
    let arpa = std::fs::read_to_string(path("lm.arpa"))?;
    assert!(arpa.starts_with("\\data\\\nngram 1="), "{arpa}");
    assert!(
        arpa.contains("\tthe door\t") || arpa.contains("\tthe door\n"),
        "{arpa}"
    );
    let out = ok(&nemo_asr(&[
        "eval",
        "--model",
        &ctc_dir,
        "--manifest",
        manifest,
        "--lm",
        &lm,
        "--lexicon",
        "--beam-size",
        "8",
    ])?)?;
    assert!(last_line(&out).starts_with("WER: "), "{out}");

    // The attention model on the CTC model's encoder, frozen for the whole run.
    std::fs::write(path("las.yaml"), las_config(64))?;
    let (las_yaml, las_dir) = (arg(&path("las.yaml")), arg(&path("las")));
    let out = ok(&train(
        &las_yaml,
        manifest,
        &las_dir,
        &["--init-encoder", &ctc_dir, "--freeze-encoder"],
    )?)?;
    assert!(out.is_empty() || !out.contains("error"), "{out}");
    let ctc_enc = encoder_tensors(&path("ctc"))?;
    let las_enc = encoder_tensors(&path("las"))?;
    assert!(!ctc_enc.is_empty());
    assert_eq!(ctc_enc.len(), las_enc.len());
    for (name, t) in &ctc_enc {
        let u = las_enc.get(name).ok_or(format!("{name} missing"))?;
        // Bit-identical: no update, and (eval mode) no batch-norm statistics drift either.
        let same = t.eq(u)?.min_all()?.to_scalar::<u8>()? == 1;
        assert!(same, "{name} changed although the encoder was frozen");
    }

    let out = ok(&nemo_asr(&[
        "eval",
        "--model",
        &las_dir,
        "--manifest",
        manifest,
    ])?)?;
    assert!(last_line(&out).starts_with("WER: "), "{out}");
    let out = ok(&nemo_asr(&["transcribe", "--model", &las_dir, &wav])?)?;
    assert!(out.starts_with(&format!("{wav}\t")), "{out}");
    let out = nemo_asr(&["transcribe", "--model", &las_dir, "--lm", &lm, &wav])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("apply to CTC models"));

    // An encoder of another shape is refused, naming the section, and nothing is written.
    std::fs::write(path("las_wide.yaml"), las_config(96))?;
    let (wide_yaml, wide_dir) = (arg(&path("las_wide.yaml")), arg(&path("las_wide")));
    let out = train(
        &wide_yaml,
        manifest,
        &wide_dir,
        &["--init-encoder", &ctc_dir],
    )?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--init-encoder"), "{err}");
    assert!(err.contains("encoder` section"), "{err}");
    assert!(!path("las_wide").exists());

    // Audio too short for its transcript (an infinite CTC loss) is refused before training.
    let wav = fixtures().join("wav/a_s16_16k.wav");
    let line = serde_json::json!({
        "audio_filepath": wav,
        "duration": 0.984875,
        "text": "xy".repeat(30),
    });
    std::fs::write(path("short.json"), format!("{line}\n"))?;
    let out = train(
        &ctc_yaml,
        &arg(&path("short.json")),
        &arg(&path("short")),
        &[],
    )?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("short.json:1:") && err.contains("needs 60 CTC time steps"),
        "{err}"
    );
    assert!(!path("short").join("model.yaml").exists());
    Ok(())
}

#[test]
fn an_unknown_or_missing_device_is_refused_before_any_work() -> TestResult {
    let out = nemo_asr(&[
        "--device",
        "gpu",
        "eval",
        "--model",
        "m",
        "--manifest",
        "x.json",
    ])?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected `cpu`, `cuda` or `cuda:N`"), "{err}");
    if !cfg!(feature = "cuda") {
        let out = nemo_asr(&[
            "--device",
            "cuda:1",
            "eval",
            "--model",
            "m",
            "--manifest",
            "x.json",
        ])?;
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--device cuda:1") && err.contains("--features cuda"),
            "{err}"
        );
    }
    Ok(())
}

/// The percentage on the `WER: <p>%` last line of `eval`.
#[cfg(feature = "cuda")]
fn wer_of(out: &Output) -> TestResult<f64> {
    let stdout = ok(out)?;
    let last = last_line(&stdout);
    Ok(last
        .strip_prefix("WER: ")
        .and_then(|w| w.strip_suffix('%'))
        .ok_or_else(|| format!("last line `{last}`"))?
        .parse()?)
}

/// Trained on CUDA (`--device cuda`), the model evaluates alike on the GPU and the CPU. Built
/// with the `cuda` feature only (`scripts/gpu_build.sh`, then `scripts/gpu_run.sh` on the GPU
/// machine).
#[cfg(feature = "cuda")]
#[test]
fn the_cli_trains_on_cuda_and_the_model_evaluates_alike_on_gpu_and_cpu() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("ctc.yaml");
    std::fs::write(
        &config,
        ctc_config(64).replace("max_steps: 80", "max_steps: 120"),
    )?;
    let manifest = fixtures().join("manifests/small.json");
    let manifest = manifest.to_str().ok_or("fixture path")?;
    let model = dir.path().join("model");
    let model = model.to_str().ok_or("temp path")?;
    let config = config.to_str().ok_or("temp path")?;
    let mut args = vec!["--device", "cuda"];
    args.extend(["train", "--config", config, "--train-manifest", manifest]);
    args.extend(["--val-manifest", manifest, "--out", model, "--no-progress"]);
    let stdout = ok(&nemo_asr(&args)?)?;
    assert!(last_line(&stdout).starts_with("dev WER: "), "{stdout}");
    let eval = |device: &str| -> TestResult<f64> {
        let args = [
            "--device",
            device,
            "eval",
            "--model",
            model,
            "--manifest",
            manifest,
        ];
        wer_of(&nemo_asr(&args)?)
    };
    let (on_gpu, on_cpu) = (eval("cuda")?, eval("cpu")?);
    assert!(
        on_gpu <= 25.0,
        "the CUDA-trained model did not learn: WER {on_gpu}%"
    );
    // Other kernels, other rounding: greedy decoding may flip a rare frame, not a transcript.
    assert!(
        (on_gpu - on_cpu).abs() <= 5.0,
        "WER {on_gpu}% on CUDA, {on_cpu}% on the CPU"
    );
    Ok(())
}
