//! The ASR data pipeline against files written by independent tools.
//!
//! The WAVs under `tests/fixtures/wav` come from espeak-ng and sox (`generate.sh` there): one
//! utterance in 32-bit float and the same samples as 16/24/32-bit integers, a 22050 Hz file with
//! sox's own 16 kHz resampling as reference, and a stereo file whose channels are `c` and `c / 2`.
//! Manifests under `tests/fixtures/manifests` point at them by relative path.

use nemo_core::testing::TestResult;
use std::path::{Path, PathBuf};

use candle_core::Device;
use nemo_asr::Error;
use nemo_asr::data::{
    AudioSegment, AudioToTextDataLayer, AudioToTextDataLayerConfig, ENGLISH_LABELS, Manifest,
    OnBadSample, Vocabulary, WavSampleFormat, normalize_transcript, resample, wav_info,
};
use proptest::prelude::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn wav(name: &str) -> PathBuf {
    fixture(&format!("wav/{name}"))
}

fn load(name: &str) -> nemo_asr::Result<Vec<f32>> {
    AudioSegment::from_file(wav(name), None, 0.0, 0.0).map(AudioSegment::into_samples)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
}

fn config(manifest: &str, batch_size: usize) -> AudioToTextDataLayerConfig {
    let mut c = AudioToTextDataLayerConfig::new(
        fixture(&format!("manifests/{manifest}"))
            .display()
            .to_string(),
        batch_size,
    );
    c.shuffle = false;
    c
}

