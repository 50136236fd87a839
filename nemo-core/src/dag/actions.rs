//! The actions on a [`Graph`] (NeMo 0.x `train`, `eval`, `infer`): each computes a set of handles
//! batch by batch over the data layers they depend on, running only the nodes they need.
//!
//! * [`Graph::train`] — a [`TrainTask`] over the graph, driven by [`Trainer::fit_with`]: the
//!   loss handles are summed and minimized; checkpoints, resume, evaluation, early stopping and
//!   the progress bar are the trainer's. Batch `g = step * batches_per_step + micro` is batch
//!   `g % n` of epoch `g / n` of the data layers (`n` batches each), so a resumed run sees the
//!   same data as an uninterrupted one.
//! * [`Graph::eval`] — one epoch (epoch 0) in eval mode; each batch's values go to
//!   [`EvalMetric`]s (NeMo's evaluator callback: per-batch and end-of-epoch functions).
//! * [`Graph::infer`] — one epoch in eval mode, values detached (no gradient) and concatenated
//!   along the batch axis (the first): a `(B, D)` port over 3 batches of 4 gives `(12, D)`; a
//!   scalar port gives one value per batch, `(num_batches,)`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::Tensor;

use super::Graph;
use super::graph::{Feed, Plan};
use super::handle::DynHandle;
use crate::optim::{LrSchedule, Optimizer};
use crate::params::Parameters;
use crate::train::{Callback, TrainSummary, TrainTask, Trainer, TrainerConfig, latest_checkpoint};
use crate::{Error, ForwardCtx, Result};

/// A user metric over an evaluation epoch (NeMo's `EvaluatorCallback`): sees each batch's
/// values of the evaluated handles, then reports named numbers.
pub trait EvalMetric {
    /// Called before the first batch of an evaluation.
    fn reset(&mut self) {}
    /// One batch: the values of the evaluated handles, in the order given.
    fn batch(&mut self, values: &[Tensor]) -> Result<()>;
    /// The metrics of the epoch, e.g. `{"eval_loss": 0.01}`.
    fn finish(&mut self) -> Result<BTreeMap<String, f64>>;
}

/// The mean over batches of a scalar (or one-element) value, e.g. a loss.
#[derive(Debug, Clone)]
pub struct BatchMean {
    name: String,
    index: usize,
    sum: f64,
    count: usize,
}

impl BatchMean {
    /// The mean of evaluated handle number `index`, reported as `name`.
    pub fn new(name: impl Into<String>, index: usize) -> Self {
        BatchMean {
            name: name.into(),
            index,
            sum: 0.0,
            count: 0,
        }
    }
}

impl EvalMetric for BatchMean {
    fn reset(&mut self) {
        self.sum = 0.0;
        self.count = 0;
    }
    fn batch(&mut self, values: &[Tensor]) -> Result<()> {
        let v = values.get(self.index).ok_or_else(|| Error::Config {
            key: self.name.clone(),
            msg: format!(
                "no evaluated tensor number {} ({} given)",
                self.index,
                values.len()
            ),
        })?;
        self.sum += v
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .mean_all()?
            .to_scalar::<f64>()?;
        self.count += 1;
        Ok(())
    }
    fn finish(&mut self) -> Result<BTreeMap<String, f64>> {
        let mean = if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        };
        Ok(BTreeMap::from([(self.name.clone(), mean)]))
    }
}

/// Evaluation during training: the handles to compute over their data layers' epoch, and the
/// metrics that read them. Runs when the [`TrainerConfig`] says (`eval_every`, and at the end).
pub struct Evaluation<'a> {
    /// The handles to compute, in the order the metrics see them.
    pub tensors: Vec<DynHandle>,
    /// The metrics.
    pub metrics: Vec<&'a mut dyn EvalMetric>,
}

/// What [`Graph::train`] needs (NeMo 0.x's `train(tensors_to_optimize, optimizer,
/// optimization_params, callbacks, lr_policy, batches_per_step, stop_on_nan_loss)`).
pub struct TrainAction<'a> {
    /// The losses to minimize (their sum); scalar or one-element handles.
    pub tensors_to_optimize: Vec<DynHandle>,
    /// The optimizer, built over the trainable parameters of [`Graph::params`].
    pub optimizer: &'a mut dyn Optimizer,
    /// The learning-rate schedule.
    pub schedule: LrSchedule,
    /// Steps, `batches_per_step`, `stop_on_nan_loss`, checkpoints, evaluation, early stopping,
    /// freezing, progress bar.
    pub config: TrainerConfig,
    /// User callbacks, after each step and at the end.
    pub callbacks: Vec<&'a mut dyn Callback>,
    /// Where `metrics.jsonl` and `checkpoints/` go.
    pub run_dir: PathBuf,
    /// Continue from the newest checkpoint in `run_dir/checkpoints` when there is one.
    pub resume: bool,
    /// Evaluation during training, if any.
    pub evaluation: Option<Evaluation<'a>>,
}

