//! The NMT twin in nemo-core's parts: NeMo 0.x's Transformer encoder-decoder for translation as
//! `scripts/nmt_twin/model.py` builds it in PyTorch, under the same parameter names, so one
//! safetensors file loads into both. Shared through `#[path]` by the parity test
//! (`tests/nmt_twin_parity.rs`), its fixture writer (`examples/nmt_twin_fixture.rs`) and the
//! training-step bench (`benches/transformer_train_step.rs`).
//!
//! One token table `(V, D)` is tied three ways, as in NeMo's NMT: the encoder's embedding, the
//! decoder's, and the output projection (which adds its own bias). Names:
//!
//! * `encoder_embedding.token_embedding.weight`, `encoder_embedding.layer_norm.*`
//! * `decoder_embedding.layer_norm.*` (its token table is the encoder's)
//! * `encoder.layers.{i}.*`, `decoder.layers.{i}.*` (NeMo's block names)
//! * `log_softmax.mlp.layer0.bias` (NeMo's `TokenClassifier`; the weight is the token table)

#![allow(dead_code)]

use candle_core::{DType, Tensor};
use candle_nn::{Init, VarBuilder};
use nemo_core::nn::{
    TransformerDecoder, TransformerDecoderConfig, TransformerEmbedding, TransformerEmbeddingConfig,
    TransformerEncoder, TransformerEncoderConfig, TransformerStepDecoder, log_softmax,
};
use nemo_core::{ForwardCtx, Result};
use serde::{Deserialize, Serialize};

/// Sizes of the twin (the keys of `scripts/nmt_twin/model.py`'s config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinConfig {
    /// Tokens in the shared vocabulary.
    pub vocab_size: usize,
    /// `D`.
    pub d_model: usize,
    /// Feed-forward width.
    pub d_inner: usize,
    /// Attention heads.
    pub num_attn_heads: usize,
    /// Blocks in the encoder and in the decoder.
    pub num_layers: usize,
    /// Longest sequence the position table covers.
    pub max_seq_length: usize,
    /// Pre-LN blocks (NeMo 0.x: post-LN).
    #[serde(default)]
    pub pre_ln: bool,
    /// Dropout of the embeddings, attention scores, attention outputs and feed-forward
    /// outputs in training (NeMo's NMT: 0.1 each).
    #[serde(default)]
    pub dropout: f64,
}

/// The twin; see the [module docs](self).
pub struct TwinModel {
    pub encoder_embedding: TransformerEmbedding,
    pub encoder: TransformerEncoder,
    pub decoder_embedding: TransformerEmbedding,
    pub decoder: TransformerDecoder,
    /// `(V)`.
    pub output_bias: Tensor,
}

impl TwinModel {
    /// Builds the twin with weights from `vb` (NeMo's initialization where `vb` creates them).
    pub fn new(config: &TwinConfig, vb: VarBuilder) -> Result<Self> {
        let p = config.dropout;
        let embedding = TransformerEmbeddingConfig {
            max_sequence_length: config.max_seq_length,
            embedding_dropout: p,
            ..TransformerEmbeddingConfig::new(config.vocab_size, config.d_model)
        };
        let encoder_embedding = embedding.init(vb.pp("encoder_embedding"))?;
        let decoder_embedding = embedding.init_tied(
            encoder_embedding.token_embedding(),
            vb.pp("decoder_embedding"),
        )?;
        let (d, inner, heads, layers) = (
            config.d_model,
            config.d_inner,
            config.num_attn_heads,
            config.num_layers,
        );
        let encoder = TransformerEncoderConfig {
            attn_score_dropout: p,
            attn_layer_dropout: p,
            ffn_dropout: p,
            pre_ln: config.pre_ln,
            ..TransformerEncoderConfig::new(layers, d, inner, heads)
        }
        .init(vb.pp("encoder"))?;
        let decoder = TransformerDecoderConfig {
            attn_score_dropout: p,
            attn_layer_dropout: p,
            ffn_dropout: p,
            pre_ln: config.pre_ln,
            ..TransformerDecoderConfig::new(layers, d, inner, heads)
        }
        .init(vb.pp("decoder"))?;
        let output_bias = vb.pp("log_softmax.mlp.layer0").get_with_hints(
            config.vocab_size,
            "bias",
            Init::Const(0.0),
        )?;
        Ok(TwinModel {
            encoder_embedding,
            encoder,
            decoder_embedding,
            decoder,
            output_bias,
        })
    }

