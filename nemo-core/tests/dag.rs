//! The lazy DAG end to end (NeMo 0.x's application model): a real-function data layer, a
//! `TaylorNet` and an `MseLoss` called on symbolic handles, trained, evaluated and inferred
//! through the graph's actions; wiring-time errors; mixed typed and dynamic nodes; exact resume.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device, Tensor};
use nemo_core::dag::{BatchMean, DynHandle, EvalMetric, Evaluation, Graph, Handle, TrainAction};
use nemo_core::module::{DynModule, ModuleKind, NamedTensors, PortTypes};
use nemo_core::optim::{AdamW, AdamWConfig, Optimizer};
use nemo_core::prelude::*;
use nemo_core::testing::{
    GradientProblem, assert_all_vars_receive_gradients, vars_without_gradient,
};
use nemo_core::train::TrainerConfig;
use nemo_core::tutorials::*;
use nemo_core::types::NeuralType;
use nemo_core::{Error, Result};

const LR: f64 = 0.05;

fn data(n: usize, seed: u64) -> Result<Arc<RealFunctionDataLayer>> {
    Ok(Arc::new(RealFunctionDataLayer::new(
        RealFunctionDataLayerConfig {
            n,
            batch_size: 64,
            f_name: RealFunction::Sin,
            x_lo: -2.0,
            x_hi: 2.0,
            seed,
            shuffle: true,
        },
        &Device::Cpu,
    )?))
}

/// The tutorial graph: data → TaylorNet(dim 4) → MseLoss.
struct Tutorial {
    graph: Graph,
    net: Arc<TaylorNet>,
    data: RealFunctionDataLayerHandles,
    pred: TaylorNetHandles,
    loss: MseLossHandles,
}

fn tutorial() -> Result<Tutorial> {
    let graph = Graph::new();
    let vb = graph.params().var_builder(DType::F32, &Device::Cpu);
    let net = Arc::new(TaylorNetConfig { dim: 4 }.init(vb.pp("taylor_net"))?);
    let d = data(512, 1)?.call(&graph)?;
    let pred = net.call(TaylorNetInputs { x: &d.x })?;
    let loss = Arc::new(MseLoss).call(MseLossInputs {
        predictions: &pred.y_pred,
        target: &d.y,
    })?;
    Ok(Tutorial {
        graph,
        net,
        data: d,
        pred,
        loss,
    })
}

fn quiet(max_steps: u64) -> TrainerConfig {
    let mut c = TrainerConfig::new(max_steps);
    c.progress = false;
    c
}

fn adamw(graph: &Graph) -> Result<AdamW> {
    AdamW::new(
        graph.params().trainable_vars(),
        AdamWConfig {
            weight_decay: 0.0,
            ..Default::default()
        },
    )
}

#[test]
fn taylor_net_learns_sin_through_the_train_action() -> Result<()> {
    let t = tutorial()?;
    let dir = tempfile::tempdir().map_err(|e| Error::Config {
        key: "tempdir".into(),
        msg: e.to_string(),
    })?;
    let mut opt = adamw(&t.graph)?;
    // The eval loss on other samples through the same net: a second call of the same module.
    let eval_data = data(256, 99)?.call(&t.graph)?;
    let eval_pred = t.net.call(TaylorNetInputs { x: &eval_data.x })?;
    let eval_loss = Arc::new(MseLoss).call(MseLossInputs {
        predictions: &eval_pred.y_pred,
        target: &eval_data.y,
    })?;
    assert_eq!(
        t.graph.node_names(),
        [
            "RealFunctionDataLayer",
            "TaylorNet",
            "MseLoss",
            "RealFunctionDataLayer_1",
            "TaylorNet_1",
            "MseLoss_1"
        ]
    );
    let mut mean = BatchMean::new("eval_loss", 0);
    let mut config = quiet(300);
    config.eval_every = Some(100);
    let summary = t.graph.train(TrainAction {
        evaluation: Some(Evaluation {
            tensors: vec![eval_loss.loss.clone().into_dyn()],
            metrics: vec![&mut mean],
        }),
        ..TrainAction::new(t.loss.loss.clone(), &mut opt, LR, config, dir.path())
    })?;
    let last = summary.history.last().map(|r| r.loss).unwrap_or(f64::NAN);
    assert!(last < 1e-3, "final training loss {last}");
    let eval = summary
        .last_eval
        .get("eval_loss")
        .copied()
        .unwrap_or(f64::NAN);
    assert!(eval < 1e-3, "eval loss {eval}");
    assert!(summary.checkpoint.is_some());

    // infer: values of every sample, in order, close to sin.
    let out = t.graph.infer(&[
        t.data.x.clone().into_dyn(),
        t.pred.y_pred.clone().into_dyn(),
    ])?;
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].dims(), &[512, 1]);
    assert_eq!(out[1].dims(), &[512, 1]);
    let xs = out[0].flatten_all()?.to_vec1::<f32>()?;
    let ys = out[1].flatten_all()?.to_vec1::<f32>()?;
    let worst = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (x.sin() - y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 0.1, "worst |sin x - prediction| = {worst}");
    // Scalars are stacked, one per batch.
    let losses = t.graph.infer(&[t.loss.loss.clone().into_dyn()])?;
    assert_eq!(losses[0].dims(), &[8]);
    Ok(())
}

