//! Optimizers, gradient clipping and learning-rate schedules of `nemo_core::optim`.
//!
//! Hand-computed updates for each rule, then every rule, the clipping and the schedules against
//! `tests/fixtures/optim.json`, written by `scripts/optim_reference.py` from `torch.optim.SGD`,
//! `torch.optim.AdamW`, `torch.nn.utils.clip_grad_norm_` (PyTorch 1.13) and restatements of NeMo's
//! `Novograd.step` and 0.x learning-rate policies.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use nemo_core::Error;
use nemo_core::optim::{
    AdamW, AdamWConfig, LrPolicy, LrSchedule, Novograd, NovogradConfig, Optimizer, OptimizerConfig,
    STEP_KEY, Sgd, SgdConfig, clip_grad_norm, grad_norm,
};
use serde::Deserialize;

use nemo_core::testing::TestResult;

const NOTHING_FROZEN: &dyn Fn(&str) -> bool = &|_| false;

fn var(values: &[f32], shape: &[usize]) -> candle_core::Result<Var> {
    Var::from_tensor(&Tensor::from_slice(values, shape, &Device::Cpu)?)
}

/// A gradient store holding exactly the given gradients.
fn grads(pairs: &[(&Var, &[f32])]) -> candle_core::Result<GradStore> {
    let mut store = GradStore::default();
    for (var, g) in pairs {
        store.insert(
            var.as_tensor(),
            Tensor::from_slice(g, var.shape(), &Device::Cpu)?,
        );
    }
    Ok(store)
}

fn values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
}

/// `|got - want| <= tol * max(1, |want|)` element-wise.
fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) -> TestResult {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs();
        assert!(
            err <= tol * w.abs().max(1.0),
            "{what}[{i}]: got {g}, want {w} (error {err:e})"
        );
    }
    Ok(())
}

fn state_map(state: Vec<(String, Tensor)>) -> HashMap<String, Tensor> {
    state.into_iter().collect()
}

// ------------------------------------------------------------------------------------------
// Hand-computed updates.

#[test]
fn sgd_momentum_weight_decay_by_hand() -> TestResult {
    // momentum 0.9, weight_decay 0.1, lr 0.1, p0 = [1, -2]
    let p = var(&[1.0, -2.0], &[2])?;
    let config = SgdConfig {
        momentum: 0.9,
        weight_decay: 0.1,
        ..SgdConfig::default()
    };
    let mut opt = Sgd::new(vec![("p".into(), p.clone())], config)?;
    // step 1, g = [0.5, 0.5]: d = g + 0.1 p = [0.6, 0.3]; buf = d (first step);
    // p = p - 0.1 buf = [0.94, -2.03]
    opt.step(&grads(&[(&p, &[0.5, 0.5])])?, 0.1, NOTHING_FROZEN)?;
    assert_close(&values(p.as_tensor())?, &[0.94, -2.03], 1e-6, "step 1")?;
    // step 2, g = [1, -1]: d = g + 0.1 p = [1.094, -1.203];
    // buf = 0.9 [0.6, 0.3] + d = [1.634, -0.933]; p = [0.94 - 0.1634, -2.03 + 0.0933]
    opt.step(&grads(&[(&p, &[1.0, -1.0])])?, 0.1, NOTHING_FROZEN)?;
    assert_close(&values(p.as_tensor())?, &[0.7766, -1.9367], 1e-6, "step 2")?;
    let state = state_map(opt.state_dict()?);
    assert_close(
        &values(&state["p.momentum_buffer"])?,
        &[1.634, -0.933],
        1e-6,
        "buffer",
    )?;
    Ok(())
}

#[test]
fn sgd_nesterov_by_hand() -> TestResult {
    // momentum 0.5, Nesterov, lr 0.1, p0 = [1], g = [2] twice
    let p = var(&[1.0], &[1])?;
    let mut opt = Sgd::new(
        vec![("p".into(), p.clone())],
        SgdConfig {
            momentum: 0.5,
            nesterov: true,
            ..SgdConfig::default()
        },
    )?;
    // step 1: buf = 2; d = g + 0.5 buf = 3; p = 1 - 0.1 * 3 = 0.7
    opt.step(&grads(&[(&p, &[2.0])])?, 0.1, NOTHING_FROZEN)?;
    assert_close(&values(p.as_tensor())?, &[0.7], 1e-6, "step 1")?;
    // step 2: buf = 0.5 * 2 + 2 = 3; d = 2 + 0.5 * 3 = 3.5; p = 0.7 - 0.35 = 0.35
    opt.step(&grads(&[(&p, &[2.0])])?, 0.1, NOTHING_FROZEN)?;
    assert_close(&values(p.as_tensor())?, &[0.35], 1e-6, "step 2")?;
    // step 3 with lr 0: the value stays, the buffer moves: buf = 0.5 * 3 + 2 = 3.5
    let before = values(p.as_tensor())?;
    opt.step(&grads(&[(&p, &[2.0])])?, 0.0, NOTHING_FROZEN)?;
    assert_eq!(values(p.as_tensor())?, before, "step 3");
    let state = state_map(opt.state_dict()?);
    assert_close(
        &values(&state["p.momentum_buffer"])?,
        &[3.5],
        1e-6,
        "buffer",
    )?;
    Ok(())
}

