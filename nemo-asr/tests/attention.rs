//! The attention model of the paper's §4.1.2: `JasperRnnConnector`, `DecoderRnn` (GRU/LSTM,
//! general/dot/Bahdanau attention), `SequenceLoss`, and `EncDecAttentionModel` trained on the
//! committed WAV fixtures. Greedy and beam search: `attention_search.rs`.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor, Var};
use common::attention::{ALL, decoder, enc_batch, usize_lens};
use nemo_asr::data::ENGLISH_LABELS;
use nemo_asr::decoding::BeamSearchConfig;
use nemo_asr::models::{EncDecAttentionModel, EncDecAttentionModelConfig};
use nemo_asr::models::{eval_data_layer, evaluate_with};
use nemo_asr::modules::*;
use nemo_asr::train::{SpeechTrainTask, TrainDataConfig, read_run_config, train_data_layer};
use nemo_core::optim::{LrPolicy, LrSchedule, OptimizerConfig};
use nemo_core::params::Parameters;
use nemo_core::prelude::*;
use nemo_core::train::{Trainer, TrainerConfig};

use nemo_core::testing::TestResult;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn labels_yaml() -> String {
    format!("{:?}", ENGLISH_LABELS.map(String::from))
}

fn tiny_model_config(rnn: &str, method: &str) -> TestResult<EncDecAttentionModelConfig> {
    tiny_model_config_with(rnn, method, false)
}

fn tiny_model_config_with(
    rnn: &str,
    method: &str,
    input_feeding: bool,
) -> TestResult<EncDecAttentionModelConfig> {
    let yaml = format!(
        r#"
name: TinyLAS
sample_rate: 16000
labels: {labels}
preprocessor: {{sample_rate: 16000, features: 32, dither: 0.0}}
encoder:
  feat_in: 32
  jasper:
    - {{filters: 64, kernel: [11], stride: [2], separable: true}}
    - {{filters: 64, repeat: 2, kernel: [13], residual: true, separable: true}}
    - {{filters: 128, kernel: [1]}}
connector: {{in_channels: 128, out_channels: 64}}
decoder:
  voc_size: 31
  bos_id: 28
  hidden_size: 64
  rnn_type: {rnn}
  attention_method: {method}
  input_feeding: {input_feeding}
  in_dropout: 0.0
  gru_dropout: 0.0
loss: {{pad_id: 30}}
decoding: {{beam_size: 1, max_len: 40}}
"#,
        labels = labels_yaml()
    );
    Ok(EncDecAttentionModelConfig::from_yaml(&yaml)?)
}

#[test]
fn the_shipped_config_parses_and_mismatches_name_their_key() -> TestResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/las_small.yaml");
    let run = read_run_config::<EncDecAttentionModel>(&path)?;
    assert_eq!(run.model.decoder.voc_size, run.model.labels.len() + 3);
    assert_eq!(run.model.decoder.hidden_size, 256);
    assert_eq!(
        run.model.encoder.feat_out(),
        run.model.connector.in_channels
    );

    let mut bad = run.model.clone();
    bad.decoder.voc_size = 29;
    let err = bad.validate().err().ok_or("voc_size 29 accepted")?;
    assert!(err.to_string().contains("decoder.voc_size"), "{err}");
    let mut bad = run.model.clone();
    bad.loss.pad_id = 0;
    let err = bad.validate().err().ok_or("pad_id 0 accepted")?;
    assert!(err.to_string().contains("loss.pad_id"), "{err}");
    assert!(run.model.decoding.coverage_penalty > 0.0);
    let mut bad = run.model.clone();
    bad.decoding.coverage_penalty = -1.0;
    let err = bad.validate().err().ok_or("negative coverage accepted")?;
    assert!(
        err.to_string().contains("decoding.coverage_penalty"),
        "{err}"
    );
    let mut bad = run.model;
    bad.connector.out_channels = 128;
    let err = bad.validate().err().ok_or("connector width accepted")?;
    assert!(err.to_string().contains("connector.out_channels"), "{err}");
    Ok(())
}