impl<'a> TrainAction<'a> {
    /// Minimizes `loss` with `optimizer` for `config.max_steps` steps at a constant rate `lr`,
    /// writing to `run_dir`; no callbacks, no evaluation, no resume.
    pub fn new(
        loss: impl Into<DynHandle>,
        optimizer: &'a mut dyn Optimizer,
        lr: f64,
        config: TrainerConfig,
        run_dir: impl Into<PathBuf>,
    ) -> Self {
        TrainAction {
            tensors_to_optimize: vec![loss.into()],
            optimizer,
            schedule: LrSchedule::constant(lr),
            config,
            callbacks: Vec::new(),
            run_dir: run_dir.into(),
            resume: false,
            evaluation: None,
        }
    }
}

/// A loss tensor as a scalar, for the trainer.
fn scalar(loss: Tensor, handle: &DynHandle) -> Result<Tensor> {
    match loss.dims() {
        [] => Ok(loss),
        [1] => Ok(loss.reshape(())?),
        dims => Err(Error::Config {
            key: handle.name(),
            msg: format!("a tensor to optimize must be a scalar; its shape is {dims:?}"),
        }),
    }
}

struct GraphTask<'g, 'a> {
    graph: &'g Graph,
    params: Parameters,
    losses: Vec<DynHandle>,
    plan: Plan,
    batches: usize,
    batches_per_step: u64,
    evaluation: Option<Evaluation<'a>>,
}

impl TrainTask for GraphTask<'_, '_> {
    fn params(&self) -> &Parameters {
        &self.params
    }

    fn loss(&mut self, step: u64, micro: usize, ctx: &ForwardCtx) -> Result<Tensor> {
        let g = step * self.batches_per_step + micro as u64;
        let n = self.batches as u64;
        let index = usize::try_from(g % n).unwrap_or(0);
        let values = self.plan.run(
            &self.graph.nodes(),
            &self.losses,
            Feed::Batch {
                epoch: g / n,
                index,
            },
            ctx,
        )?;
        let mut total: Option<Tensor> = None;
        for (v, h) in values.into_iter().zip(&self.losses) {
            let v = scalar(v, h)?;
            total = Some(match total {
                Some(t) => (t + v)?,
                None => v,
            });
        }
        total.ok_or_else(|| Error::Config {
            key: "tensors_to_optimize".into(),
            msg: "no tensor to optimize".into(),
        })
    }

    fn evaluate(&mut self, _step: u64) -> Result<BTreeMap<String, f64>> {
        match &mut self.evaluation {
            Some(e) => self.graph.eval(&e.tensors, &mut e.metrics),
            None => Ok(BTreeMap::new()),
        }
    }
}

impl Graph {
    /// Trains: minimizes the sum of `action.tensors_to_optimize` with the [`Trainer`] (see the
    /// [`dag`](crate::dag) docs for the data order). With `resume`, continues from the newest
    /// checkpoint under `run_dir` (weights, optimizer state, step) when there is one.
    ///
    /// # Errors
    /// A handle of another graph or without data; a non-scalar loss; the trainer's errors
    /// (non-finite loss with `stop_on_nan_loss`, checkpoint I/O).
    pub fn train(&self, action: TrainAction<'_>) -> Result<TrainSummary> {
        let TrainAction {
            tensors_to_optimize,
            optimizer,
            schedule,
            config,
            mut callbacks,
            run_dir,
            resume,
            evaluation,
        } = action;
        if tensors_to_optimize.is_empty() {
            return Err(Error::Config {
                key: "tensors_to_optimize".into(),
                msg: "give at least one loss handle".into(),
            });
        }
        let nodes = self.nodes();
        let plan = Plan::new(self, &nodes, &tensors_to_optimize)?;
        let batches = plan.num_batches(&nodes)?;
        let batches_per_step = config.batches_per_step as u64;
        let trainer = Trainer::new(config, run_dir)?;
        let mut task = GraphTask {
            graph: self,
            params: self.params(),
            losses: tensors_to_optimize,
            plan,
            batches,
            batches_per_step,
            evaluation,
        };
        let start = match latest_checkpoint(&trainer.checkpoint_dir())? {
            Some(dir) if resume => trainer.resume(&dir, &mut task, optimizer)?,
            _ => 0,
        };
        trainer.fit_with(&mut task, optimizer, &schedule, start, &mut callbacks)
    }

