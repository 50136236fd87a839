//! GPU tests of the ASR collection, built only with the `cuda` feature and run on a machine with an
//! NVIDIA GPU (`scripts/gpu_build.sh` here, then `scripts/gpu_run.sh` there): the CUDA depthwise
//! convolution kernels against the CPU kernels (forward and both gradients, over strides,
//! dilations and paddings, in f32, f16 and bf16), the small Jasper CTC model trained end to end
//! on CUDA, BatchNorm (with and without its ReLU), the residual sum with ReLU and the length
//! masking against the CPU kernels, and the CLI training on CUDA (`--device cuda`) a model that evaluates alike on the GPU
//! and the CPU.
#![cfg(feature = "cuda")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{DType, Device, Tensor, Var};
use nemo_asr::data::ENGLISH_LABELS;
use nemo_asr::kernels::{add_relu, batch_norm_train, depthwise_conv1d, time_mask};
use nemo_asr::models::{EncDecCtcModel, EncDecCtcModelConfig};
use nemo_asr::models::{eval_data_layer, evaluate};
use nemo_asr::train::{SpeechTrainTask, TrainDataConfig, train_data_layer};
use nemo_core::optim::{LrPolicy, LrSchedule, OptimizerConfig};
use nemo_core::train::{Trainer, TrainerConfig};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `(B, C, T, K, stride, padding, dilation)`: QuartzNet's shapes ("same" padding, the strided
/// first block, the benchmark size) and odd ones (no padding, padding beyond the taps, dilation
/// with stride, K = 1, T barely longer than the dilated kernel).
const CASES: [(usize, usize, usize, usize, usize, usize, usize); 10] = [
    (2, 3, 17, 5, 1, 2, 1),
    (2, 4, 31, 3, 2, 1, 1),
    (1, 5, 40, 4, 3, 0, 2),
    (3, 2, 9, 1, 1, 0, 1),
    (2, 3, 50, 7, 2, 3, 3),
    (2, 6, 23, 11, 2, 5, 1),
    (1, 3, 12, 6, 1, 7, 2),
    (2, 2, 11, 5, 3, 0, 2),
    (4, 64, 301, 33, 1, 16, 1),
    (16, 256, 400, 21, 1, 10, 1),
];

/// `y = depthwise_conv1d(x, w)` and the gradients of `Σ y·r` with respect to `x` and `w`, as f32
/// vectors, computed on `dev` in `dtype` from the same f32 data.
fn run(
    dev: &Device,
    dtype: DType,
    case: (usize, usize, usize, usize, usize, usize, usize),
    data: &(Tensor, Tensor, Tensor),
) -> Res<[Vec<f32>; 3]> {
    let (_, _, _, _, stride, padding, dilation) = case;
    let x = Var::from_tensor(&data.0.to_device(dev)?.to_dtype(dtype)?)?;
    let w = Var::from_tensor(&data.1.to_device(dev)?.to_dtype(dtype)?)?;
    let y = depthwise_conv1d(x.as_tensor(), w.as_tensor(), stride, padding, dilation)?;
    let r = data.2.to_device(dev)?.to_dtype(dtype)?;
    let grads = (&y * &r)?.sum_all()?.backward()?;
    let flat = |t: &Tensor| -> Res<Vec<f32>> {
        Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    };
    let dx = grads.get(x.as_tensor()).ok_or("no gradient for x")?;
    let dw = grads.get(w.as_tensor()).ok_or("no gradient for w")?;
    Ok([flat(&y)?, flat(dx)?, flat(dw)?])
}

/// The largest difference relative to the reference's largest magnitude.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

#[test]
fn depthwise_conv1d_cuda_kernels_match_the_cpu_kernels() -> Res<()> {
    let cuda = Device::new_cuda(0)?;
    for case in CASES {
        let (b, c, t, k, stride, padding, dilation) = case;
        let t_out = (t + 2 * padding - dilation * (k - 1) - 1) / stride + 1;
        let data = (
            Tensor::randn(0f32, 1.0, (b, c, t), &Device::Cpu)?,
            Tensor::randn(0f32, 1.0, (c, 1, k), &Device::Cpu)?,
            Tensor::randn(0f32, 1.0, (b, c, t_out), &Device::Cpu)?,
        );
        let reference = run(&Device::Cpu, DType::F32, case, &data)?;
        // f16 has an 11-bit significand, bf16 an 8-bit one; both accumulate in f32.
        for (dtype, tol) in [(DType::F32, 1e-5), (DType::F16, 4e-3), (DType::BF16, 3e-2)] {
            let got = run(&cuda, dtype, case, &data)?;
            for (what, (g, r)) in ["y", "dx", "dw"].iter().zip(got.iter().zip(&reference)) {
                let err = rel_err(g, r);
                assert!(
                    err <= tol,
                    "{case:?} {dtype:?} {what}: relative error {err:e} > {tol:e}"
                );
            }
        }
    }
    Ok(())
}