#[test]
fn connector_is_a_1x1_conv_and_a_transpose() -> TestResult {
    let dev = Device::Cpu;
    let params = Parameters::new();
    let vb = params.var_builder(DType::F32, &dev);
    let cfg = JasperRnnConnectorConfig {
        in_channels: 3,
        out_channels: 2,
    };
    let con = cfg.init(vb.pp("connector"))?;
    let types = con.output_types().to_string();
    assert!(types.contains("EncodedRepresentation"), "{types}");
    let x = Tensor::arange(0f32, 24.0, &dev)?
        .reshape((2, 3, 4))?
        .affine(0.1, -1.0)?;
    let typed: NTensor<(B, D, T), AcousticEncodedRepresentation> = NTensor::new(x.clone())?;
    let out = con.forward(JasperRnnConnectorInputs { tensor: &typed })?;
    assert_eq!(out.tensor.dims(), &[2, 4, 2]);
    let w: Vec<Vec<f32>> = params
        .varmap()
        .get(
            (2, 3, 1),
            "connector.icnn.weight",
            candle_nn::init::ZERO,
            DType::F32,
            &dev,
        )?
        .squeeze(2)?
        .to_vec2()?;
    let bias: Vec<f32> = params
        .varmap()
        .get(
            2,
            "connector.icnn.bias",
            candle_nn::init::ZERO,
            DType::F32,
            &dev,
        )?
        .to_vec1()?;
    let xs: Vec<Vec<Vec<f32>>> = x.to_vec3()?;
    let ys: Vec<Vec<Vec<f32>>> = out.tensor.tensor().to_vec3()?;
    for b in 0..2 {
        for t in 0..4 {
            for o in 0..2 {
                let want: f32 = bias[o] + (0..3).map(|i| w[o][i] * xs[b][i][t]).sum::<f32>();
                assert!((ys[b][t][o] - want).abs() < 1e-5, "{b} {t} {o}");
            }
        }
    }
    // A wrong channel count is a runtime type error naming the port.
    let wrong: NTensor<(B, D, T), AcousticEncodedRepresentation> =
        NTensor::new(Tensor::zeros((2, 5, 4), DType::F32, &dev)?)?;
    let err = con
        .forward(JasperRnnConnectorInputs { tensor: &wrong })
        .err()
        .ok_or("5 channels accepted")?;
    assert!(err.to_string().contains("tensor"), "{err}");
    Ok(())
}

#[test]
fn decoder_ports_shapes_and_masked_attention() -> TestResult {
    let dev = Device::Cpu;
    for (rnn, method, feeding) in ALL {
        let (dec, _params) = decoder((rnn, method, feeding), DType::F32, 7, 6)?;
        let (enc, lens, targets) = enc_batch(DType::F32, 6)?;
        let run = |enc: &Tensor| -> TestResult<(Tensor, Tensor)> {
            let out = dec.forward(DecoderRnnInputs {
                targets: &NTensor::<(B, T), Labels>::new(targets.clone())?,
                encoder_outputs: &NTensor::<(B, T, D), EncodedRepresentation>::new(enc.clone())?,
                encoder_lengths: Some(NTensor::new(lens.clone())?),
            })?;
            let w = out.attention_weights.ok_or("no attention weights")?;
            Ok((out.log_probs.into_tensor(), w.into_tensor()))
        };
        let (logp, w) = run(&enc)?;
        assert_eq!(logp.dims(), &[2, 4, 7]);
        assert_eq!(w.dims(), &[2, 4, 5]);
        // Log-probabilities normalize.
        let sums: Vec<Vec<f32>> = logp.exp()?.sum(2)?.to_vec2()?;
        for v in sums.iter().flatten() {
            assert!(
                (v - 1.0).abs() < 1e-5,
                "{rnn:?} {method:?} feeding {feeding}: {v}"
            );
        }
        // Attention sums to 1 over valid frames and is exactly 0 on padding.
        let w: Vec<Vec<Vec<f32>>> = w.to_vec3()?;
        for (b, valid) in [(0usize, 5usize), (1, 3)] {
            for row in &w[b] {
                let s: f32 = row[..valid].iter().sum();
                assert!(
                    (s - 1.0).abs() < 1e-5,
                    "{rnn:?} {method:?} feeding {feeding}: {s}"
                );
                assert!(row[valid..].iter().all(|&x| x == 0.0), "{row:?}");
            }
        }
        // Padding frames do not influence the output.
        let noise = Tensor::ones((1, 2, 6), DType::F32, &dev)?.affine(5.0, 0.0)?;
        let row1 = Tensor::cat(&[&enc.i((1..2, 0..3, ..))?, &noise], 1)?;
        let enc2 = Tensor::cat(&[&enc.i(0..1)?, &row1], 0)?;
        let (logp2, _) = run(&enc2)?;
        let diff = (logp - logp2)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            diff < 1e-6,
            "{rnn:?} {method:?} feeding {feeding}: padding changed the output by {diff}"
        );
    }
    // A wrong hidden size is a runtime type error.
    let (dec, _) = decoder(
        (RnnType::Gru, AttentionMethod::General, false),
        DType::F32,
        7,
        6,
    )?;
    let (_, lens, targets) = enc_batch(DType::F32, 6)?;
    let wrong = Tensor::zeros((2, 5, 4), DType::F32, &dev)?;
    let err = dec
        .forward(DecoderRnnInputs {
            targets: &NTensor::<(B, T), Labels>::new(targets)?,
            encoder_outputs: &NTensor::<(B, T, D), EncodedRepresentation>::new(wrong)?,
            encoder_lengths: Some(NTensor::new(lens)?),
        })
        .err()
        .ok_or("hidden size 4 accepted")?;
    assert!(err.to_string().contains("encoder_outputs"), "{err}");
    Ok(())
}

