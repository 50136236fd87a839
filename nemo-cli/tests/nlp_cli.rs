//! The `nemo-nlp` command line as a user runs it, on the committed Genesis fixture with a tiny
//! model: `train` (metrics, curves, checkpoints, a self-contained model directory), `--resume`,
//! `translate` from a file and from stdin, `eval` (last line `BLEU: x.xx`), `average`; and a
//! config with a misspelt key is refused naming the file and the key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fixture(lang: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../nemo-nlp/tests/fixtures/text/genesis.{lang}"))
}

fn nemo_nlp(args: &[&str]) -> Result<Output, std::io::Error> {
    Command::new(env!("CARGO_BIN_EXE_nemo-nlp"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
}

fn ok(out: &Output) -> Result<String, String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

const CONFIG: &str = r#"model:
  name: TinyCli
  tokenizer: {shared_tokenizer: true, vocab_size: 300}
  encoder: {d_model: 16, d_inner: 32, num_layers: 1, num_attn_heads: 2}
  decoder: {d_model: 16, d_inner: 32, num_layers: 1, num_attn_heads: 2}
  loss: {label_smoothing: 0.1}
  decoding: {beam_size: 2, max_delta_length: 10}
train_ds:
  tokens_in_batch: 2000
  eval_max_sentences: 8
train:
  trainer: {seed: 3, max_steps: 6, log_every: 2, eval_every: 3, checkpoint_every: 2, keep_checkpoints: 3}
  optim: {name: adamw, betas: [0.9, 0.98], weight_decay: 0.0}
  sched: {name: CosineAnnealing, lr: 0.003, warmup_steps: 2}
"#;

fn train(config: &Path, out: &Path, extra: &[&str]) -> Result<Output, std::io::Error> {
    let (en, es) = (fixture("en"), fixture("es"));
    let mut args = vec![
        "train",
        "--config",
        config.to_str().unwrap_or_default(),
        "--train-src",
        en.to_str().unwrap_or_default(),
        "--train-tgt",
        es.to_str().unwrap_or_default(),
        "--val-src",
        en.to_str().unwrap_or_default(),
        "--val-tgt",
        es.to_str().unwrap_or_default(),
        "--out",
        out.to_str().unwrap_or_default(),
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    nemo_nlp(&args)
}

#[test]
fn train_resume_translate_eval_and_average() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("tiny.yaml");
    std::fs::write(&config, CONFIG)?;
    let model = dir.path().join("model");
    let stdout = ok(&train(&config, &model, &[])?)?;
    assert!(stdout.contains("dev BLEU: "), "{stdout}");
    for file in [
        "model.yaml",
        "tokenizer.json",
        "weights.safetensors",
        "run/metrics.jsonl",
        "run/curves.png",
    ] {
        assert!(model.join(file).is_file(), "{file} missing");
    }
    let checkpoints = || -> std::io::Result<usize> {
        Ok(std::fs::read_dir(model.join("run/checkpoints"))?.count())
    };
    assert!(checkpoints()? >= 2);

    // --resume continues from the newest checkpoint to the new step bound (steps count from 0).
    ok(&train(&config, &model, &["--resume", "--max-steps", "8"])?)?;
    let metrics = std::fs::read_to_string(model.join("run/metrics.jsonl"))?;
    assert!(metrics.contains("\"step\":7,"), "{metrics}");

    let m = model.to_str().ok_or("path")?;
    let en = fixture("en");
    let en_s = en.to_str().ok_or("path")?;
    let file_out = ok(&nemo_nlp(&["translate", "--model", m, en_s])?)?;
    assert_eq!(file_out.lines().count(), 200);

    let mut child = Command::new(env!("CARGO_BIN_EXE_nemo-nlp"))
        .args(["translate", "--model", m, "--beam-size", "1"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("stdin")?
        .write_all(b"In the beginning God created the heaven and the earth.\n\nAnd God said, Let there be light.\n")?;
    let stdin_out = ok(&child.wait_with_output()?)?;
    assert_eq!(stdin_out.lines().count(), 3, "{stdin_out}");
    assert_eq!(
        stdin_out.lines().nth(1),
        Some(""),
        "an empty line translates to an empty line"
    );

    let es = fixture("es");
    let es_s = es.to_str().ok_or("path")?;
    let eval = ok(&nemo_nlp(&[
        "eval", "--model", m, "--src", en_s, "--ref", es_s,
    ])?)?;
    let last = eval.lines().last().ok_or("no output")?;
    let score: f64 = last
        .strip_prefix("BLEU: ")
        .ok_or(format!("last line {last:?}"))?
        .parse()?;
    assert!((0.0..=100.0).contains(&score));
    assert!(
        eval.contains("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"),
        "{eval}"
    );

    let avg = dir.path().join("avg");
    let a = avg.to_str().ok_or("path")?;
    ok(&nemo_nlp(&[
        "average", "--model", m, "--last", "2", "--out", a,
    ])?)?;
    for file in ["model.yaml", "tokenizer.json", "weights.safetensors"] {
        assert!(avg.join(file).is_file(), "average: {file} missing");
    }
    let eval = ok(&nemo_nlp(&[
        "eval",
        "--model",
        a,
        "--src",
        en_s,
        "--ref",
        es_s,
        "--beam-size",
        "1",
    ])?)?;
    assert!(
        eval.lines().last().is_some_and(|l| l.starts_with("BLEU: ")),
        "{eval}"
    );
    Ok(())
}

#[test]
fn a_misspelt_key_is_refused_naming_the_file_and_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, CONFIG.replacen("num_attn_heads", "num_heads", 1))?;
    let out = train(&config, &dir.path().join("model"), &[])?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("num_heads"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn a_pair_longer_than_the_position_table_is_refused_naming_file_and_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("short.yaml");
    std::fs::write(
        &config,
        CONFIG.replacen(
            "num_attn_heads: 2}",
            "num_attn_heads: 2, max_seq_length: 20}",
            1,
        ),
    )?;
    let out = train(&config, &dir.path().join("model"), &[])?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("model.encoder.max_seq_length") && stderr.contains("genesis.en:"),
        "{stderr}"
    );
    Ok(())
}
