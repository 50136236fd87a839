//! `DecoderRnn` (NeMo 0.x's `nemo.backends.pytorch.common.DecoderRNN`): an attention decoder
//! over encoder outputs — token embedding, GRU or LSTM layers, attention after the RNN (masked by
//! the encoder lengths), a linear layer to the vocabulary and a log-softmax.
//!
//! Ports: `targets (B, T) Labels`, `encoder_outputs (B, T, D = hidden_size) Channel`,
//! `encoder_lengths (B) Lengths` (optional; all frames valid without it) →
//! `log_probs (B, T, D = voc_size) Logprobs` (one row per target step),
//! `attention_weights (B, T, T) Channel` (decoder steps × encoder frames).
//!
//! Step `t` is fed `targets[t − 1]` (`bos_id` at `t = 0`) and predicts `targets[t]`, so targets
//! end in an EOS token and the loss is [`SequenceLoss`](super::SequenceLoss) on them. In
//! training, each step after the first is fed the ground truth with probability
//! `teacher_forcing` and the model's own previous argmax otherwise (NeMo's scheduled sampling);
//! with `teacher_forcing: 1` (the default) every step is fed the truth and the whole sequence is
//! one batched pass. In eval mode the decoder is always teacher-forced (for a validation loss);
//! transcription uses [`greedy_search`](crate::decoding::greedy_search) or
//! [`beam_search`](fn@crate::decoding::beam_search), which call [`DecoderRnn::step`].
//!
//! `input_feeding: true` (Luong et al. 2015, §3.3; not in NeMo 0.x) also feeds each step the
//! previous step's attentional output (zeros at the first step) next to the token embedding, so
//! the RNN knows where it attended before. Without it the recurrent state never sees the
//! context, and the decoder cannot keep track of how much of the audio it has transcribed: it
//! repeats or skips words. The steps then run one after another in training too.
//!
//! Dropout (`in_dropout` on the embeddings, `gru_dropout` between layers) is active in training
//! only and draws from the module's seeded RNG.

use crate::{Forward, ForwardCtx, neural_module};
use candle_core::{D, DType, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::attention::{Attention, AttentionContext, AttentionMethod};
use super::dropout::dropout;
use super::lengths::lengths_to_vec;
use super::log_softmax::log_softmax;
use super::rnn::{Rnn, RnnState, RnnType};
use crate::decoding::{StepDecoder, StepOutput};
use crate::{Error, Result};

fn default_dropout() -> f64 {
    0.2
}
fn one_f64() -> f64 {
    1.0
}
fn one_usize() -> usize {
    1
}
fn post() -> String {
    "post".into()
}

/// The decoder's configuration, NeMo's `decoder:` section (same keys and defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderRnnConfig {
    /// Output vocabulary: labels plus BOS, EOS and PAD.
    pub voc_size: usize,
    /// The id fed at the first step.
    pub bos_id: u32,
    /// Embedding, RNN and attention width.
    pub hidden_size: usize,
    /// Attention scoring: `general` (default), `dot` or `bahdanau`.
    #[serde(default)]
    pub attention_method: AttentionMethod,
    /// Where attention sits; only NeMo's `post` (after the RNN) is implemented.
    #[serde(default = "post")]
    pub attention_type: String,
    /// Dropout on the input embeddings in training (default 0.2).
    #[serde(default = "default_dropout")]
    pub in_dropout: f64,
    /// Dropout between stacked RNN layers in training (default 0.2; unused with one layer).
    #[serde(default = "default_dropout")]
    pub gru_dropout: f64,
    /// Probability of feeding the ground truth at each training step (default 1).
    #[serde(default = "one_f64")]
    pub teacher_forcing: f64,
    /// `gru` (default) or `lstm`.
    #[serde(default)]
    pub rnn_type: RnnType,
    /// Stacked RNN layers (default 1).
    #[serde(default = "one_usize")]
    pub n_layers: usize,
    /// Share the embedding matrix with the output layer (default false).
    #[serde(default)]
    pub tie_emb_out_weights: bool,
    /// Feed the previous attentional output into the RNN with the token (Luong's input
    /// feeding; default false, as NeMo).
    #[serde(default)]
    pub input_feeding: bool,
}

