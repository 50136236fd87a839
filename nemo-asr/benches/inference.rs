//! Transcription speed of the small separable QuartzNet (`configs/an4_small.yaml`) as a real-time
//! factor: batch 16 × 4 s of 16 kHz audio through the whole typed model in eval mode — mel
//! features, encoder, decoder, greedy CTC decoding to text. The real-time factor is
//! 64 s / the measured time per batch.
//!
//! Run: `cargo bench -p nemo-asr --bench inference`; PyTorch's side of the same pipeline:
//! `/usr/bin/python3 scripts/bench_inference_torch.py [OUR_MS]` (prints both factors and the ratio).

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use nemo_asr::models::EncDecCtcModel;
use nemo_asr::train::read_run_config;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCH: usize = 16;
const SECONDS: f64 = 4.0;

fn setup() -> nemo_asr::Result<(EncDecCtcModel, Tensor, Tensor)> {
    let dev = Device::Cpu;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/an4_small.yaml");
    let cfg = read_run_config::<EncDecCtcModel>(&path)?;
    let sr = cfg.model.sample_rate as usize;
    let model = EncDecCtcModel::new(cfg.model, 0, &dev)?;
    let n = (SECONDS * sr as f64) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let audio: Vec<f32> = (0..BATCH * n)
        .map(|_| 0.1 * (rng.random::<f32>() * 2.0 - 1.0))
        .collect();
    let audio = Tensor::from_vec(audio, (BATCH, n), &dev)?;
    let lengths = Tensor::from_vec(vec![n as i64; BATCH], BATCH, &dev)?;
    Ok((model, audio, lengths))
}

fn bench(c: &mut Criterion) {
    let (model, audio, lengths) = match setup() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("setup failed: {e}");
            return;
        }
    };
    eprintln!(
        "inference: {} s of audio per batch; real-time factor = {} s / time",
        BATCH as f64 * SECONDS,
        BATCH as f64 * SECONDS
    );
    let mut g = c.benchmark_group("an4_small_inference");
    g.sample_size(15);
    g.bench_function("transcribe_b16_4s", |b| {
        b.iter(|| black_box(model.transcribe(&audio, &lengths)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(15)).warm_up_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
