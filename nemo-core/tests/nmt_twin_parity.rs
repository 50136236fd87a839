//! nemo-core's beam and greedy search over its Transformer decoder, token for token against
//! NeMo 0.x's `BeamSearchSequenceGenerator` and `GreedySequenceGenerator` ported to PyTorch
//! (`scripts/nmt_twin/model.py`) on the same weights.
//!
//! The fixture `fixtures/nmt_twin_parity.json` holds a tiny encoder-decoder's config and seed,
//! two batches of source ids and, per batch, the tokens PyTorch 1.13 decoded with beam 4 at
//! length penalties 0 and 1 and greedily; its weights are rebuilt here from the seed
//! (`support/nmt_twin.rs`). Regenerate it with the two commands in the docstring of
//! `scripts/nmt_twin/parity.py`.

#[path = "support/nmt_twin.rs"]
mod nmt_twin;

use candle_core::{DType, Device, Tensor};
use nemo_core::decoding::{
    BeamSearchConfig, FinishedHypotheses, LengthPenalty, beam_search, greedy_search,
};
use nemo_core::{ForwardCtx, Result};
use serde::Deserialize;

use nmt_twin::{TwinConfig, parity_model};

#[derive(Debug, Deserialize)]
struct Fixture {
    config: TwinConfig,
    seed: u64,
    pad: u32,
    bos: u32,
    eos: u32,
    max_delta_length: usize,
    batches: Vec<Vec<Vec<u32>>>,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    batch: usize,
    search: String,
    beam_size: Option<usize>,
    len_pen: Option<f64>,
    limit: usize,
    ended_early: Option<Vec<bool>>,
    expected: Vec<Vec<u32>>,
}

fn fixture() -> Result<Fixture> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/nmt_twin_parity.json"
    );
    let text = std::fs::read_to_string(path).map_err(|source| nemo_core::Error::Io {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| nemo_core::Error::Config {
        key: path.into(),
        msg: e.to_string(),
    })
}

/// Rows of ids padded with `pad` into `(B, S)` ids and their `(B, S)` validity.
fn pad_batch(rows: &[Vec<u32>], pad: u32) -> Result<(Tensor, Tensor)> {
    let s = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * s);
    for r in rows {
        ids.extend(r);
        ids.extend(std::iter::repeat_n(pad, s - r.len()));
    }
    let ids = Tensor::from_vec(ids, (rows.len(), s), &Device::Cpu)?;
    let mask = ids.ne(pad)?.to_dtype(DType::U8)?;
    Ok((ids, mask))
}

#[test]
fn beam_and_greedy_search_match_nemo_in_pytorch() -> Result<()> {
    let f = fixture()?;
    let (_weights, model) = parity_model(&f.config, f.seed)?;
    let step = model.step_decoder()?;
    let ctx = ForwardCtx::eval();
    // The fixture still covers what it is for.
    let beams = |pen: f64| -> Vec<&Vec<Vec<u32>>> {
        f.cases
            .iter()
            .filter(|c| c.search == "beam" && c.len_pen == Some(pen))
            .map(|c| &c.expected)
            .collect()
    };
    assert_ne!(
        beams(0.0),
        beams(1.0),
        "the length penalty should change an answer"
    );
    assert!(
        f.cases
            .iter()
            .flat_map(|c| c.ended_early.iter().flatten())
            .any(|&e| e),
        "some best hypothesis should end before its search does"
    );
    for case in &f.cases {
        let rows = &f.batches[case.batch];
        let (src, mask) = pad_batch(rows, f.pad)?;
        let encoded = model.encode(&src, &mask, &ctx)?;
        let cache = model.decoder.start(&encoded, Some(&mask))?;
        let config = BeamSearchConfig {
            beam_size: case.beam_size.unwrap_or(1),
            length_penalty: case.len_pen.unwrap_or(0.0),
            length_penalty_kind: LengthPenalty::Power,
            max_len: f.config.max_seq_length,
            max_len_a: 1.0,
            max_len_b: f.max_delta_length,
            finished_hypotheses: FinishedHypotheses::Nemo,
            pad_id: Some(f.pad),
            ..Default::default()
        };
        // NeMo's limit: min(max_sequence_length, padded source length + max_delta_length)
        // generated tokens for beam search, one fewer for greedy search.
        let beam_limit = config.limit(src.dim(1)?);
        let got = match case.search.as_str() {
            "beam" => {
                assert_eq!(case.limit, beam_limit, "{case:?}");
                beam_search(
                    &step,
                    cache,
                    f.bos,
                    f.eos,
                    &vec![beam_limit; rows.len()],
                    &config,
                )?
            }
            _ => {
                assert_eq!(case.limit, beam_limit - 1, "{case:?}");
                greedy_search(&step, cache, f.bos, f.eos, &vec![case.limit; rows.len()])?
            }
        };
        assert_eq!(got, case.expected, "{case:?}");
    }
    Ok(())
}
