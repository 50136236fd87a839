//! CTC loss, greedy CTC decoding and WER/CER.
//!
//! Loss values and gradients with respect to the logits are compared with PyTorch's
//! `torch.nn.functional.ctc_loss` (fixtures `tests/fixtures/ctc_*.json`, written by
//! `scripts/ctc_reference.py`); the gradient with respect to `log_probs` is checked by central
//! finite differences and the loss by brute-force enumeration of every frame-level path.

use candle_core::{D, DType, Device, IndexOp, Tensor, Var};
use nemo_asr::Error;
use nemo_asr::data::ctc_min_steps;
use nemo_asr::decoding::{GreedyCtcDecoder, ctc_greedy_decode, ids_to_text};
use nemo_asr::losses::{CtcLossConfig, CtcOptions, CtcReduction, ctc_loss};
use nemo_asr::metrics::{WordErrorRate, char_error_rate, edit_distance, word_error_rate};
use nemo_core::NeuralModule;
use proptest::prelude::*;
use serde_json::Value;

use nemo_core::testing::{TestResult, to_f64_vec};

const FIXTURES: [&str; 7] = [
    "varlen",
    "repeats",
    "empty_target",
    "infeasible_zero_inf",
    "infeasible_inf",
    "blank_first",
    "chars",
];

const REDUCTIONS: [(&str, CtcReduction); 5] = [
    ("none", CtcReduction::None),
    ("sum", CtcReduction::Sum),
    ("mean", CtcReduction::Mean),
    ("mean_batch", CtcReduction::MeanBatch),
    ("mean_volume", CtcReduction::MeanVolume),
];

// ---------------------------------------------------------------------------------------------
// Fixture helpers

fn number(v: &Value) -> TestResult<f64> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "not an f64".into()),
        Value::String(s) => match s.as_str() {
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            "nan" => Ok(f64::NAN),
            other => Err(format!("bad number {other}").into()),
        },
        other => Err(format!("bad number {other}").into()),
    }
}

fn flat(v: &Value, out: &mut Vec<f64>) -> TestResult {
    match v {
        Value::Array(items) => items.iter().try_for_each(|x| flat(x, out)),
        x => {
            out.push(number(x)?);
            Ok(())
        }
    }
}

fn flat_vec(v: &Value) -> TestResult<Vec<f64>> {
    let mut out = Vec::new();
    flat(v, &mut out)?;
    Ok(out)
}

fn dims(v: &Value) -> Vec<usize> {
    let mut dims = Vec::new();
    let mut cur = v;
    while let Value::Array(items) = cur {
        dims.push(items.len());
        match items.first() {
            Some(first) => cur = first,
            None => break,
        }
    }
    dims
}

struct Fixture {
    json: Value,
    logits: Vec<f64>,
    shape: Vec<usize>,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    config: CtcOptions,
}

fn load(name: &str) -> TestResult<Fixture> {
    let path = format!(
        "{}/tests/fixtures/ctc_{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let dev = Device::Cpu;
    let ints = |key: &str| -> TestResult<Vec<i64>> {
        Ok(flat_vec(&json[key])?
            .into_iter()
            .map(|x| x as i64)
            .collect())
    };
    let tdims = dims(&json["targets"]);
    let targets = Tensor::from_vec(ints("targets")?, tdims, &dev)?;
    let input_lengths = Tensor::new(ints("input_lengths")?, &dev)?;
    let target_lengths = Tensor::new(ints("target_lengths")?, &dev)?;
    let config = CtcOptions {
        blank: json["blank"].as_u64().map(|b| b as usize),
        reduction: CtcReduction::None,
        zero_infinity: json["zero_infinity"].as_bool().unwrap_or(false),
    };
    Ok(Fixture {
        logits: flat_vec(&json["logits"])?,
        shape: dims(&json["logits"]),
        json,
        targets,
        input_lengths,
        target_lengths,
        config,
    })
}

/// `|a - e| <= atol + rtol * |e|`, with matching infinities and NaNs.
fn assert_close(actual: &[f64], expected: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        if e.is_nan() {
            assert!(a.is_nan(), "{what}[{i}]: expected NaN, got {a}");
        } else if e.is_infinite() {
            assert_eq!(a, e, "{what}[{i}]");
        } else {
            assert!(
                (a - e).abs() <= atol + rtol * e.abs(),
                "{what}[{i}]: got {a}, expected {e}"
            );
        }
    }
}