#[test]
fn sequence_loss_matches_a_hand_computation_and_ignores_padding() -> TestResult {
    let dev = Device::Cpu;
    // (B=2, T=3, V=4) log-probabilities; PAD = 3.
    let raw = Tensor::new(
        &[
            [
                [0.1f64, 0.5, -0.3, 0.2],
                [1.0, 0.0, 0.0, -1.0],
                [0.3, 0.3, 0.9, 0.1],
            ],
            [
                [-0.2, 0.4, 0.0, 0.8],
                [0.6, -0.6, 0.2, 0.0],
                [2.0, 1.0, 0.0, -1.0],
            ],
        ],
        &dev,
    )?;
    let lse = raw.exp()?.sum_keepdim(2)?.log()?;
    let logp = raw.broadcast_sub(&lse)?;
    let targets = Tensor::new(&[[2i64, 0, 1], [1, 3, 3]], &dev)?;
    let lp: Vec<Vec<Vec<f64>>> = logp.to_vec3()?;
    let valid = [(0, 0, 2), (0, 1, 0), (0, 2, 1), (1, 0, 1)];
    let mean = |b: usize, t: usize| lp[b][t].iter().sum::<f64>() / 4.0;
    let loss = |cfg: SequenceLossConfig| -> TestResult<f64> {
        let l = cfg.init()?;
        let out = l.forward(SequenceLossInputs {
            log_probs: &NTensor::<(B, T, D), Logprobs>::new(logp.clone())?,
            targets: &NTensor::<(B, T), Labels>::new(targets.clone())?,
        })?;
        Ok(out.loss.tensor().to_scalar::<f64>()?)
    };
    let cfg = SequenceLossConfig {
        pad_id: 3,
        ..Default::default()
    };
    let want = -valid.iter().map(|&(b, t, y)| lp[b][t][y]).sum::<f64>() / 4.0;
    assert!((loss(cfg.clone())? - want).abs() < 1e-12);

    let s = 0.1;
    let smooth = SequenceLossConfig {
        smoothing_coef: s,
        ..cfg.clone()
    };
    let want_s = -valid
        .iter()
        .map(|&(b, t, y)| (1.0 - s) * lp[b][t][y] + s * mean(b, t))
        .sum::<f64>()
        / 4.0;
    assert!((loss(smooth)? - want_s).abs() < 1e-12);

    let sample = SequenceLossConfig {
        sample_wise: true,
        ..cfg.clone()
    };
    let row0 = (lp[0][0][2] + lp[0][1][0] + lp[0][2][1]) / 3.0;
    let row1 = lp[1][0][1];
    assert!((loss(sample)? - (-(row0 + row1) / 2.0)).abs() < 1e-12);

    // Changing the log-probabilities at padded steps changes nothing, nor does their gradient.
    let var = Var::from_tensor(&logp)?;
    let l = cfg.init()?;
    let value = l.compute(var.as_tensor(), &targets)?;
    let grads = value.backward()?;
    let g: Vec<Vec<Vec<f64>>> = grads.get(var.as_tensor()).ok_or("no grad")?.to_vec3()?;
    assert!(g[1][1].iter().chain(&g[1][2]).all(|&x| x == 0.0));
    assert!((g[0][0][2] + 0.25).abs() < 1e-12);
    let shifted = logp.i(1)?.i(1..3)?.affine(1.0, -3.0)?;
    let logp2 = Tensor::cat(
        &[
            &logp.i(0..1)?,
            &Tensor::cat(&[&logp.i((1..2, 0..1))?, &shifted.unsqueeze(0)?], 1)?,
        ],
        0,
    )?;
    let v2 = l.compute(&logp2, &targets)?.to_scalar::<f64>()?;
    assert!((v2 - value.to_scalar::<f64>()?).abs() < 1e-12);

    // Out-of-range targets are errors, not panics.
    let bad = Tensor::new(&[[7i64, 0, 1], [1, 3, 3]], &dev)?;
    assert!(l.compute(&logp, &bad).is_err());
    Ok(())
}

