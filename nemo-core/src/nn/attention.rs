//! Attention over encoder outputs for [`DecoderRnn`](super::DecoderRnn), as NeMo's `Attention`
//! (`nemo/backends/pytorch/common/rnn.py`, NeMo 0.x): applied *after* the recurrent layer
//! (`attention_type: post`, Luong et al. 2015), masked by the encoder lengths.
//!
//! For queries `q` `(B, T_q, H)` (the decoder's RNN outputs) and a context `c` `(B, T_k, H)` (the
//! connector's encoder outputs) with valid lengths `len` `(B)`:
//!
//! ```text
//! score[b, i, j] = q_i · c_j               (dot)
//!                = (W_in q_i) · c_j        (general, Luong; NeMo's default)
//!                = v · tanh(W_q q_i + W_k c_j + b_k)    (bahdanau: additive scoring)
//! a[b, i, :]     = softmax_j(score[b, i, j]),  exactly 0 where j ≥ len[b]
//! mix[b, i]      = Σ_j a[b, i, j] c_j
//! out[b, i]      = tanh(W_out [mix; q'])   (q' = W_in q for general, q otherwise)
//! ```
//!
//! Outputs: `out` `(B, T_q, H)` and the weights `a` `(B, T_q, T_k)`. The softmax is written with
//! differentiable ops (candle's fused softmax records no backward). Bahdanau's scoring keeps the
//! post-RNN arrangement of NeMo's module (no input feeding), so teacher-forced training stays one
//! batched product over all steps.