impl DecoderRnnConfig {
    /// A config with NeMo's defaults for the given sizes.
    pub fn new(voc_size: usize, bos_id: u32, hidden_size: usize) -> Self {
        DecoderRnnConfig {
            voc_size,
            bos_id,
            hidden_size,
            attention_method: AttentionMethod::General,
            attention_type: post(),
            in_dropout: default_dropout(),
            gru_dropout: default_dropout(),
            teacher_forcing: 1.0,
            rnn_type: RnnType::Gru,
            n_layers: 1,
            tie_emb_out_weights: false,
            input_feeding: false,
        }
    }

    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| {
            Err(Error::Config {
                key: format!("decoder.{key}"),
                msg,
            })
        };
        if self.voc_size == 0 || self.hidden_size == 0 || self.n_layers == 0 {
            return bad(
                "voc_size",
                format!(
                    "voc_size {}, hidden_size {} and n_layers {} must be positive",
                    self.voc_size, self.hidden_size, self.n_layers
                ),
            );
        }
        if self.bos_id as usize >= self.voc_size {
            return bad(
                "bos_id",
                format!("{} is not below voc_size {}", self.bos_id, self.voc_size),
            );
        }
        if self.attention_type != "post" {
            return bad(
                "attention_type",
                format!("`{}` is not supported; use `post`", self.attention_type),
            );
        }
        for (key, p) in [
            ("in_dropout", self.in_dropout),
            ("gru_dropout", self.gru_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(key, format!("{p} is not in [0, 1)"));
            }
        }
        if !(0.0..=1.0).contains(&self.teacher_forcing) {
            return bad(
                "teacher_forcing",
                format!("{} is not in [0, 1]", self.teacher_forcing),
            );
        }
        Ok(())
    }
}

/// The attention decoder.
#[neural_module(
    inputs(
        targets: (B, T as steps) Labels,
        encoder_outputs: (B, T as frames, D = hidden_size) Channel,
        encoder_lengths: (B) Lengths?,
    ),
    outputs(
        log_probs: (B, T as steps, D = voc_size) Logprobs,
        attention_weights: (B, T as steps, T as frames) Channel?,
    ),
)]
#[derive(Debug)]
#[doc(alias = "DecoderRNN")]
pub struct DecoderRnn {
    voc_size: usize,
    hidden_size: usize,
    config: DecoderRnnConfig,
    embedding: Tensor,
    rnn: Rnn,
    attention: Attention,
    /// The projection to the vocabulary, `out.weight` (the embedding when tied) and `out.bias`.
    out: Linear,
}

/// What a decoder carries from one step to the next.
#[derive(Debug, Clone)]
pub struct DecoderState {
    /// The RNN's state.
    pub rnn: RnnState,
    /// `(B, H)` the previous attentional output (input feeding only).
    pub feed: Option<Tensor>,
}

impl DecoderState {
    /// Keeps rows `rows` (a `(K)` u32 index tensor): beam reordering.
    pub fn index_select(&self, rows: &Tensor) -> Result<DecoderState> {
        Ok(DecoderState {
            rnn: self.rnn.index_select(rows)?,
            feed: self
                .feed
                .as_ref()
                .map(|f| f.index_select(rows, 0))
                .transpose()?,
        })
    }
}

/// One decoder step's outputs.
#[derive(Debug, Clone)]
pub struct DecoderStep {
    /// `(B, voc_size)` log-probabilities of the next token.
    pub log_probs: Tensor,
    /// `(B, T_k)` attention weights.
    pub attention_weights: Tensor,
    /// The state after the step.
    pub state: DecoderState,
}

impl DecoderRnnConfig {
    /// Builds the decoder with its weights from `vb` (`embedding.weight`, `rnn.*`, `attention.*`, `out.*`).
    pub fn init(&self, vb: VarBuilder) -> Result<DecoderRnn> {
        DecoderRnn::new(self.clone(), vb)
    }
}