/// `y = time_mask(add_relu(x, r), lengths)` and the gradients of `Σ y·w` with respect to `x` and
/// `r`, as f32 vectors, computed on `dev` in `dtype` from `(x, r, w)`.
fn run_block_ops(
    dev: &Device,
    dtype: DType,
    lengths: &[usize],
    data: &(Tensor, Tensor, Tensor),
) -> Res<[Vec<f32>; 3]> {
    let x = Var::from_tensor(&data.0.to_device(dev)?.to_dtype(dtype)?)?;
    let r = Var::from_tensor(&data.1.to_device(dev)?.to_dtype(dtype)?)?;
    let y = time_mask(&add_relu(x.as_tensor(), r.as_tensor())?, lengths)?;
    let w = data.2.to_device(dev)?.to_dtype(dtype)?;
    let grads = (&y * &w)?.sum_all()?.backward()?;
    let flat = |t: &Tensor| -> Res<Vec<f32>> {
        Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    };
    let dx = grads.get(x.as_tensor()).ok_or("no gradient for x")?;
    let dr = grads.get(r.as_tensor()).ok_or("no gradient for r")?;
    Ok([flat(&y)?, flat(dx)?, flat(dr)?])
}

#[test]
fn add_relu_and_time_mask_cuda_kernels_match_the_cpu_kernels() -> Res<()> {
    let cuda = Device::new_cuda(0)?;
    // (B, C, T) and the lengths: none cut, some cut, one empty, the benchmark size.
    let cases: [((usize, usize, usize), Vec<usize>); 4] = [
        ((1, 1, 1), vec![1]),
        ((2, 3, 17), vec![17, 9]),
        ((3, 5, 64), vec![0, 64, 63]),
        ((16, 256, 400), (0..16).map(|i| 400 - 13 * i).collect()),
    ];
    for ((b, c, t), lengths) in cases {
        // The inputs are rounded to each dtype first, so the sums (exact in f32) have the same
        // signs on both sides and the gradients are bit-equal; y differs by one rounding.
        for (dtype, tol) in [(DType::F32, 1e-6), (DType::F16, 1e-3), (DType::BF16, 8e-3)] {
            let rounded = |shape: (usize, usize, usize)| -> Res<Tensor> {
                Ok(Tensor::randn(0f32, 1.0, shape, &Device::Cpu)?
                    .to_dtype(dtype)?
                    .to_dtype(DType::F32)?)
            };
            let data = (
                rounded((b, c, t))?,
                rounded((b, c, t))?,
                rounded((b, c, t))?,
            );
            let reference = run_block_ops(&Device::Cpu, DType::F32, &lengths, &data)?;
            let got = run_block_ops(&cuda, dtype, &lengths, &data)?;
            for (what, (g, r)) in ["y", "dx", "dr"].iter().zip(got.iter().zip(&reference)) {
                let err = rel_err(g, r);
                assert!(
                    err <= tol,
                    "{:?} {lengths:?} {dtype:?} {what}: relative error {err:e} > {tol:e}",
                    (b, c, t)
                );
            }
        }
    }
    Ok(())
}

/// Training-mode `batch_norm_train(x, γ, β)` on `dev` with `x` in `dtype` (`γ`, `β` f32): `y`, the
/// batch mean and variance, and the gradients of `Σ y·w` with respect to `x`, `γ` and `β`, as f32
/// vectors.
fn run_batch_norm(
    dev: &Device,
    dtype: DType,
    relu: bool,
    data: &(Tensor, Tensor, Tensor, Tensor),
) -> Res<[Vec<f32>; 6]> {
    let x = Var::from_tensor(&data.0.to_device(dev)?.to_dtype(dtype)?)?;
    let gamma = Var::from_tensor(&data.1.to_device(dev)?)?;
    let beta = Var::from_tensor(&data.2.to_device(dev)?)?;
    let (y, stats) = batch_norm_train(
        x.as_tensor(),
        gamma.as_tensor(),
        beta.as_tensor(),
        1e-3,
        relu,
    )?;
    let w = data.3.to_device(dev)?.to_dtype(dtype)?;
    let grads = (&y * &w)?.to_dtype(DType::F32)?.sum_all()?.backward()?;
    let flat = |t: &Tensor| -> Res<Vec<f32>> {
        Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    };
    let grad = |v: &Var| grads.get(v.as_tensor()).ok_or("missing gradient");
    Ok([
        flat(&y)?,
        flat(&stats.mean)?,
        flat(&stats.var)?,
        flat(grad(&x)?)?,
        flat(grad(&gamma)?)?,
        flat(grad(&beta)?)?,
    ])
}

