//! Mel preprocessor parity with the independent numpy reference (`scripts/mel_reference.py`,
//! cross-checked there against NeMo's torch code path), its contracts (lengths, padding
//! invariance, seeded dither, config validation), and SpectrogramAugmentation's mask bounds.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use nemo_asr::preprocessing::{
    AudioToMelSpectrogramPreprocessorConfig, SpectrogramAugmentationConfig, TimeWidth,
};
use nemo_asr::{Error, Result};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use nemo_core::testing::TestResult;

/// One case of a `mel_*.json` fixture.
#[derive(Deserialize)]
struct Case {
    name: String,
    config: AudioToMelSpectrogramPreprocessorConfig,
    max_len: usize,
    signals_pcm16: Vec<Vec<i32>>,
    expected_lengths: Vec<usize>,
    shape: Vec<usize>,
    expected: Vec<f32>,
}

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

fn load(name: &str) -> TestResult<Fixture> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// The `(B, max_len)` batch of `signals`, each row padded past its length with garbage that
/// must not reach the features.
fn batch(signals: &[Vec<f32>], max_len: usize) -> Result<(Tensor, Vec<usize>)> {
    let mut data = Vec::with_capacity(signals.len() * max_len);
    for (b, s) in signals.iter().enumerate() {
        data.extend_from_slice(s);
        data.extend(
            (s.len()..max_len).map(|i| (((i * 7919 + b * 31) % 1000) as f32 - 500.0) / 600.0),
        );
    }
    let lengths = signals.iter().map(Vec::len).collect();
    Ok((
        Tensor::from_vec(data, (signals.len(), max_len), &Device::Cpu)?,
        lengths,
    ))
}

fn check_case(case: &Case) -> TestResult {
    let pre = case.config.clone().init()?;
    let signals: Vec<Vec<f32>> = case
        .signals_pcm16
        .iter()
        .map(|s| s.iter().map(|&v| v as f32 / 32768.0).collect())
        .collect();
    let (signal, lengths) = batch(&signals, case.max_len)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (features, frames) = pre.featurize(&signal, &lengths, false, &mut rng)?;
    assert_eq!(
        features.dims(),
        case.shape.as_slice(),
        "{}: shape",
        case.name
    );
    assert_eq!(frames, case.expected_lengths, "{}: lengths", case.name);
    let got = features.flatten_all()?.to_vec1::<f32>()?;
    let mut worst = (0f32, 0usize);
    for (i, (g, e)) in got.iter().zip(&case.expected).enumerate() {
        let err = (g - e).abs() / e.abs().max(1.0);
        if err.is_nan() || err > worst.0 {
            worst = (err, i);
        }
    }
    eprintln!("{}: max relative error {:.2e}", case.name, worst.0);
    assert!(
        worst.0 <= 1e-3,
        "{}: max error {} at flat index {} (got {:?}, want {:?})",
        case.name,
        worst.0,
        worst.1,
        got.get(worst.1),
        case.expected.get(worst.1)
    );
    Ok(())
}

#[test]
fn default_config_matches_reference() -> TestResult {
    for case in &load("mel_default.json")?.cases {
        check_case(case)?;
    }
    Ok(())
}

#[test]
fn variant_configs_match_reference() -> TestResult {
    let fixture = load("mel_variants.json")?;
    assert!(fixture.cases.len() >= 4);
    for case in &fixture.cases {
        check_case(case)?;
    }
    Ok(())
}

/// A rising tone over white noise (the noise keeps every mel band well above the log guard).
fn test_signal(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            0.3 * (2.0 * std::f32::consts::PI * (220.0 + 900.0 * t) * t).sin()
                + 0.01 * (rng.random::<f32>() * 2.0 - 1.0)
        })
        .collect()
}