fn err_string<T: std::fmt::Debug>(r: nemo_asr::Result<T>) -> String {
    match r {
        Ok(v) => format!("unexpected success: {v:?}"),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// audio

#[test]
fn integer_formats_match_the_float_master() -> TestResult<()> {
    let master = load("a_f32_16k.wav")?;
    assert_eq!(master.len(), 15758);
    assert!(rms(&master) > 0.01, "the fixture is not silent");
    // sox rounds to the nearest step: at most half a step off, allow one.
    for (name, bits) in [
        ("a_s16_16k.wav", 16),
        ("a_s24_16k.wav", 24),
        ("a_s32_16k.wav", 32),
    ] {
        let x = load(name)?;
        let step = 2f32.powi(1 - bits);
        let d = max_abs_diff(&x, &master);
        assert!(
            d <= step.max(f32::EPSILON),
            "{name}: max diff {d}, step {step}"
        );
        let info = wav_info(wav(name))?;
        assert_eq!(info.bits_per_sample, bits as u16);
        assert_eq!(info.sample_format, WavSampleFormat::Int);
        assert_eq!(
            (info.channels, info.sample_rate, info.num_frames),
            (1, 16000, 15758)
        );
    }
    let info = wav_info(wav("a_f32_16k.wav"))?;
    assert_eq!(
        (info.sample_format, info.bits_per_sample),
        (WavSampleFormat::Float, 32)
    );
    Ok(())
}

#[test]
fn stereo_is_averaged() -> TestResult<()> {
    let mono = load("c_s16_16k.wav")?;
    let stereo = load("c_s16_16k_stereo.wav")?;
    assert_eq!(wav_info(wav("c_s16_16k_stereo.wav"))?.channels, 2);
    // right = round(c / 2): the mean is 3/4 c within half a 16-bit step.
    let expected: Vec<f32> = mono.iter().map(|v| 0.75 * v).collect();
    let d = max_abs_diff(&stereo, &expected);
    assert!(d <= 2f32.powi(-15), "max diff {d}");
    Ok(())
}

#[test]
fn hound_written_formats_scale_exactly() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    // (bits, format, values written, values expected) for a 3-channel file: the mean is decoded.
    let path = dir.path().join("i24x3.wav");
    let spec = hound::WavSpec {
        channels: 3,
        sample_rate: 8000,
        bits_per_sample: 24,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec)?;
    for v in [-8_388_608, 0, 2_097_152, 4_194_304, 4_194_304, 4_194_304] {
        w.write_sample(v)?;
    }
    w.finalize()?;
    let seg = AudioSegment::from_file(&path, None, 0.0, 0.0)?;
    assert_eq!(seg.sample_rate(), 8000);
    assert_eq!(seg.samples(), &[(-1.0 + 0.0 + 0.25) / 3.0, 0.5]);

    let path = dir.path().join("u8.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 8,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec)?;
    for v in [-128i8, 0, 64] {
        w.write_sample(v)?;
    }
    w.finalize()?;
    assert_eq!(load_path(&path)?, vec![-1.0, 0.0, 0.5]);

    let path = dir.path().join("i32.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec)?;
    for v in [i32::MIN, 1 << 30] {
        w.write_sample(v)?;
    }
    w.finalize()?;
    assert_eq!(load_path(&path)?, vec![-1.0, 0.5]);
    Ok(())
}

fn load_path(p: &Path) -> nemo_asr::Result<Vec<f32>> {
    AudioSegment::from_file(p, None, 0.0, 0.0).map(AudioSegment::into_samples)
}

#[test]
fn offset_and_duration_select_frames() -> TestResult<()> {
    let full = load("a_s16_16k.wav")?;
    let part = AudioSegment::from_file(wav("a_s16_16k.wav"), None, 0.25, 0.5)?;
    assert_eq!(part.samples(), &full[4000..12000]);
    // duration past the end reads to the end
    let tail = AudioSegment::from_file(wav("a_s16_16k.wav"), None, 0.5, 5.0)?;
    assert_eq!(tail.samples(), &full[8000..]);
    let e = err_string(AudioSegment::from_file(
        wav("a_s16_16k.wav"),
        None,
        2.0,
        0.0,
    ));
    assert!(
        e.contains("a_s16_16k.wav") && e.contains("past the end"),
        "{e}"
    );
    Ok(())
}

#[test]
fn resampling_matches_sox() -> TestResult<()> {
    let src = load("b_s16_22050.wav")?;
    let reference = load("b_s16_16k_sox.wav")?;
    let ours = AudioSegment::from_file(wav("b_s16_22050.wav"), Some(16000), 0.0, 0.0)?;
    assert_eq!(ours.sample_rate(), 16000);
    assert_eq!(ours.num_samples(), (src.len() * 16000).div_ceil(22050));
    let n = reference.len().min(ours.num_samples());
    assert!(ours.num_samples().abs_diff(reference.len()) <= 1);
    let (a, b) = (&ours.samples()[..n], &reference[..n]);
    let err: Vec<f32> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let rel = rms(&err) / rms(b);
    // Both are near-ideal low-pass resamplers; they differ only in the transition band
    // (measured: 0.43% relative rms difference, energy ratio 1.00001).
    assert!(rel < 0.01, "relative rms difference to sox {rel}");
    let energy = rms(a) / rms(b);
    assert!((energy - 1.0).abs() < 0.002, "energy ratio {energy}");
    Ok(())
}

#[test]
fn resampling_keeps_a_sine_aligned() -> TestResult<()> {
    for (from, to) in [
        (22050u32, 16000u32),
        (8000, 16000),
        (44100, 16000),
        (16000, 11025),
    ] {
        let f = 440.0f64;
        let n = from as usize; // one second
        let sine = |i: usize, rate: u32| {
            (0.5 * (2.0 * std::f64::consts::PI * f * i as f64 / f64::from(rate)).sin()) as f32
        };
        let x: Vec<f32> = (0..n).map(|i| sine(i, from)).collect();
        let y = resample(&x, from, to)?;
        assert_eq!(y.len(), to as usize);
        // Away from the edges (where the input stops abruptly) the output is the ideal sine, in
        // phase: a fractional-sample misalignment would show as ~1e-2 (measured: <= 1.5e-6).
        let edge = to as usize / 20;
        let worst = (edge..y.len() - edge)
            .map(|i| (y[i] - sine(i, to)).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{from} -> {to}: max error {worst}");
    }
    Ok(())
}

#[test]
fn audio_errors_name_the_file() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("nope.wav");
    let e = AudioSegment::from_file(&missing, None, 0.0, 0.0).err();
    assert!(
        matches!(&e, Some(Error::Io { path, .. }) if path == &missing),
        "{e:?}"
    );

    let text = dir.path().join("text.wav");
    std::fs::write(&text, b"this is not a wav file at all")?;
    let e = AudioSegment::from_file(&text, None, 0.0, 0.0).err();
    assert!(
        matches!(&e, Some(Error::Audio { path, .. }) if path == &text),
        "{e:?}"
    );
    let msg = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("text.wav") && msg.contains("cannot decode WAV"),
        "{msg}"
    );

    // a header promising more data than the file holds
    let mut bytes = std::fs::read(wav("c_s16_16k.wav"))?;
    bytes.truncate(bytes.len() / 2);
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, bytes)?;
    let msg = err_string(AudioSegment::from_file(&cut, None, 0.0, 0.0));
    assert!(msg.contains("cut.wav"), "{msg}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// manifests

#[test]
fn manifest_lines_and_paths() -> TestResult<()> {
    let m = Manifest::from_file(fixture("manifests/small.json"))?;
    let lines: Vec<usize> = m.entries().iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 2, 4, 5, 6]);
    for e in m.entries() {
        assert!(e.audio_filepath.is_file(), "{}", e.audio_filepath.display());
    }
    assert_eq!(m.entries()[2].text, "Good morning!");
    Ok(())
}

#[test]
fn manifest_errors() {
    let e = err_string(Manifest::from_file(fixture("manifests/bad_json.json")));
    assert!(
        e.contains("bad_json.json:3:") && e.contains("EOF while parsing"),
        "{e}"
    );
    let missing = fixture("manifests/absent.json");
    let e = Manifest::from_file(&missing).err();
    assert!(
        matches!(&e, Some(Error::Io { path, .. }) if path == &missing),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// dataset and data layer

#[test]
fn dataset_normalizes_resamples_and_downmixes() -> TestResult<()> {
    let layer = AudioToTextDataLayer::new(config("small.json", 8))?;
    let ds = layer.dataset();
    let texts: Vec<&str> = ds.samples().iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "open the door",
            "open the door",
            "good morning",
            "yes",
            "open the door"
        ]
    );
    let labels = Vocabulary::english();
    assert_eq!(
        ds.tokens(2)?,
        labels
            .encode("good morning")
            .map_err(|e| e.to_string())?
            .as_slice()
    );
    // b is read for int(0.854286 * 22050) frames, then resampled.
    let frames = (0.854286f64 * 22050.0) as usize;
    assert_eq!(ds.audio(2)?.len(), (frames * 16000).div_ceil(22050));
    assert_eq!(ds.audio(3)?.len(), (0.6115f64 * 16000.0) as usize);
    let s = layer.summary();
    assert_eq!((s.manifest_entries, s.kept, s.skipped()), (5, 5, 0));
    Ok(())
}

#[test]
fn char_outside_labels_names_file_line_and_char() -> TestResult<()> {
    let e = err_string(AudioToTextDataLayer::new(config("oov.json", 2)));
    assert!(e.contains("oov.json:2:"), "{e}");
    assert!(e.contains("'1'") && e.contains("room 101"), "{e}");

    let mut c = config("oov.json", 2);
    c.on_bad_sample = OnBadSample::Skip;
    let layer = AudioToTextDataLayer::new(c)?;
    assert_eq!(layer.len(), 2);
    let s = layer.summary();
    assert_eq!((s.skipped_text, s.skipped(), s.kept), (1, 1, 2));
    assert!(s.to_string().contains("skipped 1 (1 text"), "{s}");
    Ok(())
}

#[test]
fn missing_audio_names_manifest_line() -> TestResult<()> {
    let e = err_string(AudioToTextDataLayer::new(config("missing_audio.json", 2)));
    assert!(
        e.contains("missing_audio.json:2:") && e.contains("does_not_exist.wav"),
        "{e}"
    );
    let mut c = config("missing_audio.json", 2);
    c.on_bad_sample = OnBadSample::Skip;
    let layer = AudioToTextDataLayer::new(c)?;
    assert_eq!((layer.len(), layer.summary().skipped_audio), (1, 1));
    Ok(())
}

#[test]
fn duration_filters_are_counted() -> TestResult<()> {
    let mut c = config("small.json", 2);
    c.min_duration = Some(0.7);
    let s = AudioToTextDataLayer::new(c)?.summary();
    assert_eq!((s.kept, s.filtered_short, s.filtered_long), (4, 1, 0));
    assert!((s.filtered_seconds - 0.6115).abs() < 1e-9);

    let mut c = config("small.json", 2);
    c.max_duration = Some(0.9);
    let s = AudioToTextDataLayer::new(c)?.summary();
    assert_eq!((s.kept, s.filtered_short, s.filtered_long), (2, 0, 3));

    let mut c = config("small.json", 2);
    c.max_utts = 2;
    let layer = AudioToTextDataLayer::new(c)?;
    assert_eq!((layer.len(), layer.summary().filtered_max_utts), (2, 3));

    let mut c = config("small.json", 2);
    c.min_duration = Some(2.0);
    c.max_duration = Some(1.0);
    assert!(err_string(AudioToTextDataLayer::new(c)).contains("max_duration"));
    Ok(())
}

/// A manifest of `(wav, text)` rows over the fixtures, written to `dir`.
fn manifest_of(dir: &Path, rows: &[(&str, &str)]) -> TestResult<PathBuf> {
    let path = dir.join("m.json");
    let mut text = String::new();
    for (name, t) in rows {
        let info = wav_info(wav(name))?;
        let line = serde_json::json!({
            "audio_filepath": wav(name),
            "duration": info.duration(),
            "text": t,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

#[test]
fn unalignable_utterances_are_refused_or_skipped() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    // 0.98 s of audio; 50 CTC steps per second (hop 160, stride 2) give 49 steps.
    let long = "xy".repeat(25); // 50 labels, no repeats
    let fits = &long[..49];
    let repeats = "a".repeat(26); // 26 labels, but 51 steps with a blank between each pair
    let m = manifest_of(
        dir.path(),
        &[
            ("a_s16_16k.wav", "open the door"),
            ("a_s16_16k.wav", &long),
            ("a_s16_16k.wav", &repeats),
            ("a_s16_16k.wav", fits),
        ],
    )?;
    let steps = |samples: usize| samples / 160 / 2;
    for preload in [false, true] {
        let mut c = AudioToTextDataLayerConfig::new(m.display().to_string(), 2);
        c.preload = preload;
        let mut layer = AudioToTextDataLayer::new(c.clone())?;
        let e = err_string(layer.retain_alignable(steps));
        assert!(
            e.contains("m.json:2:")
                && e.contains("needs 50 CTC time steps")
                && e.contains("give 49"),
            "{e}"
        );
        assert!(
            e.contains("a_s16_16k.wav") && e.contains("cut short"),
            "{e}"
        );

        c.on_bad_sample = OnBadSample::Skip;
        let mut layer = AudioToTextDataLayer::new(c)?;
        assert_eq!(layer.retain_alignable(steps)?, 2);
        let s = layer.summary();
        assert_eq!((layer.len(), s.kept, s.skipped_unalignable), (2, 2, 2));
        assert!(s.to_string().contains("2 unalignable"), "{s}");
        let texts: Vec<&str> = layer
            .dataset()
            .samples()
            .iter()
            .map(|x| x.text.as_str())
            .collect();
        assert_eq!(texts, ["open the door", fits]);
        if preload {
            // The preloaded audio moved with its utterance.
            assert_eq!(
                layer.dataset().audio(1)?.len(),
                layer.dataset().audio(0)?.len()
            );
        }
        let batches: Vec<_> = layer
            .epoch(0, &Device::Cpu)
            .collect::<nemo_asr::Result<_>>()?;
        assert_eq!(batches.len(), 1);
    }
    Ok(())
}

#[test]
fn batches_are_padded() -> TestResult<()> {
    let mut c = config("small.json", 2);
    c.pad_id = Some(99);
    let layer = AudioToTextDataLayer::new(c)?;
    assert_eq!(layer.num_batches(), 3);
    let ds = layer.dataset();
    let batches: Vec<_> = layer
        .epoch(0, &Device::Cpu)
        .collect::<nemo_asr::Result<_>>()?;
    assert_eq!(batches.len(), 3);
    let mut index = 0;
    for batch in &batches {
        let audio = batch.audio_signal.to_vec2::<f32>()?;
        let a_len = batch.a_sig_length.to_vec1::<i64>()?;
        let ids = batch.transcripts.to_vec2::<i64>()?;
        let y_len = batch.transcript_length.to_vec1::<i64>()?;
        let t = audio.iter().map(Vec::len).max().unwrap_or(0);
        assert_eq!(t as i64, a_len.iter().copied().max().unwrap_or(0));
        for row in 0..audio.len() {
            let want = ds.audio(index)?;
            let n = a_len[row] as usize;
            assert_eq!(n, want.len());
            assert_eq!(&audio[row][..n], &want[..]);
            assert!(audio[row][n..].iter().all(|&v| v == 0.0));
            let toks = ds.tokens(index)?;
            let m = y_len[row] as usize;
            assert_eq!(m, toks.len());
            let got: Vec<u32> = ids[row][..m].iter().map(|&v| v as u32).collect();
            assert_eq!(got, toks);
            assert!(ids[row][m..].iter().all(|&v| v == 99));
            index += 1;
        }
    }
    assert_eq!(index, 5);
    assert_eq!(batches[2].audio_signal.dims(), &[1, 15758]);

    let mut c = config("small.json", 2);
    c.drop_last = true;
    let layer = AudioToTextDataLayer::new(c)?;
    assert_eq!(layer.num_batches(), 2);
    assert_eq!(layer.epoch(0, &Device::Cpu).count(), 2);
    Ok(())
}

/// A manifest of `n` utterances (all the same file) in `dir`.
fn many(dir: &Path, n: usize) -> TestResult<PathBuf> {
    let path = dir.join("many.json");
    let audio = wav("c_s16_16k.wav");
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{{\"audio_filepath\": {:?}, \"duration\": 0.6115, \"text\": \"utterance {}\"}}",
                audio.display().to_string(),
                ["one", "two", "three", "four", "five"][i % 5]
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n"))?;
    Ok(path)
}

#[test]
fn shuffling_is_seeded_per_epoch() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    let manifest = many(dir.path(), 40)?;
    let make = |seed: u64| {
        let mut c = AudioToTextDataLayerConfig::new(manifest.display().to_string(), 8);
        c.seed = seed;
        AudioToTextDataLayer::new(c)
    };
    let (a, b, other) = (make(7)?, make(7)?, make(8)?);
    let o0 = a.epoch_order(0);
    assert_eq!(o0, b.epoch_order(0));
    assert_eq!(a.epoch_order(3), b.epoch_order(3));
    assert_ne!(o0, a.epoch_order(1));
    assert_ne!(o0, other.epoch_order(0));
    let mut sorted = o0.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..40).collect::<Vec<_>>());
    // The batches follow the order.
    let first = a.epoch(0, &Device::Cpu).next().ok_or("no batch")??;
    let want: Vec<i64> = o0[..8]
        .iter()
        .map(|&i| a.dataset().tokens(i).map(|t| t.len() as i64))
        .collect::<nemo_asr::Result<_>>()?;
    assert_eq!(first.transcript_length.to_vec1::<i64>()?, want);
    Ok(())
}

/// A manifest of `n` utterances of durations 0.1·(1 + (i·7 mod n)) seconds in `dir`.
fn varied(dir: &Path, n: usize) -> TestResult<PathBuf> {
    let path = dir.join("varied.json");
    let audio = wav("c_s16_16k.wav");
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{{\"audio_filepath\": {:?}, \"duration\": {:.3}, \"text\": \"u\"}}",
                audio.display().to_string(),
                0.1 * (1 + (i * 7) % n) as f64 / n as f64 * 5.0
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n"))?;
    Ok(path)
}

#[test]
fn semi_sorted_batches_hold_similar_durations() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    let manifest = varied(dir.path(), 43)?;
    let make = |shuffle: bool, semi: bool| {
        let mut c = AudioToTextDataLayerConfig::new(manifest.display().to_string(), 8);
        c.seed = 3;
        c.min_duration = None;
        c.shuffle = shuffle;
        c.semi_sorted_batching = semi;
        AudioToTextDataLayer::new(c)
    };
    let layer = make(true, true)?;
    let dur = |i: usize| layer.dataset().samples()[i].duration;
    let spread = |order: &[usize]| -> f64 {
        order
            .chunks(8)
            .map(|b| {
                let d: Vec<f64> = b.iter().map(|&i| dur(i)).collect();
                d.iter().cloned().fold(f64::MIN, f64::max)
                    - d.iter().cloned().fold(f64::MAX, f64::min)
            })
            .sum()
    };
    let order = layer.epoch_order(0);
    let mut all = order.clone();
    all.sort_unstable();
    assert_eq!(all, (0..43).collect::<Vec<_>>(), "a permutation");
    assert_eq!(order.len() % 8, 3);
    let shuffled = make(true, false)?.epoch_order(0);
    assert!(
        spread(&order) < 0.5 * spread(&shuffled),
        "semi-sorted batches are tighter: {} vs {}",
        spread(&order),
        spread(&shuffled)
    );
    assert_ne!(order, layer.epoch_order(1), "batch order changes per epoch");
    assert_eq!(order, make(true, true)?.epoch_order(0), "seeded");
    // The short batch (the longest utterances) stays last, so every other batch is full.
    let longest = order.iter().map(|&i| dur(i)).fold(0.0, f64::max);
    assert!(order[40..].iter().all(|&i| dur(i) > 0.8 * longest));
    // Without shuffling: sorted by duration.
    let sorted = make(false, true)?.epoch_order(0);
    assert!(sorted.windows(2).all(|w| dur(w[0]) <= dur(w[1])));
    Ok(())
}

#[test]
fn preload_gives_the_same_batches() -> TestResult<()> {
    let mut lazy = config("small.json", 2);
    lazy.shuffle = true;
    lazy.seed = 3;
    let mut eager = lazy.clone();
    eager.preload = true;
    let (lazy, eager) = (
        AudioToTextDataLayer::new(lazy)?,
        AudioToTextDataLayer::new(eager)?,
    );
    assert!(eager.dataset().is_preloaded() && !lazy.dataset().is_preloaded());
    for (x, y) in lazy
        .epoch(1, &Device::Cpu)
        .zip(eager.epoch(1, &Device::Cpu))
    {
        let (x, y) = (x?, y?);
        assert_eq!(
            x.audio_signal.to_vec2::<f32>()?,
            y.audio_signal.to_vec2::<f32>()?
        );
        assert_eq!(
            x.transcripts.to_vec2::<i64>()?,
            y.transcripts.to_vec2::<i64>()?
        );
    }
    Ok(())
}

#[test]
fn undecodable_audio_at_load() -> TestResult<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("bad.wav"), b"RIFF....WAVEjunk")?;
    std::fs::copy(wav("c_s16_16k.wav"), dir.path().join("good.wav"))?;
    let manifest = dir.path().join("m.json");
    std::fs::write(
        &manifest,
        "{\"audio_filepath\": \"good.wav\", \"duration\": 0.6, \"text\": \"yes\"}\n\
         {\"audio_filepath\": \"bad.wav\", \"duration\": 0.6, \"text\": \"no\"}\n\
         {\"audio_filepath\": \"good.wav\", \"duration\": 0.6, \"text\": \"yes\"}\n",
    )?;
    let base = |skip: bool, preload: bool| {
        let mut c = AudioToTextDataLayerConfig::new(manifest.display().to_string(), 2);
        c.shuffle = false;
        c.preload = preload;
        c.on_bad_sample = if skip {
            OnBadSample::Skip
        } else {
            OnBadSample::Error
        };
        c
    };

    // error policy, lazy: the batch holding it fails, naming file and manifest line; then stop.
    let layer = AudioToTextDataLayer::new(base(false, false))?;
    let results: Vec<_> = layer.epoch(0, &Device::Cpu).collect();
    assert_eq!(results.len(), 1);
    let msg = results
        .into_iter()
        .next()
        .map(err_string)
        .unwrap_or_default();
    assert!(msg.contains("bad.wav") && msg.contains("m.json:2"), "{msg}");

    // skip policy, lazy: left out of the batch, counted once over several epochs.
    let layer = AudioToTextDataLayer::new(base(true, false))?;
    for epoch in 0..2 {
        let sizes: Vec<usize> = layer
            .epoch(epoch, &Device::Cpu)
            .map(|b| b.and_then(|b| Ok(b.audio_signal.dims2()?.0)))
            .collect::<nemo_asr::Result<_>>()?;
        assert_eq!(sizes, vec![1, 1]);
    }
    let s = layer.summary();
    assert_eq!((s.skipped_at_load, s.skipped()), (1, 1));
    let failures = layer.dataset().load_failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].1, 2);

    // preload: skipped while building, or the build fails.
    let layer = AudioToTextDataLayer::new(base(true, true))?;
    assert_eq!((layer.len(), layer.summary().skipped_audio), (2, 1));
    assert!(err_string(AudioToTextDataLayer::new(base(false, true))).contains("bad.wav"));
    Ok(())
}