#[test]
fn every_trainable_variable_gets_a_gradient_and_the_helper_flags_one_that_does_not() -> Result<()> {
    let t = tutorial()?;
    let loss = t
        .graph
        .run_batch(&[t.loss.loss.clone().into_dyn()], 0, 0, &ForwardCtx::eval())?;
    assert_all_vars_receive_gradients(&loss[0], &t.graph.params())?;

    // A parameter nothing uses, and one multiplied by zero.
    let vb = t.graph.params().var_builder(DType::F32, &Device::Cpu);
    let _unused = vb.get_with_hints(3, "head.unused", candle_nn::init::ONE)?;
    let zeroed = vb.get_with_hints(1, "head.zeroed", candle_nn::init::ONE)?;
    let loss = t
        .graph
        .run_batch(&[t.loss.loss.clone().into_dyn()], 0, 0, &ForwardCtx::eval())?;
    let loss = (&loss[0] + (&zeroed - &zeroed)?.sum_all()?)?;
    let bad = vars_without_gradient(&loss, &t.graph.params())?;
    let found: Vec<(&str, GradientProblem)> =
        bad.iter().map(|r| (r.name.as_str(), r.problem)).collect();
    assert_eq!(
        found,
        [
            ("head.unused", GradientProblem::Missing),
            ("head.zeroed", GradientProblem::AllZero)
        ]
    );
    let msg = match assert_all_vars_receive_gradients(&loss, &t.graph.params()) {
        Ok(()) => String::new(),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains("`head.unused` (no gradient)"), "{msg}");
    assert!(msg.contains("`head.zeroed` (all-zero gradient)"), "{msg}");
    Ok(())
}

#[test]
fn a_dynamic_miswire_is_refused_when_connected_naming_port_and_types() -> Result<()> {
    let t = tutorial()?;
    let vb = t.graph.params().var_builder(DType::F32, &Device::Cpu);
    let net: Arc<dyn DynModule> = Arc::new(TaylorNetConfig { dim: 2 }.init(vb.pp("other"))?);
    let before = t.graph.node_names().len();
    // `y` is Labels; TaylorNet's `x` wants Channel.
    let err = t
        .graph
        .call_dyn(net.clone(), &[("x", t.data.y.clone().into_dyn())])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("input `x`"), "{err}");
    assert!(err.contains("RealFunctionDataLayer.y"), "{err}");
    assert!(err.contains("(B, D:1) Labels"), "{err}");
    assert!(err.contains("(B, D:1) Channel"), "{err}");
    assert!(err.contains("INCOMPATIBLE"), "{err}");
    // Unknown and missing ports.
    let unknown = t
        .graph
        .call_dyn(net.clone(), &[("z", t.data.x.clone().into_dyn())]);
    assert!(
        unknown
            .err()
            .is_some_and(|e| e.to_string().contains("the ports are x"))
    );
    let missing = t.graph.call_dyn(net, &[]);
    assert!(
        missing
            .err()
            .is_some_and(|e| e.to_string().contains("mandatory port not connected"))
    );
    assert_eq!(
        t.graph.node_names().len(),
        before,
        "failed calls add no node"
    );
    // A runtime re-typing that does not fit.
    let wrong = t
        .data
        .y
        .clone()
        .into_dyn()
        .typed::<(B, D), MelSpectrogram>();
    assert!(
        wrong
            .err()
            .is_some_and(|e| e.to_string().contains("MelSpectrogram"))
    );
    Ok(())
}