/// Finite differences of the loss against backward, in f64, for every variable of the decoder.
#[test]
fn decoder_gradients_match_finite_differences() -> TestResult {
    for (rnn, method, feeding) in ALL {
        let (dec, params) = decoder((rnn, method, feeding), DType::F64, 5, 3)?;
        let loss_fn = (SequenceLossConfig {
            pad_id: 4,
            smoothing_coef: 0.1,
            sample_wise: false,
            ..Default::default()
        })
        .init()?;
        let dev = Device::Cpu;
        let enc = Var::from_tensor(
            &Tensor::arange(0f64, 24.0, &dev)?
                .reshape((2, 4, 3))?
                .affine(0.41, 0.2)?
                .cos()?,
        )?;
        let lens = [4usize, 2];
        let targets = Tensor::new(&[[1i64, 2, 3], [2, 1, 4]], &dev)?;
        let loss = || -> TestResult<Tensor> {
            let (logp, _) =
                dec.decode(&targets, enc.as_tensor(), Some(&lens), &ForwardCtx::eval())?;
            Ok(loss_fn.compute(&logp, &targets)?)
        };
        let grads = loss()?.backward()?;
        let mut vars: Vec<(String, Var)> = params.named_vars();
        vars.push(("encoder_outputs".into(), enc.clone()));
        for (name, var) in vars {
            let g = grads
                .get(var.as_tensor())
                .ok_or(format!(
                    "{rnn:?} {method:?} feeding {feeding}: no gradient for {name}"
                ))?
                .flatten_all()?
                .to_vec1::<f64>()?;
            let base = var.as_tensor().flatten_all()?.to_vec1::<f64>()?;
            let n = base.len();
            for idx in [0, n / 2, n - 1] {
                let eps = 1e-6;
                let mut plus = base.clone();
                plus[idx] += eps;
                var.set(&Tensor::from_vec(plus, var.shape(), &dev)?)?;
                let lp = loss()?.to_scalar::<f64>()?;
                let mut minus = base.clone();
                minus[idx] -= eps;
                var.set(&Tensor::from_vec(minus, var.shape(), &dev)?)?;
                let lm = loss()?.to_scalar::<f64>()?;
                var.set(&Tensor::from_vec(base.clone(), var.shape(), &dev)?)?;
                let fd = (lp - lm) / (2.0 * eps);
                assert!(
                    (fd - g[idx]).abs() <= 1e-6 + 1e-5 * fd.abs(),
                    "{rnn:?} {method:?} feeding {feeding} {name}[{idx}]: finite difference {fd}, backward {}",
                    g[idx]
                );
            }
        }
    }
    Ok(())
}

