//! The small separable QuartzNet of `configs/an4_small.yaml` and one batch of the training-step
//! benchmark's shape (16 × 400 frames × 64 mels, 50 target labels each), shared by the CPU
//! criterion bench (`benches/train_step.rs`) and the GPU example (`examples/gpu_train_step.rs`).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use nemo_asr::losses::{CtcOptions, ctc_loss};
use nemo_asr::models::EncDecCtcModel;
use nemo_asr::modules::{ConvAsrDecoder, ConvAsrEncoder};
use nemo_asr::train::read_run_config;
use nemo_core::optim::{Optimizer, OptimizerConfig};
use nemo_core::params::Parameters;

/// Batch size, frames and target length of the benchmark batch.
pub const BATCH: usize = 16;
pub const FRAMES: usize = 400;
pub const TARGET_LEN: usize = 50;

/// `configs/an4_small.yaml` of this checkout.
pub fn an4_small_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/an4_small.yaml")
}

/// The model, its parameters and one batch, on one device.
pub struct An4SmallBatch {
    pub params: Parameters,
    pub encoder: ConvAsrEncoder,
    pub decoder: ConvAsrDecoder,
    /// `(B, D=64, T)` features.
    pub features: Tensor,
    pub lengths: Vec<usize>,
    /// `(B, 50)` label indices.
    pub targets: Tensor,
    /// `(B,)` encoded lengths (the first block has stride 2).
    pub encoded_lengths: Tensor,
    /// `(B,)` target lengths.
    pub target_lengths: Tensor,
}

impl An4SmallBatch {
    /// The model of the run config at `config` (`configs/an4_small.yaml`), on `dev`.
    pub fn new(config: &Path, dev: &Device) -> nemo_asr::Result<Self> {
        let cfg = read_run_config::<EncDecCtcModel>(config)?;
        let params = Parameters::new();
        let vb = params.var_builder(DType::F32, dev);
        let encoder = cfg.model.encoder.init(vb.pp("encoder"))?;
        let decoder = cfg.model.decoder.init(vb.pp("decoder"))?;
        let (b, t) = (BATCH, FRAMES);
        let labels = (0..b * TARGET_LEN)
            .map(|i| (i % 28) as i64)
            .collect::<Vec<_>>();
        Ok(Self {
            params,
            encoder,
            decoder,
            features: Tensor::randn(0f32, 1.0, (b, 64, t), dev)?,
            lengths: vec![t; b],
            targets: Tensor::from_vec(labels, (b, TARGET_LEN), dev)?,
            encoded_lengths: Tensor::from_vec(vec![(t / 2) as i64; b], b, dev)?,
            target_lengths: Tensor::from_vec(vec![TARGET_LEN as i64; b], b, dev)?,
        })
    }

    /// The encoder's output `(B, D, T/2)`.
    pub fn encode(&self) -> nemo_asr::Result<Tensor> {
        self.encode_in(DType::F32)
    }

    /// The encoder's output computed in `dtype` (the features cast to it; each convolution casts
    /// its f32 weights to its input's dtype, as under mixed precision).
    pub fn encode_in(&self, dtype: DType) -> nemo_asr::Result<Tensor> {
        let features = self.features.to_dtype(dtype)?;
        // A training call, as in the train step: batch statistics.
        let ctx = nemo_core::ForwardCtx::train(0);
        Ok(self.encoder.encode(&features, &self.lengths, &ctx)?.0)
    }

    /// The mean CTC loss of the batch (forward pass).
    pub fn loss(&self) -> nemo_asr::Result<Tensor> {
        self.loss_in(DType::F32)
    }

    /// The mean CTC loss (f32) with the encoder and decoder computing in `dtype`.
    pub fn loss_in(&self, dtype: DType) -> nemo_asr::Result<Tensor> {
        let log_probs = self.decoder.decode(&self.encode_in(dtype)?)?;
        ctc_loss(
            &log_probs,
            &self.targets,
            &self.encoded_lengths,
            &self.target_lengths,
            &CtcOptions::default(),
        )
    }

    /// NovoGrad as QuartzNet trains with it (betas 0.95/0.5, weight decay 1e-3).
    pub fn novograd(&self) -> nemo_asr::Result<Box<dyn Optimizer>> {
        let cfg: OptimizerConfig = serde_json::from_str(
            r#"{"name": "novograd", "betas": [0.95, 0.5], "weight_decay": 0.001}"#,
        )
        .map_err(|e| nemo_core::Error::Optimizer { msg: e.to_string() })?;
        Ok(cfg.build(self.params.trainable_vars())?)
    }

    /// Forward, backward and one update at `lr` 1e-3.
    pub fn train_step(&self, optimizer: &mut dyn Optimizer) -> nemo_asr::Result<()> {
        let grads = self.loss()?.backward()?;
        optimizer.step(&grads, 1e-3, &|_| false)?;
        Ok(())
    }
}