#[test]
fn batch_norm_cuda_kernels_match_the_cpu_kernels() -> Res<()> {
    let cuda = Device::new_cuda(0)?;
    // (B, C, T, offset of the data): tiny, QuartzNet's first block, the benchmark's size, and
    // channels far from zero (f32 only: f16 cannot hold 100 + N(0, 1) to its digits).
    let cases = [
        (2, 3, 5, 0.0),
        (4, 64, 301, 0.0),
        (16, 256, 200, 0.0),
        (3, 8, 77, 100.0),
    ];
    for (b, c, t, offset) in cases {
        for (dtype, tol) in [
            (DType::F32, 2e-5),
            (DType::F16, 2e-3),
            (DType::BF16, 1.6e-2),
        ] {
            if offset != 0.0 && dtype != DType::F32 {
                continue;
            }
            let rounded =
                |t: Tensor| -> Res<Tensor> { Ok(t.to_dtype(dtype)?.to_dtype(DType::F32)?) };
            let data = (
                rounded((Tensor::randn(0f32, 1.0, (b, c, t), &Device::Cpu)? + offset)?)?,
                Tensor::randn(1f32, 0.3, c, &Device::Cpu)?,
                Tensor::randn(0f32, 0.3, c, &Device::Cpu)?,
                rounded(Tensor::randn(0f32, 1.0, (b, c, t), &Device::Cpu)?)?,
            );
            for relu in [false, true] {
                let reference = run_batch_norm(&Device::Cpu, DType::F32, relu, &data)?;
                let got = run_batch_norm(&cuda, dtype, relu, &data)?;
                // y and dx carry the dtype's rounding; the statistics and the parameter gradients
                // come from the same (rounded) values on both sides.
                let names = ["y", "mean", "var", "dx", "dgamma", "dbeta"];
                let tols = [tol, 1e-5, 1e-5, tol, 1e-4, 1e-4];
                for ((what, tol), (g, r)) in names.iter().zip(tols).zip(got.iter().zip(&reference))
                {
                    let err = rel_err(g, r);
                    assert!(
                        err <= tol,
                        "{:?} relu {relu} {dtype:?} {what}: relative error {err:e} > {tol:e}",
                        (b, c, t, offset)
                    );
                }
            }
        }
    }
    Ok(())
}

/// The tiny Jasper CTC model of the CPU tests (`train_ctc.rs`): the `model:` section's body, each
/// line prefixed with `indent`.
fn tiny_model_yaml(indent: &str) -> String {
    let labels = ENGLISH_LABELS.map(String::from);
    let body = format!(
        "name: Tiny
sample_rate: 16000
labels: {labels:?}
preprocessor: {{sample_rate: 16000, features: 32, dither: 0.0}}
encoder:
  feat_in: 32
  jasper:
    - {{filters: 64, kernel: [11], stride: [2], separable: true}}
    - {{filters: 64, repeat: 2, kernel: [13], residual: true, separable: true}}
    - {{filters: 128, kernel: [1]}}
decoder: {{feat_in: 128, num_classes: 28}}
"
    );
    body.lines().map(|l| format!("{indent}{l}\n")).collect()
}

/// The committed WAV fixtures' manifest.
fn fixtures_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests/small.json")
}