#[test]
fn handles_of_another_graph_are_refused() -> Result<()> {
    let a = tutorial()?;
    let b = tutorial()?;
    let err = Arc::new(MseLoss)
        .call(MseLossInputs {
            predictions: &a.pred.y_pred,
            target: &b.data.y,
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("belongs to another graph"), "{err}");
    assert!(err.contains("MseLoss.target"), "{err}");
    assert!(a.graph.infer(&[b.pred.y_pred.clone().into_dyn()]).is_err());
    Ok(())
}

/// `y = x`, counting its calls.
#[neural_module(inputs(x: (B, D) Channel), outputs(y: (B, D) Channel))]
struct Counted {
    calls: Arc<AtomicUsize>,
}

impl Forward for Counted {
    fn forward_tensors(
        &self,
        x: CountedInputTensors,
        _ctx: &ForwardCtx,
    ) -> Result<CountedOutputTensors> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(CountedOutputTensors { y: x.x })
    }
}

#[test]
fn only_the_nodes_the_requested_tensors_need_run() -> Result<()> {
    let t = tutorial()?;
    let calls = Arc::new(AtomicUsize::new(0));
    let side = Arc::new(Counted {
        calls: calls.clone(),
    })
    .call(CountedInputs { x: &t.pred.y_pred })?;
    t.graph.infer(&[t.pred.y_pred.clone().into_dyn()])?;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    t.graph.infer(&[side.y.into_dyn()])?;
    assert_eq!(calls.load(Ordering::SeqCst), 8, "once per batch");
    Ok(())
}

/// A module known only through its runtime types: `y = scale * x`.
struct Scale {
    scale: f64,
}

impl DynModule for Scale {
    fn type_name(&self) -> &'static str {
        "Scale"
    }
    fn kind(&self) -> ModuleKind {
        ModuleKind::Module
    }
    fn dyn_input_types(&self) -> PortTypes {
        PortTypes::new(vec![("x".into(), port_type("(B, D) Channel"))])
    }
    fn dyn_output_types(&self) -> PortTypes {
        PortTypes::new(vec![("y".into(), port_type("(B, D) Channel"))])
    }
    fn forward_dyn(&self, mut inputs: NamedTensors, _ctx: &ForwardCtx) -> Result<NamedTensors> {
        let x = inputs.remove("x").ok_or_else(|| Error::Config {
            key: "Scale.x".into(),
            msg: "missing".into(),
        })?;
        Ok(NamedTensors::from([("y".to_string(), (x * self.scale)?)]))
    }
}

fn port_type(text: &str) -> NeuralType {
    text.parse().unwrap_or_else(|_| NeuralType::void())
}

#[test]
fn a_graph_mixes_typed_and_dynamic_nodes() -> Result<()> {
    let t = tutorial()?;
    let scaled = t.graph.call_dyn_as(
        "half",
        Arc::new(Scale { scale: 0.5 }),
        &[("x", t.pred.y_pred.clone().into_dyn())],
    )?;
    assert_eq!(scaled.node_name(), "half");
    let y: DynHandle = scaled.get("y")?;
    // Back to the typed world, checked at run time.
    let typed = y.typed::<(B, D), Channel>()?;
    let loss = Arc::new(MseLoss).call(MseLossInputs {
        predictions: &typed,
        target: &t.data.y,
    })?;
    let both = t
        .graph
        .infer(&[t.pred.y_pred.clone().into_dyn(), typed.into_dyn()])?;
    let expected = (&both[0] * 0.5)?;
    let diff = (&both[1] - expected)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert_eq!(diff, 0.0);
    // And it trains through the dynamic node.
    let dir = tempfile::tempdir().map_err(|e| Error::Config {
        key: "tempdir".into(),
        msg: e.to_string(),
    })?;
    let mut opt = adamw(&t.graph)?;
    let summary = t.graph.train(TrainAction::new(
        loss.loss,
        &mut opt,
        LR,
        quiet(30),
        dir.path(),
    ))?;
    let first = summary.history.first().map(|r| r.loss).unwrap_or(0.0);
    let last = summary.history.last().map(|r| r.loss).unwrap_or(f64::NAN);
    assert!(last < first, "{first} -> {last}");
    Ok(())
}

