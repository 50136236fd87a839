//! Speed of the mel preprocessor and SpectrogramAugmentation on a batch of `B = 16` rows of 16 s of
//! 16 kHz audio (`(B, T) = (16, 256000)`, 256 s of audio in all; rows 1..16 shortened by
//! 0.25 s each so lengths differ), NeMo's default config, f32, CPU, rayon's default threads.
//!
//! * `mel/eval`: [`AudioToMelSpectrogramPreprocessor::forward`] with `train = false`.
//! * `mel/train`: the same with dither — the definition `scripts/bench_mel_torch.py` times for
//!   PyTorch (`torch.stft` + filterbank matmul + log + masked normalization, 2 threads).
//! * `mel/spec_augment`: [`SpectrogramAugmentation::forward`] with the default config on the features.
//!
//! Real-time factor = time / 256 s. Run: `cargo bench -p nemo-asr --bench mel`.

use std::error::Error;
use std::hint::black_box;
use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::Criterion;
use nemo_asr::preprocessing::{
    AudioToMelSpectrogramPreprocessorConfig, SpectrogramAugmentationConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type BenchResult<T> = Result<T, Box<dyn Error>>;

const B: usize = 16;
const SAMPLE_RATE: usize = 16_000;
const T: usize = 16 * SAMPLE_RATE;

fn main() -> BenchResult<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let audio: Vec<f32> = (0..B * T)
        .map(|i| {
            let t = (i % T) as f32 / SAMPLE_RATE as f32;
            0.3 * (2.0 * std::f32::consts::PI * (200.0 + 150.0 * t) * t).sin()
                + 0.01 * (rng.random::<f32>() * 2.0 - 1.0)
        })
        .collect();
    let signal = Tensor::from_vec(audio, (B, T), &Device::Cpu)?;
    let lengths: Vec<usize> = (0..B).map(|b| T - b * SAMPLE_RATE / 4).collect();
    let pre = AudioToMelSpectrogramPreprocessorConfig::default().init()?;
    let aug = SpectrogramAugmentationConfig::default().init()?;
    let (features, frames) = pre.featurize(&signal, &lengths, false, &mut rng)?;

    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    let mut group = c.benchmark_group("mel");
    group.bench_function("eval", |bench| {
        bench.iter(|| black_box(pre.featurize(&signal, &lengths, false, &mut rng)).ok())
    });
    group.bench_function("train", |bench| {
        bench.iter(|| black_box(pre.featurize(&signal, &lengths, true, &mut rng)).ok())
    });
    group.bench_function("spec_augment", |bench| {
        bench.iter(|| black_box(aug.augment(&features, &frames, &mut rng)).ok())
    });
    group.finish();
    c.final_summary();
    Ok(())
}
