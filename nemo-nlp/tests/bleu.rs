//! Parity with SacreBLEU 2.6.0: every hypothesis/reference pair of `tests/fixtures/bleu` scored
//! with each setting, sentence BLEU of their first lines, the command's text and JSON output,
//! and the exact 13a tokenisation of every line and of a list of tricky strings.
//!
//! The expected values come from `scripts/sacrebleu_fixtures.py` (SacreBLEU's Python API and
//! its `sacrebleu` command); the text pairs are dev-split Bible verses (Joshua, Hosea,
//! Ecclesiastes, Hebrews) with systematic perturbations, made by the same script.

use std::path::{Path, PathBuf};

use nemo_nlp::metrics::{Bleu, BleuScore, BleuTokenizer, Smoothing, sentence_bleu, tokenize_13a};
use nemo_nlp::text_file::read_lines;
use serde_json::Value;

use nemo_core::testing::TestResult;

/// The contract: scores equal SacreBLEU's to 0.01 BLEU.
const SCORE_TOLERANCE: f64 = 0.01;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bleu")
}

fn expected() -> TestResult<Value> {
    let text = std::fs::read_to_string(fixtures().join("expected.json"))?;
    Ok(serde_json::from_str(&text)?)
}

fn variant(name: &str) -> Option<Bleu> {
    let default = Bleu::default();
    Some(match name {
        "default" => default,
        "lowercase" => Bleu {
            lowercase: true,
            ..default
        },
        "tok_none" => Bleu {
            tokenize: BleuTokenizer::None,
            ..default
        },
        "smooth_none" => Bleu {
            smooth_method: Smoothing::None,
            ..default
        },
        "smooth_floor" => Bleu {
            smooth_method: Smoothing::floor(),
            ..default
        },
        "smooth_add_k" => Bleu {
            smooth_method: Smoothing::add_k(),
            ..default
        },
        "effective_order" => Bleu {
            effective_order: true,
            ..default
        },
        _ => return None,
    })
}

fn f64_of(v: &Value, key: &str) -> Result<f64, String> {
    v[key]
        .as_f64()
        .ok_or_else(|| format!("`{key}` missing in {v}"))
}

fn usizes(v: &Value, key: &str) -> Result<Vec<usize>, String> {
    v[key]
        .as_array()
        .ok_or_else(|| format!("`{key}` missing"))?
        .iter()
        .map(|x| {
            x.as_u64()
                .map(|x| x as usize)
                .ok_or(format!("`{key}`: {x}"))
        })
        .collect()
}

/// Compares one score with SacreBLEU's; returns the absolute score difference. `added` is the
/// `k` of add-k smoothing, which SacreBLEU adds into the counts and totals it reports from order
/// 2 on (ours are the counts before smoothing).
fn compare(what: &str, ours: &BleuScore, theirs: &Value, added: usize) -> Result<f64, String> {
    let diff = (ours.score - f64_of(theirs, "score")?).abs();
    if diff > SCORE_TOLERANCE {
        return Err(format!("{what}: BLEU {} vs sacrebleu {theirs}", ours.score));
    }
    let unsmoothed = |key: &str| -> Result<Vec<usize>, String> {
        let mut v = usizes(theirs, key)?;
        v.iter_mut().skip(1).for_each(|c| *c -= added);
        Ok(v)
    };
    let exact = [
        ("counts", ours.counts.clone(), unsmoothed("counts")?),
        ("totals", ours.totals.clone(), unsmoothed("totals")?),
        (
            "sys_len",
            vec![ours.sys_len],
            vec![f64_of(theirs, "sys_len")? as usize],
        ),
        (
            "ref_len",
            vec![ours.ref_len],
            vec![f64_of(theirs, "ref_len")? as usize],
        ),
    ];
    for (key, a, b) in exact {
        if a != b {
            return Err(format!("{what}: {key} {a:?} vs sacrebleu {b:?}"));
        }
    }
    let close = |key: &str, a: f64, b: f64| {
        if (a - b).abs() > 1e-9 * b.abs().max(1.0) {
            Err(format!("{what}: {key} {a} vs sacrebleu {b}"))
        } else {
            Ok(())
        }
    };
    close("bp", ours.bp, f64_of(theirs, "bp")?)?;
    close("ratio", ours.ratio, f64_of(theirs, "ratio")?)?;
    let precisions = theirs["precisions"].as_array().ok_or("precisions")?;
    for (n, (a, b)) in ours.precisions.iter().zip(precisions).enumerate() {
        close(
            &format!("precision {}", n + 1),
            *a,
            b.as_f64().ok_or("precision")?,
        )?;
    }
    let sig = theirs["signature"].as_str().unwrap_or_default();
    if !sig.is_empty() && ours.signature.to_string() != sig {
        return Err(format!("{what}: signature {} vs {sig}", ours.signature));
    }
    Ok(diff)
}