#[test]
fn adamw_by_hand() -> TestResult {
    // betas (0.9, 0.999), eps 1e-8, weight_decay 0.1, lr 0.01, p0 = [1, -1]
    let p = var(&[1.0, -1.0], &[2])?;
    let config = AdamWConfig {
        weight_decay: 0.1,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::new(vec![("p".into(), p.clone())], config)?;
    // step 1, g = [0.1, -0.2]:
    //   p = p (1 - 0.01 * 0.1) = [0.999, -0.999]
    //   m = 0.1 g = [0.01, -0.02]; v = 0.001 g^2 = [1e-5, 4e-5]
    //   bias corrections: 1 - 0.9 = 0.1, 1 - 0.999 = 0.001
    //   denom = sqrt(v) / sqrt(0.001) + eps = [0.1, 0.2] + 1e-8
    //   p = p - 0.01 / 0.1 * m / denom = [0.999 - 0.01, -0.999 + 0.01] (+- 1e-9 from eps)
    opt.step(&grads(&[(&p, &[0.1, -0.2])])?, 0.01, NOTHING_FROZEN)?;
    assert_close(&values(p.as_tensor())?, &[0.989, -0.989], 1e-6, "step 1")?;
    // step 2, g = [0.3, 0]:
    //   p = [0.989, -0.989] * 0.999 = [0.988011, -0.988011]
    //   m = 0.9 [0.01, -0.02] + 0.1 [0.3, 0] = [0.039, -0.018]
    //   v = 0.999 [1e-5, 4e-5] + 0.001 [0.09, 0] = [9.999e-5, 3.996e-5]
    //   bias corrections: 1 - 0.81 = 0.19, 1 - 0.998001 = 0.001999
    //   denom = sqrt(v / 0.001999) + eps = [0.22365155, 0.14138599]
    //   p = p - 0.01 / 0.19 * m / denom
    //     = [0.988011 - 0.00917781, -0.988011 + 0.00670058] = [0.97883319, -0.98131042]
    opt.step(&grads(&[(&p, &[0.3, 0.0])])?, 0.01, NOTHING_FROZEN)?;
    assert_close(
        &values(p.as_tensor())?,
        &[0.978_833_19, -0.981_310_42],
        1e-6,
        "step 2",
    )?;
    let state = state_map(opt.state_dict()?);
    assert_close(&values(&state["p.exp_avg"])?, &[0.039, -0.018], 1e-6, "m")?;
    assert_close(
        &values(&state["p.exp_avg_sq"])?,
        &[9.999e-5, 3.996e-5],
        1e-6,
        "v",
    )?;
    assert_eq!(state["p.step"].to_scalar::<i64>()?, 2);
    Ok(())
}

#[test]
fn novograd_by_hand() -> TestResult {
    // NeMo defaults: betas (0.95, 0.98), eps 1e-8, no weight decay; lr 0.1, p0 = [1, 2]
    let p = var(&[1.0, 2.0], &[2])?;
    let mut opt = Novograd::new(vec![("p".into(), p.clone())], NovogradConfig::default())?;
    // step 1, g = [3, 4]: ||g||^2 = 25, v == 0 so v = 25; denom = 5 + 1e-8;
    // d = g / 5 = [0.6, 0.8]; m = d; p = p - 0.1 m = [0.94, 1.92]
    opt.step(&grads(&[(&p, &[3.0, 4.0])])?, 0.1, NOTHING_FROZEN)?;
    assert_close(&values(p.as_tensor())?, &[0.94, 1.92], 1e-6, "step 1")?;
    // step 2, g = [0, 1]: v = 0.98 * 25 + 0.02 * 1 = 24.52; denom = sqrt(24.52) = 4.95176736;
    // d = [0, 0.20194810]; m = 0.95 [0.6, 0.8] + d = [0.57, 0.96194810];
    // p = [0.94 - 0.057, 1.92 - 0.09619481] = [0.883, 1.82380519]
    opt.step(&grads(&[(&p, &[0.0, 1.0])])?, 0.1, NOTHING_FROZEN)?;
    assert_close(
        &values(p.as_tensor())?,
        &[0.883, 1.823_805_19],
        1e-6,
        "step 2",
    )?;
    let state = state_map(opt.state_dict()?);
    assert_eq!(state["p.exp_avg_sq"].dims(), &[] as &[usize]);
    assert_close(&values(&state["p.exp_avg_sq"])?, &[24.52], 1e-6, "v")?;
    assert_close(
        &values(&state["p.exp_avg"])?,
        &[0.57, 0.961_948_1],
        1e-6,
        "m",
    )?;
    Ok(())
}

#[test]
fn novograd_weight_decay_and_grad_averaging_by_hand() -> TestResult {
    // betas (0.5, 0.5), weight_decay 0.1, grad_averaging; lr 1, p0 = [2]
    let p = var(&[2.0], &[1])?;
    let config = NovogradConfig {
        betas: [0.5, 0.5],
        weight_decay: 0.1,
        grad_averaging: true,
        ..NovogradConfig::default()
    };
    let mut opt = Novograd::new(vec![("p".into(), p.clone())], config)?;
    // step 1, g = [4]: v = 16; d = 4 / 4 = 1; d += 0.1 * 2 -> 1.2; d *= 0.5 -> 0.6;
    // m = 0.6; p = 2 - 0.6 = 1.4
    opt.step(&grads(&[(&p, &[4.0])])?, 1.0, NOTHING_FROZEN)?;
    assert_close(&values(p.as_tensor())?, &[1.4], 1e-6, "step 1")?;
    // step 2, g = [-2]: v = 0.5 * 16 + 0.5 * 4 = 10; d = -2 / sqrt(10) = -0.63245553;
    // d += 0.1 * 1.4 -> -0.49245553; d *= 0.5 -> -0.24622777; m = 0.5 * 0.6 + d = 0.05377223;
    // p = 1.4 - 0.05377223 = 1.34622777
    opt.step(&grads(&[(&p, &[-2.0])])?, 1.0, NOTHING_FROZEN)?;
    assert_close(&values(p.as_tensor())?, &[1.346_227_77], 1e-6, "step 2")?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Against PyTorch / NeMo (fixture).

#[derive(Deserialize)]
struct Fixture {
    shapes: HashMap<String, Vec<usize>>,
    init: HashMap<String, Vec<f32>>,
    grads: Vec<HashMap<String, Vec<f32>>>,
    lrs: Vec<f64>,
    skip: HashMap<String, String>,
    cases: HashMap<String, Case>,
    clip: Vec<ClipCase>,
    schedules: Schedules,
}

#[derive(Deserialize)]
struct Case {
    config: OptimizerConfig,
    after: Vec<HashMap<String, Vec<f64>>>,
    state: HashMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ClipCase {
    max_norm: f64,
    grads: HashMap<String, Vec<f32>>,
    total_norm: f64,
    clipped: HashMap<String, Vec<f64>>,
}

#[derive(Deserialize)]
struct Schedules {
    max_steps: u64,
    steps: Vec<u64>,
    cases: Vec<ScheduleCase>,
}

#[derive(Deserialize)]
struct ScheduleCase {
    config: LrSchedule,
    lr: Vec<f64>,
}

fn fixture() -> TestResult<Fixture> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/optim.json");
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

const NAMES: [&str; 3] = ["a", "b", "c"];

fn fixture_params(f: &Fixture) -> candle_core::Result<Vec<(String, Var)>> {
    NAMES
        .iter()
        .map(|&n| Ok((n.to_string(), var(&f.init[n], &f.shapes[n])?)))
        .collect()
}

/// The gradients of fixture step `step`, without the parameter the fixture skips there.
fn fixture_grads(
    f: &Fixture,
    params: &[(String, Var)],
    step: usize,
) -> candle_core::Result<GradStore> {
    let skip = f.skip.get(&step.to_string());
    let mut store = GradStore::default();
    for (name, var) in params {
        if skip == Some(name) {
            continue;
        }
        let g = Tensor::from_slice(&f.grads[step][name], var.shape(), &Device::Cpu)?;
        store.insert(var.as_tensor(), g);
    }
    Ok(store)
}

#[test]
fn optimizers_match_torch_and_nemo() -> TestResult {
    let f = fixture()?;
    assert_eq!(f.cases.len(), 8);
    for (case_name, case) in &f.cases {
        let params = fixture_params(&f)?;
        let mut opt = case.config.build(params.clone())?;
        for (step, lr) in f.lrs.iter().enumerate() {
            let store = fixture_grads(&f, &params, step)?;
            opt.step(&store, *lr, NOTHING_FROZEN)?;
            for (name, var) in &params {
                let want = &case.after[step][name];
                let what = format!("{case_name} step {step} `{name}`");
                assert_close(&values(var.as_tensor())?, want, 2e-6, &what)?;
            }
        }
        assert_eq!(opt.step_count(), f.lrs.len() as u64);
        let state = state_map(opt.state_dict()?);
        for (key, want) in &case.state {
            let got = state
                .get(key)
                .ok_or_else(|| format!("{case_name}: no state entry `{key}`"))?;
            match want {
                serde_json::Value::Number(n) => {
                    assert_eq!(
                        Some(got.to_scalar::<i64>()?),
                        n.as_i64(),
                        "{case_name} {key}"
                    );
                }
                other => {
                    let want: Vec<f64> = serde_json::from_value(other.clone())?;
                    assert_close(&values(got)?, &want, 2e-6, &format!("{case_name} {key}"))?;
                }
            }
        }
        // Every buffer torch keeps, and nothing else besides the counters.
        let buffers = state.keys().filter(|k| !k.ends_with("step")).count();
        let torch_buffers = case.state.keys().filter(|k| !k.ends_with("step")).count();
        assert_eq!(buffers, torch_buffers, "{case_name}: buffer entries");
    }
    Ok(())
}

#[test]
fn clipping_matches_torch() -> TestResult {
    let f = fixture()?;
    for case in &f.clip {
        let params = fixture_params(&f)?;
        let mut store = GradStore::default();
        for (name, var) in &params {
            let g = Tensor::from_slice(&case.grads[name], var.shape(), &Device::Cpu)?;
            store.insert(var.as_tensor(), g);
        }
        let total = clip_grad_norm(&mut store, &params, case.max_norm, NOTHING_FROZEN)?;
        assert!(
            (total - case.total_norm).abs() < 1e-5 * case.total_norm,
            "total norm {total}, torch {}",
            case.total_norm
        );
        for (name, var) in &params {
            let g = store.get(var.as_tensor()).ok_or("gradient lost")?;
            let what = format!("max_norm {} `{name}`", case.max_norm);
            assert_close(&values(g)?, &case.clipped[name], 1e-6, &what)?;
        }
    }
    Ok(())
}

#[test]
fn schedules_match_nemo() -> TestResult {
    let f = fixture()?;
    for case in &f.schedules.cases {
        case.config.validate()?;
        for (&step, &want) in f.schedules.steps.iter().zip(&case.lr) {
            let got = case.config.lr_at(step, f.schedules.max_steps);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-3),
                "{:?} step {step}: got {got}, want {want}",
                case.config
            );
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Freezing, missing gradients, state round trips.

fn all_configs() -> Vec<OptimizerConfig> {
    vec![
        SgdConfig {
            momentum: 0.9,
            weight_decay: 0.01,
            ..SgdConfig::default()
        }
        .into(),
        AdamWConfig {
            amsgrad: true,
            ..AdamWConfig::default()
        }
        .into(),
        NovogradConfig {
            weight_decay: 0.001,
            amsgrad: true,
            ..NovogradConfig::default()
        }
        .into(),
    ]
}

fn tensors_bits(t: &Tensor) -> candle_core::Result<Vec<u32>> {
    Ok(values(t)?.into_iter().map(f32::to_bits).collect())
}

/// Two entries are bit-identical (values of float buffers, or counters).
fn same_entry(x: &Tensor, y: &Tensor) -> candle_core::Result<bool> {
    if x.dtype() == DType::I64 {
        return Ok(x.to_scalar::<i64>()? == y.to_scalar::<i64>()?);
    }
    Ok(x.dims() == y.dims() && tensors_bits(x)? == tensors_bits(y)?)
}

#[test]
fn frozen_and_gradientless_params_are_untouched() -> TestResult {
    let f = fixture()?;
    for config in all_configs() {
        let params = fixture_params(&f)?;
        let mut opt = config.build(params.clone())?;
        // Two ordinary steps so that every parameter has state.
        for step in [0, 1] {
            let mut store = GradStore::default();
            for (name, var) in &params {
                let g = Tensor::from_slice(&f.grads[step][name], var.shape(), &Device::Cpu)?;
                store.insert(var.as_tensor(), g);
            }
            opt.step(&store, 0.05, NOTHING_FROZEN)?;
        }
        let before_values: Vec<Vec<u32>> = params
            .iter()
            .map(|(_, v)| tensors_bits(v.as_tensor()))
            .collect::<candle_core::Result<_>>()?;
        let before_state = opt.state_dict()?;
        // Step 3: `a` frozen (it has a gradient), `c` has no gradient, `b` trains.
        let mut store = GradStore::default();
        for (name, var) in &params[..2] {
            let g = Tensor::from_slice(&f.grads[2][name], var.shape(), &Device::Cpu)?;
            store.insert(var.as_tensor(), g);
        }
        opt.step(&store, 0.05, &|name| name == "a")?;
        let after_state = state_map(opt.state_dict()?);
        for (i, (name, v)) in params.iter().enumerate() {
            let same = tensors_bits(v.as_tensor())? == before_values[i];
            assert_eq!(same, name != "b", "{config:?}: value of `{name}`");
        }
        for (key, before) in &before_state {
            let same = same_entry(before, &after_state[key])?;
            // The optimizer's counter and `b`'s state advance (its running maximum may stay);
            // everything of `a` and `c` is bit-identical.
            if key == STEP_KEY || key == "b.step" || key == "b.exp_avg" {
                assert!(!same, "{config:?}: `{key}` did not change");
            } else if !key.starts_with("b.") {
                assert!(same, "{config:?}: `{key}` changed");
            }
        }
        assert_eq!(opt.step_count(), 3);
    }
    Ok(())
}

#[test]
fn gradients_and_exported_state_are_not_modified_by_steps() -> TestResult {
    let f = fixture()?;
    for config in all_configs() {
        let params = fixture_params(&f)?;
        let mut opt = config.build(params.clone())?;
        let store = fixture_grads(&f, &params, 0)?;
        let grad_bits = |store: &GradStore| -> candle_core::Result<Vec<Vec<u32>>> {
            params
                .iter()
                .filter_map(|(_, v)| store.get(v.as_tensor()))
                .map(tensors_bits)
                .collect()
        };
        let before = grad_bits(&store)?;
        opt.step(&store, 0.1, NOTHING_FROZEN)?;
        let exported = opt.state_dict()?;
        let exported_bits: Vec<Vec<u32>> = exported
            .iter()
            .filter(|(_, t)| t.dtype() == DType::F32)
            .map(|(_, t)| tensors_bits(t))
            .collect::<candle_core::Result<_>>()?;
        opt.step(&store, 0.1, NOTHING_FROZEN)?;
        assert_eq!(grad_bits(&store)?, before, "{config:?}: gradients changed");
        let again: Vec<Vec<u32>> = exported
            .iter()
            .filter(|(_, t)| t.dtype() == DType::F32)
            .map(|(_, t)| tensors_bits(t))
            .collect::<candle_core::Result<_>>()?;
        assert_eq!(
            again, exported_bits,
            "{config:?}: an exported state changed"
        );
    }
    Ok(())
}

#[test]
fn state_dict_round_trip_through_safetensors_continues_identically() -> TestResult {
    let f = fixture()?;
    let dir = tempfile::tempdir()?;
    for config in all_configs() {
        let params = fixture_params(&f)?;
        let mut opt = config.build(params.clone())?;
        for step in [0, 1] {
            opt.step(
                &fixture_grads(&f, &params, step)?,
                f.lrs[step],
                NOTHING_FROZEN,
            )?;
        }
        // Checkpoint: the state through a safetensors file, the weights copied.
        let path = dir.path().join(format!("{}.safetensors", opt.name()));
        let state: HashMap<String, Tensor> = opt.state_dict()?.into_iter().collect();
        candle_core::safetensors::save(&state, &path)?;
        let loaded: Vec<(String, Tensor)> = candle_core::safetensors::load(&path, &Device::Cpu)?
            .into_iter()
            .collect();
        let params2: Vec<(String, Var)> = params
            .iter()
            .map(|(n, v)| Ok((n.clone(), Var::from_tensor(&v.as_tensor().copy()?)?)))
            .collect::<candle_core::Result<_>>()?;
        let mut opt2 = config.build(params2.clone())?;
        opt2.load_state_dict(&loaded)?;
        assert_eq!(opt2.step_count(), 2);
        for step in 2..f.lrs.len() {
            opt.step(
                &fixture_grads(&f, &params, step)?,
                f.lrs[step],
                NOTHING_FROZEN,
            )?;
            opt2.step(
                &fixture_grads(&f, &params2, step)?,
                f.lrs[step],
                NOTHING_FROZEN,
            )?;
        }
        for ((name, v), (_, v2)) in params.iter().zip(&params2) {
            assert_eq!(
                tensors_bits(v.as_tensor())?,
                tensors_bits(v2.as_tensor())?,
                "{config:?}: `{name}`"
            );
        }
        let (s1, s2) = (opt.state_dict()?, state_map(opt2.state_dict()?));
        for (key, t) in &s1 {
            assert!(same_entry(t, &s2[key])?, "{config:?}: `{key}`");
        }
    }
    Ok(())
}

#[test]
fn load_state_dict_names_every_problem_and_changes_nothing() -> TestResult {
    let f = fixture()?;
    let params = fixture_params(&f)?;
    let mut opt = AdamW::new(params.clone(), AdamWConfig::default())?;
    opt.step(&fixture_grads(&f, &params, 0)?, 0.1, NOTHING_FROZEN)?;
    let good = opt.state_dict()?;
    let mut bad: Vec<(String, Tensor)> = good
        .iter()
        .filter(|(k, _)| k != "b.exp_avg")
        .cloned()
        .collect();
    for (k, t) in bad.iter_mut() {
        if k == "a.exp_avg_sq" {
            *t = Tensor::zeros((3, 2), DType::F32, &Device::Cpu)?;
        }
    }
    bad.push((
        "d.exp_avg".to_string(),
        Tensor::zeros(3, DType::F32, &Device::Cpu)?,
    ));

    let mut fresh = AdamW::new(fixture_params(&f)?, AdamWConfig::default())?;
    let err = fresh
        .load_state_dict(&bad)
        .err()
        .ok_or("bad state accepted")?;
    let msg = err.to_string();
    assert!(matches!(err, Error::Optimizer { .. }), "{msg}");
    assert!(
        msg.contains("missing `b.exp_avg` (expected shape [4])"),
        "{msg}"
    );
    assert!(
        msg.contains("`a.exp_avg_sq` has shape [3, 2], expected [2, 3]"),
        "{msg}"
    );
    assert!(msg.contains("unexpected entry `d.exp_avg`"), "{msg}");
    // Nothing was loaded.
    assert_eq!(fresh.step_count(), 0);
    let state = state_map(fresh.state_dict()?);
    assert_eq!(values(&state["a.exp_avg"])?, vec![0.0; 6]);

    // A state from another rule: its buffers are reported.
    let mut sgd = Sgd::new(fixture_params(&f)?, SgdConfig::default())?;
    let msg = sgd
        .load_state_dict(&good)
        .err()
        .ok_or("adamw state accepted")?
        .to_string();
    assert!(msg.contains("unexpected entry `a.exp_avg`"), "{msg}");
    // The good state loads.
    fresh.load_state_dict(&good)?;
    assert_eq!(fresh.step_count(), 1);
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Configuration and argument errors.

#[test]
fn configs_read_nemo_style_yaml() -> TestResult {
    let sgd: OptimizerConfig =
        serde_norway::from_str("name: sgd\nmomentum: 0.9\nnesterov: true\nweight_decay: 0.001\n")?;
    assert_eq!(
        sgd,
        OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.001,
            dampening: 0.0
        })
    );
    let adamw: OptimizerConfig = serde_norway::from_str("name: adamw\n")?;
    assert_eq!(adamw, OptimizerConfig::AdamW(AdamWConfig::default()));
    let novograd: OptimizerConfig = serde_norway::from_str("name: novograd\n")?;
    let OptimizerConfig::Novograd(c) = &novograd else {
        return Err("not novograd".into());
    };
    assert_eq!(c.betas, [0.95, 0.98]); // QuartzNet's
    assert_eq!(
        (c.eps, c.weight_decay, c.grad_averaging, c.amsgrad),
        (1e-8, 0.0, false, false)
    );
    let back: OptimizerConfig = serde_norway::from_str(&serde_norway::to_string(&novograd)?)?;
    assert_eq!(back, novograd);

    let typo = serde_norway::from_str::<OptimizerConfig>("name: novograd\nweight_decy: 0.1\n");
    assert!(
        typo.err()
            .ok_or("typo accepted")?
            .to_string()
            .contains("weight_decy")
    );
    let unknown = serde_norway::from_str::<OptimizerConfig>("name: lamb\n");
    assert!(unknown.is_err());

    let sched: LrSchedule = serde_norway::from_str(
        "name: PolynomialDecayAnnealing\nlr: 0.1\nwarmup_steps: 4\npower: 2.0\ncycle: false\n",
    )?;
    assert_eq!(
        sched,
        LrSchedule::new(LrPolicy::PolynomialDecayAnnealing, 0.1)
            .with_warmup_steps(4)
            .with_power(2.0)
    );
    let short: LrSchedule = serde_norway::from_str("name: cosine\nlr: 0.1\n")?;
    assert_eq!(short.name, LrPolicy::CosineAnnealing);
    Ok(())
}

fn config_key(err: Error) -> String {
    match err {
        Error::Config { key, .. } => key,
        other => format!("not a config error: {other}"),
    }
}

#[test]
fn invalid_options_are_config_errors() -> TestResult {
    let p = || -> candle_core::Result<Vec<(String, Var)>> {
        Ok(vec![("p".into(), var(&[1.0], &[1])?)])
    };
    let bad_beta = AdamWConfig {
        betas: [0.9, 1.0],
        ..AdamWConfig::default()
    };
    let err = AdamW::new(p()?, bad_beta).err().ok_or("beta 1 accepted")?;
    assert_eq!(config_key(err), "optim.betas");
    let nesterov = SgdConfig {
        nesterov: true,
        ..SgdConfig::default()
    };
    let err = Sgd::new(p()?, nesterov)
        .err()
        .ok_or("nesterov without momentum")?;
    assert_eq!(config_key(err), "optim.nesterov");
    let eps = NovogradConfig {
        eps: f64::NAN,
        ..NovogradConfig::default()
    };
    let err = Novograd::new(p()?, eps).err().ok_or("NaN eps accepted")?;
    assert_eq!(config_key(err), "optim.eps");

    let mut both = LrSchedule::constant(0.1).with_warmup_steps(3);
    both.warmup_ratio = Some(0.1);
    assert_eq!(
        config_key(both.validate().err().ok_or("both warmups")?),
        "optim.sched.warmup_ratio"
    );
    let ratio = LrSchedule::constant(0.1).with_warmup_ratio(1.5);
    assert_eq!(
        config_key(ratio.validate().err().ok_or("ratio 1.5")?),
        "optim.sched.warmup_ratio"
    );
    let cosine = LrSchedule::new(LrPolicy::CosineAnnealing, 0.1).with_min_lr(0.2);
    assert_eq!(
        config_key(cosine.validate().err().ok_or("min_lr > lr")?),
        "optim.sched.min_lr"
    );
    Ok(())
}

#[test]
fn invalid_parameters_and_arguments_are_optimizer_errors() -> TestResult {
    let p = var(&[1.0], &[1])?;
    let dup = vec![
        ("p".to_string(), p.clone()),
        ("p".to_string(), var(&[2.0], &[1])?),
    ];
    let msg = Sgd::new(dup, SgdConfig::default())
        .err()
        .ok_or("dup")?
        .to_string();
    assert!(msg.contains("parameter `p` is given twice"), "{msg}");
    let f16 = Var::from_tensor(&Tensor::new(&[1f32], &Device::Cpu)?.to_dtype(DType::F16)?)?;
    let msg = AdamW::new(vec![("h".into(), f16)], AdamWConfig::default())
        .err()
        .ok_or("f16 master weights")?
        .to_string();
    assert!(
        msg.contains("parameter `h` is F16, master weights must be f32"),
        "{msg}"
    );
    let empty = Novograd::new(vec![(String::new(), p.clone())], NovogradConfig::default());
    assert!(matches!(empty, Err(Error::Optimizer { .. })));

    let mut opt = Sgd::new(vec![("p".into(), p.clone())], SgdConfig::default())?;
    let store = grads(&[(&p, &[1.0])])?;
    for lr in [-0.1, f64::NAN, f64::INFINITY] {
        let err = opt
            .step(&store, lr, NOTHING_FROZEN)
            .err()
            .ok_or("bad lr accepted")?;
        assert!(err.to_string().contains("learning rate"), "{err}");
    }
    assert_eq!(opt.step_count(), 0);
    assert_eq!(values(p.as_tensor())?, vec![1.0]);
    Ok(())
}

#[test]
fn gradients_in_half_precision_are_used_in_f32() -> TestResult {
    let p = var(&[1.0, 2.0], &[2])?;
    let mut opt = Sgd::new(vec![("p".into(), p.clone())], SgdConfig::default())?;
    let mut store = GradStore::default();
    let g = Tensor::new(&[0.5f32, -0.25], &Device::Cpu)?.to_dtype(DType::BF16)?;
    store.insert(p.as_tensor(), g);
    // p = [1 - 0.1 * 0.5, 2 + 0.1 * 0.25]
    opt.step(&store, 0.1, NOTHING_FROZEN)?;
    assert_close(&values(p.as_tensor())?, &[0.95, 2.025], 1e-6, "sgd")?;
    assert_eq!(p.dtype(), DType::F32);
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Clipping and schedules by hand.

#[test]
fn clipping_by_hand_skips_frozen_and_keeps_non_finite() -> TestResult {
    let a = var(&[0.0, 0.0], &[2])?;
    let b = var(&[0.0], &[1])?;
    let vars = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
    // |[3, 4]| = 5, |[12]| = 12, total sqrt(25 + 144) = 13
    let mut store = grads(&[(&a, &[3.0, 4.0]), (&b, &[12.0])])?;
    assert!((grad_norm(&store, &vars, NOTHING_FROZEN)? - 13.0).abs() < 1e-9);
    // Not clipped when under the limit.
    assert!((clip_grad_norm(&mut store, &vars, 20.0, NOTHING_FROZEN)? - 13.0).abs() < 1e-9);
    assert_eq!(
        values(store.get(a.as_tensor()).ok_or("a")?)?,
        vec![3.0, 4.0]
    );
    // `b` frozen: total 5, clipped to 1: a scaled by 1 / (5 + 1e-6), b untouched.
    let total = clip_grad_norm(&mut store, &vars, 1.0, &|n| n == "b")?;
    assert!((total - 5.0).abs() < 1e-9);
    let coef = 1.0 / (5.0 + 1e-6);
    assert_close(
        &values(store.get(a.as_tensor()).ok_or("a")?)?,
        &[3.0 * coef, 4.0 * coef],
        1e-7,
        "clipped a",
    )?;
    assert_eq!(values(store.get(b.as_tensor()).ok_or("b")?)?, vec![12.0]);
    // A NaN gradient: reported, nothing scaled.
    let mut store = grads(&[(&a, &[f32::NAN, 1.0]), (&b, &[12.0])])?;
    assert!(clip_grad_norm(&mut store, &vars, 1.0, NOTHING_FROZEN)?.is_nan());
    assert_eq!(values(store.get(b.as_tensor()).ok_or("b")?)?, vec![12.0]);
    // Nothing to clip.
    assert_eq!(
        grad_norm(&GradStore::default(), &vars, NOTHING_FROZEN)?,
        0.0
    );
    let err = clip_grad_norm(&mut store, &vars, 0.0, NOTHING_FROZEN)
        .err()
        .ok_or("max_norm 0")?;
    assert_eq!(config_key(err), "grad_norm_clip");
    Ok(())
}

#[test]
fn schedules_by_hand() {
    // Warmup of 4 steps to 0.5: 0.5 * (s + 1) / 5, then constant.
    let constant = LrSchedule::constant(0.5).with_warmup_steps(4);
    let got: Vec<f64> = (0..6).map(|s| constant.lr_at(s, 10)).collect();
    assert_eq!(got, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.5]);
    // Past max_steps: min_lr.
    assert_eq!(constant.lr_at(11, 10), 0.0);
    // Cosine over 10 steps without warmup from 1 to 0: cos(pi * s / 10) halves; s = 5 -> 0.5.
    let cosine = LrSchedule::new(LrPolicy::CosineAnnealing, 1.0);
    assert_eq!(cosine.lr_at(0, 10), 1.0);
    assert!((cosine.lr_at(5, 10) - 0.5).abs() < 1e-15);
    assert!(cosine.lr_at(10, 10).abs() < 1e-15);
    // Linear with warmup ratio 0.2 of 10 steps (W = 2) to min_lr 0.1: at s = 6, q = 4 / 8,
    // lr = 0.1 + 0.9 * 0.5 = 0.55.
    let linear = LrSchedule::new(LrPolicy::WarmupAnnealing, 1.0)
        .with_warmup_ratio(0.2)
        .with_min_lr(0.1);
    assert_eq!(linear.warmup_steps(10), 2);
    assert!((linear.lr_at(6, 10) - 0.55).abs() < 1e-15);
    // Polynomial power 2 over 10 steps: at s = 5, (1 - 0.5)^2 = 0.25.
    let poly = LrSchedule::new(LrPolicy::PolynomialDecayAnnealing, 1.0).with_power(2.0);
    assert!((poly.lr_at(5, 10) - 0.25).abs() < 1e-15);
    // Warmup as long as the run: the peak at its end, no division by zero.
    let degenerate = LrSchedule::new(LrPolicy::CosineAnnealing, 1.0).with_warmup_steps(10);
    assert_eq!(degenerate.lr_at(10, 10), 1.0);
    assert_eq!(degenerate.lr_at(9, 10), 10.0 / 11.0);
}