use candle_core::Tensor;
use candle_nn::{Linear, Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How queries are scored against the context (NeMo's `attention_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionMethod {
    /// `q · c`.
    Dot,
    /// `(W_in q) · c`: Luong's "general", NeMo's default.
    #[default]
    General,
    /// `v · tanh(W_q q + W_k c + b)`: Bahdanau's additive scoring.
    Bahdanau,
}

/// The attention layer's weights.
#[derive(Debug, Clone)]
pub struct Attention {
    method: AttentionMethod,
    hidden_size: usize,
    linear_in: Option<Linear>,
    query_proj: Option<Linear>,
    key_proj: Option<Linear>,
    v: Option<Linear>,
    linear_out: Linear,
}

/// A context prepared once for many queries: the encoder outputs, their projection (Bahdanau)
/// and the validity mask.
#[derive(Debug, Clone)]
pub struct AttentionContext {
    /// `(B, T_k, H)` encoder outputs.
    pub context: Tensor,
    /// `(B, T_k, H)` projected keys (Bahdanau only).
    keys: Option<Tensor>,
    /// `(B, 1, T_k)` u8 mask, 1 on valid frames; `None` when every frame is valid.
    mask: Option<Tensor>,
}

impl AttentionContext {
    /// Keeps rows `rows` (a `(K)` u32 index tensor): beam expansion.
    pub fn index_select(&self, rows: &Tensor) -> Result<AttentionContext> {
        Ok(AttentionContext {
            context: self.context.index_select(rows, 0)?,
            keys: self
                .keys
                .as_ref()
                .map(|k| k.index_select(rows, 0))
                .transpose()?,
            mask: self
                .mask
                .as_ref()
                .map(|m| m.index_select(rows, 0))
                .transpose()?,
        })
    }
}

/// A `(B, 1, T)` u8 mask, 1 where `t < lengths[b]`. Errors if a length is 0 or above `t`.
pub fn length_mask(lengths: &[usize], t: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mut m = vec![0u8; lengths.len() * t];
    for (b, &len) in lengths.iter().enumerate() {
        if len == 0 || len > t {
            return Err(Error::Shape {
                op: "Attention",
                msg: format!("encoder length {len} of row {b} is not in 1..={t}"),
            });
        }
        if let Some(row) = m.get_mut(b * t..b * t + len) {
            row.fill(1);
        }
    }
    Ok(Tensor::from_vec(m, (lengths.len(), 1, t), device)?)
}

/// A softmax over the last axis of `scores` `(B, T_q, T_k)`, written with differentiable ops,
/// with weights exactly 0 where `mask` `(B, 1, T_k)` is 0.
pub fn masked_softmax(scores: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let scores = match mask {
        Some(m) => {
            let neg = Tensor::full(f32::NEG_INFINITY, (), scores.device())?
                .to_dtype(scores.dtype())?
                .broadcast_as(scores.shape())?;
            m.broadcast_as(scores.shape())?.where_cond(scores, &neg)?
        }
        None => scores.clone(),
    };
    let max = scores.max_keepdim(candle_core::D::Minus1)?.detach();
    let e = scores.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(candle_core::D::Minus1)?;
    Ok(e.broadcast_div(&sum)?)
}

impl Attention {
    /// Builds the layer for `hidden_size` units; weights `U(±1/sqrt(fan_in))` as PyTorch's
    /// `nn.Linear`. Names: `linear_in.weight` (general), `query_proj.weight`, `key_proj.weight`,
    /// `key_proj.bias`, `v.weight` (bahdanau), `linear_out.weight`.
    pub fn new(method: AttentionMethod, hidden_size: usize, vb: VarBuilder) -> Result<Self> {
        let h = hidden_size;
        let uni = |fan_in: usize| {
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            candle_nn::Init::Uniform {
                lo: -bound,
                up: bound,
            }
        };
        let (mut linear_in, mut query_proj, mut key_proj, mut v) = (None, None, None, None);
        match method {
            AttentionMethod::Dot => {}
            AttentionMethod::General => {
                let w = vb
                    .pp("linear_in")
                    .get_with_hints((h, h), "weight", uni(h))?;
                linear_in = Some(Linear::new(w, None));
            }
            AttentionMethod::Bahdanau => {
                let wq = vb
                    .pp("query_proj")
                    .get_with_hints((h, h), "weight", uni(h))?;
                query_proj = Some(Linear::new(wq, None));
                let wk = vb.pp("key_proj").get_with_hints((h, h), "weight", uni(h))?;
                let bk = vb.pp("key_proj").get_with_hints(h, "bias", uni(h))?;
                key_proj = Some(Linear::new(wk, Some(bk)));
                let wv = vb.pp("v").get_with_hints((1, h), "weight", uni(h))?;
                v = Some(Linear::new(wv, None));
            }
        }
        let linear_out = Linear::new(
            vb.pp("linear_out")
                .get_with_hints((h, 2 * h), "weight", uni(2 * h))?,
            None,
        );
        Ok(Attention {
            method,
            hidden_size,
            linear_in,
            query_proj,
            key_proj,
            v,
            linear_out,
        })
    }

    /// The scoring method.
    pub fn method(&self) -> AttentionMethod {
        self.method
    }

    /// Prepares `context` `(B, T_k, H)` with valid `lengths` (all frames when `None`).
    pub fn prepare(&self, context: &Tensor, lengths: Option<&[usize]>) -> Result<AttentionContext> {
        let (b, t, h) = context.dims3()?;
        if h != self.hidden_size {
            return Err(Error::Shape {
                op: "Attention",
                msg: format!(
                    "context {:?} does not end in hidden size {}",
                    context.dims(),
                    self.hidden_size
                ),
            });
        }
        let mask = match lengths {
            Some(l) if l.len() != b => {
                return Err(Error::Shape {
                    op: "Attention",
                    msg: format!("{} lengths for a batch of {b}", l.len()),
                });
            }
            Some(l) if l.iter().all(|&x| x == t) => None,
            Some(l) => Some(length_mask(l, t, context.device())?),
            None => None,
        };
        let keys = match &self.key_proj {
            Some(proj) => Some(proj.forward(context)?),
            None => None,
        };
        Ok(AttentionContext {
            context: context.clone(),
            keys,
            mask,
        })
    }

    /// Attends from `query` `(B, T_q, H)` over `ctx`; returns the output `(B, T_q, H)` and the
    /// weights `(B, T_q, T_k)`.
    pub fn forward(&self, query: &Tensor, ctx: &AttentionContext) -> Result<(Tensor, Tensor)> {
        let (q, scores) = match self.method {
            AttentionMethod::Dot | AttentionMethod::General => {
                let q = match &self.linear_in {
                    Some(proj) => proj.forward(query)?,
                    None => query.clone(),
                };
                let scores = q.matmul(&ctx.context.transpose(1, 2)?.contiguous()?)?;
                (q, scores)
            }
            AttentionMethod::Bahdanau => {
                let (Some(wq), Some(keys), Some(v)) = (&self.query_proj, &ctx.keys, &self.v) else {
                    return Err(Error::Shape {
                        op: "Attention",
                        msg: "the bahdanau context was not prepared by this layer".into(),
                    });
                };
                let qp = wq.forward(query)?.unsqueeze(2)?; // (B, T_q, 1, H)
                let e = qp.broadcast_add(&keys.unsqueeze(1)?)?.tanh()?; // (B, T_q, T_k, H)
                let scores = v.forward(&e)?.squeeze(3)?; // (B, T_q, T_k)
                (query.clone(), scores)
            }
        };
        let weights = masked_softmax(&scores, ctx.mask.as_ref())?;
        let mix = weights.matmul(&ctx.context)?; // (B, T_q, H)
        let combined = Tensor::cat(&[&mix, &q], 2)?;
        let out = self.linear_out.forward(&combined)?.tanh()?;
        Ok((out, weights))
    }
}