#[test]
fn every_trainable_variable_gets_a_gradient() -> TestResult {
    let dev = Device::Cpu;
    for (rnn, method, feeding) in [("gru", "general", false), ("lstm", "bahdanau", true)] {
        let config = tiny_model_config_with(rnn, method, feeding)?;
        let model = EncDecAttentionModel::new(config.clone(), 5, &dev)?;
        let layer = eval_data_layer::<EncDecAttentionModel>(
            &config,
            &fixtures().join("manifests/small.json"),
            5,
        )?;
        let batch = layer.epoch(0, &dev).next().ok_or("no batch")??;
        let (loss, out) = model.loss(
            &batch.audio_signal,
            &batch.a_sig_length,
            &batch.transcripts,
            &ForwardCtx::train(0),
        )?;
        assert_eq!(out.log_probs.dims()[2], 31);
        let grads = loss.backward()?;
        for (name, var) in model.params().trainable_vars() {
            let g = grads
                .get(var.as_tensor())
                .ok_or(format!("{rnn} {method}: {name} got no gradient"))?;
            let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{rnn} {method}: {name} gradient norm {norm}"
            );
        }
    }
    Ok(())
}

/// `gru_dropout` acts between stacked layers in training, whether the pass is batched (plain
/// teacher forcing) or step by step (input feeding), and nowhere else.
#[test]
fn gru_dropout_acts_between_layers_in_both_training_passes() -> TestResult {
    for feeding in [false, true] {
        for layers in [1usize, 2] {
            let params = Parameters::new();
            let vb = params.var_builder(DType::F64, &Device::Cpu);
            let mut cfg = DecoderRnnConfig::new(7, 0, 6);
            cfg.in_dropout = 0.0;
            cfg.gru_dropout = 0.5;
            cfg.n_layers = layers;
            cfg.input_feeding = feeding;
            let dec = cfg.init(vb.pp("decoder"))?;
            let (enc, lens, targets) = enc_batch(DType::F64, 6)?;
            let lens = usize_lens(&lens)?;
            let (train, _) = dec.decode(&targets, &enc, Some(&lens), &ForwardCtx::train(3))?;
            let (eval, _) = dec.decode(&targets, &enc, Some(&lens), &ForwardCtx::eval())?;
            let d = (train - eval)?.abs()?.max_all()?.to_scalar::<f64>()?;
            if layers == 1 {
                assert_eq!(d, 0.0, "feeding {feeding}: dropout with one layer");
            } else {
                assert!(d > 1e-6, "feeding {feeding}: no dropout between layers");
            }
        }
    }
    Ok(())
}

/// Training's teacher-forced pass and inference's step-by-step calls are the same function.
#[test]
fn teacher_forced_decode_equals_chained_steps() -> TestResult {
    for (rnn, method, feeding) in ALL {
        let (dec, _params) = decoder((rnn, method, feeding), DType::F64, 7, 6)?;
        let (enc, lens, targets) = enc_batch(DType::F64, 6)?;
        let lens = usize_lens(&lens)?;
        let (logp, w) = dec.decode(&targets, &enc, Some(&lens), &ForwardCtx::eval())?;
        let ctx = dec.prepare(&enc, Some(&lens))?;
        let mut state = dec.init_state(2)?;
        let rows: Vec<Vec<i64>> = targets.to_vec2()?;
        let mut prev = vec![dec.config().bos_id; 2];
        for t in 0..rows[0].len() {
            let step = dec.step(&prev, &state, &ctx)?;
            let d1 = (step.log_probs - logp.i((.., t, ..))?)?.abs()?.max_all()?;
            let d2 = (step.attention_weights - w.i((.., t, ..))?)?
                .abs()?
                .max_all()?;
            let d = d1.to_scalar::<f64>()?.max(d2.to_scalar::<f64>()?);
            assert!(
                d < 1e-12,
                "{rnn:?} {method:?} feeding {feeding}: step {t} differs by {d}"
            );
            state = step.state;
            prev = rows.iter().map(|r| r[t] as u32).collect();
        }
    }
    Ok(())
}

