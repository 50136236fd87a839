//! GPU tests, built only with the `cuda` feature and run on a machine with an NVIDIA GPU
//! (`scripts/gpu_build.sh` here, then `scripts/gpu_run.sh` there): the NeMo 0.x DAG test on CUDA,
//! and f16 mixed precision with dynamic loss scaling on CUDA against the same run in f32.
#![cfg(feature = "cuda")]

use nemo_core::testing::TestResult;
use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use nemo_core::ForwardCtx;
use nemo_core::dag::{Graph, TrainAction};
use nemo_core::optim::{AdamW, AdamWConfig, LrSchedule, OptimizerConfig};
use nemo_core::params::Parameters;
use nemo_core::train::{MixedPrecision, PrecisionMode, TrainTask, Trainer, TrainerConfig};
use nemo_core::tutorials::*;

fn cuda() -> TestResult<Device> {
    Ok(Device::new_cuda(0)?)
}

#[test]
fn dag_tutorial_trains_on_cuda() -> TestResult<()> {
    let dev = cuda()?;
    let graph = Graph::new();
    let vb = graph.params().var_builder(DType::F32, &dev);
    let net = Arc::new(TaylorNetConfig { dim: 4 }.init(vb.pp("taylor_net"))?);
    let data = Arc::new(RealFunctionDataLayer::new(
        RealFunctionDataLayerConfig {
            n: 512,
            batch_size: 64,
            f_name: RealFunction::Sin,
            x_lo: -2.0,
            x_hi: 2.0,
            seed: 1,
            shuffle: true,
        },
        &dev,
    )?);
    let d = data.call(&graph)?;
    let pred = net.call(TaylorNetInputs { x: &d.x })?;
    let loss = Arc::new(MseLoss).call(MseLossInputs {
        predictions: &pred.y_pred,
        target: &d.y,
    })?;
    let mut opt = AdamW::new(graph.params().trainable_vars(), AdamWConfig::default())?;
    let dir = tempfile::tempdir()?;
    let mut cfg = TrainerConfig::new(300);
    cfg.progress = false;
    let summary = graph.train(TrainAction::new(loss.loss, &mut opt, 0.05, cfg, dir.path()))?;
    let last = summary.history.last().map_or(f64::NAN, |r| r.loss);
    assert!(last < 1e-3, "final loss {last}");
    let y = graph.infer(&[pred.y_pred.into_dyn()])?;
    assert!(y.iter().all(|t| t.device().is_cuda()));
    Ok(())
}

/// `y = W2 tanh(W1 x)` regression on the GPU, computed in the trainer's compute dtype.
struct Mlp {
    params: Parameters,
    w1: Tensor,
    w2: Tensor,
    x: Tensor,
    y: Tensor,
    dtype: DType,
}

impl Mlp {
    fn new(dev: &Device) -> TestResult<Self> {
        let params = Parameters::new();
        let vb = params.var_builder(DType::F32, dev);
        let init = candle_nn::init::Init::Randn {
            mean: 0.0,
            stdev: 0.1,
        };
        let w1 = vb.get_with_hints((256, 64), "w1", init)?;
        let w2 = vb.get_with_hints((1, 256), "w2", init)?;
        let x = Tensor::randn(0f32, 1.0, (1024, 64), dev)?;
        let y = x.narrow(1, 0, 1)?.sin()?;
        Ok(Mlp {
            params,
            w1,
            w2,
            x,
            y,
            dtype: DType::F32,
        })
    }
}

impl TrainTask for Mlp {
    fn params(&self) -> &Parameters {
        &self.params
    }
    fn loss(&mut self, _step: u64, _micro: usize, _ctx: &ForwardCtx) -> nemo_core::Result<Tensor> {
        let dt = self.dtype;
        let h = self
            .x
            .to_dtype(dt)?
            .matmul(&self.w1.to_dtype(dt)?.t()?)?
            .tanh()?;
        let p = h
            .matmul(&self.w2.to_dtype(dt)?.t()?)?
            .to_dtype(DType::F32)?;
        Ok((p - &self.y)?.sqr()?.mean_all()?)
    }
    fn set_compute_dtype(&mut self, dtype: DType) -> nemo_core::Result<()> {
        self.dtype = dtype;
        Ok(())
    }
    fn evaluate(&mut self, step: u64) -> nemo_core::Result<BTreeMap<String, f64>> {
        let loss = self.loss(step, 0)?.to_scalar::<f32>()?;
        Ok(BTreeMap::from([("mse".to_string(), f64::from(loss))]))
    }
}

#[test]
fn f16_mixed_precision_trains_on_cuda_like_f32() -> TestResult<()> {
    let dev = cuda()?;
    let mut finals = Vec::new();
    for mode in [PrecisionMode::F32, PrecisionMode::F16] {
        let mut task = Mlp::new(&dev)?;
        let optim: OptimizerConfig = serde_json::from_str(r#"{"name": "adamw"}"#)?;
        let mut opt = optim.build(task.params.trainable_vars())?;
        let mut cfg = TrainerConfig::new(400);
        cfg.progress = false;
        cfg.plot = false;
        cfg.precision = MixedPrecision {
            mode,
            ..MixedPrecision::default()
        };
        let dir = tempfile::tempdir()?;
        let summary = Trainer::new(cfg, dir.path())?.fit(
            &mut task,
            opt.as_mut(),
            &LrSchedule::constant(3e-3),
            0,
        )?;
        assert!(
            task.params
                .named_vars()
                .iter()
                .all(|(_, v)| v.dtype() == DType::F32),
            "master weights stay f32"
        );
        finals.push(summary.last_eval.get("mse").copied().unwrap_or(f64::NAN));
    }
    let (f32_mse, f16_mse) = (finals[0], finals[1]);
    assert!(f32_mse < 0.05, "f32 mse {f32_mse}");
    assert!(
        f16_mse < 2.0 * f32_mse + 0.01,
        "f16 mse {f16_mse} vs f32 {f32_mse}"
    );
    Ok(())
}