#[test]
fn features_do_not_depend_on_batch_padding() -> TestResult {
    let pre = AudioToMelSpectrogramPreprocessorConfig::default().init()?;
    let s = test_signal(5_000, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (short, _) = batch(std::slice::from_ref(&s), 5_000)?;
    let (long, _) = batch(&[s.clone(), test_signal(9_000, 2)], 9_000)?;
    let (a, la) = pre.featurize(&short, &[5_000], false, &mut rng)?;
    let (b, lb) = pre.featurize(&long, &[5_000, 9_000], false, &mut rng)?;
    assert_eq!((la[0], lb[0]), (31, 31));
    assert_eq!(a.dims(), &[1, 64, 32]);
    assert_eq!(b.dims(), &[2, 64, 64]);
    let a = a
        .get(0)?
        .narrow(1, 0, 31)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let b0 = b.get(0)?;
    let valid = b0.narrow(1, 0, 31)?.flatten_all()?.to_vec1::<f32>()?;
    for (x, y) in a.iter().zip(&valid) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
    // Everything past the 31 valid frames is pad_value.
    let rest = b0.narrow(1, 31, 33)?.flatten_all()?.to_vec1::<f32>()?;
    assert!(rest.iter().all(|&v| v == 0.0));
    Ok(())
}

#[test]
fn dither_is_seeded_and_train_only() -> TestResult {
    let pre = AudioToMelSpectrogramPreprocessorConfig::default().init()?;
    let (signal, lengths) = batch(&[test_signal(4_000, 3), test_signal(3_000, 4)], 4_000)?;
    let run = |seed: u64, train: bool| -> Result<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (f, _) = pre.featurize(&signal, &lengths, train, &mut rng)?;
        Ok(f.flatten_all()?.to_vec1::<f32>()?)
    };
    assert_eq!(run(7, true)?, run(7, true)?);
    assert_ne!(run(7, true)?, run(8, true)?);
    assert_eq!(run(7, false)?, run(8, false)?);
    // The dither is 1e-5: it barely moves features of audible content.
    let (train, eval) = (run(7, true)?, run(7, false)?);
    let max = train
        .iter()
        .zip(&eval)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max > 0.0 && max < 0.05, "dither moved features by {max}");
    Ok(())
}

#[test]
fn lengths_as_tensors_keep_their_dtype() -> TestResult {
    let pre = AudioToMelSpectrogramPreprocessorConfig::default().init()?;
    let (signal, _) = batch(&[test_signal(3_200, 5), test_signal(1_000, 6)], 3_200)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for dtype in [DType::U32, DType::I64] {
        let lengths = Tensor::new(&[3_200i64, 1_000], &Device::Cpu)?.to_dtype(dtype)?;
        let (f, frames) = pre.featurize_tensors(&signal, &lengths, false, &mut rng)?;
        assert_eq!(f.dims(), &[2, 64, 32]);
        assert_eq!(frames.dtype(), dtype);
        assert_eq!(frames.to_dtype(DType::I64)?.to_vec1::<i64>()?, vec![20, 6]);
    }
    let negative = Tensor::new(&[-1i64, 5], &Device::Cpu)?;
    assert!(
        pre.featurize_tensors(&signal, &negative, false, &mut rng)
            .is_err()
    );
    Ok(())
}

#[test]
fn bad_inputs_are_shape_errors() -> TestResult {
    let pre = AudioToMelSpectrogramPreprocessorConfig::default().init()?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let signal = Tensor::zeros((2, 1_000), DType::F32, &Device::Cpu)?;
    let too_long = pre.featurize(&signal, &[1_000, 1_001], false, &mut rng);
    assert!(matches!(too_long, Err(Error::Shape { .. })));
    let count = pre.featurize(&signal, &[1_000], false, &mut rng);
    assert!(matches!(count, Err(Error::Shape { .. })));
    let rank3 = Tensor::zeros((2, 1, 1_000), DType::F32, &Device::Cpu)?;
    assert!(matches!(
        pre.featurize(&rank3, &[1, 1], false, &mut rng),
        Err(Error::Shape { .. })
    ));
    // Empty rows: no valid frames, all pad_value.
    let (f, frames) = pre.featurize(&signal, &[0, 100], false, &mut rng)?;
    assert_eq!(frames, vec![0, 0]);
    assert!(f.flatten_all()?.to_vec1::<f32>()?.iter().all(|&v| v == 0.0));
    Ok(())
}