#[test]
fn corpus_bleu_equals_sacrebleu_on_every_fixture_and_setting() -> TestResult {
    let expected = expected()?;
    assert_eq!(expected["sacrebleu_version"], "2.6.0");
    let cases = expected["cases"].as_array().ok_or("cases")?;
    assert!(cases.len() >= 12, "{} cases", cases.len());
    let mut worst = 0.0f64;
    let mut compared = 0;
    for case in cases {
        let name = case["name"].as_str().ok_or("name")?;
        let hyp = fixtures().join(case["hyp"].as_str().ok_or("hyp")?);
        let refs: Vec<PathBuf> = case["refs"]
            .as_array()
            .ok_or("refs")?
            .iter()
            .filter_map(Value::as_str)
            .map(|f| fixtures().join(f))
            .collect();
        for (vname, theirs) in case["variants"].as_object().ok_or("variants")? {
            let bleu = variant(vname).ok_or_else(|| format!("unknown variant {vname}"))?;
            let ours = bleu.corpus_score_files(&hyp, &refs)?;
            let added = usize::from(vname == "smooth_add_k" && ours.counts.iter().any(|&c| c > 0));
            worst = worst.max(compare(&format!("{name}/{vname}"), &ours, theirs, added)?);
            compared += 1;
            if vname == "default" {
                assert_eq!(ours.to_string(), case["cli_text"].as_str().ok_or("cli")?);
                assert_eq!(ours.to_json(1), case["cli_json"].as_str().ok_or("json")?);
            }
        }
    }
    assert!(compared >= 12 * 7, "{compared}");
    eprintln!("{compared} corpus scores, largest |BLEU - sacrebleu| = {worst:e}");
    Ok(())
}

#[test]
fn sentence_bleu_equals_sacrebleu() -> TestResult {
    let expected = expected()?;
    let mut compared = 0;
    for case in expected["cases"].as_array().ok_or("cases")? {
        let name = case["name"].as_str().ok_or("name")?;
        let hyps = read_lines(fixtures().join(case["hyp"].as_str().ok_or("hyp")?))?;
        let mut refs = Vec::new();
        for f in case["refs"].as_array().ok_or("refs")? {
            refs.push(read_lines(fixtures().join(f.as_str().ok_or("ref")?))?);
        }
        for s in case["sentence"].as_array().ok_or("sentence")? {
            let k = s["line"].as_u64().ok_or("line")? as usize;
            let line_refs: Vec<&str> = refs.iter().map(|r| r[k].as_str()).collect();
            let ours = sentence_bleu(&hyps[k], &line_refs)?;
            compare(&format!("{name} line {k}"), &ours, s, 0)?;
            compared += 1;
        }
    }
    assert!(compared >= 40, "{compared}");
    Ok(())
}

#[test]
fn tokenize_13a_equals_sacrebleu_on_every_line() -> TestResult {
    let expected = expected()?;
    let mut lines = 0;
    for case in expected["cases"].as_array().ok_or("cases")? {
        for (file, tokens) in case["tokenize_13a"].as_object().ok_or("tokenize_13a")? {
            let text = read_lines(fixtures().join(file))?;
            let tokens = tokens.as_array().ok_or("tokens")?;
            assert_eq!(text.len(), tokens.len(), "{file}");
            for (line, want) in text.iter().zip(tokens) {
                assert_eq!(
                    tokenize_13a(line),
                    want.as_str().ok_or("token")?,
                    "{file}: {line:?}"
                );
                lines += 1;
            }
        }
    }
    assert!(lines > 500, "{lines}");
    Ok(())
}

#[test]
fn tokenize_13a_and_lowercase_equal_python_on_tricky_strings() -> TestResult {
    let expected = expected()?;
    let tricky = expected["tricky_13a"].as_array().ok_or("tricky_13a")?;
    assert!(tricky.len() >= 20);
    for t in tricky {
        let text = t["text"].as_str().ok_or("text")?;
        assert_eq!(
            tokenize_13a(text),
            t["tokens"].as_str().ok_or("tokens")?,
            "{text:?}"
        );
        assert_eq!(
            text.to_lowercase(),
            t["lower"].as_str().ok_or("lower")?,
            "{text:?}"
        );
    }
    Ok(())
}

#[test]
fn files_of_different_lengths_are_an_error_naming_both() -> TestResult {
    let dir = fixtures();
    let e = Bleu::default()
        .corpus_score_files(dir.join("tiny.hyp"), &[dir.join("perfect.ref")])
        .err()
        .ok_or("no error")?
        .to_string();
    assert!(e.contains("tiny.hyp") && e.contains("perfect.ref"), "{e}");
    assert!(
        e.contains("1 hypothesis lines but 20 reference lines"),
        "{e}"
    );
    Ok(())
}