    /// Evaluates `tensors` over one epoch of their data layers in eval mode, giving each batch's
    /// values to every metric, and returns all metrics' results. The previous train/eval mode
    /// is restored.
    ///
    /// # Errors
    /// As [`Graph::run_batch`]; a metric's error.
    pub fn eval(
        &self,
        tensors: &[DynHandle],
        metrics: &mut [&mut dyn EvalMetric],
    ) -> Result<BTreeMap<String, f64>> {
        let nodes = self.nodes();
        let plan = Plan::new(self, &nodes, tensors)?;
        let batches = plan.num_batches(&nodes)?;
        let ctx = ForwardCtx::eval();
        for m in metrics.iter_mut() {
            m.reset();
        }
        for index in 0..batches {
            let values = plan.run(&nodes, tensors, Feed::Batch { epoch: 0, index }, &ctx)?;
            let values: Vec<Tensor> = values.into_iter().map(|v| v.detach()).collect();
            for m in metrics.iter_mut() {
                m.batch(&values)?;
            }
        }
        let mut out = BTreeMap::new();
        for m in metrics.iter_mut() {
            out.extend(m.finish()?);
        }
        Ok(out)
    }

    /// Computes `tensors` over one epoch of their data layers (epoch 0, in order) in eval mode,
    /// without gradients, and returns one list per handle with one value per batch (NeMo 0.x's
    /// `infer`). The previous train/eval mode is restored.
    ///
    /// # Errors
    /// As [`Graph::run_batch`].
    pub fn infer_batches(&self, tensors: &[DynHandle]) -> Result<Vec<Vec<Tensor>>> {
        let nodes = self.nodes();
        let plan = Plan::new(self, &nodes, tensors)?;
        let batches = plan.num_batches(&nodes)?;
        let ctx = ForwardCtx::eval();
        let mut parts: Vec<Vec<Tensor>> = vec![Vec::with_capacity(batches); tensors.len()];
        for index in 0..batches {
            let values = plan.run(&nodes, tensors, Feed::Batch { epoch: 0, index }, &ctx)?;
            for (part, v) in parts.iter_mut().zip(values) {
                part.push(v.detach());
            }
        }
        Ok(parts)
    }

    /// [`infer_batches`](Self::infer_batches), each handle's batches joined along the first
    /// (batch) axis; scalar values are stacked, one per batch. Batches whose other axes differ
    /// in size (utterances of different lengths) are zero-padded at the end of each such axis to
    /// the largest size first — infer the matching length handles to know which part is real.
    ///
    /// # Errors
    /// As [`Graph::run_batch`]; values whose ranks differ between batches.
    pub fn infer(&self, tensors: &[DynHandle]) -> Result<Vec<Tensor>> {
        self.infer_batches(tensors)?
            .into_iter()
            .map(|p| concat_padded(&p))
            .collect()
    }
}

/// Joins per-batch values along axis 0, zero-padding every other axis to its largest size.
fn concat_padded(parts: &[Tensor]) -> Result<Tensor> {
    let Some(first) = parts.first() else {
        return Err(crate::Error::Config {
            key: "infer".into(),
            msg: "no batches to join".into(),
        });
    };
    if first.rank() == 0 {
        return Ok(Tensor::stack(parts, 0)?);
    }
    let rank = first.rank();
    let mut max = first.dims().to_vec();
    for p in parts {
        if p.rank() != rank {
            return Err(crate::Error::Config {
                key: "infer".into(),
                msg: format!(
                    "batch values differ in rank ({:?} and {:?}) and cannot be joined; use `infer_batches`",
                    first.dims(),
                    p.dims()
                ),
            });
        }
        for (m, &d) in max.iter_mut().zip(p.dims()) {
            *m = (*m).max(d);
        }
    }
    let padded = parts
        .iter()
        .map(|p| {
            let mut t = p.clone();
            for (axis, &size) in max.iter().enumerate().skip(1) {
                let missing = size.saturating_sub(t.dim(axis)?);
                if missing > 0 {
                    t = t.pad_with_zeros(axis, 0, missing)?;
                }
            }
            Ok(t)
        })
        .collect::<Result<Vec<Tensor>>>()?;
    Ok(Tensor::cat(&padded, 0)?)
}
