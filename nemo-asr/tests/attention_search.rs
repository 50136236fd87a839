//! Greedy and beam search of the attention decoder (`nemo_asr::decoding`): beam 1 is greedy
//! search, and a wide enough beam finds the exhaustive best hypothesis under the length and
//! coverage terms.

mod common;

use candle_core::{DType, Tensor};
use common::attention::{ALL, Res, decoder, enc_batch};
use nemo_asr::decoding::{BeamSearchConfig, beam_search, greedy_search};
use nemo_asr::modules::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The core's searches over `dec` on encoder outputs `enc` with valid `lens`, limited per row
/// by `cfg` (from BOS, up to EOS).
fn run_beam(
    dec: &DecoderRnn,
    enc: &Tensor,
    lens: &[usize],
    eos: u32,
    cfg: &BeamSearchConfig,
) -> Res<Vec<Vec<u32>>> {
    let limits: Vec<usize> = lens.iter().map(|&l| cfg.limit(l)).collect();
    let state = dec.search_state(enc, lens)?;
    Ok(beam_search(
        dec,
        state,
        dec.config().bos_id,
        eos,
        &limits,
        cfg,
    )?)
}

fn run_greedy(
    dec: &DecoderRnn,
    enc: &Tensor,
    lens: &[usize],
    eos: u32,
    cfg: &BeamSearchConfig,
) -> Res<Vec<Vec<u32>>> {
    let limits: Vec<usize> = lens.iter().map(|&l| cfg.limit(l)).collect();
    let state = dec.search_state(enc, lens)?;
    Ok(greedy_search(
        dec,
        state,
        dec.config().bos_id,
        eos,
        &limits,
    )?)
}

#[test]
fn beam_search_with_beam_1_is_greedy_search() -> TestResult {
    for (rnn, method, feeding) in ALL {
        let (dec, _params) = decoder((rnn, method, feeding), DType::F32, 7, 6)?;
        let (enc, _, _) = enc_batch(DType::F32, 6)?;
        let lens = [5usize, 3];
        let eos = 5;
        let limit = BeamSearchConfig {
            max_len: 12,
            ..Default::default()
        };
        let greedy = run_greedy(&dec, &enc, &lens, eos, &limit)?;
        let beam1 = run_beam(
            &dec,
            &enc,
            &lens,
            eos,
            &BeamSearchConfig {
                beam_size: 1,
                length_penalty: 0.0,
                max_len: 12,
                ..Default::default()
            },
        )?;
        assert_eq!(greedy, beam1, "{rnn:?} {method:?} feeding {feeding}");
        let beam3 = run_beam(
            &dec,
            &enc,
            &lens,
            eos,
            &BeamSearchConfig {
                beam_size: 3,
                length_penalty: 0.6,
                max_len: 12,
                ..Default::default()
            },
        )?;
        assert_eq!(beam3.len(), 2);
        assert!(beam3.iter().flatten().all(|&t| t != eos && t < 7));
    }
    Ok(())
}

/// Every hypothesis of at most `max_len` tokens scored as beam search scores ended ones:
/// `log p / lp(len) + β × coverage`, where `len` counts EOS unless the limit ended it. Returns the
/// best-scoring token sequence (no EOS).
fn exhaustive_best(
    dec: &DecoderRnn,
    ctx: &AttentionContext,
    voc: u32,
    eos: u32,
    cfg: &BeamSearchConfig,
) -> Res<Vec<u32>> {
    struct Prefix {
        tokens: Vec<u32>,
        logp: f64,
        attention: Vec<f32>,
        state: DecoderState,
    }
    let covered = |a: &[f32]| {
        a.iter()
            .filter(|&&x| f64::from(x) > cfg.coverage_threshold)
            .count() as f64
    };
    let score = |logp: f64, len: usize, a: &[f32]| {
        logp / cfg.length_penalty_kind.value(len, cfg.length_penalty)
            + cfg.coverage_penalty * covered(a)
    };
    let mut best: Option<(f64, Vec<u32>)> = None;
    let mut offer = |s: f64, tokens: &[u32]| {
        if best.as_ref().is_none_or(|b| s > b.0) {
            best = Some((s, tokens.to_vec()));
        }
    };
    let mut stack = vec![Prefix {
        tokens: Vec::new(),
        logp: 0.0,
        attention: Vec::new(),
        state: dec.init_state(1)?,
    }];
    while let Some(p) = stack.pop() {
        let prev = p.tokens.last().copied().unwrap_or(dec.config().bos_id);
        let step = dec.step(&[prev], &p.state, ctx)?;
        let lp: Vec<f32> = step.log_probs.squeeze(0)?.to_vec1()?;
        let w: Vec<f32> = step.attention_weights.squeeze(0)?.to_vec1()?;
        let attention: Vec<f32> = if p.attention.is_empty() {
            w
        } else {
            p.attention.iter().zip(&w).map(|(a, b)| a + b).collect()
        };
        for tok in 0..voc {
            let logp = p.logp + f64::from(lp[tok as usize]);
            let mut tokens = p.tokens.clone();
            if tok == eos {
                offer(score(logp, tokens.len() + 1, &attention), &tokens);
                continue;
            }
            tokens.push(tok);
            if tokens.len() == cfg.max_len {
                offer(score(logp, tokens.len(), &attention), &tokens);
            } else {
                stack.push(Prefix {
                    tokens,
                    logp,
                    attention: attention.clone(),
                    state: step.state.clone(),
                });
            }
        }
    }
    Ok(best.ok_or("no hypothesis")?.1)
}

#[test]
fn a_beam_wide_enough_finds_the_best_hypothesis_under_length_and_coverage_terms() -> TestResult {
    // 4 tokens with EOS = 3 and at most 3 tokens: 1 + 3 + 9 + 27 hypotheses, all kept by a beam
    // of 64, so beam search must return the exhaustive optimum of the same score.
    let (voc, eos) = (4u32, 3u32);
    let mut changed = 0;
    for (rnn, method, feeding) in ALL {
        let (dec, _params) = decoder((rnn, method, feeding), DType::F32, voc as usize, 6)?;
        let (enc, _, _) = enc_batch(DType::F32, 6)?;
        let mut results = Vec::new();
        for (alpha, beta) in [(0.0, 0.0), (0.6, 0.0), (0.0, 0.4), (0.6, 2.0)] {
            let cfg = BeamSearchConfig {
                beam_size: 64,
                length_penalty: alpha,
                max_len: 3,
                coverage_penalty: beta,
                coverage_threshold: 0.5,
                ..Default::default()
            };
            let lens = [5usize, 3];
            let found = run_beam(&dec, &enc, &lens, eos, &cfg)?;
            for (i, &len) in lens.iter().enumerate() {
                let ctx = dec.prepare(&enc.narrow(0, i, 1)?.narrow(1, 0, len)?, None)?;
                let want = exhaustive_best(&dec, &ctx, voc, eos, &cfg)?;
                assert_eq!(
                    found[i], want,
                    "{rnn:?} {method:?} feeding {feeding}, α {alpha} β {beta}, row {i}"
                );
            }
            results.push(found);
        }
        // The coverage term changes some outcome (α 0.6 with and without β 2).
        changed += usize::from(results.get(1) != results.get(3));
    }
    assert!(changed > 0, "the coverage term never changed a hypothesis");
    Ok(())
}
