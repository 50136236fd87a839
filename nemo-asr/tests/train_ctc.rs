//! End to end: a small Jasper CTC model trained through the typed modules, the core trainer and
//! NovoGrad on the committed WAV fixtures learns to transcribe them, saves a model directory that
//! loads back to the same transcripts, and resumes from a checkpoint exactly.

use std::path::{Path, PathBuf};

use candle_core::Device;
use nemo_asr::data::ENGLISH_LABELS;
use nemo_asr::models::{EncDecCtcModel, EncDecCtcModelConfig};
use nemo_asr::models::{eval_data_layer, evaluate};
use nemo_asr::train::{SpeechTrainTask, TrainDataConfig, train_data_layer};
use nemo_core::ForwardCtx;
use nemo_core::optim::{LrPolicy, LrSchedule, OptimizerConfig};
use nemo_core::train::{Trainer, TrainerConfig, latest_checkpoint};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tiny_config() -> Result<EncDecCtcModelConfig, Box<dyn std::error::Error>> {
    let labels = ENGLISH_LABELS.map(String::from);
    let yaml = format!(
        r#"
name: Tiny
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
"#
    );
    Ok(EncDecCtcModelConfig::from_yaml(&yaml)?)
}

fn optimizer() -> Result<OptimizerConfig, Box<dyn std::error::Error>> {
    Ok(serde_json::from_str(
        r#"{"name": "novograd", "betas": [0.9, 0.5], "weight_decay": 0.0}"#,
    )?)
}

#[test]
fn jasper_ctc_learns_the_fixtures_and_resumes_exactly() -> TestResult {
    let dev = Device::Cpu;
    let manifest = fixtures().join("manifests/small.json");
    let config = tiny_config()?;
    let run = tempfile::tempdir()?;
    let schedule = LrSchedule::new(LrPolicy::CosineAnnealing, 0.02).with_warmup_steps(10);
    let mut tcfg = TrainerConfig::new(160);
    tcfg.progress = false;
    tcfg.checkpoint_every = Some(80);

    // The full run.
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
    let mut task = SpeechTrainTask::new(&model, &train, Some(&train), 1)?;
    let mut opt = optimizer()?.build(model.params().trainable_vars())?;
    let trainer = Trainer::new(tcfg.clone(), run.path().join("full"))?;
    let full = trainer.fit(&mut task, opt.as_mut(), &schedule, 0)?;
    let first = full.history.first().map(|r| r.loss).unwrap_or(f64::NAN);
    let last = full.history.last().map(|r| r.loss).unwrap_or(f64::NAN);
    assert!(last < first * 0.05, "loss {first} -> {last}: did not learn");
    let wer = evaluate(&model, &train)?;
    assert!(
        wer.wer().unwrap_or(1.0) <= 0.25,
        "training-set WER {:?}",
        wer.wer()
    );

    // The saved model directory transcribes the same way.
    let dir = run.path().join("model");
    model.save(&dir)?;
    let loaded = EncDecCtcModel::load(&dir, &dev)?;
    assert_eq!(evaluate(&loaded, &train)?.wer(), wer.wer());

    // A fresh model (another seed) resumed from the run's step-80 checkpoint continues exactly as
    // the uninterrupted run did: same weights, optimizer state, data order and augmentation.
    let model3 = EncDecCtcModel::new(config, 99, &dev)?;
    let mut task3 = SpeechTrainTask::new(&model3, &train, Some(&train), 1)?;
    let mut opt3 = optimizer()?.build(model3.params().trainable_vars())?;
    let resumed_trainer = Trainer::new(tcfg, run.path().join("resumed"))?;
    let ckpt = trainer.checkpoint_dir().join("step-00000080");
    let start = resumed_trainer.resume(&ckpt, &mut task3, opt3.as_mut())?;
    assert_eq!(start, 80);
    let resumed = resumed_trainer.fit(&mut task3, opt3.as_mut(), &schedule, start)?;
    for (a, b) in full.history[80..].iter().zip(&resumed.history) {
        assert_eq!(a.step, b.step);
        assert!(
            (a.loss - b.loss).abs() <= 1e-4 * a.loss.abs().max(1.0),
            "step {}: {} vs {}",
            a.step,
            a.loss,
            b.loss
        );
    }
    Ok(())
}

