//! Writes the inputs of the NMT twin's parity check to a directory: `weights.safetensors` (a
//! tiny seeded model under nemo-rs's parameter names, see `tests/support/nmt_twin.rs`) and
//! `inputs.json` (its config, seed, special ids and a few source sentences as token ids).
//! `scripts/nmt_twin/parity.py` decodes them with PyTorch (NeMo 0.x's beam and greedy search)
//! and writes `nemo-core/tests/fixtures/nmt_twin_parity.json`, which `tests/nmt_twin_parity.rs`
//! checks nemo-core's search against. The weights are not committed: the test rebuilds them
//! from the seed.
//!
//! Run: `cargo run -p nemo-core --example nmt_twin_fixture -- /tmp/nmt_twin`

#[path = "../tests/support/nmt_twin.rs"]
mod nmt_twin;

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use serde_json::json;

use nmt_twin::{BOS, EOS, PAD, TwinConfig, parity_model};

/// The parity model's seed and sizes.
const SEED: u64 = 20_191_002;

fn config() -> TwinConfig {
    TwinConfig {
        vocab_size: 64,
        d_model: 32,
        d_inner: 64,
        num_attn_heads: 4,
        num_layers: 2,
        max_seq_length: 64,
        pre_ln: false,
        dropout: 0.0,
    }
}

/// Two batches of source sentences, `<BOS> tokens <EOS>`, of 2 to 9 tokens from `4..V`.
fn sources(config: &TwinConfig) -> Vec<Vec<Vec<u32>>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    [4usize, 3]
        .iter()
        .map(|&n| {
            (0..n)
                .map(|_| {
                    let len = rng.random_range(2..10);
                    let mut s = vec![BOS];
                    s.extend((0..len).map(|_| rng.random_range(4..config.vocab_size as u32)));
                    s.push(EOS);
                    s
                })
                .collect()
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: nmt_twin_fixture <output directory>")?,
    );
    std::fs::create_dir_all(&dir)?;
    let config = config();
    let (varmap, _model) = parity_model(&config, SEED)?;
    varmap.save(dir.join("weights.safetensors"))?;
    let inputs = json!({
        "config": config,
        "seed": SEED,
        "pad": PAD,
        "bos": BOS,
        "eos": EOS,
        "batches": sources(&config),
    });
    std::fs::write(
        dir.join("inputs.json"),
        serde_json::to_string_pretty(&inputs)?,
    )?;
    println!(
        "wrote {}/weights.safetensors and inputs.json",
        dir.display()
    );
    Ok(())
}
