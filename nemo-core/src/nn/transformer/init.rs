//! NeMo 0.x's initialization of Transformer weights (`transformer_weights_init` in
//! `nemo/collections/nlp/nm/trainables/common/transformer/transformer_utils.py`, v0.11.1):
//! Linear weights Xavier-uniform, Linear biases 0, embeddings `N(0, 1/√d_model)`, LayerNorm
//! weight 1 and bias 0. Initial values come from the [`VarBuilder`] they are asked of; build it
//! with [`seeded_var_builder`](crate::nn::seeded_var_builder) for weights that are a function
//! of a seed.

use candle_nn::{Init, Linear, VarBuilder};

use crate::Result;

/// Xavier (Glorot) uniform: `U(±√(6 / (fan_in + fan_out)))`, PyTorch's `xavier_uniform_` with
/// gain 1.
pub fn xavier_uniform(fan_in: usize, fan_out: usize) -> Init {
    let bound = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// NeMo's embedding initialization: `N(0, 1/√d_model)`.
pub fn embedding_init(d_model: usize) -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: 1.0 / (d_model.max(1) as f64).sqrt(),
    }
}

/// A `candle_nn::Linear` from `in_dim` to `out_dim` with `weight` `(out_dim, in_dim)`
/// Xavier-uniform and `bias` `(out_dim)` zero, read from `vb` under those names.
///
/// # Errors
/// [`Error::Candle`](crate::Error::Candle) when `vb` holds a tensor of another shape under one
/// of the names.
pub fn xavier_linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", xavier_uniform(in_dim, out_dim))?;
    let bias = vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?;
    Ok(Linear::new(weight, Some(bias)))
}