#[test]
fn a_corrupt_checkpoint_is_refused_and_the_model_is_untouched() -> TestResult {
    let dev = Device::Cpu;
    let config = tiny_config()?;
    let model = EncDecCtcModel::new(config, 3, &dev)?;
    let run = tempfile::tempdir()?;
    let manifest = fixtures().join("manifests/small.json");
    let train = train_data_layer(
        &model,
        &manifest,
        &TrainDataConfig {
            batch_size: 5,
            ..Default::default()
        },
        3,
    )?;
    let mut task = SpeechTrainTask::new(&model, &train, None, 1)?;
    let mut opt = optimizer()?.build(model.params().trainable_vars())?;
    let mut tcfg = TrainerConfig::new(2);
    tcfg.progress = false;
    let trainer = Trainer::new(tcfg, run.path())?;
    trainer.fit(&mut task, opt.as_mut(), &LrSchedule::constant(0.01), 0)?;
    let ckpt = latest_checkpoint(&trainer.checkpoint_dir())?.ok_or("no checkpoint")?;
    let weights = ckpt.join("weights.safetensors");
    let bytes = std::fs::read(&weights)?;
    std::fs::write(&weights, &bytes[..bytes.len() / 2])?;
    let before = model.params().tensors();
    let err = trainer
        .resume(&ckpt, &mut task, opt.as_mut())
        .err()
        .ok_or("corrupt checkpoint accepted")?;
    assert!(err.to_string().contains("weights.safetensors"), "{err}");
    let after = model.params().tensors();
    for ((n, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(
            a.to_vec1::<f32>()
                .ok()
                .or_else(|| a.flatten_all().ok()?.to_vec1().ok()),
            b.flatten_all()?.to_vec1().ok(),
            "{n} changed"
        );
    }
    Ok(())
}

#[test]
fn encoded_length_is_what_the_forward_reports() -> TestResult {
    let mut config = tiny_config()?;
    // A second strided block, so lengths go through two strides.
    config.encoder.jasper[2].stride = 2;
    let model = EncDecCtcModel::new(config, 3, &Device::Cpu)?;
    let lens = [16_000usize, 12_345, 999, 161];
    let t = lens[0];
    let mut audio = vec![0f32; lens.len() * t];
    for (i, &n) in lens.iter().enumerate() {
        for (j, x) in audio[i * t..i * t + n].iter_mut().enumerate() {
            *x = ((i * 7 + j) as f32 * 0.01).sin();
        }
    }
    let audio = candle_core::Tensor::from_vec(audio, (lens.len(), t), &Device::Cpu)?;
    let len_t = candle_core::Tensor::new(lens.map(|n| n as i64).as_slice(), &Device::Cpu)?;
    let (a, l) = model.typed_audio(&audio, &len_t)?;
    let out = model.forward(&a, &l, &ForwardCtx::eval())?;
    let got = out.encoded_lengths.tensor().to_vec1::<i64>()?;
    let want: Vec<i64> = lens
        .iter()
        .map(|&n| model.encoded_length(n) as i64)
        .collect();
    assert_eq!(got, want);
    assert!(want[0] > want[1] && want[1] > want[2]);
    Ok(())
}

/// Cosine similarity of two gradients.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b)).max(f64::MIN_POSITIVE)
}

