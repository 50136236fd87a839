//! NeMo 0.x's first example, lazily: a data layer of `sin x`, a `TaylorNet` and an `MseLoss`
//! are wired on symbolic handles (checked as they are connected, nothing computed), then the
//! graph is trained with a progress bar and checkpoints, resumed from its last checkpoint for
//! more steps, and asked for predictions.
//!
//! Run: `cargo run --release --example dag` (writes `runs/dag/`, replaced on each run).

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device};
use nemo::core::dag::{BatchMean, Evaluation, Graph, TrainAction};
use nemo::core::optim::{AdamW, AdamWConfig};
use nemo::core::train::TrainerConfig;
use nemo::core::tutorials::{
    MseLoss, MseLossInputs, RealFunction, RealFunctionDataLayer, RealFunctionDataLayerConfig,
    TaylorNetConfig, TaylorNetInputs,
};

fn sin_data(
    n: usize,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
) -> nemo::Result<RealFunctionDataLayer> {
    RealFunctionDataLayer::new(
        RealFunctionDataLayerConfig {
            n,
            batch_size,
            f_name: RealFunction::Sin,
            x_lo: -2.0,
            x_hi: 2.0,
            seed,
            shuffle,
        },
        &Device::Cpu,
    )
}

fn main() -> anyhow::Result<()> {
    let run_dir = Path::new("runs/dag");
    if run_dir.exists() {
        std::fs::remove_dir_all(run_dir)?;
    }

    // 1. Modules.
    let graph = Graph::new();
    let vb = graph.params().var_builder(DType::F32, &Device::Cpu);
    let train_data = Arc::new(sin_data(4096, 128, 1, true)?);
    let eval_data = Arc::new(sin_data(8, 8, 7, false)?);
    let net = Arc::new(TaylorNetConfig { dim: 4 }.init(vb.pp("taylor_net"))?);
    let mse = Arc::new(MseLoss);

    // 2. The activation DAG: symbolic handles, each connection checked when made.
    let train = train_data.call(&graph)?;
    let train_pred = net.call(TaylorNetInputs { x: &train.x })?;
    let train_loss = mse.call(MseLossInputs {
        predictions: &train_pred.y_pred,
        target: &train.y,
    })?;
    let eval = eval_data.call(&graph)?;
    let eval_pred = net.call(TaylorNetInputs { x: &eval.x })?;
    let eval_loss = mse.call(MseLossInputs {
        predictions: &eval_pred.y_pred,
        target: &eval.y,
    })?;
    println!("graph: {}", graph.node_names().join(" -> "));
    println!("TaylorNet y_pred: {}", train_pred.y_pred.neural_type());

    // 3. Train 150 steps, checkpointing every 50, then resume from the last checkpoint to 300.
    let mut summary = None;
    for (max_steps, resume) in [(150, false), (300, true)] {
        let mut config = TrainerConfig::new(max_steps);
        config.checkpoint_every = Some(50);
        config.eval_every = Some(50);
        config.log_every = 10;
        // A fresh optimizer: on resume its state comes from the checkpoint.
        let mut optimizer = AdamW::new(
            graph.params().trainable_vars(),
            AdamWConfig {
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        let mut eval_mse = BatchMean::new("eval_mse", 0);
        let s = graph.train(TrainAction {
            resume,
            evaluation: Some(Evaluation {
                tensors: vec![eval_loss.loss.clone().into_dyn()],
                metrics: vec![&mut eval_mse],
            }),
            ..TrainAction::new(
                train_loss.loss.clone(),
                &mut optimizer,
                0.05,
                config,
                run_dir,
            )
        })?;
        let first = s.history.first().map_or(0, |r| r.step);
        println!(
            "{} steps {first}..{}; checkpoint {}",
            if resume { "resumed:" } else { "trained:" },
            s.steps,
            s.checkpoint
                .as_deref()
                .map_or("none".into(), |p| p.display().to_string())
        );
        summary = Some(s);
    }

    // 4. Infer: predictions for the eval samples, in eval mode, without gradients.
    let values = graph.infer(&[eval.x.into_dyn(), eval_pred.y_pred.into_dyn()])?;
    let (xs, preds) = match values.as_slice() {
        [x, p] => (
            x.flatten_all()?.to_vec1::<f32>()?,
            p.flatten_all()?.to_vec1::<f32>()?,
        ),
        _ => anyhow::bail!("infer returned {} tensors, expected 2", values.len()),
    };
    println!("\n{:>8} {:>9} {:>11}", "x", "sin x", "prediction");
    for (x, p) in xs.iter().zip(&preds) {
        println!("{x:>8.4} {:>9.5} {p:>11.5}", x.sin());
    }
    if let Some(s) = summary {
        let last = s.history.last().map_or(f64::NAN, |r| r.loss);
        println!("\nfinal training loss {last:.6}; eval {:?}", s.last_eval);
    }
    Ok(())
}