impl DecoderRnn {
    /// Builds the decoder with weights under `vb` (`embedding.weight`, `rnn.*`, `attention.*`,
    /// `out.weight`, `out.bias`); in a training call, dropout and scheduled sampling draw from
    /// the call's context.
    fn new(config: DecoderRnnConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let (v, h) = (config.voc_size, config.hidden_size);
        let embedding = vb.pp("embedding").get_with_hints(
            (v, h),
            "weight",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        let rnn_in = if config.input_feeding { 2 * h } else { h };
        let rnn = Rnn::new(config.rnn_type, rnn_in, h, config.n_layers, vb.pp("rnn"))?;
        let attention = Attention::new(config.attention_method, h, vb.pp("attention"))?;
        let bound = 1.0 / (h as f64).sqrt();
        let init = candle_nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let out_weight = if config.tie_emb_out_weights {
            embedding.clone()
        } else {
            vb.pp("out").get_with_hints((v, h), "weight", init)?
        };
        let out_bias = vb.pp("out").get_with_hints(v, "bias", init)?;
        let out = Linear::new(out_weight, Some(out_bias));
        Ok(DecoderRnn {
            voc_size: v,
            hidden_size: h,
            config,
            embedding,
            rnn,
            attention,
            out,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderRnnConfig {
        &self.config
    }

    /// The attention layer.
    pub fn attention(&self) -> &Attention {
        &self.attention
    }

    /// Prepares encoder outputs `(B, T_k, H)` with valid `lengths` for attention.
    pub fn prepare(
        &self,
        encoder_outputs: &Tensor,
        lengths: Option<&[usize]>,
    ) -> Result<AttentionContext> {
        self.attention.prepare(encoder_outputs, lengths)
    }

    /// The zero state for `batch` rows.
    pub fn init_state(&self, batch: usize) -> Result<DecoderState> {
        let rnn = self.rnn.zero_state(batch)?;
        let feed = if self.config.input_feeding {
            let h0 = rnn.h.first().ok_or_else(|| Error::Shape {
                op: "DecoderRnn",
                msg: "the RNN has no layers".into(),
            })?;
            Some(h0.zeros_like()?)
        } else {
            None
        };
        Ok(DecoderState { rnn, feed })
    }

    /// The RNN and attention over embedded tokens `x` `(B, H)`, with `between_layers` applied
    /// between stacked RNN layers: the attentional output `(B, H)`, the weights `(B, T_k)` and
    /// the new state.
    fn advance(
        &self,
        x: &Tensor,
        state: &DecoderState,
        ctx: &AttentionContext,
        between_layers: &mut dyn FnMut(Tensor) -> Result<Tensor>,
    ) -> Result<(Tensor, Tensor, DecoderState)> {
        let input = match &state.feed {
            Some(f) => Tensor::cat(&[x, f], 1)?,
            None => x.clone(),
        };
        let (h, rnn) = self.rnn.step_with(&input, &state.rnn, between_layers)?;
        let (out, weights) = self.attention.forward(&h.unsqueeze(1)?, ctx)?; // (B, 1, H)
        let out = out.squeeze(1)?;
        let feed = self.config.input_feeding.then(|| out.clone());
        Ok((out, weights.squeeze(1)?, DecoderState { rnn, feed }))
    }

    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let dims = ids.dims().to_vec();
        let flat = ids.flatten_all()?;
        let e = self.embedding.index_select(&flat, 0)?;
        let mut shape = dims;
        shape.push(self.hidden_size);
        Ok(e.reshape(shape)?)
    }

    fn project(&self, x: &Tensor) -> Result<Tensor> {
        log_softmax(&self.out.forward(x)?)
    }

    /// One inference step (no dropout): previous tokens `(B)` → next-token log-probabilities.
    pub fn step(
        &self,
        tokens: &[u32],
        state: &DecoderState,
        ctx: &AttentionContext,
    ) -> Result<DecoderStep> {
        self.check_ids(tokens.iter().map(|&t| i64::from(t)))?;
        let ids = Tensor::new(tokens, ctx.context.device())?;
        let x = self.embed(&ids)?; // (B, H)
        let (out, attention_weights, state) = self.advance(&x, state, ctx, &mut Ok)?;
        Ok(DecoderStep {
            log_probs: self.project(&out)?,
            attention_weights,
            state,
        })
    }

    fn check_ids(&self, ids: impl Iterator<Item = i64>) -> Result<()> {
        for (pos, id) in ids.enumerate() {
            if id < 0 || id as usize >= self.voc_size {
                return Err(Error::Shape {
                    op: "DecoderRnn",
                    msg: format!(
                        "token id {id} at position {pos} is not below voc_size {}",
                        self.voc_size
                    ),
                });
            }
        }
        Ok(())
    }

    /// The decoder's inputs for `targets` `(B, S)`: `bos_id` then `targets[.., ..S − 1]`, u32.
    fn shifted_inputs(&self, targets: &Tensor) -> Result<(Vec<u32>, usize, usize)> {
        let (b, s) = targets.dims2()?;
        let rows: Vec<Vec<i64>> = targets.to_dtype(DType::I64)?.to_vec2()?;
        self.check_ids(rows.iter().flatten().copied())?;
        let mut ids = Vec::with_capacity(b * s);
        for row in &rows {
            ids.push(self.config.bos_id);
            ids.extend(row.iter().take(s.saturating_sub(1)).map(|&x| x as u32));
        }
        Ok((ids, b, s))
    }

    /// Log-probabilities `(B, S, V)` and attention weights `(B, S, T_k)` for `targets` `(B, S)`
    /// over `encoder_outputs` `(B, T_k, H)` with valid `lengths`: teacher-forced, or with
    /// scheduled sampling in training when `teacher_forcing < 1`.
    pub fn decode(
        &self,
        targets: &Tensor,
        encoder_outputs: &Tensor,
        lengths: Option<&[usize]>,
        call: &ForwardCtx,
    ) -> Result<(Tensor, Tensor)> {
        let ctx = self.prepare(encoder_outputs, lengths)?;
        let (ids, b, s) = self.shifted_inputs(targets)?;
        if ctx.context.dim(0)? != b {
            return Err(Error::Shape {
                op: "DecoderRnn",
                msg: format!(
                    "targets {:?} and encoder outputs {:?} differ in batch",
                    targets.dims(),
                    encoder_outputs.dims()
                ),
            });
        }
        if s == 0 {
            let t_k = ctx.context.dim(1)?;
            let dt = encoder_outputs.dtype();
            let dev = encoder_outputs.device();
            return Ok((
                Tensor::zeros((b, 0, self.voc_size), dt, dev)?,
                Tensor::zeros((b, 0, t_k), dt, dev)?,
            ));
        }
        let train = call.is_training();
        let mut rng = call.rng();
        if (train && self.config.teacher_forcing < 1.0) || self.config.input_feeding {
            let tf = if train {
                self.config.teacher_forcing
            } else {
                1.0
            };
            return self.decode_stepwise(&ids, b, s, &ctx, tf, train, &mut rng);
        }
        let inputs = Tensor::from_vec(ids, (b, s), encoder_outputs.device())?;
        let mut x = self.embed(&inputs)?; // (B, S, H)
        if train {
            x = dropout(&x, self.config.in_dropout, &mut rng)?;
        }
        let p = if train { self.config.gru_dropout } else { 0.0 };
        let (h, _) = self
            .rnn
            .forward_seq(&x, None, &mut |t| dropout(&t, p, &mut rng))?; // (B, S, H)
        let (out, weights) = self.attention.forward(&h, &ctx)?; // (B, S, H), (B, S, T_k)
        Ok((self.project(&out)?, weights))
    }

    /// Step-by-step decode feeding the truth with probability `teacher_forcing` (always at
    /// the first step), the model's previous argmax otherwise; dropout when `train`.
    #[allow(clippy::too_many_arguments)]
    fn decode_stepwise(
        &self,
        truth: &[u32],
        b: usize,
        s: usize,
        ctx: &AttentionContext,
        teacher_forcing: f64,
        train: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, Tensor)> {
        let dev = ctx.context.device().clone();
        let mut state = self.init_state(b)?;
        let mut prev: Vec<u32> = vec![self.config.bos_id; b];
        let (mut outs, mut attns) = (Vec::with_capacity(s), Vec::with_capacity(s));
        let (p_in, p_rnn) = if train {
            (self.config.in_dropout, self.config.gru_dropout)
        } else {
            (0.0, 0.0)
        };
        for t in 0..s {
            let forced = teacher_forcing >= 1.0 || t == 0 || rng.random::<f64>() < teacher_forcing;
            let fed: Vec<u32> = if forced {
                (0..b)
                    .map(|i| truth.get(i * s + t).copied().unwrap_or(self.config.bos_id))
                    .collect()
            } else {
                prev.clone()
            };
            let ids = Tensor::new(fed.as_slice(), &dev)?;
            let x = dropout(&self.embed(&ids)?, p_in, rng)?;
            let (out, w, new_state) =
                self.advance(&x, &state, ctx, &mut |t| dropout(&t, p_rnn, &mut *rng))?;
            state = new_state;
            if teacher_forcing < 1.0 {
                // Only scheduled sampling needs this step's argmax.
                prev = self
                    .project(&out.detach())?
                    .argmax(D::Minus1)?
                    .to_dtype(DType::U32)?
                    .to_vec1()?;
            }
            outs.push(out.unsqueeze(1)?);
            attns.push(w.unsqueeze(1)?);
        }
        // One projection over all steps.
        let outs = Tensor::cat(&outs, 1)?; // (B, S, H)
        Ok((self.project(&outs)?, Tensor::cat(&attns, 1)?))
    }
}

/// What [`DecoderRnn`] carries between search steps: its recurrent state and the encoder
/// outputs each row attends to.
#[derive(Debug, Clone)]
pub struct DecoderSearchState {
    /// The recurrent state.
    pub decoder: DecoderState,
    /// The prepared encoder outputs, one row per hypothesis.
    pub context: AttentionContext,
}

impl DecoderRnn {
    /// The search state of a batch: encoder outputs `(B, T_k, H)` with valid `lengths`, and the
    /// zero decoder state; give it to [`crate::decoding::beam_search`] or
    /// [`crate::decoding::greedy_search`].
    pub fn search_state(
        &self,
        encoder_outputs: &Tensor,
        lengths: &[usize],
    ) -> Result<DecoderSearchState> {
        let b = encoder_outputs.dim(0)?;
        if lengths.len() != b {
            return Err(Error::Shape {
                op: "DecoderRnn",
                msg: format!("{} lengths for {b} encoder outputs", lengths.len()),
            });
        }
        Ok(DecoderSearchState {
            decoder: self.init_state(b)?,
            context: self.prepare(encoder_outputs, Some(lengths))?,
        })
    }
}

impl StepDecoder for DecoderRnn {
    type State = DecoderSearchState;

    fn step(&self, prev: &[u32], state: &DecoderSearchState) -> Result<StepOutput<Self::State>> {
        let step = DecoderRnn::step(self, prev, &state.decoder, &state.context)?;
        Ok(StepOutput {
            log_probs: step.log_probs,
            attention: Some(step.attention_weights),
            state: DecoderSearchState {
                decoder: step.state,
                context: state.context.clone(),
            },
        })
    }

    fn select(&self, state: &DecoderSearchState, rows: &[u32]) -> Result<DecoderSearchState> {
        let rows = Tensor::new(rows, state.context.context.device())?;
        Ok(DecoderSearchState {
            decoder: state.decoder.index_select(&rows)?,
            context: state.context.index_select(&rows)?,
        })
    }
}

impl Forward for DecoderRnn {
    fn forward_tensors(
        &self,
        x: DecoderRnnInputTensors,
        ctx: &ForwardCtx,
    ) -> crate::Result<DecoderRnnOutputTensors> {
        let lengths = x.encoder_lengths.as_ref().map(lengths_to_vec).transpose()?;
        let (log_probs, weights) =
            self.decode(&x.targets, &x.encoder_outputs, lengths.as_deref(), ctx)?;
        Ok(DecoderRnnOutputTensors {
            log_probs,
            attention_weights: Some(weights),
        })
    }
}
