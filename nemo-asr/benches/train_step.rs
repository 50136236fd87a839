//! One training step (forward, backward, NovoGrad update) of the small separable QuartzNet
//! (`configs/an4_small.yaml`) at batch 16 × 400 frames × 64 mels — the issue's benchmark shape —
//! plus its parts, so a slow step can be traced to its op.
//!
//! Run: `cargo bench -p nemo-asr --bench train_step`; the PyTorch side of the same model:
//! `/usr/bin/python3 scripts/bench_train_step_torch.py` (prints its time and, given ours, the ratio).

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use nemo_asr::losses::{CtcLossConfig, ctc_loss};
use nemo_asr::modules::{ConvASRDecoder, ConvASREncoder};
use nemo_asr::train::RunConfig;
use nemo_core::params::Parameters;

/// The model parts and one batch.
type Setup = (
    Parameters,
    ConvASREncoder,
    ConvASRDecoder,
    Tensor,
    Vec<usize>,
    Tensor,
    Tensor,
    Tensor,
);

fn setup() -> nemo_asr::Result<Setup> {
    let dev = Device::Cpu;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/an4_small.yaml");
    let cfg = RunConfig::from_yaml_file(&path)?;
    let params = Parameters::new();
    let vb = params.var_builder(DType::F32, &dev);
    let enc = ConvASREncoder::new(
        cfg.model.encoder.clone(),
        &params,
        "encoder",
        vb.pp("encoder"),
    )?;
    let dec = ConvASRDecoder::new(&cfg.model.decoder, vb.pp("decoder"))?;
    let (b, t) = (16, 400);
    let x = Tensor::randn(0f32, 1.0, (b, 64, t), &dev)?;
    let lens = vec![t; b];
    let targets = Tensor::from_vec(
        (0..b * 50).map(|i| (i % 28) as i64).collect::<Vec<_>>(),
        (b, 50),
        &dev,
    )?;
    let in_len = Tensor::from_vec(vec![(t / 2) as i64; b], b, &dev)?;
    let tgt_len = Tensor::from_vec(vec![50i64; b], b, &dev)?;
    Ok((params, enc, dec, x, lens, targets, in_len, tgt_len))
}

fn bench(c: &mut Criterion) {
    let Ok((params, enc, dec, x, lens, targets, in_len, tgt_len)) = setup() else {
        eprintln!("setup failed");
        return;
    };
    let optim_cfg: nemo_core::optim::OptimizerConfig = match serde_json::from_str(
        r#"{"name": "novograd", "betas": [0.95, 0.5], "weight_decay": 0.001}"#,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let Ok(mut optimizer) = optim_cfg.build(params.trainable_vars()) else {
        return;
    };
    let loss_of = || -> nemo_asr::Result<Tensor> {
        let (h, _) = enc.encode(&x, &lens)?;
        let lp = dec.decode(&h)?;
        ctc_loss(&lp, &targets, &in_len, &tgt_len, &CtcLossConfig::default())
    };
    let mut g = c.benchmark_group("an4_small_b16_t400");
    g.sample_size(10);
    g.bench_function("encoder_forward", |b| {
        b.iter(|| black_box(enc.encode(&x, &lens).map(|r| r.0)))
    });
    g.bench_function("forward_loss", |b| b.iter(|| black_box(loss_of())));
    g.bench_function("forward_backward", |b| {
        b.iter(|| black_box(loss_of().and_then(|l| Ok(l.backward()?))))
    });
    g.bench_function("train_step", |b| {
        b.iter(|| {
            let mut step = || -> nemo_asr::Result<()> {
                let grads = loss_of()?.backward()?;
                optimizer.step(&grads, 1e-3, &|_| false)?;
                Ok(())
            };
            black_box(step())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
