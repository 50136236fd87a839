//! What the encoder's and the decoder's settings share: NeMo's defaults and one check, so both
//! name a bad key the same way (`encoder.d_model`, `decoder.num_attn_heads`).

use crate::{Error, Result};

/// NeMo's default number of heads.
pub(crate) fn default_heads() -> usize {
    1
}

/// NeMo's default `max_seq_length`.
pub(crate) fn default_max_seq_length() -> usize {
    512
}

/// Checks the sizes and dropout rates of an encoder or decoder section named `section`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_settings(
    section: &str,
    vocab_size: usize,
    d_model: usize,
    d_inner: usize,
    num_layers: usize,
    num_attn_heads: usize,
    max_seq_length: usize,
    dropouts: &[(&str, f64)],
) -> Result<()> {
    let bad = |key: &str, msg: String| {
        Err(Error::Config {
            key: format!("{section}.{key}"),
            msg,
        })
    };
    if vocab_size == 0 {
        return bad(
            "vocab_size",
            "must be set (a translation model takes it from its tokenizer)".into(),
        );
    }
    for (key, v) in [
        ("d_model", d_model),
        ("d_inner", d_inner),
        ("num_layers", num_layers),
        ("num_attn_heads", num_attn_heads),
        ("max_seq_length", max_seq_length),
    ] {
        if v == 0 {
            return bad(key, "must be positive, got 0".into());
        }
    }
    if !d_model.is_multiple_of(num_attn_heads) {
        return bad(
            "num_attn_heads",
            format!("{num_attn_heads} heads do not divide d_model {d_model}"),
        );
    }
    for &(key, p) in dropouts {
        if !(0.0..1.0).contains(&p) {
            return bad(key, format!("must be in [0, 1), got {p}"));
        }
    }
    Ok(())
}