fn tokens_of(
    model: &EncDecAttentionModel,
    layer: &nemo_asr::data::AudioToTextDataLayer,
    beam: usize,
) -> TestResult<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    let decoding = BeamSearchConfig {
        beam_size: beam,
        length_penalty: 0.0,
        max_len: 40,
        ..Default::default()
    };
    for batch in layer.epoch(0, model.device()) {
        let batch = batch?;
        out.extend(model.decode_ids(&batch.audio_signal, &batch.a_sig_length, &decoding)?);
    }
    Ok(out)
}

/// The log-probability the model gives each token sequence (EOS appended), teacher-forced.
fn sequence_logps(
    model: &EncDecAttentionModel,
    layer: &nemo_asr::data::AudioToTextDataLayer,
    seqs: &[Vec<u32>],
) -> TestResult<Vec<f64>> {
    let mut out = Vec::new();
    let eos = model.config().eos_id();
    let mut k = 0;
    for batch in layer.epoch(0, model.device()) {
        let batch = batch?;
        let (audio, len) = model.typed_audio(&batch.audio_signal, &batch.a_sig_length)?;
        let enc = model.encode(&audio, &len, &ForwardCtx::eval())?;
        let lens = usize_lens(enc.encoded_lengths.tensor())?;
        for (i, &l) in lens.iter().enumerate() {
            let seq = seqs.get(k).ok_or("too few sequences")?;
            k += 1;
            let mut ids: Vec<i64> = seq.iter().map(|&t| i64::from(t)).collect();
            ids.push(i64::from(eos));
            let n = ids.len();
            let targets = Tensor::from_vec(ids.clone(), (1, n), model.device())?;
            let e = enc.encoded.tensor().narrow(0, i, 1)?;
            let (logp, _) =
                model
                    .decoder()
                    .decode(&targets, &e, Some(&[l]), &ForwardCtx::eval())?;
            let lp: Vec<Vec<f32>> = logp.squeeze(0)?.to_vec2()?;
            out.push(
                ids.iter()
                    .zip(&lp)
                    .map(|(&t, row)| f64::from(row[t as usize]))
                    .sum(),
            );
        }
    }
    Ok(out)
}

#[test]
fn the_model_overfits_the_fixtures_and_round_trips_through_a_model_dir() -> TestResult {
    let dev = Device::Cpu;
    let manifest = fixtures().join("manifests/small.json");
    let config = tiny_model_config("gru", "general")?;
    let model = EncDecAttentionModel::new(config.clone(), 11, &dev)?;
    let train = train_data_layer(
        &model,
        &manifest,
        &TrainDataConfig {
            batch_size: 5,
            ..Default::default()
        },
        11,
    )?;
    let eval = eval_data_layer::<EncDecAttentionModel>(&config, &manifest, 5)?;
    let mut task = SpeechTrainTask::new(&model, &train, Some(&eval), 1)?;
    let optim: OptimizerConfig = serde_json::from_str(r#"{"name": "adamw", "weight_decay": 0.0}"#)?;
    let mut opt = optim.build(model.params().trainable_vars())?;
    let schedule = LrSchedule::new(LrPolicy::CosineAnnealing, 0.005).with_warmup_steps(10);
    let mut tcfg = TrainerConfig::new(150);
    tcfg.progress = false;
    tcfg.plot = false;
    tcfg.grad_clip = Some(5.0);
    let run = tempfile::tempdir()?;
    let trainer = Trainer::new(tcfg, run.path().join("run"))?;
    let summary = trainer.fit(&mut task, opt.as_mut(), &schedule, 0)?;
    let first = summary.history.first().map(|r| r.loss).unwrap_or(f64::NAN);
    let last = summary.history.last().map(|r| r.loss).unwrap_or(f64::NAN);
    assert!(
        last < 0.05 * first && last < 0.1,
        "loss {first} -> {last}: did not learn"
    );

    let wer = evaluate_with(&eval, model.labels(), &dev, |b| {
        model.transcribe(&b.audio_signal, &b.a_sig_length)
    })?;
    assert_eq!(wer.wer(), Some(0.0), "greedy WER {:?}", wer.wer());
    let greedy = tokens_of(&model, &eval, 1)?;
    let beam4 = tokens_of(&model, &eval, 4)?;
    // Beam search finds sequences at least as likely as greedy search's (α = 0).
    let g_lp = sequence_logps(&model, &eval, &greedy)?;
    let b_lp = sequence_logps(&model, &eval, &beam4)?;
    for (i, (g, b)) in g_lp.iter().zip(&b_lp).enumerate() {
        assert!(*b >= *g - 1e-4, "utterance {i}: beam {b} < greedy {g}");
    }

    // The saved model directory loads to the same outputs.
    let dir = run.path().join("model");
    model.save(&dir)?;
    let loaded = EncDecAttentionModel::load(&dir, &dev)?;
    assert_eq!(tokens_of(&loaded, &eval, 1)?, greedy);
    let batch = eval.epoch(0, &dev).next().ok_or("no batch")??;
    let eval = ForwardCtx::eval();
    let (l1, _) = model.loss(
        &batch.audio_signal,
        &batch.a_sig_length,
        &batch.transcripts,
        &eval,
    )?;
    let (l2, _) = loaded.loss(
        &batch.audio_signal,
        &batch.a_sig_length,
        &batch.transcripts,
        &eval,
    )?;
    assert_eq!(l1.to_scalar::<f32>()?, l2.to_scalar::<f32>()?);
    let texts = loaded.transcribe(&batch.audio_signal, &batch.a_sig_length)?;
    assert!(texts.iter().any(|t| t == "open the door"), "{texts:?}");
    Ok(())
}

fn fixture_tensor(v: &serde_json::Value, dev: &Device) -> TestResult<Tensor> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone())?;
    let data: Vec<f64> = serde_json::from_value(v["data"].clone())?;
    Ok(Tensor::from_vec(data, shape, dev)?)
}