    /// Encoder states `(B, S, D)` of `src` `(B, S)` with validity `src_mask` `(B, S)`.
    pub fn encode(&self, src: &Tensor, src_mask: &Tensor, ctx: &ForwardCtx) -> Result<Tensor> {
        let x =
            self.encoder_embedding
                .forward(src, None, 0, &ctx.for_module("encoder_embedding"))?;
        self.encoder
            .forward(&x, Some(src_mask), &ctx.for_module("encoder"))
    }

    /// Teacher-forced log-probabilities `(B, T, V)` of the next token after each of `tgt`
    /// `(B, T)`.
    pub fn log_probs(
        &self,
        tgt: &Tensor,
        tgt_mask: &Tensor,
        encoded: &Tensor,
        src_mask: &Tensor,
        ctx: &ForwardCtx,
    ) -> Result<Tensor> {
        let y =
            self.decoder_embedding
                .forward(tgt, None, 0, &ctx.for_module("decoder_embedding"))?;
        let h = self.decoder.forward(
            &y,
            Some(tgt_mask),
            encoded,
            Some(src_mask),
            &ctx.for_module("decoder"),
        )?; // (B, T, D)
        let (b, t, d) = h.dims3()?;
        let table = self.encoder_embedding.token_embedding();
        let logits = h
            .reshape((b * t, d))?
            .matmul(&table.t()?)?
            .broadcast_add(&self.output_bias)?;
        let v = table.dim(0)?;
        log_softmax(&logits.reshape((b, t, v))?.to_dtype(DType::F32)?)
    }

    /// The decoder side as a step function for greedy and beam search.
    pub fn step_decoder(&self) -> Result<TransformerStepDecoder<'_>> {
        TransformerStepDecoder::new(
            &self.decoder_embedding,
            &self.decoder,
            self.encoder_embedding.token_embedding(),
            Some(&self.output_bias),
        )
    }
}

/// `<PAD>`, `<UNK>`, `<BOS>`, `<EOS>`: nemo-nlp's (and NeMo's YouTokenToMe's) special ids.
pub const PAD: u32 = 0;
/// See [`PAD`].
pub const BOS: u32 = 2;
/// See [`PAD`].
pub const EOS: u32 = 3;

/// The parity test's model: seeded NeMo initialization (every weight a function of `seed` and
/// its name), then every bias and LayerNorm parameter drawn from a seeded normal (NeMo starts
/// them at 0 and 1, which would leave their handling untested), and the output bias of EOS
/// raised by 3 and of PAD lowered by 4, so that hypotheses end at varied lengths and PAD is
/// rarely proposed.
pub fn parity_model(config: &TwinConfig, seed: u64) -> Result<(candle_nn::VarMap, TwinModel)> {
    use rand::{Rng, SeedableRng};

    let varmap = candle_nn::VarMap::new();
    let device = candle_core::Device::Cpu;
    let vb = nemo_core::nn::seeded_var_builder(&varmap, seed, DType::F32, &device);
    let model = TwinModel::new(config, vb)?;
    let mut vars: Vec<(String, candle_core::Var)> = varmap
        .data()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
    for (name, var) in vars {
        let (mean, std) = if name.ends_with("layer_norm.weight") {
            (1.0, 0.2)
        } else if name.ends_with("bias") {
            (0.0, 0.3)
        } else {
            continue;
        };
        // Box–Muller, one value per pair of uniforms.
        let mut values: Vec<f32> = (0..var.elem_count())
            .map(|_| {
                let (u1, u2) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (mean + std * z) as f32
            })
            .collect();
        if name == "log_softmax.mlp.layer0.bias" {
            values[EOS as usize] += 3.5;
            values[PAD as usize] -= 4.0;
        }
        var.set(&Tensor::from_vec(values, var.shape(), &device)?)?;
    }
    Ok((varmap, model))
}