fn check_fixture(name: &str, dtype: DType, rtol: f64, atol: f64) -> TestResult {
    let fx = load(name)?;
    for (key, reduction) in REDUCTIONS {
        let entry = &fx.json["reductions"][key];
        let config = CtcOptions {
            reduction,
            ..fx.config
        };
        let logits = Var::from_tensor(
            &Tensor::from_vec(fx.logits.clone(), fx.shape.clone(), &Device::Cpu)?
                .to_dtype(dtype)?,
        )?;
        let log_probs = candle_nn::ops::log_softmax(logits.as_tensor(), D::Minus1)?;
        let loss = ctc_loss(
            &log_probs,
            &fx.targets,
            &fx.input_lengths,
            &fx.target_lengths,
            &config,
        )?;
        assert_eq!(loss.dtype(), dtype);
        let what = format!("{name}/{key}/{dtype:?}");
        assert_close(
            &to_f64_vec(&loss)?,
            &flat_vec(&entry["loss"])?,
            rtol,
            atol,
            &format!("{what} loss"),
        );
        if entry.get("grad_logits").is_some() {
            let grads = loss.backward()?;
            let g = grads.get(&logits).ok_or("no gradient for the logits")?;
            assert_close(
                &to_f64_vec(g)?,
                &flat_vec(&entry["grad_logits"])?,
                rtol,
                atol,
                &format!("{what} grad"),
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Loss against PyTorch

#[test]
fn loss_and_logit_gradients_match_pytorch_f32() -> TestResult {
    for name in FIXTURES {
        check_fixture(name, DType::F32, 1e-4, 1e-5)?;
    }
    Ok(())
}

#[test]
fn loss_and_logit_gradients_match_pytorch_f64() -> TestResult {
    for name in FIXTURES {
        check_fixture(name, DType::F64, 1e-9, 1e-11)?;
    }
    Ok(())
}

#[test]
fn half_precision_and_non_contiguous_inputs() -> TestResult {
    let fx = load("varlen")?;
    let expected = flat_vec(&fx.json["reductions"]["none"]["loss"])?;
    let logits = Tensor::from_vec(fx.logits.clone(), fx.shape.clone(), &Device::Cpu)?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    // (B, D, T) storage viewed as (B, T, D): not contiguous.
    let strided = log_probs.transpose(1, 2)?.contiguous()?.transpose(1, 2)?;
    assert!(!strided.is_contiguous());
    let loss = ctc_loss(
        &strided,
        &fx.targets,
        &fx.input_lengths,
        &fx.target_lengths,
        &fx.config,
    )?;
    assert_close(&to_f64_vec(&loss)?, &expected, 1e-9, 1e-11, "strided");
    let loss = ctc_loss(
        &log_probs.to_dtype(DType::F16)?,
        &fx.targets,
        &fx.input_lengths,
        &fx.target_lengths,
        &fx.config,
    )?;
    assert_eq!(loss.dtype(), DType::F16);
    assert_close(&to_f64_vec(&loss)?, &expected, 2e-3, 1e-2, "f16");
    // u32 targets and lengths give the same values as i64.
    let u32s = |t: &Tensor| t.to_dtype(DType::U32);
    let loss = ctc_loss(
        &log_probs,
        &u32s(&fx.targets)?,
        &u32s(&fx.input_lengths)?,
        &u32s(&fx.target_lengths)?,
        &fx.config,
    )?;
    assert_close(&to_f64_vec(&loss)?, &expected, 1e-9, 1e-11, "u32");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Gradient with respect to log_probs: finite differences

#[test]
fn log_prob_gradient_matches_finite_differences() -> TestResult {
    let dev = Device::Cpu;
    let (b, t, d) = (2usize, 7usize, 4usize);
    // Unnormalized log-probabilities: the loss is defined for any scores.
    let lp: Vec<f64> = (0..b * t * d)
        .map(|i| -0.2 - ((i * 7919 + 13) % 101) as f64 / 40.0)
        .collect();
    let targets = Tensor::new(&[[0u32, 0, 2], [1, 2, 0]], &dev)?;
    let input_lengths = Tensor::new(&[7u32, 5], &dev)?;
    let target_lengths = Tensor::new(&[3u32, 2], &dev)?;
    for reduction in [
        CtcReduction::Sum,
        CtcReduction::Mean,
        CtcReduction::MeanBatch,
    ] {
        let config = CtcOptions::from(reduction);
        let var = Var::from_vec(lp.clone(), (b, t, d), &dev)?;
        let loss = ctc_loss(
            var.as_tensor(),
            &targets,
            &input_lengths,
            &target_lengths,
            &config,
        )?;
        let analytic = to_f64_vec(loss.backward()?.get(&var).ok_or("no gradient")?)?;
        let eval = |x: &[f64]| -> TestResult<f64> {
            let t = Tensor::from_vec(x.to_vec(), (b, t, d), &dev)?;
            let l = ctc_loss(&t, &targets, &input_lengths, &target_lengths, &config)?;
            Ok(l.to_scalar::<f64>()?)
        };
        let h = 1e-6;
        for i in 0..lp.len() {
            let mut plus = lp.clone();
            plus[i] += h;
            let mut minus = lp.clone();
            minus[i] -= h;
            let numeric = (eval(&plus)? - eval(&minus)?) / (2.0 * h);
            assert!(
                (numeric - analytic[i]).abs() < 1e-7,
                "{reduction:?} element {i}: numeric {numeric}, analytic {}",
                analytic[i]
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Edge cases

#[test]
fn empty_input_and_empty_target_has_zero_loss() -> TestResult {
    let dev = Device::Cpu;
    let var = Var::from_tensor(&Tensor::full(-1.0f32, (2, 3, 3), &dev)?)?;
    let loss = ctc_loss(
        var.as_tensor(),
        &Tensor::new(&[[0u32], [1]], &dev)?,
        &Tensor::new(&[0u32, 3], &dev)?,
        &Tensor::new(&[0u32, 1], &dev)?,
        &CtcOptions::from(CtcReduction::None),
    )?;
    let v = loss.to_vec1::<f32>()?;
    assert_eq!(v[0], 0.0);
    assert!(v[1].is_finite() && v[1] > 0.0);
    let g = loss.sum_all()?.backward()?;
    let g = g.get(&var).ok_or("no gradient")?.i(0)?.flatten_all()?;
    assert!(g.to_vec1::<f32>()?.iter().all(|&x| x == 0.0));
    // A non-empty target in zero frames is infeasible.
    let loss = ctc_loss(
        var.as_tensor(),
        &Tensor::new(&[[0u32], [1]], &dev)?,
        &Tensor::new(&[0u32, 3], &dev)?,
        &Tensor::new(&[1u32, 1], &dev)?,
        &CtcOptions::from(CtcReduction::None),
    )?;
    assert_eq!(loss.to_vec1::<f32>()?[0], f32::INFINITY);
    Ok(())
}

#[test]
fn zero_infinity_zeroes_loss_and_gradient() -> TestResult {
    let dev = Device::Cpu;
    let var = Var::from_tensor(&Tensor::full(-1.0f64, (2, 3, 3), &dev)?)?;
    let config = CtcOptions {
        reduction: CtcReduction::Sum,
        zero_infinity: true,
        blank: None,
    };
    // Sample 0: "a a" needs 3 frames, has 2.
    let loss = ctc_loss(
        var.as_tensor(),
        &Tensor::new(&[[0u32, 0], [1, 0]], &dev)?,
        &Tensor::new(&[2u32, 3], &dev)?,
        &Tensor::new(&[2u32, 2], &dev)?,
        &config,
    )?;
    assert!(loss.to_scalar::<f64>()?.is_finite());
    let g = loss.backward()?;
    let g = g.get(&var).ok_or("no gradient")?;
    assert!(to_f64_vec(&g.i(0)?)?.iter().all(|&x| x == 0.0));
    assert!(to_f64_vec(&g.i(1)?)?.iter().any(|&x| x != 0.0));
    Ok(())
}

#[test]
fn config_defaults_and_serde() -> TestResult {
    let c = CtcOptions::default();
    assert_eq!(c.blank, None);
    assert_eq!(c.reduction, CtcReduction::MeanBatch);
    assert!(!c.zero_infinity);
    // The module's config takes NeMo's keys; the blank is the last class.
    let c: CtcLossConfig =
        serde_json::from_str(r#"{"num_classes": 28, "reduction": "mean_volume"}"#)?;
    assert_eq!(c.reduction, CtcReduction::MeanVolume);
    let loss = c.init()?;
    assert_eq!(
        loss.input_types().to_string(),
        "log_probs: (B, T, D:29) Logprobs, targets: (B, T) Labels, input_length: (B) Lengths, target_length: (B) Lengths"
    );
    assert!(CtcLossConfig::new(0).init().is_err());
    let bad: Result<CtcLossConfig, _> = serde_json::from_str(r#"{"num_classes": 3, "blank": 0}"#);
    assert!(bad.is_err(), "unknown keys are refused");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Validation

fn expect_shape_error(r: nemo_asr::Result<Tensor>, needle: &str) {
    match r {
        Err(Error::Shape { op, msg }) => {
            assert_eq!(op, "ctc_loss");
            assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
        }
        Err(other) => panic!("expected a shape error containing {needle:?}, got {other}"),
        Ok(_) => panic!("expected a shape error containing {needle:?}, got Ok"),
    }
}

#[test]
fn invalid_inputs_are_rejected_with_context() -> TestResult {
    let dev = Device::Cpu;
    let lp = Tensor::zeros((2, 4, 3), DType::F32, &dev)?;
    let tg = Tensor::new(&[[0u32, 1], [1, 1]], &dev)?;
    let il = Tensor::new(&[4u32, 4], &dev)?;
    let tl = Tensor::new(&[2u32, 1], &dev)?;
    let cfg = CtcOptions::default();
    let run = |lp: &Tensor, tg: &Tensor, il: &Tensor, tl: &Tensor, cfg: &CtcOptions| {
        ctc_loss(lp, tg, il, tl, cfg)
    };
    assert!(run(&lp, &tg, &il, &tl, &cfg).is_ok());
    expect_shape_error(run(&lp.i(0)?, &tg, &il, &tl, &cfg), "(B, T, D)");
    expect_shape_error(run(&lp.i(..1)?, &tg, &il, &tl, &cfg), "B = 1");
    expect_shape_error(run(&lp.to_dtype(DType::U32)?, &tg, &il, &tl, &cfg), "float");
    // Label equal to the blank (2 = D - 1) in sample 1.
    let bad = Tensor::new(&[[0u32, 1], [2, 1]], &dev)?;
    expect_shape_error(
        run(&lp, &bad, &il, &tl, &cfg),
        "sample 1 at position 0 is 2",
    );
    // Label beyond D.
    let bad = Tensor::new(&[[0u32, 7], [1, 1]], &dev)?;
    expect_shape_error(
        run(&lp, &bad, &il, &tl, &cfg),
        "sample 0 at position 1 is 7",
    );
    // Negative label.
    let bad = Tensor::new(&[[0i64, -1], [1, 1]], &dev)?;
    expect_shape_error(run(&lp, &bad, &il, &tl, &cfg), "is -1");
    // Labels past the target length are padding and ignored.
    let padded = Tensor::new(&[[0u32, 1], [1, 99]], &dev)?;
    assert!(run(&lp, &padded, &il, &tl, &cfg).is_ok());
    // Lengths.
    let bad = Tensor::new(&[4u32, 5], &dev)?;
    expect_shape_error(
        run(&lp, &tg, &bad, &tl, &cfg),
        "`input_lengths` of sample 1 is 5",
    );
    let bad = Tensor::new(&[-1i64, 4], &dev)?;
    expect_shape_error(run(&lp, &tg, &bad, &tl, &cfg), "sample 0 is -1");
    let bad = Tensor::new(&[3u32, 1], &dev)?;
    expect_shape_error(
        run(&lp, &tg, &il, &bad, &cfg),
        "`target_lengths` of sample 0 is 3",
    );
    let bad = Tensor::new(&[2.0f32, 1.0], &dev)?;
    expect_shape_error(run(&lp, &tg, &il, &bad, &cfg), "integer");
    expect_shape_error(
        run(&lp, &tg.to_dtype(DType::F32)?, &il, &tl, &cfg),
        "integer",
    );
    let bad = Tensor::new(&[4u32, 4, 4], &dev)?;
    expect_shape_error(run(&lp, &tg, &bad, &tl, &cfg), "(B)");
    // Blank out of range.
    let cfg_bad = CtcOptions {
        blank: Some(3),
        ..cfg
    };
    expect_shape_error(run(&lp, &tg, &il, &tl, &cfg_bad), "blank index 3");
    // Empty batch.
    let empty = Tensor::zeros((0, 4, 3), DType::F32, &dev)?;
    let e2 = Tensor::zeros((0, 2), DType::U32, &dev)?;
    let e1 = Tensor::zeros(0, DType::U32, &dev)?;
    expect_shape_error(run(&empty, &e2, &e1, &e1, &cfg), "empty");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Brute force and properties

/// `-ln Σ_π Π_t p_t(π_t)` over every path of `lp (T, D)` collapsing to `target`.
fn brute_force_nll(lp: &[f64], t: usize, d: usize, target: &[u32], blank: u32) -> f64 {
    let mut total = 0.0f64;
    let paths = (d as u64).pow(t as u32);
    for code in 0..paths {
        let mut c = code;
        let mut path = Vec::with_capacity(t);
        let mut logp = 0.0;
        for frame in 0..t {
            let k = (c % d as u64) as u32;
            c /= d as u64;
            path.push(k);
            logp += lp[frame * d + k as usize];
        }
        let mut collapsed = Vec::new();
        let mut prev = None;
        for &k in &path {
            if Some(k) != prev && k != blank {
                collapsed.push(k);
            }
            prev = Some(k);
        }
        if collapsed == target {
            total += logp.exp();
        }
    }
    -total.ln()
}

fn log_softmax_rows(x: &[f64], d: usize) -> Vec<f64> {
    x.chunks(d)
        .flat_map(|row| {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            row.iter().map(move |v| v - lse).collect::<Vec<_>>()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn loss_equals_brute_force_path_sum(
        t in 1usize..=6,
        d in 2usize..=3,
        raw in prop::collection::vec(-3.0f64..3.0, 18),
        target in prop::collection::vec(0u32..2, 0..=3),
        blank_first in any::<bool>(),
    ) {
        let blank = if blank_first { 0 } else { d as u32 - 1 };
        // Labels are the non-blank classes.
        let target: Vec<u32> = target
            .into_iter()
            .map(|k| if blank_first { 1 + k % (d as u32 - 1) } else { k % (d as u32 - 1) })
            .collect();
        let lp = log_softmax_rows(&raw[..t * d], d);
        let expected = brute_force_nll(&lp, t, d, &target, blank);
        let dev = Device::Cpu;
        let s = target.len().max(1);
        let mut padded = target.clone();
        padded.resize(s, 0);
        let loss = ctc_loss(
            &Tensor::from_vec(lp, (1, t, d), &dev).map_err(|e| TestCaseError::fail(e.to_string()))?,
            &Tensor::from_vec(padded, (1, s), &dev).map_err(|e| TestCaseError::fail(e.to_string()))?,
            &Tensor::new(&[t as u32], &dev).map_err(|e| TestCaseError::fail(e.to_string()))?,
            &Tensor::new(&[target.len() as u32], &dev).map_err(|e| TestCaseError::fail(e.to_string()))?,
            &CtcOptions { blank: Some(blank as usize), reduction: CtcReduction::Sum, zero_infinity: false },
        ).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = loss.to_scalar::<f64>().map_err(|e| TestCaseError::fail(e.to_string()))?;
        if expected.is_infinite() {
            prop_assert_eq!(got, f64::INFINITY);
        } else {
            prop_assert!((got - expected).abs() <= 1e-10 * (1.0 + expected.abs()),
                "got {got}, brute force {expected}");
        }
    }

    #[test]
    fn loss_nonnegative_and_gradient_rows_balance(
        b in 1usize..=4,
        t in 1usize..=12,
        d in 2usize..=6,
        seed in prop::collection::vec(-4.0f64..4.0, 4 * 12 * 6),
        lens in prop::collection::vec((0usize..=12, 0usize..=5), 4),
        labels in prop::collection::vec(0u32..5, 4 * 5),
    ) {
        let fail = |e: nemo_asr::Error| TestCaseError::fail(e.to_string());
        let cfail = |e: candle_core::Error| TestCaseError::fail(e.to_string());
        let dev = Device::Cpu;
        let s = 5usize;
        let il: Vec<u32> = lens.iter().take(b).map(|&(i, _)| i.min(t) as u32).collect();
        let tl: Vec<u32> = lens.iter().take(b).map(|&(_, l)| l as u32).collect();
        let tg: Vec<u32> = labels.iter().take(b * s).map(|&k| k % (d as u32 - 1)).collect();
        let logits = Var::from_vec(seed[..b * t * d].to_vec(), (b, t, d), &dev).map_err(cfail)?;
        let log_probs = candle_nn::ops::log_softmax(logits.as_tensor(), D::Minus1).map_err(cfail)?;
        let lp_var = Var::from_tensor(&log_probs.detach()).map_err(cfail)?;
        let args = (
            Tensor::from_vec(tg, (b, s), &dev).map_err(cfail)?,
            Tensor::new(il.as_slice(), &dev).map_err(cfail)?,
            Tensor::new(tl.as_slice(), &dev).map_err(cfail)?,
        );
        let config = CtcOptions { zero_infinity: true, ..CtcOptions::from(CtcReduction::Sum) };
        let per_sample = ctc_loss(&log_probs, &args.0, &args.1, &args.2,
            &CtcOptions { reduction: CtcReduction::None, ..config }).map_err(fail)?;
        let per_sample = per_sample.to_vec1::<f64>().map_err(cfail)?;
        prop_assert!(per_sample.iter().all(|&l| l >= 0.0), "{per_sample:?}");

        // Logit gradient rows sum to zero (softmax minus occupancy).
        let loss = ctc_loss(&log_probs, &args.0, &args.1, &args.2, &config).map_err(fail)?;
        let g = loss.backward().map_err(cfail)?;
        let g = g.get(&logits).ok_or_else(|| TestCaseError::fail("no gradient"))?;
        let rows = g.sum(D::Minus1).map_err(cfail)?.flatten_all().map_err(cfail)?
            .to_vec1::<f64>().map_err(cfail)?;
        prop_assert!(rows.iter().all(|r| r.abs() < 1e-9), "{rows:?}");

        // Log-prob gradient rows: -1 on valid frames of feasible samples, 0 elsewhere.
        let loss = ctc_loss(lp_var.as_tensor(), &args.0, &args.1, &args.2, &config).map_err(fail)?;
        let g = loss.backward().map_err(cfail)?;
        let g = g.get(&lp_var).ok_or_else(|| TestCaseError::fail("no gradient"))?;
        let rows = g.sum(D::Minus1).map_err(cfail)?.to_vec2::<f64>().map_err(cfail)?;
        // (With zero_infinity a zero loss is an infeasible sample or an empty input and target.)
        for (i, row) in rows.iter().enumerate() {
            for (frame, &r) in row.iter().enumerate() {
                let valid = per_sample[i] > 0.0 && frame < il[i] as usize;
                let expected = if valid { -1.0 } else { 0.0 };
                prop_assert!((r - expected).abs() < 1e-9, "sample {i} frame {frame}: {r}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Greedy decoding

#[test]
fn greedy_decoding_collapses_repeats_and_drops_blanks() -> TestResult {
    let dev = Device::Cpu;
    // D = 4, blank = 3. Frame argmaxes: sample 0: a a ∅ a b b ∅ (padding frame ignored: c);
    // sample 1: ∅ c c ∅.
    let argmax = [[0u32, 0, 3, 0, 1, 1, 3, 2], [3, 2, 2, 3, 0, 0, 0, 0]];
    let mut lp = vec![-5.0f32; 2 * 8 * 4];
    for (b, row) in argmax.iter().enumerate() {
        for (t, &k) in row.iter().enumerate() {
            lp[(b * 8 + t) * 4 + k as usize] = -0.1;
        }
    }
    let lp = Tensor::from_vec(lp, (2, 8, 4), &dev)?;
    let lengths = Tensor::new(&[7u32, 4], &dev)?;
    let ids = ctc_greedy_decode(&lp, Some(&lengths), None)?;
    assert_eq!(ids, vec![vec![0, 0, 1], vec![2]]);
    let ids = GreedyCtcDecoder::default().decode(&lp, None)?;
    assert_eq!(ids, vec![vec![0, 0, 1, 2], vec![2, 0]]);
    // Blank first: class 0 is the blank.
    let ids = GreedyCtcDecoder::new(Some(0)).decode(&lp, Some(&lengths))?;
    assert_eq!(ids, vec![vec![3, 1, 3], vec![3, 2, 3]]);

    let labels = ['a', 'b', 'c'];
    assert_eq!(ids_to_text(&[0, 0, 1], &labels)?, "aab");
    let words = ["hel".to_string(), "lo".to_string()];
    assert_eq!(ids_to_text(&[0, 1], &words)?, "hello");
    assert!(matches!(
        ids_to_text(&[3], &labels),
        Err(Error::Shape {
            op: "ids_to_text",
            ..
        })
    ));
    // Lengths beyond T and bad ranks are errors.
    assert!(ctc_greedy_decode(&lp, Some(&Tensor::new(&[9u32, 1], &dev)?), None).is_err());
    assert!(ctc_greedy_decode(&lp.i(0)?, None, None).is_err());
    assert!(ctc_greedy_decode(&lp, None, Some(4)).is_err());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// WER / CER

#[test]
fn wer_hand_worked_examples() -> TestResult {
    // One substitution (sat → sit), one deletion (the), one insertion (down): 3 / 6 words.
    let r = "the cat sat on the mat";
    let h = "the cat sit on mat down";
    assert_eq!(word_error_rate(&[h], &[r])?, 0.5);
    // kitten → sitting: 3 character edits over 6 reference characters.
    assert_eq!(char_error_rate(&["sitting"], &["kitten"])?, 0.5);
    assert_eq!(edit_distance(b"kitten", b"sitting"), 3);
    assert_eq!(edit_distance::<u8>(b"", b"abc"), 3);

    let mut acc = WordErrorRate::new();
    assert_eq!(acc.wer(), None);
    acc.update("hello world", "hello world");
    acc.update("", "good morning");
    acc.update("a b c", "a x c");
    // Word errors: 0 + 2 + 1 over 2 + 2 + 3 words.
    assert_eq!(acc.word_errors(), 3);
    assert_eq!(acc.words(), 7);
    assert_eq!(acc.wer(), Some(3.0 / 7.0));
    // Char errors: 0 + 12 ("good morning") + 1 over 11 + 12 + 5.
    assert_eq!(acc.char_errors(), 13);
    assert_eq!(acc.chars(), 28);
    assert_eq!(acc.cer(), Some(13.0 / 28.0));
    let mut other = WordErrorRate::new();
    other.update("x", "y");
    acc.merge(&other);
    assert_eq!(acc.words(), 8);
    acc.reset();
    assert_eq!(acc.words(), 0);

    // Mismatched lists and empty references.
    assert!(word_error_rate(&["a"], &["a", "b"]).is_err());
    assert!(word_error_rate(&["a"], &[""]).is_err());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// `ctc_min_steps` (the data layer's alignability check) is exactly where the loss stops
    /// being infinite.
    #[test]
    fn loss_is_finite_exactly_from_ctc_min_steps(
        target in prop::collection::vec(0u32..3, 0..8),
        t in 1usize..14,
    ) {
        let fail = |e: candle_core::Error| TestCaseError::fail(e.to_string());
        let dev = Device::Cpu;
        let s = target.len().max(1);
        let mut padded = target.clone();
        padded.resize(s, 0);
        let loss = ctc_loss(
            &Tensor::full(-(4f32.ln()), (1, t, 4), &dev).map_err(fail)?,
            &Tensor::from_vec(padded, (1, s), &dev).map_err(fail)?,
            &Tensor::new(&[t as u32], &dev).map_err(fail)?,
            &Tensor::new(&[target.len() as u32], &dev).map_err(fail)?,
            &CtcOptions::from(CtcReduction::Sum),
        ).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let finite = loss.to_scalar::<f32>().map_err(fail)?.is_finite();
        prop_assert_eq!(finite, t >= ctc_min_steps(&target), "T {} target {:?}", t, target);
    }
}

proptest! {
    #[test]
    fn wer_of_identical_text_is_zero(words in prop::collection::vec("[a-z]{1,5}", 1..10)) {
        let s = words.join(" ");
        prop_assert_eq!(word_error_rate(&[&s], &[&s]).ok(), Some(0.0));
        prop_assert_eq!(char_error_rate(&[&s], &[&s]).ok(), Some(0.0));
    }

    #[test]
    fn edit_distance_is_a_metric(
        a in prop::collection::vec(0u8..4, 0..12),
        b in prop::collection::vec(0u8..4, 0..12),
        c in prop::collection::vec(0u8..4, 0..12),
    ) {
        let ab = edit_distance(&a, &b);
        prop_assert_eq!(ab, edit_distance(&b, &a));
        prop_assert_eq!(edit_distance(&a, &a), 0);
        prop_assert!(ab <= edit_distance(&a, &c) + edit_distance(&c, &b));
        prop_assert!(ab >= a.len().abs_diff(b.len()));
        prop_assert!(ab <= a.len().max(b.len()));
    }
}
