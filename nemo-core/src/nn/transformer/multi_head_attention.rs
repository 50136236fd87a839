//! Multi-head scaled dot-product attention as NeMo 0.x's `MultiHeadAttention`
//! (`transformer_modules.py`, v0.11.1), without its residual and LayerNorm (the blocks add
//! those, before or after: see [`TransformerBlockConfig::pre_ln`](super::TransformerBlockConfig)).
//!
//! ```text
//! Q = (X_q W_q + b_q) / d_head^¼      K = (X_k W_k + b_k) / d_head^¼      V = X_v W_v + b_v
//! A = softmax(Q Kᵀ + mask)            (per head; then dropout `attn_score_dropout`)
//! out = dropout(concat_heads(A V) W_o + b_o)                            (`attn_layer_dropout`)
//! ```
//!
//! Q and K are each divided by `d_head^¼` before their product, as NeMo does "for numerical
//! stability" in half precision; the product equals the usual `/√d_head`. The softmax is the
//! fused [`softmax()`](crate::nn::softmax()) with the additive mask folded in.
//!
//! For decoding, projected keys and values are a [`KeyValues`]: the source's are computed once
//! per sequence ([`MultiHeadAttention::key_values`]), a decoder's own grow by one step at a time
//! ([`KeyValues::append`]) and [`MultiHeadAttention::attend`] takes either.
//!
//! Names (NeMo's): `query_net`, `key_net`, `value_net`, `out_projection`, each with `weight`
//! `(D, D)` (Xavier-uniform) and `bias` `(D)` (0).

use candle_core::{Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::dropout_t;
use super::init::xavier_linear;
use crate::nn::softmax;
use crate::{Error, ForwardCtx, Result};

fn one() -> usize {
    1
}

/// Settings of a [`MultiHeadAttention`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiHeadAttentionConfig {
    /// `D`, the model width; a multiple of `num_attention_heads`.
    pub hidden_size: usize,
    /// Heads `H` (default 1, NeMo's block default); `d_head = D / H`.
    #[serde(default = "one")]
    pub num_attention_heads: usize,
    /// Dropout on the attention probabilities in training (default 0).
    #[serde(default)]
    pub attn_score_dropout: f64,
    /// Dropout on the output projection in training (default 0).
    #[serde(default)]
    pub attn_layer_dropout: f64,
}

impl MultiHeadAttentionConfig {
    /// `H` heads over width `D`, no dropout.
    pub fn new(hidden_size: usize, num_attention_heads: usize) -> Self {
        MultiHeadAttentionConfig {
            hidden_size,
            num_attention_heads,
            attn_score_dropout: 0.0,
            attn_layer_dropout: 0.0,
        }
    }

    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| Error::Config {
            key: format!("attention.{key}"),
            msg,
        };
        let (d, h) = (self.hidden_size, self.num_attention_heads);
        if h == 0 || d == 0 || d % h != 0 {
            return Err(bad(
                "num_attention_heads",
                format!("hidden_size {d} must be a positive multiple of the {h} heads"),
            ));
        }
        for (key, p) in [
            ("attn_score_dropout", self.attn_score_dropout),
            ("attn_layer_dropout", self.attn_layer_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(bad(key, format!("must be in [0, 1), got {p}")));
            }
        }
        Ok(())
    }

    /// Builds the layer with weights from `vb` (`query_net`, `key_net`, `value_net`,
    /// `out_projection`).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid setting; [`Error::Candle`] when `vb` holds a tensor of
    /// another shape under one of the names.
    pub fn init(&self, vb: VarBuilder) -> Result<MultiHeadAttention> {
        self.validate()?;
        let d = self.hidden_size;
        let head_size = d / self.num_attention_heads;
        Ok(MultiHeadAttention {
            query_net: xavier_linear(d, d, vb.pp("query_net"))?,
            key_net: xavier_linear(d, d, vb.pp("key_net"))?,
            value_net: xavier_linear(d, d, vb.pp("value_net"))?,
            out_projection: xavier_linear(d, d, vb.pp("out_projection"))?,
            head_size,
            scale: (head_size as f64).powf(-0.25),
            config: self.clone(),
        })
    }
}

/// Projected keys and values of one attention layer, split into heads; the key scale
/// `d_head^−¼` is already applied.
#[derive(Debug, Clone)]
pub struct KeyValues {
    /// `(B, H, T_k, d_head)`.
    keys: Tensor,
    /// `(B, H, T_k, d_head)`.
    values: Tensor,
}

impl KeyValues {
    /// Scaled keys `(B, H, T_k, d_head)`.
    pub fn keys(&self) -> &Tensor {
        &self.keys
    }

    /// Values `(B, H, T_k, d_head)`.
    pub fn values(&self) -> &Tensor {
        &self.values
    }