#[test]
fn config_reads_nemo_yaml() -> TestResult<()> {
    let yaml = r#"
manifest_filepath: a.json,b.json
labels: [" ", "a", "b", "c", "'"]
batch_size: 16
sample_rate: 16000
normalize_transcripts: true
trim_silence: false
max_duration: 16.7
shuffle: true
num_workers: 4
on_bad_sample: skip
"#;
    let c: AudioToTextDataLayerConfig = serde_norway::from_str(yaml)?;
    assert_eq!(c.labels.len(), 5);
    assert_eq!(c.max_duration, Some(16.7));
    assert_eq!(c.on_bad_sample, OnBadSample::Skip);
    let mut trim = c.clone();
    trim.trim_silence = true;
    let e = err_string(AudioToTextDataLayer::new(trim));
    assert!(e.contains("trim_silence"), "{e}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// labels

fn label_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(ENGLISH_LABELS.to_vec()), 0..60)
        .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn normalization_is_idempotent_and_clean(s in "\\PC{0,80}") {
        let labels = Vocabulary::english();
        let n = normalize_transcript(&s, &labels);
        prop_assert_eq!(normalize_transcript(&n, &labels), n.clone());
        prop_assert!(!n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "));
        prop_assert!(!n.chars().any(|c| c.is_whitespace() && c != ' '));
        prop_assert!(!n.chars().any(|c| c.is_ascii_uppercase()));
        prop_assert!(!n.chars().any(|c| c.is_ascii_punctuation() && c != '\''));
    }

    #[test]
    fn label_text_round_trips(s in label_text()) {
        let labels = Vocabulary::english();
        let n = normalize_transcript(&s, &labels);
        let ids = labels.encode(&n).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(ids.len(), n.chars().count());
        prop_assert!(ids.iter().all(|&i| i < labels.blank_id()));
        prop_assert_eq!(labels.decode(&ids).map_err(|e| TestCaseError::fail(e.to_string()))?, n);
    }

    #[test]
    fn ids_round_trip(ids in proptest::collection::vec(0u32..28, 0..60)) {
        let labels = Vocabulary::english();
        let text = labels.decode(&ids).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(labels.encode(&text).map_err(|e| TestCaseError::fail(e.to_string()))?, ids);
    }

    #[test]
    fn mixed_case_punctuated_label_text_normalizes_to_lowercase(s in "[a-zA-Z' ,.!?;:-]{0,60}") {
        let labels = Vocabulary::english();
        let n = normalize_transcript(&s, &labels);
        prop_assert!(labels.encode(&n).is_ok(), "{:?} -> {:?}", s, n);
    }
}