/// PyTorch's `nn.GRU`/`nn.LSTM`, `nn.Embedding`, `nn.Linear` and NeMo's Luong attention
/// (scripts/decoder_rnn_reference.py) give the same log-probabilities and attention weights
/// under the same (NeMo-named) weights.
#[test]
fn decoder_matches_the_pytorch_reference() -> TestResult {
    let dev = Device::Cpu;
    let text = std::fs::read_to_string(fixtures().join("decoder_rnn_reference.json"))?;
    let fx: serde_json::Value = serde_json::from_str(&text)?;
    let voc: usize = serde_json::from_value(fx["voc_size"].clone())?;
    let hidden: usize = serde_json::from_value(fx["hidden_size"].clone())?;
    let enc = fixture_tensor(&fx["encoder_outputs"], &dev)?;
    let lens: Vec<usize> = serde_json::from_value(fx["encoder_lengths"].clone())?;
    let targets: Vec<Vec<i64>> = serde_json::from_value(fx["targets"].clone())?;
    let targets = Tensor::new(targets, &dev)?;
    let cases = fx["cases"].as_array().ok_or("no cases")?;
    for case in cases {
        let rnn = match case["rnn_type"].as_str() {
            Some("lstm") => RnnType::Lstm,
            _ => RnnType::Gru,
        };
        let (dec, params) = decoder(
            (rnn, AttentionMethod::General, false),
            DType::F64,
            voc,
            hidden,
        )?;
        let weights = case["weights"].as_object().ok_or("no weights")?;
        let vars = params.named_vars();
        assert_eq!(vars.len(), weights.len(), "{rnn:?}: parameter count");
        for (name, var) in &vars {
            let key = name.strip_prefix("decoder.").ok_or("unprefixed")?;
            let w = weights
                .get(key)
                .ok_or(format!("{key} not in the reference"))?;
            var.set(&fixture_tensor(w, &dev)?)?;
        }
        let (logp, attn) = dec.decode(&targets, &enc, Some(&lens), &ForwardCtx::eval())?;
        let want_lp: Vec<f64> = serde_json::from_value(case["log_probs"].clone())?;
        let want_w: Vec<f64> = serde_json::from_value(case["attention_weights"].clone())?;
        for (got, want) in [(logp, want_lp), (attn, want_w)] {
            let got: Vec<f64> = got.flatten_all()?.to_vec1()?;
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() < 1e-10, "{rnn:?} [{i}]: {g} vs {w}");
            }
        }
    }
    Ok(())
}