    /// `T_k`, the number of keys.
    pub fn len(&self) -> usize {
        self.keys.dim(2).unwrap_or(0)
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// These keys and values followed by `new`'s along the key axis: a decoder's cache after
    /// one more step.
    ///
    /// # Errors
    /// [`Error::Candle`] when batch, heads or head size differ.
    pub fn append(&self, new: &KeyValues) -> Result<KeyValues> {
        Ok(KeyValues {
            keys: Tensor::cat(&[&self.keys, &new.keys], 2)?,
            values: Tensor::cat(&[&self.values, &new.values], 2)?,
        })
    }

    /// Keeps batch rows `rows` (a `(K)` `u32`/`i64` index tensor): beam expansion and reordering.
    ///
    /// # Errors
    /// [`Error::Candle`] for an index out of range.
    pub fn index_select(&self, rows: &Tensor) -> Result<KeyValues> {
        Ok(KeyValues {
            keys: self.keys.index_select(rows, 0)?,
            values: self.values.index_select(rows, 0)?,
        })
    }
}

/// Multi-head attention; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    query_net: Linear,
    key_net: Linear,
    value_net: Linear,
    out_projection: Linear,
    head_size: usize,
    /// `d_head^−¼`.
    scale: f64,
    config: MultiHeadAttentionConfig,
}

impl MultiHeadAttention {
    /// The settings it was built with.
    pub fn config(&self) -> &MultiHeadAttentionConfig {
        &self.config
    }

    /// Projects `keys` and `values` and splits them into heads.
    ///
    /// # Shapes
    /// * `keys`, `values`: `(B, T_k, D)`
    /// * returns [`KeyValues`] of `(B, H, T_k, d_head)`
    ///
    /// # Errors
    /// [`Error::Shape`] when the inputs are not `(B, T_k, D)` alike.
    pub fn key_values(&self, keys: &Tensor, values: &Tensor) -> Result<KeyValues> {
        self.check_input("keys", keys)?;
        self.check_input("values", values)?;
        if keys.dims() != values.dims() {
            return Err(shape_err(format!(
                "keys {:?} and values {:?} differ",
                keys.dims(),
                values.dims()
            )));
        }
        let k = self.split_heads(&self.key_net.forward(keys)?.affine(self.scale, 0.0)?)?;
        let v = self.split_heads(&self.value_net.forward(values)?)?;
        Ok(KeyValues { keys: k, values: v })
    }

    /// Attends from `queries` over projected keys and values `kv` under an additive `mask`;
    /// dropout in training draws from `ctx`.
    ///
    /// # Shapes
    /// * `queries`: `(B, T_q, D)`; `kv`: `(B, H, T_k, d_head)`
    /// * `mask`: additive, broadcastable to `(B, H, T_q, T_k)` (see [`super::mask`])
    /// * returns `(B, T_q, D)`
    ///
    /// # Errors
    /// [`Error::Shape`] when `queries` is not `(B, T_q, D)` with `kv`'s batch, or the mask does
    /// not broadcast.
    pub fn attend(
        &self,
        queries: &Tensor,
        kv: &KeyValues,
        mask: Option<&Tensor>,
        ctx: &ForwardCtx,
    ) -> Result<Tensor> {
        let (b, t_q, d) = self.check_input("queries", queries)?;
        if kv.keys.dim(0)? != b {
            return Err(shape_err(format!(
                "queries {:?} and keys {:?} differ in batch size",
                queries.dims(),
                kv.keys.dims()
            )));
        }
        let q = self.split_heads(&self.query_net.forward(queries)?.affine(self.scale, 0.0)?)?;
        let scores = q.matmul(&kv.keys.t()?)?; // (B, H, T_q, T_k)
        let probs = softmax(&scores, mask)?;
        let probs = dropout_t(&probs, self.config.attn_score_dropout, ctx)?;
        let mixed = probs.matmul(&kv.values)?; // (B, H, T_q, d_head)
        let merged = mixed.transpose(1, 2)?.contiguous()?.reshape((b, t_q, d))?;
        let out = self.out_projection.forward(&merged)?;
        dropout_t(&out, self.config.attn_layer_dropout, ctx)
    }

    /// [`key_values`](Self::key_values) of `keys` and `values`, then [`attend`](Self::attend).
    ///
    /// # Shapes
    /// * `queries`: `(B, T_q, D)`; `keys`, `values`: `(B, T_k, D)`
    /// * returns `(B, T_q, D)`
    ///
    /// # Errors
    /// As the two steps.
    pub fn forward(
        &self,
        queries: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        mask: Option<&Tensor>,
        ctx: &ForwardCtx,
    ) -> Result<Tensor> {
        let kv = self.key_values(keys, values)?;
        self.attend(queries, &kv, mask, ctx)
    }

    /// `(B, T, D)` → `(B, H, T, d_head)`, contiguous.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let h = self.config.num_attention_heads;
        Ok(x.reshape((b, t, h, self.head_size))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    fn check_input(&self, name: &str, x: &Tensor) -> Result<(usize, usize, usize)> {
        match *x.dims() {
            [b, t, d] if d == self.config.hidden_size => Ok((b, t, d)),
            _ => Err(shape_err(format!(
                "{name} must be (B, T, D = {}), got {:?}",
                self.config.hidden_size,
                x.dims()
            ))),
        }
    }
}

fn shape_err(msg: String) -> Error {
    Error::Shape {
        op: "MultiHeadAttention",
        msg,
    }
}