/// Trains the tiny model on the fixtures on CUDA with the trainer's `precision.mode` (`f32` or
/// `f16`, the latter with dynamic loss scaling); checks that it learned them and that the master
/// weights stayed f32 on the GPU.
fn learns_the_fixtures_on_cuda(mode: &str) -> Res<()> {
    let dev = Device::new_cuda(0)?;
    let config = EncDecCtcModelConfig::from_yaml(&tiny_model_yaml(""))?;
    let manifest = fixtures_manifest();
    let model = EncDecCtcModel::new(config.clone(), 7, &dev)?;
    let train = train_data_layer(
        &model,
        &manifest,
        &TrainDataConfig {
            batch_size: 5,
            ..Default::default()
        },
        7,
    )?;
    let mut task = SpeechTrainTask::new(&model, &train, Some(&train), 1, 7)?;
    let optimizer: OptimizerConfig =
        serde_json::from_str(r#"{"name": "novograd", "betas": [0.9, 0.5], "weight_decay": 0.0}"#)?;
    let mut opt = optimizer.build(model.params().trainable_vars())?;
    let mut tcfg = TrainerConfig::new(160);
    tcfg.progress = false;
    tcfg.precision = serde_json::from_str(&format!(r#"{{"mode": "{mode}"}}"#))?;
    let run = tempfile::tempdir()?;
    let schedule = LrSchedule::new(LrPolicy::CosineAnnealing, 0.02).with_warmup_steps(10);
    let summary = Trainer::new(tcfg, run.path())?.fit(&mut task, opt.as_mut(), &schedule, 0)?;
    let first = summary.history.first().map_or(f64::NAN, |r| r.loss);
    let last = summary.history.last().map_or(f64::NAN, |r| r.loss);
    assert!(
        last < first * 0.05,
        "{mode}: loss {first} -> {last}: did not learn"
    );
    assert!(
        model
            .params()
            .tensors()
            .iter()
            .all(|(_, t)| t.device().is_cuda() && t.dtype() == DType::F32),
        "{mode}: master weights left f32 or the GPU"
    );
    let wer = evaluate(&model, &train)?.wer().unwrap_or(1.0);
    assert!(wer <= 0.25, "{mode}: training-set WER {wer}");
    Ok(())
}

#[test]
fn jasper_ctc_learns_the_fixtures_on_cuda() -> Res<()> {
    learns_the_fixtures_on_cuda("f32")
}

#[test]
fn jasper_ctc_learns_the_fixtures_on_cuda_in_f16_mixed_precision() -> Res<()> {
    learns_the_fixtures_on_cuda("f16")
}

/// Runs the `nemo-asr` binary: `$NEMO_ASR_BIN` (set by `scripts/gpu_run.sh` to the packed
/// binary), else the one cargo built beside this test.
fn nemo_asr(args: &[&str]) -> Res<Output> {
    let bin = std::env::var_os("NEMO_ASR_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_nemo-asr")),
        PathBuf::from,
    );
    let out = Command::new(&bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "{} {args:?}: {:?}\n{}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out)
}

/// The percentage on the `WER: <p>%` last line of `eval`.
fn wer_of(out: &Output) -> Res<f64> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    Ok(last
        .strip_prefix("WER: ")
        .and_then(|w| w.strip_suffix('%'))
        .ok_or_else(|| format!("last line `{last}`"))?
        .parse()?)
}

#[test]
fn the_cli_trains_on_cuda_and_the_model_evaluates_alike_on_gpu_and_cpu() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("tiny.yaml");
    std::fs::write(
        &config,
        format!(
            "model:\n{}train:
  batch_size: 6
  seed: 3
  trainer: {{max_steps: 120, log_every: 20, eval_every: 120, plot: false}}
  optim: {{name: novograd, betas: [0.9, 0.5], weight_decay: 0.0}}
  sched: {{name: CosineAnnealing, lr: 0.02, warmup_steps: 10}}
",
            tiny_model_yaml("  ")
        ),
    )?;
    let manifest = fixtures_manifest();
    let manifest = manifest.to_str().ok_or("fixture path")?;
    let model = dir.path().join("model");
    let model = model.to_str().ok_or("temp path")?;
    let config = config.to_str().ok_or("temp path")?;
    let out = nemo_asr(&[
        "--device",
        "cuda",
        "train",
        "--config",
        config,
        "--train-manifest",
        manifest,
        "--val-manifest",
        manifest,
        "--out",
        model,
        "--no-progress",
    ])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("dev WER: ")),
        "{stdout}"
    );
    let on_gpu = wer_of(&nemo_asr(&[
        "--device",
        "cuda",
        "eval",
        "--model",
        model,
        "--manifest",
        manifest,
    ])?)?;
    let on_cpu = wer_of(&nemo_asr(&[
        "eval",
        "--model",
        model,
        "--manifest",
        manifest,
    ])?)?;
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