fn config_key_error(json: &str) -> TestResult<String> {
    let config: AudioToMelSpectrogramPreprocessorConfig = serde_json::from_str(json)?;
    match config.init() {
        Err(Error::Config { key, .. }) => Ok(key),
        other => Err(format!("expected a config error for {json}, got {other:?}").into()),
    }
}

#[test]
fn invalid_configs_name_their_key() -> TestResult {
    assert_eq!(
        config_key_error(r#"{"frame_splicing": 3}"#)?,
        "frame_splicing"
    );
    assert_eq!(
        config_key_error(r#"{"n_window_size": 400}"#)?,
        "window_size"
    );
    assert_eq!(
        config_key_error(r#"{"window_stride": 0.00001}"#)?,
        "window_stride"
    );
    assert_eq!(config_key_error(r#"{"n_fft": 256}"#)?, "n_fft");
    assert_eq!(config_key_error(r#"{"mag_power": 0}"#)?, "mag_power");
    assert_eq!(config_key_error(r#"{"dither": -1}"#)?, "dither");
    assert_eq!(config_key_error(r#"{"features": 0}"#)?, "features");
    assert_eq!(config_key_error(r#"{"lowfreq": 9000}"#)?, "highfreq");
    assert_eq!(
        config_key_error(r#"{"log_zero_guard_value": 0}"#)?,
        "log_zero_guard_value"
    );
    assert_eq!(
        config_key_error(r#"{"use_torchaudio": true}"#)?,
        "use_torchaudio"
    );
    assert_eq!(
        config_key_error(r#"{"exact_pad": true, "n_window_stride": 161, "window_stride": null}"#)?,
        "exact_pad"
    );
    let unknown =
        serde_json::from_str::<AudioToMelSpectrogramPreprocessorConfig>(r#"{"featurs": 80}"#);
    assert!(unknown.is_err_and(|e| e.to_string().contains("featurs")));
    Ok(())
}

#[test]
fn parses_nemo_quartznet_yaml() -> TestResult {
    // `preprocessor:` of NeMo's examples/asr/conf/quartznet/quartznet_15x5.yaml.
    let yaml = r#"
_target_: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor
normalize: "per_feature"
window_size: 0.02
sample_rate: 16000
window_stride: 0.01
window: "hann"
features: 64
n_fft: 512
frame_splicing: 1
dither: 0.00001
stft_conv: false
"#;
    let config: AudioToMelSpectrogramPreprocessorConfig = serde_norway::from_str(yaml)?;
    let defaults = AudioToMelSpectrogramPreprocessorConfig::default();
    assert_eq!(config.n_fft, Some(512));
    assert_eq!(
        AudioToMelSpectrogramPreprocessorConfig {
            target: None,
            n_fft: None,
            ..config.clone()
        },
        defaults
    );
    let round_trip: AudioToMelSpectrogramPreprocessorConfig =
        serde_norway::from_str(&serde_norway::to_string(&config)?)?;
    assert_eq!(round_trip, config);
    let spec: SpectrogramAugmentationConfig = serde_norway::from_str(
        "_target_: nemo.collections.asr.modules.SpectrogramAugmentation\nrect_freq: 50\nrect_masks: 5\nrect_time: 120\nfreq_masks: 0\ntime_masks: 0\n",
    )?;
    assert_eq!(
        SpectrogramAugmentationConfig {
            target: None,
            ..spec
        },
        SpectrogramAugmentationConfig::quartznet()
    );
    Ok(())
}

// ------------------------------------------------------------------------------ SpectrogramAugmentation

fn spec_config() -> impl Strategy<Value = SpectrogramAugmentationConfig> {
    (
        0usize..4,
        0usize..4,
        0usize..40,
        prop_oneof![
            (0usize..60).prop_map(TimeWidth::Absolute),
            (0.0f64..=1.0).prop_map(TimeWidth::Fraction)
        ],
        0usize..4,
        0usize..150,
        0usize..60,
    )
        .prop_map(
            |(freq_masks, time_masks, freq_width, time_width, rect_masks, rect_time, rect_freq)| {
                SpectrogramAugmentationConfig {
                    freq_masks,
                    time_masks,
                    freq_width,
                    time_width,
                    rect_masks,
                    rect_time,
                    rect_freq,
                    mask_value: -3.0,
                    ..Default::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn masks_stay_inside_the_valid_region(
        config in spec_config(),
        n_freq in 1usize..80,
        lengths in prop::collection::vec(0usize..200, 1..5),
        seed in any::<u64>(),
    ) {
        let aug = config.clone().init()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let masks = aug.sample(n_freq, &lengths, &mut rng);
        prop_assert_eq!(masks.len(), lengths.len());
        for (m, &len) in masks.iter().zip(&lengths) {
            if len == 0 {
                prop_assert!(m.time.is_empty() && m.freq.is_empty() && m.rects.is_empty());
                continue;
            }
            prop_assert_eq!(m.time.len(), config.time_masks);
            prop_assert_eq!(m.freq.len(), config.freq_masks);
            prop_assert_eq!(m.rects.len(), config.rect_masks);
            let time_max = match config.time_width {
                TimeWidth::Absolute(w) => w as f64,
                TimeWidth::Fraction(f) => f * len as f64,
            };
            for r in &m.time {
                prop_assert!(r.start <= r.end && r.end <= len, "time {:?} vs length {}", r, len);
                prop_assert!(r.len() as f64 <= time_max, "time width {} > {}", r.len(), time_max);
            }
            for r in &m.freq {
                prop_assert!(r.start <= r.end && r.end <= n_freq);
                prop_assert!(r.len() <= config.freq_width);
            }
            for (f, t) in &m.rects {
                prop_assert!(f.end <= n_freq && f.len() <= config.rect_freq);
                prop_assert!(t.end <= len && t.len() <= config.rect_time);
            }
        }
    }

    #[test]
    fn forward_masks_exactly_the_sampled_cells(
        config in spec_config(),
        n_freq in 1usize..40,
        lengths in prop::collection::vec(0usize..60, 1..4),
        seed in any::<u64>(),
    ) {
        let aug = config.init()?;
        let (b, t) = (lengths.len(), 64usize);
        let data: Vec<f32> = (0..b * n_freq * t).map(|i| i as f32).collect();
        let spec = Tensor::from_vec(data.clone(), (b, n_freq, t), &Device::Cpu)?;
        let out = aug.augment(&spec, &lengths, &mut ChaCha8Rng::seed_from_u64(seed))?;
        let again = aug.augment(&spec, &lengths, &mut ChaCha8Rng::seed_from_u64(seed))?;
        let out = out.flatten_all()?.to_vec1::<f32>()?;
        prop_assert_eq!(&out, &again.flatten_all()?.to_vec1::<f32>()?);
        let masks = aug.sample(n_freq, &lengths, &mut ChaCha8Rng::seed_from_u64(seed));
        for (i, (&o, &x)) in out.iter().zip(&data).enumerate() {
            let (row, d, tt) = (i / (n_freq * t), (i / t) % n_freq, i % t);
            let masked = masks.get(row).is_some_and(|m| m.contains(d, tt));
            if masked {
                prop_assert!(tt < lengths[row]);
                prop_assert_eq!(o, -3.0);
            } else {
                prop_assert_eq!(o, x);
            }
        }
    }
}

#[test]
fn spec_augment_rejects_bad_shapes() -> TestResult {
    let aug = SpectrogramAugmentationConfig::default().init()?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let spec = Tensor::zeros((2, 8, 10), DType::F32, &Device::Cpu)?;
    assert!(matches!(
        aug.augment(&spec, &[10, 11], &mut rng),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        aug.augment(&spec, &[10], &mut rng),
        Err(Error::Shape { .. })
    ));
    let flat = Tensor::zeros((2, 8), DType::F32, &Device::Cpu)?;
    assert!(matches!(
        aug.augment(&flat, &[1, 1], &mut rng),
        Err(Error::Shape { .. })
    ));
    Ok(())
}
