//! `TransformerEmbedding` (NeMo 0.x, `transformer_modules.py`): token embedding plus position
//! encoding (plus, optionally, a token-type embedding as BERT's), then LayerNorm, then dropout.
//!
//! ```text
//! h = dropout(LayerNorm(E_tok[ids] + PE[start..start+T] (+ E_type[types])))
//! ```
//!
//! As NeMo 0.x: no `√D` scale on the token embedding, the sinusoidal table divided by `√D`
//! ([`PositionEncoding`]), the LayerNorm right after the sum (eps 1e-5). Unlike NeMo, the
//! token-type table exists only when `num_token_types > 0`: NeMo always makes a 2-row table,
//! which NMT never uses and so never trains. NeMo's `padding_idx = 0` (no gradient to row 0) is
//! not reproduced: padded positions are masked in attention and in the loss, so that row's
//! gradient is zero anyway but for the −10000 mask's leakage (`e^(−10000)` is 0 in `f32`).
//!
//! `start_pos` offsets the positions, for step-by-step decoding.

use candle_core::{DType, Module, Tensor};
use candle_nn::{Embedding, VarBuilder};
use serde::{Deserialize, Serialize};

use super::dropout_t;
use super::init::embedding_init;
use super::position_encoding::PositionEncoding;
use crate::nn::{LayerNorm, LayerNormConfig};
use crate::{Error, ForwardCtx, Result};

fn default_max_len() -> usize {
    512
}

fn default_eps() -> f64 {
    1e-5
}

/// Settings of a [`TransformerEmbedding`] (NeMo's names, with its `TransformerEncoderNM`
/// spellings as aliases).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerEmbeddingConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// `D`, the model width (`d_model`).
    #[serde(alias = "d_model")]
    pub hidden_size: usize,
    /// Longest `start_pos + T` accepted (default 512; `max_seq_length`).
    #[serde(default = "default_max_len", alias = "max_seq_length")]
    pub max_sequence_length: usize,
    /// Rows of the token-type table; 0 (the default) for none.
    #[serde(default)]
    pub num_token_types: usize,
    /// Dropout on the output in training (default 0).
    #[serde(default)]
    pub embedding_dropout: f64,
    /// A learned position table instead of the sinusoidal one (default false).
    #[serde(default)]
    pub learn_positional_encodings: bool,
    /// The LayerNorm's eps (default 1e-5).
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

impl TransformerEmbeddingConfig {
    /// A config with NeMo's defaults for the given vocabulary and width.
    pub fn new(vocab_size: usize, hidden_size: usize) -> Self {
        TransformerEmbeddingConfig {
            vocab_size,
            hidden_size,
            max_sequence_length: default_max_len(),
            num_token_types: 0,
            embedding_dropout: 0.0,
            learn_positional_encodings: false,
            layer_norm_eps: default_eps(),
        }
    }

    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| Error::Config {
            key: format!("embedding.{key}"),
            msg,
        };
        if self.vocab_size == 0 {
            return Err(bad("vocab_size", "must be positive, got 0".into()));
        }
        if self.hidden_size == 0 {
            return Err(bad("hidden_size", "must be positive, got 0".into()));
        }
        if !(0.0..1.0).contains(&self.embedding_dropout) {
            return Err(bad(
                "embedding_dropout",
                format!("must be in [0, 1), got {}", self.embedding_dropout),
            ));
        }
        Ok(())
    }

    /// Builds the embedding with weights from `vb`: `token_embedding.weight`,
    /// `position_embedding.weight` (learned only), `token_type_embedding.weight` (with token
    /// types), `layer_norm.weight`, `layer_norm.bias` — NeMo's names.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid setting; [`Error::Candle`] when `vb` holds a tensor of
    /// another shape under one of the names.
    pub fn init(&self, vb: VarBuilder) -> Result<TransformerEmbedding> {
        self.validate()?;
        let w = vb.pp("token_embedding").get_with_hints(
            (self.vocab_size, self.hidden_size),
            "weight",
            embedding_init(self.hidden_size),
        )?;
        self.init_with_tokens(w, vb)
    }

    /// Builds the embedding around an existing token table `(vocab_size, D)` — tied weights,
    /// as NeMo's NMT shares one table between the encoder's embedding, the decoder's and the
    /// output projection — with its other weights from `vb` as [`init`](Self::init) (no
    /// `token_embedding.weight` is read there).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid setting; [`Error::Shape`] when `token_embedding` is not
    /// `(vocab_size, D)`; [`Error::Candle`] as [`init`](Self::init).
    pub fn init_tied(
        &self,
        token_embedding: &Tensor,
        vb: VarBuilder,
    ) -> Result<TransformerEmbedding> {
        self.validate()?;
        let want = [self.vocab_size, self.hidden_size];
        if token_embedding.dims() != want {
            return Err(shape_err(format!(
                "a tied token_embedding must be (vocab_size, hidden_size) = {want:?}, got {:?}",
                token_embedding.dims()
            )));
        }
        self.init_with_tokens(token_embedding.clone(), vb)
    }

    fn init_with_tokens(&self, tokens: Tensor, vb: VarBuilder) -> Result<TransformerEmbedding> {
        let d = self.hidden_size;
        let table = |rows: usize, name: &str| -> Result<Embedding> {
            let w = vb
                .pp(name)
                .get_with_hints((rows, d), "weight", embedding_init(d))?;
            Ok(Embedding::new(w, d))
        };
        let token_embedding = Embedding::new(tokens, d);
        let position = if self.learn_positional_encodings {
            PositionEncoding::learned(self.max_sequence_length, d, vb.pp("position_embedding"))?
        } else {
            PositionEncoding::fixed(self.max_sequence_length, d, vb.dtype(), vb.device())?
        };
        let token_type = match self.num_token_types {
            0 => None,
            n => Some(table(n, "token_type_embedding")?),
        };
        let layer_norm = LayerNormConfig::from(self.layer_norm_eps).init(d, vb.pp("layer_norm"))?;
        Ok(TransformerEmbedding {
            token_embedding,
            position,
            token_type,
            layer_norm,
            config: self.clone(),
        })
    }
}