#[test]
fn resuming_through_the_action_reproduces_the_uninterrupted_losses() -> Result<()> {
    let t = tutorial()?;
    let params = t.graph.params();
    let initial: Vec<Tensor> = params
        .named_vars()
        .iter()
        .map(|(_, v)| v.as_tensor().copy())
        .collect::<candle_core::Result<_>>()?;
    let restore = || -> Result<()> {
        for ((_, var), value) in params.named_vars().iter().zip(&initial) {
            var.set(value)?;
        }
        Ok(())
    };
    let tmp = |name: &str| -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(name)
            .tempdir()
            .map_err(|e| Error::Config {
                key: "tempdir".into(),
                msg: e.to_string(),
            })
    };
    let (full_dir, part_dir) = (tmp("full")?, tmp("part")?);
    let losses = |s: &nemo_core::train::TrainSummary| -> Vec<f64> {
        s.history.iter().map(|r| r.loss).collect()
    };

    let mut opt = adamw(&t.graph)?;
    let full = t.graph.train(TrainAction::new(
        t.loss.loss.clone(),
        &mut opt,
        LR,
        quiet(24),
        full_dir.path(),
    ))?;

    restore()?;
    let mut opt = adamw(&t.graph)?;
    let first = t.graph.train(TrainAction::new(
        t.loss.loss.clone(),
        &mut opt,
        LR,
        quiet(10),
        part_dir.path(),
    ))?;
    // A fresh optimizer and scrambled weights: everything comes from the checkpoint.
    for (_, var) in params.named_vars() {
        var.set(&var.as_tensor().zeros_like()?)?;
    }
    let mut opt = adamw(&t.graph)?;
    assert_eq!(opt.step_count(), 0);
    let second = t.graph.train(TrainAction {
        resume: true,
        ..TrainAction::new(
            t.loss.loss.clone(),
            &mut opt,
            LR,
            quiet(24),
            part_dir.path(),
        )
    })?;
    assert_eq!(second.history.first().map(|r| r.step), Some(10));
    let resumed: Vec<f64> = losses(&first).into_iter().chain(losses(&second)).collect();
    assert_eq!(resumed, losses(&full));
    Ok(())
}

/// Passes its input through and counts the calls that trained.
struct ModeProbe {
    training_calls: AtomicUsize,
    eval_calls: AtomicUsize,
}

impl DynModule for ModeProbe {
    fn type_name(&self) -> &'static str {
        "ModeProbe"
    }
    fn kind(&self) -> ModuleKind {
        ModuleKind::Module
    }
    fn dyn_input_types(&self) -> PortTypes {
        PortTypes::new(vec![("x".into(), port_type("(B, D) Channel"))])
    }
    fn dyn_output_types(&self) -> PortTypes {
        PortTypes::new(vec![("y".into(), port_type("(B, D) Channel"))])
    }
    fn forward_dyn(&self, inputs: NamedTensors, ctx: &ForwardCtx) -> Result<NamedTensors> {
        let counter = if ctx.is_training() {
            &self.training_calls
        } else {
            &self.eval_calls
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(NamedTensors::from([("y".to_string(), inputs["x"].clone())]))
    }
}

#[test]
fn actions_pass_each_node_the_mode_it_runs_in() -> Result<()> {
    let t = tutorial()?;
    let probe = Arc::new(ModeProbe {
        training_calls: AtomicUsize::new(0),
        eval_calls: AtomicUsize::new(0),
    });
    let probed = t
        .graph
        .call_dyn_as(
            "probe",
            probe.clone(),
            &[("x", t.pred.y_pred.clone().into_dyn())],
        )?
        .get("y")?
        .typed::<(B, D), Channel>()?;
    let loss = Arc::new(MseLoss).call(MseLossInputs {
        predictions: &probed,
        target: &t.data.y,
    })?;
    let mut mean = BatchMean::new("loss", 0);
    let metrics: &mut [&mut dyn EvalMetric] = &mut [&mut mean];
    let out = t.graph.eval(&[loss.loss.clone().into_dyn()], metrics)?;
    assert!(out.get("loss").is_some_and(|v| v.is_finite()));
    assert_eq!(
        probe.eval_calls.load(Ordering::Relaxed),
        8,
        "one eval call per batch"
    );
    assert_eq!(probe.training_calls.load(Ordering::Relaxed), 0);
    let dir = tempfile::tempdir().map_err(|e| Error::Config {
        key: "tempdir".into(),
        msg: e.to_string(),
    })?;
    let mut opt = adamw(&t.graph)?;
    t.graph.train(TrainAction::new(
        loss.loss,
        &mut opt,
        LR,
        quiet(3),
        dir.path(),
    ))?;
    assert_eq!(probe.training_calls.load(Ordering::Relaxed), 3);
    Ok(())
}

#[test]
fn a_non_scalar_loss_cannot_be_optimized() -> Result<()> {
    let t = tutorial()?;
    // Handles without data cannot be evaluated; a non-scalar loss cannot be optimized.
    let dir = tempfile::tempdir().map_err(|e| Error::Config {
        key: "tempdir".into(),
        msg: e.to_string(),
    })?;
    let mut opt = adamw(&t.graph)?;
    let err = t
        .graph
        .train(TrainAction::new(
            t.pred.y_pred.clone(),
            &mut opt,
            LR,
            quiet(1),
            dir.path(),
        ))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("must be a scalar"), "{err}");
    let _ = Tensor::zeros(1, DType::F32, &Device::Cpu)?;
    Ok(())
}

