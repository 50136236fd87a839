//! The runtime fallback's cost per typed call, alone and as a share of a small conv1d.
//!
//! Three measurements in one run, so the ratios compare like with like:
//! * `typed_call/checked` — a 2-input/2-output module whose computation is free (it hands its
//!   inputs back), called through the typed `forward` with checks on: the checks' cost plus the
//!   call's fixed overhead;
//! * `typed_call/unchecked` — the same with checks disabled by the scoped guard;
//! * `conv1d/*` — a (1, 64, 100) conv1d with 64 filters, k = 11, raw and as a typed module.
//!
//! Run: `cargo bench --bench typecheck`. NeMo's `@typecheck` costs 35–44 µs per call on this CPU
//! (NeMo 1.23, Debian's PyTorch); the target is under 0.4 µs and under 1% of the conv1d.

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use candle_core::{DType, Device, Module, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use nemo::check::disable_checks;
use nemo::prelude::*;

/// Two inputs, two outputs, no computation: what remains is the typed call and its checks.
#[neural_module(
    inputs(audio_signal: (B, D = feat_in, T) MelSpectrogram, length: (B) Lengths),
    outputs(outputs: (B, D = feat_in, T) Spectrogram, encoded_lengths: (B) Lengths),
)]
struct PassThrough {
    feat_in: usize,
}

impl Forward for PassThrough {
    fn forward_tensors(
        &self,
        x: PassThroughInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo::Result<PassThroughOutputTensors> {
        Ok(PassThroughOutputTensors {
            outputs: x.audio_signal,
            encoded_lengths: x.length,
        })
    }
}

/// The conv1d as a typed module.
#[neural_module(
    inputs(audio_signal: (B, D = feat_in, T) MelSpectrogram, length: (B) Lengths),
    outputs(outputs: (B, D = feat_out, T) AcousticEncodedRepresentation, encoded_lengths: (B) Lengths),
)]
struct Conv {
    feat_in: usize,
    feat_out: usize,
    conv: candle_nn::Conv1d,
}

impl Forward for Conv {
    fn forward_tensors(
        &self,
        x: ConvInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo::Result<ConvOutputTensors> {
        Ok(ConvOutputTensors {
            outputs: self.conv.forward(&x.audio_signal)?,
            encoded_lengths: x.length,
        })
    }
}

fn bench(c: &mut Criterion) {
    let dev = Device::Cpu;
    let mut run = || -> nemo::Result<()> {
        let x: NTensor<(B, D, T), MelSpectrogram> =
            NTensor::new(Tensor::randn(0f32, 1., (1, 64, 100), &dev)?)?;
        let len: NTensor<(B,), Lengths> = NTensor::new(Tensor::new(&[100u32], &dev)?)?;
        let pass = PassThrough { feat_in: 64 };
        let mut g = c.benchmark_group("typed_call");
        g.bench_function("checked", |b| {
            b.iter(|| {
                black_box(pass.forward(PassThroughInputs {
                    audio_signal: &x,
                    length: &len,
                }))
            })
        });
        g.bench_function("unchecked", |b| {
            let _off = disable_checks();
            b.iter(|| {
                black_box(pass.forward(PassThroughInputs {
                    audio_signal: &x,
                    length: &len,
                }))
            })
        });
        g.finish();

        let w = Tensor::randn(0f32, 0.1, (64, 64, 11), &dev)?;
        let bias = Tensor::zeros(64, DType::F32, &dev)?;
        let cfg = candle_nn::Conv1dConfig {
            padding: 5,
            ..Default::default()
        };
        let conv = Conv {
            feat_in: 64,
            feat_out: 64,
            conv: candle_nn::Conv1d::new(w, Some(bias), cfg),
        };
        let mut g = c.benchmark_group("conv1d");
        g.bench_function("raw", |b| {
            b.iter(|| black_box(conv.conv.forward(x.tensor())))
        });
        g.bench_function("typed_checked", |b| {
            b.iter(|| {
                black_box(conv.forward(ConvInputs {
                    audio_signal: &x,
                    length: &len,
                }))
            })
        });
        g.finish();
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("benchmark setup failed: {e}");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