/// Token + position (+ token type) embedding with LayerNorm and dropout; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct TransformerEmbedding {
    token_embedding: Embedding,
    position: PositionEncoding,
    token_type: Option<Embedding>,
    layer_norm: LayerNorm,
    config: TransformerEmbeddingConfig,
}

impl TransformerEmbedding {
    /// The settings it was built with.
    pub fn config(&self) -> &TransformerEmbeddingConfig {
        &self.config
    }

    /// The token table `(vocab_size, D)`, e.g. to tie an output projection to it.
    pub fn token_embedding(&self) -> &Tensor {
        self.token_embedding.embeddings()
    }

    /// The position encodings.
    pub fn position_encoding(&self) -> &PositionEncoding {
        &self.position
    }

    /// Embeds `input_ids` at positions `start_pos..start_pos + T`; dropout in training draws
    /// from `ctx`.
    ///
    /// # Shapes
    /// * `input_ids`: `(B, T)` integer ids (`u8`, `u32` or `i64`)
    /// * `token_type_ids`: `(B, T)`, only with `num_token_types > 0`
    /// * returns `(B, T, D)`
    ///
    /// # Errors
    /// [`Error::Shape`] when the ids are not `(B, T)` integers below the table size, token
    /// types are given without a table or with another shape, or `start_pos + T` exceeds
    /// `max_sequence_length`.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: Option<&Tensor>,
        start_pos: usize,
        ctx: &ForwardCtx,
    ) -> Result<Tensor> {
        let (_, t) = check_ids("input_ids", input_ids, self.config.vocab_size)?;
        let tokens = self.token_embedding.forward(input_ids)?; // (B, T, D)
        let positions = self.position.forward(start_pos, t)?; // (T, D)
        let mut h = tokens.broadcast_add(&positions.to_dtype(tokens.dtype())?)?;
        match (&self.token_type, token_type_ids) {
            (Some(table), Some(types)) => {
                if types.dims() != input_ids.dims() {
                    return Err(shape_err(format!(
                        "token_type_ids {:?} differ from input_ids {:?}",
                        types.dims(),
                        input_ids.dims()
                    )));
                }
                check_ids("token_type_ids", types, self.config.num_token_types)?;
                h = (h + table.forward(types)?)?;
            }
            (None, Some(_)) => {
                return Err(shape_err(
                    "token_type_ids given to an embedding without a token-type table \
                     (num_token_types = 0)"
                        .into(),
                ));
            }
            _ => {}
        }
        let h = self.layer_norm.forward(&h)?;
        dropout_t(&h, self.config.embedding_dropout, ctx)
    }
}

fn shape_err(msg: String) -> Error {
    Error::Shape {
        op: "TransformerEmbedding",
        msg,
    }
}

/// Checks that `ids` is `(B, T)` of integers in `0..size`; returns `(B, T)`.
fn check_ids(name: &str, ids: &Tensor, size: usize) -> Result<(usize, usize)> {
    let dims = match *ids.dims() {
        [b, t] => (b, t),
        _ => {
            return Err(shape_err(format!(
                "{name} must be (B, T), got {:?}",
                ids.dims()
            )));
        }
    };
    if !matches!(ids.dtype(), DType::U8 | DType::U32 | DType::I64) {
        return Err(shape_err(format!(
            "{name} must be integer ids (u8, u32 or i64), got {:?}",
            ids.dtype()
        )));
    }
    if ids.elem_count() > 0 {
        let wide = ids.to_dtype(DType::I64)?;
        let (lo, hi) = (
            wide.min_all()?.to_scalar::<i64>()?,
            wide.max_all()?.to_scalar::<i64>()?,
        );
        if lo < 0 || hi >= size as i64 {
            return Err(shape_err(format!(
                "{name} must lie in 0..{size}, found values in {lo}..={hi}"
            )));
        }
    }
    Ok(dims)
}