#[test]
fn axis_operations_on_handles_are_nodes_that_compute_what_eager_ones_do() -> Result<()> {
    let t = tutorial()?;
    // (B, D:1) Channel → (D:1, B) → (B, D:1) → sum over D → (B).
    let swapped = t.pred.y_pred.permute_to::<(D, B)>()?;
    assert_eq!(swapped.neural_type().to_string(), "(D:1, B) Channel");
    let back = swapped.permute_to::<(B, D)>()?;
    let summed = back.sum_over::<D>()?;
    assert_eq!(summed.neural_type().to_string(), "(B) Channel");
    let twice = Handle::cat::<B>(&[&back, &back])?;
    let general = t.data.y.clone().upcast::<Void>();
    assert_eq!(general.neural_type().to_string(), "(B, D:1) Labels");
    let names = t.graph.node_names();
    assert!(names.iter().any(|n| n == "permute_to_1"), "{names:?}");
    assert!(names.iter().any(|n| n == "sum_over") && names.iter().any(|n| n == "cat"));

    let out = t.graph.infer(&[
        t.pred.y_pred.clone().into_dyn(),
        swapped.into_dyn(),
        summed.into_dyn(),
        twice.into_dyn(),
    ])?;
    let pred = out[0].clone();
    // `infer` joins along the first axis: the eight (D:1, B:64) batches give (8, 64), row i
    // being batch i transposed.
    assert_eq!(out[1].dims(), &[8, 64]);
    assert_eq!(
        out[1].flatten_all()?.to_vec1::<f32>()?,
        pred.flatten_all()?.to_vec1::<f32>()?
    );
    assert_eq!(out[2].to_vec1::<f32>()?, pred.squeeze(1)?.to_vec1::<f32>()?);
    // Each batch of 64 concatenated with itself, the batches then joined.
    assert_eq!(out[3].dims(), &[1024, 1]);
    Ok(())
}

#[test]
fn infer_pads_batches_of_different_lengths_and_infer_batches_keeps_them() -> Result<()> {
    // A module whose output is as long as the batch index + 1: batches of different lengths.
    struct Ragged;
    impl DynModule for Ragged {
        fn type_name(&self) -> &'static str {
            "Ragged"
        }
        fn kind(&self) -> ModuleKind {
            ModuleKind::Module
        }
        fn dyn_input_types(&self) -> PortTypes {
            PortTypes::new(vec![("x".into(), port_type("(B, D) Channel"))])
        }
        fn dyn_output_types(&self) -> PortTypes {
            PortTypes::new(vec![("y".into(), port_type("(B, T) Channel"))])
        }
        fn forward_dyn(&self, inputs: NamedTensors, _ctx: &ForwardCtx) -> Result<NamedTensors> {
            let x = &inputs["x"];
            let b = x.dim(0)?;
            let t = if b == 64 { 3 } else { 5 };
            let y = x.broadcast_as((b, t))?.contiguous()?;
            Ok(NamedTensors::from([("y".to_string(), y)]))
        }
    }
    let graph = Graph::new();
    // 100 samples in batches of 64: the last batch has 36 rows and a longer T.
    let layer = Arc::new(RealFunctionDataLayer::new(
        RealFunctionDataLayerConfig {
            n: 100,
            batch_size: 64,
            ..Default::default()
        },
        &Device::Cpu,
    )?);
    let d = layer.call(&graph)?;
    let out = graph.call_dyn(Arc::new(Ragged), &[("x", d.x.clone().into_dyn())])?;
    let y = out.get("y")?;
    let batches = graph.infer_batches(std::slice::from_ref(&y))?;
    assert_eq!(batches[0].len(), 2);
    assert_eq!(batches[0][0].dims(), &[64, 3]);
    assert_eq!(batches[0][1].dims(), &[36, 5]);
    let joined = graph.infer(&[y])?;
    assert_eq!(joined[0].dims(), &[100, 5]);
    let first = joined[0].narrow(0, 0, 64)?;
    // The shorter batch is zero-padded at the end of T.
    assert_eq!(
        first
            .narrow(1, 3, 2)?
            .abs()?
            .sum_all()?
            .to_scalar::<f32>()?,
        0.0
    );
    assert_eq!(
        first.narrow(1, 0, 3)?.to_vec2::<f32>()?,
        batches[0][0].to_vec2::<f32>()?
    );
    Ok(())
}