#[test]
fn bf16_mixed_precision_gives_f32_gradients_close_to_the_f32_ones() -> TestResult {
    let config = tiny_config()?;
    let model = EncDecCtcModel::new(config.clone(), 5, &Device::Cpu)?;
    // Evaluation mode: no dropout, BatchNorm from running statistics, so both passes see the same
    // function and differ only by rounding.
    let layer =
        eval_data_layer::<EncDecCtcModel>(&config, &fixtures().join("manifests/small.json"), 5)?;
    let b = layer.epoch(0, &Device::Cpu).next().ok_or("no batch")??;
    // The loss and each trainable variable's gradient.
    type Pass = (f64, Vec<(String, Vec<f32>)>);
    let pass = |dtype| -> Result<Pass, Box<dyn std::error::Error>> {
        model.set_compute_dtype(dtype)?;
        let (loss, _) = model.loss(
            &b.audio_signal,
            &b.a_sig_length,
            &b.transcripts,
            &b.transcript_length,
            &ForwardCtx::eval(),
        )?;
        assert_eq!(
            loss.dtype(),
            candle_core::DType::F32,
            "the CTC loss is computed in f32"
        );
        let grads = loss.backward()?;
        let mut out = Vec::new();
        for (name, var) in model.params().trainable_vars() {
            let g = grads
                .get(var.as_tensor())
                .ok_or(format!("{name}: no gradient"))?;
            assert_eq!(
                g.dtype(),
                candle_core::DType::F32,
                "{name}: master gradient dtype"
            );
            out.push((name, g.flatten_all()?.to_vec1::<f32>()?));
        }
        Ok((loss.to_scalar::<f32>()?.into(), out))
    };
    let (loss32, grads32) = pass(candle_core::DType::F32)?;
    let (loss16, grads16) = pass(candle_core::DType::BF16)?;
    assert!(
        (loss16 - loss32).abs() <= 0.02 * loss32.abs(),
        "loss {loss32} (f32) vs {loss16} (bf16)"
    );
    for ((name, g32), (_, g16)) in grads32.iter().zip(&grads16) {
        assert!(g16.iter().any(|v| *v != 0.0), "{name}: zero bf16 gradient");
        let cos = cosine(g32, g16);
        assert!(
            cos > 0.95,
            "{name}: gradient cosine {cos} between f32 and bf16"
        );
    }
    Ok(())
}

#[test]
fn the_trainer_runs_the_ctc_task_in_bf16() -> TestResult {
    let config = tiny_config()?;
    let model = EncDecCtcModel::new(config.clone(), 7, &Device::Cpu)?;
    let train = train_data_layer(
        &model,
        &fixtures().join("manifests/small.json"),
        &TrainDataConfig {
            batch_size: 5,
            ..Default::default()
        },
        7,
    )?;
    let mut task = SpeechTrainTask::new(&model, &train, None, 1)?;
    let mut opt = optimizer()?.build(model.params().trainable_vars())?;
    let mut tcfg = TrainerConfig::new(40);
    tcfg.progress = false;
    tcfg.precision = serde_json::from_str(r#"{"mode": "bf16"}"#)?;
    let run = tempfile::tempdir()?;
    let schedule = LrSchedule::new(LrPolicy::CosineAnnealing, 0.02).with_warmup_steps(5);
    let summary = Trainer::new(tcfg, run.path())?.fit(&mut task, opt.as_mut(), &schedule, 0)?;
    assert_eq!(model.compute_dtype(), candle_core::DType::BF16);
    let first = summary.history.first().map_or(f64::NAN, |r| r.loss);
    let last = summary.history.last().map_or(f64::NAN, |r| r.loss);
    assert!(
        summary.history.iter().all(|r| !r.skipped),
        "bf16 needs no loss scaling"
    );
    assert!(
        last < first * 0.5,
        "loss {first} -> {last}: did not learn in bf16"
    );
    // Master weights stay f32.
    assert!(
        model
            .params()
            .tensors()
            .iter()
            .all(|(_, t)| t.dtype() == candle_core::DType::F32)
    );
    Ok(())
}
