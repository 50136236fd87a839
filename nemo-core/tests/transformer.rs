//! Tests of `nemo_core::nn::transformer`: every parameter of an encoder-decoder trains (the
//! candle trap: a fused op without backward upstream leaves parameters without gradient),
//! decoding step by step over the cache gives the full causal forward's states, padding and
//! future positions change nothing they must not, post-LN and pre-LN stacks both learn a copy
//! task, seeded initialization and dropout replay, and configs read NeMo's keys.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder};
use nemo_core::nn::transformer::init::xavier_uniform;
use nemo_core::nn::{
    HiddenAct, TransformerDecoder, TransformerDecoderConfig, TransformerEmbedding,
    TransformerEmbeddingConfig, TransformerEncoder, TransformerEncoderConfig, log_softmax,
    seeded_var_builder,
};
use nemo_core::params::Parameters;
use nemo_core::testing::assert_all_vars_receive_gradients;
use nemo_core::{Error, ForwardCtx};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use nemo_core::testing::TestResult;

const PAD: u32 = 0;
const BOS: u32 = 1;

/// A small encoder-decoder with a tied output projection, as NeMo's NMT model.
struct Seq2Seq {
    src_emb: TransformerEmbedding,
    encoder: TransformerEncoder,
    tgt_emb: TransformerEmbedding,
    decoder: TransformerDecoder,
}

/// Sizes and switches of [`Seq2Seq`].
#[derive(Clone, Copy)]
struct Spec {
    vocab: usize,
    d: usize,
    layers: usize,
    heads: usize,
    pre_ln: bool,
    dropout: f64,
}

impl Spec {
    fn small(pre_ln: bool) -> Self {
        Spec {
            vocab: 12,
            d: 32,
            layers: 2,
            heads: 4,
            pre_ln,
            dropout: 0.0,
        }
    }
}

impl Seq2Seq {
    fn new(spec: Spec, vb: VarBuilder) -> TestResult<Self> {
        let mut emb = TransformerEmbeddingConfig::new(spec.vocab, spec.d);
        emb.max_sequence_length = 32;
        emb.embedding_dropout = spec.dropout;
        let mut enc = TransformerEncoderConfig::new(spec.layers, spec.d, 2 * spec.d, spec.heads);
        enc.pre_ln = spec.pre_ln;
        (
            enc.attn_score_dropout,
            enc.attn_layer_dropout,
            enc.ffn_dropout,
        ) = (spec.dropout, spec.dropout, spec.dropout);
        let mut dec = TransformerDecoderConfig::new(spec.layers, spec.d, 2 * spec.d, spec.heads);
        dec.pre_ln = spec.pre_ln;
        (
            dec.attn_score_dropout,
            dec.attn_layer_dropout,
            dec.ffn_dropout,
        ) = (spec.dropout, spec.dropout, spec.dropout);
        Ok(Seq2Seq {
            src_emb: emb.init(vb.pp("encoder.embedding_layer"))?,
            encoder: enc.init(vb.pp("encoder.encoder"))?,
            tgt_emb: emb.init(vb.pp("decoder.embedding_layer"))?,
            decoder: dec.init(vb.pp("decoder.decoder"))?,
        })
    }

    fn encode(&self, src: &Tensor, src_mask: &Tensor, ctx: &ForwardCtx) -> TestResult<Tensor> {
        let x = self
            .src_emb
            .forward(src, None, 0, &ctx.for_module("src_emb"))?;
        Ok(self
            .encoder
            .forward(&x, Some(src_mask), &ctx.for_module("encoder"))?)
    }

    /// Decoder hidden states `(B, T, D)`.
    fn decode(
        &self,
        enc: &Tensor,
        src_mask: &Tensor,
        tgt_in: &Tensor,
        tgt_mask: &Tensor,
        ctx: &ForwardCtx,
    ) -> TestResult<Tensor> {
        let y = self
            .tgt_emb
            .forward(tgt_in, None, 0, &ctx.for_module("tgt_emb"))?;
        Ok(self.decoder.forward(
            &y,
            Some(tgt_mask),
            enc,
            Some(src_mask),
            &ctx.for_module("decoder"),
        )?)
    }

    /// Masked mean cross-entropy of `labels` under the tied output projection.
    fn loss(&self, batch: &Batch, ctx: &ForwardCtx) -> TestResult<Tensor> {
        let enc = self.encode(&batch.src, &batch.src_mask, ctx)?;
        let h = self.decode(&enc, &batch.src_mask, &batch.tgt_in, &batch.tgt_mask, ctx)?;
        let (b, t, d) = h.dims3()?;
        let logits = h
            .reshape((b * t, d))?
            .matmul(&self.tgt_emb.token_embedding().t()?)?;
        let logp = log_softmax(&logits)?;
        let picked = logp
            .gather(&batch.labels.reshape((b * t, 1))?, 1)?
            .squeeze(1)?;
        let mask = batch.tgt_mask.reshape(b * t)?.to_dtype(DType::F32)?;
        let nll = (picked.neg()? * &mask)?.sum_all()?;
        Ok((nll / mask.sum_all()?.to_scalar::<f32>()? as f64)?)
    }
}

/// A batch of the copy task: the target is the source.
struct Batch {
    src: Tensor,
    src_mask: Tensor,
    tgt_in: Tensor,
    tgt_mask: Tensor,
    labels: Tensor,
}

/// `b` random sequences of lengths in `min_len..=max_len` over tokens `2..vocab`, right-padded.
fn copy_batch(
    rng: &mut ChaCha8Rng,
    b: usize,
    min_len: usize,
    max_len: usize,
    vocab: u32,
) -> TestResult<Batch> {
    let t = max_len;
    let (mut src, mut mask, mut tgt_in) = (vec![PAD; b * t], vec![0f32; b * t], vec![PAD; b * t]);
    for row in 0..b {
        let len = rng.random_range(min_len..=max_len);
        for i in 0..len {
            src[row * t + i] = rng.random_range(2..vocab);
            mask[row * t + i] = 1.0;
        }
        tgt_in[row * t] = BOS;
        for i in 1..len {
            tgt_in[row * t + i] = src[row * t + i - 1];
        }
    }
    let dev = Device::Cpu;
    let src = Tensor::from_vec(src, (b, t), &dev)?;
    let mask = Tensor::from_vec(mask, (b, t), &dev)?;
    Ok(Batch {
        labels: src.clone(),
        src,
        src_mask: mask.clone(),
        tgt_in: Tensor::from_vec(tgt_in, (b, t), &dev)?,
        tgt_mask: mask,
    })
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> TestResult<f32> {
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

fn model(spec: Spec, seed: u64) -> TestResult<(Parameters, Seq2Seq)> {
    let params = Parameters::new();
    let vb = seeded_var_builder(params.varmap(), seed, DType::F32, &Device::Cpu);
    let m = Seq2Seq::new(spec, vb)?;
    Ok((params, m))
}

#[test]
fn every_parameter_of_an_encoder_decoder_gets_a_gradient() -> TestResult {
    for pre_ln in [false, true] {
        let mut spec = Spec::small(pre_ln);
        spec.dropout = 0.1;
        let (params, m) = model(spec, 1)?;
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let batch = copy_batch(&mut rng, 4, 3, 6, spec.vocab as u32)?;
        let loss = m.loss(&batch, &ForwardCtx::train(3))?;
        assert_all_vars_receive_gradients(&loss, &params)?;
        // 2 embeddings × 3 tensors, encoder blocks 2 × 16, decoder blocks 2 × 26, and a final
        // LayerNorm per stack with pre-LN.
        let expected = 2 * 3 + 2 * 16 + 2 * 26 + if pre_ln { 4 } else { 0 };
        assert_eq!(params.trainable_vars().len(), expected, "pre_ln = {pre_ln}");
    }
    Ok(())
}

#[test]
fn a_bert_style_encoder_trains_every_parameter_too() -> TestResult {
    // Learned positions, token types and GELU: the parameters NMT does not use.
    let params = Parameters::new();
    let vb = seeded_var_builder(params.varmap(), 4, DType::F32, &Device::Cpu);
    let mut emb_cfg = TransformerEmbeddingConfig::new(20, 16);
    emb_cfg.learn_positional_encodings = true;
    emb_cfg.num_token_types = 2;
    emb_cfg.max_sequence_length = 8;
    let emb = emb_cfg.init(vb.pp("embeddings"))?;
    let mut enc_cfg = TransformerEncoderConfig::new(1, 16, 32, 2);
    enc_cfg.hidden_act = HiddenAct::Gelu;
    let enc = enc_cfg.init(vb.pp("encoder"))?;
    let dev = Device::Cpu;
    let ids = Tensor::new(&[[3u32, 7, 19, 0], [5, 5, 2, 11]], &dev)?;
    let types = Tensor::new(&[[0u32, 0, 1, 1], [0, 1, 1, 1]], &dev)?;
    let mask = Tensor::new(&[[1f32, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]], &dev)?;
    let ctx = ForwardCtx::train(0);
    let x = emb.forward(&ids, Some(&types), 0, &ctx)?;
    let h = enc.forward(&x, Some(&mask), &ctx)?;
    let w = Tensor::randn(0f32, 1.0, h.dims(), &dev)?;
    assert_all_vars_receive_gradients(&(h * w)?.sum_all()?, &params)?;
    Ok(())
}

#[test]
fn decoder_steps_over_the_cache_equal_the_full_causal_forward() -> TestResult {
    for pre_ln in [false, true] {
        let spec = Spec::small(pre_ln);
        let (_, m) = model(spec, 5)?;
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let batch = copy_batch(&mut rng, 3, 4, 7, spec.vocab as u32)?;
        let eval = ForwardCtx::eval();
        let enc = m.encode(&batch.src, &batch.src_mask, &eval)?;
        let full = m.decode(&enc, &batch.src_mask, &batch.tgt_in, &batch.tgt_mask, &eval)?;
        let t = batch.tgt_in.dim(1)?;

        // One position per step, then the same with steps of 2, 1, 3, … positions.
        for chunks in [vec![1; t], vec![2, 1, 3, 1]] {
            let mut cache = m.decoder.start(&enc, Some(&batch.src_mask))?;
            let mut start = 0;
            for len in chunks {
                let ids = batch.tgt_in.narrow(1, start, len)?;
                let y = m.tgt_emb.forward(&ids, None, cache.len(), &eval)?;
                let new_mask = batch.tgt_mask.narrow(1, start, len)?;
                let h = m.decoder.step(&y, Some(&new_mask), &mut cache)?;
                let expected = full.narrow(1, start, len)?;
                // Compare at valid target positions (padded ones are masked everywhere).
                let valid = new_mask.unsqueeze(2)?.broadcast_as(h.shape())?;
                let diff = max_abs_diff(&(h * &valid)?, &(expected * &valid)?)?;
                assert!(
                    diff < 1e-5,
                    "pre_ln {pre_ln}, positions {start}..{}: {diff}",
                    start + len
                );
                start += len;
            }
            assert_eq!(cache.len(), t);
        }
    }
    Ok(())
}

#[test]
fn a_reordered_cache_decodes_the_reordered_batch() -> TestResult {
    // Beam search reorders the cache's rows between steps.
    let (_, m) = model(Spec::small(false), 7)?;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let batch = copy_batch(&mut rng, 3, 5, 5, 12)?;
    let eval = ForwardCtx::eval();
    let enc = m.encode(&batch.src, &batch.src_mask, &eval)?;
    let mut cache = m.decoder.start(&enc, Some(&batch.src_mask))?;
    for s in 0..2 {
        let y = m
            .tgt_emb
            .forward(&batch.tgt_in.narrow(1, s, 1)?, None, s, &eval)?;
        m.decoder.step(&y, None, &mut cache)?;
    }
    let rows = Tensor::new(&[2u32, 0, 0, 1], &Device::Cpu)?;
    let mut cache = cache.index_select(&rows)?;
    assert_eq!(cache.batch_size(), 4);
    let tgt = batch.tgt_in.index_select(&rows, 0)?;
    let y = m.tgt_emb.forward(&tgt.narrow(1, 2, 1)?, None, 2, &eval)?;
    let h = m.decoder.step(&y, None, &mut cache)?;
    let enc_r = enc.index_select(&rows, 0)?;
    let mask_r = batch.src_mask.index_select(&rows, 0)?;
    let ones = Tensor::ones((4, 3), DType::F32, &Device::Cpu)?;
    let full = m.decode(&enc_r, &mask_r, &tgt.narrow(1, 0, 3)?, &ones, &eval)?;
    assert!(max_abs_diff(&h, &full.narrow(1, 2, 1)?)? < 1e-5);
    // A step that does not fit the cache is refused and leaves it as it was.
    let bad = m
        .tgt_emb
        .forward(&batch.tgt_in.narrow(1, 3, 1)?, None, 3, &eval)?;
    assert!(matches!(
        m.decoder.step(&bad, None, &mut cache),
        Err(Error::Shape { .. })
    ));
    assert_eq!(cache.len(), 3);
    Ok(())
}

#[test]
fn padded_and_future_positions_do_not_change_other_outputs() -> TestResult {
    let (_, m) = model(Spec::small(false), 9)?;
    let dev = Device::Cpu;
    let eval = ForwardCtx::eval();
    let src_mask = Tensor::new(
        &[[1f32, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0]],
        &dev,
    )?;
    let src_a = Tensor::new(&[[4u32, 5, 6, 0, 0], [7, 8, 9, 10, 0]], &dev)?;
    // Different tokens at the padded positions only.
    let src_b = Tensor::new(&[[4u32, 5, 6, 11, 3], [7, 8, 9, 10, 2]], &dev)?;
    let enc_a = m.encode(&src_a, &src_mask, &eval)?;
    let enc_b = m.encode(&src_b, &src_mask, &eval)?;
    let valid = src_mask.unsqueeze(2)?.broadcast_as(enc_a.shape())?;
    let d = max_abs_diff(&(&enc_a * &valid)?, &(&enc_b * &valid)?)?;
    assert!(
        d < 1e-6,
        "encoder outputs at unpadded positions moved by {d}"
    );
    assert!(
        max_abs_diff(&enc_a, &enc_b)? > 1e-3,
        "the padded outputs should differ"
    );

    // The decoder sees neither the padded source states nor the future targets.
    let noise = (Tensor::randn(0f32, 3.0, enc_a.dims(), &dev)? * (1.0 - &valid)?)?;
    let enc_noisy = (&enc_a + noise)?;
    let tgt_a = Tensor::new(&[[1u32, 4, 5, 6], [1, 7, 8, 9]], &dev)?;
    let tgt_b = Tensor::new(&[[1u32, 4, 9, 9], [1, 7, 8, 2]], &dev)?; // differs from position 2 (row 0), 3 (row 1)
    let tgt_mask = Tensor::ones((2, 4), DType::F32, &dev)?;
    let h_a = m.decode(&enc_a, &src_mask, &tgt_a, &tgt_mask, &eval)?;
    let h_noisy = m.decode(&enc_noisy, &src_mask, &tgt_a, &tgt_mask, &eval)?;
    assert!(max_abs_diff(&h_a, &h_noisy)? < 1e-6);
    let h_b = m.decode(&enc_a, &src_mask, &tgt_b, &tgt_mask, &eval)?;
    assert!(max_abs_diff(&h_a.get(0)?.narrow(0, 0, 2)?, &h_b.get(0)?.narrow(0, 0, 2)?)? < 1e-6);
    assert!(max_abs_diff(&h_a.get(1)?.narrow(0, 0, 3)?, &h_b.get(1)?.narrow(0, 0, 3)?)? < 1e-6);
    assert!(max_abs_diff(&h_a, &h_b)? > 1e-3);

    // Padded target positions are not attended to either: a mask (u8 here) hides them.
    let tgt_pad_mask = Tensor::new(&[[1u8, 1, 0, 0], [1, 1, 1, 0]], &dev)?;
    let h_pa = m.decode(&enc_a, &src_mask, &tgt_a, &tgt_pad_mask, &eval)?;
    let h_pb = m.decode(&enc_a, &src_mask, &tgt_b, &tgt_pad_mask, &eval)?;
    let valid_t = tgt_pad_mask
        .to_dtype(DType::F32)?
        .unsqueeze(2)?
        .broadcast_as(h_pa.shape())?;
    assert!(max_abs_diff(&(h_pa * &valid_t)?, &(h_pb * &valid_t)?)? < 1e-6);
    Ok(())
}

/// Trains the copy task for `steps` steps; returns the mean loss of the first and last 10.
fn train_copy(pre_ln: bool, steps: usize) -> TestResult<(f32, f32)> {
    let spec = Spec {
        vocab: 10,
        d: 32,
        layers: 1,
        heads: 4,
        pre_ln,
        dropout: 0.0,
    };
    let (params, m) = model(spec, 11)?;
    let vars = params
        .trainable_vars()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: 3e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps {
        let batch = copy_batch(&mut rng, 32, 4, 7, spec.vocab as u32)?;
        let loss = m.loss(&batch, &ForwardCtx::train(step as u64))?;
        losses.push(loss.to_scalar::<f32>()?);
        opt.backward_step(&loss)?;
    }
    let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
    Ok((mean(&losses[..10]), mean(&losses[steps - 10..])))
}

#[test]
fn post_ln_and_pre_ln_both_learn_to_copy() -> TestResult {
    for pre_ln in [false, true] {
        let (first, last) = train_copy(pre_ln, 200)?;
        eprintln!("copy task, pre_ln {pre_ln}: loss {first:.3} → {last:.4}");
        // ln(8) ≈ 2.08 for a uniform guess over the 8 content tokens.
        assert!(first > 1.5, "pre_ln {pre_ln}: initial loss {first}");
        assert!(last < 0.1 * first, "pre_ln {pre_ln}: loss {first} → {last}");
    }
    Ok(())
}

#[test]
fn seeded_weights_and_dropout_replay_and_eval_has_no_dropout() -> TestResult {
    let mut spec = Spec::small(false);
    spec.dropout = 0.3;
    let (p1, m1) = model(spec, 21)?;
    let (p2, m2) = model(spec, 21)?;
    for ((n1, v1), (n2, v2)) in p1.named_vars().iter().zip(p2.named_vars()) {
        assert_eq!(n1, &n2);
        assert_eq!(max_abs_diff(v1.as_tensor(), v2.as_tensor())?, 0.0, "{n1}");
    }
    let (p3, _) = model(spec, 22)?;
    let w = |p: &Parameters| -> TestResult<Tensor> {
        let vars = p.named_vars();
        let (_, v) = vars
            .iter()
            .find(|(n, _)| n.ends_with("first_sub_layer.query_net.weight"))
            .ok_or("no query_net")?;
        Ok(v.as_tensor().clone())
    };
    assert!(max_abs_diff(&w(&p1)?, &w(&p3)?)? > 0.0);

    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let batch = copy_batch(&mut rng, 4, 3, 6, spec.vocab as u32)?;
    let a = m1.loss(&batch, &ForwardCtx::train(5))?.to_scalar::<f32>()?;
    let b = m2.loss(&batch, &ForwardCtx::train(5))?.to_scalar::<f32>()?;
    let c = m1.loss(&batch, &ForwardCtx::train(6))?.to_scalar::<f32>()?;
    assert_eq!(a, b, "the same seed must draw the same dropout masks");
    assert_ne!(a, c);
    // Eval mode: the model with dropout 0.3 equals the same weights without dropout.
    spec.dropout = 0.0;
    let (_, m0) = model(spec, 21)?;
    let e1 = m1.loss(&batch, &ForwardCtx::eval())?.to_scalar::<f32>()?;
    let e0 = m0.loss(&batch, &ForwardCtx::train(5))?.to_scalar::<f32>()?;
    assert_eq!(e1, e0);
    Ok(())
}

#[test]
fn initialization_follows_nemo() -> TestResult {
    let (params, _) = model(Spec::small(false), 31)?;
    let d = 32f64;
    for (name, var) in params.named_vars() {
        let v: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let std = (v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        if name.ends_with("layer_norm.weight") {
            assert!(v.iter().all(|&x| x == 1.0), "{name}");
        } else if name.ends_with("bias") {
            assert!(v.iter().all(|&x| x == 0.0), "{name}");
        } else if name.contains("embedding") {
            assert!((std - 1.0 / d.sqrt()).abs() < 0.02, "{name}: std {std}");
        } else {
            let dims = var.as_tensor().dims().to_vec();
            let candle_nn::Init::Uniform { up, .. } = xavier_uniform(dims[1], dims[0]) else {
                return Err("xavier_uniform is uniform".into());
            };
            assert!(v.iter().all(|&x| f64::from(x).abs() <= up), "{name}");
            // U(±a) has std a/√3.
            assert!(
                (std - up / 3f64.sqrt()).abs() < 0.1 * up,
                "{name}: std {std}"
            );
        }
    }
    Ok(())
}

#[test]
fn configs_read_nemo_keys_and_invalid_ones_are_named() -> TestResult {
    let yaml = "num_layers: 6\nd_model: 512\nd_inner: 2048\nnum_attn_heads: 8\nffn_dropout: 0.1\n";
    let cfg: TransformerEncoderConfig = serde_norway::from_str(yaml)?;
    let mut expected = TransformerEncoderConfig::new(6, 512, 2048, 8);
    expected.ffn_dropout = 0.1;
    assert_eq!(cfg, expected);
    assert!(!cfg.pre_ln && cfg.layer_norm_eps == 1e-5 && cfg.hidden_act == HiddenAct::Relu);
    let bad: Result<TransformerDecoderConfig, _> =
        serde_norway::from_str("num_layers: 1\nhidden_size: 8\ninner_size: 8\nheads: 2\n");
    assert!(bad.is_err(), "unknown keys are refused");

    let params = Parameters::new();
    let vb = params.var_builder(DType::F32, &Device::Cpu);
    let err = TransformerDecoderConfig::new(1, 10, 16, 4)
        .init(vb.clone())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "config `attention.num_attention_heads`: hidden_size 10 must be a positive multiple \
             of the 4 heads"
        )
    );
    let mut cfg = TransformerEncoderConfig::new(1, 8, 16, 2);
    cfg.ffn_dropout = 1.0;
    assert!(matches!(cfg.init(vb.clone()), Err(Error::Config { .. })));

    // Shapes are checked where data enters.
    let enc = TransformerEncoderConfig::new(1, 8, 16, 2).init(vb.pp("e"))?;
    let x = Tensor::zeros((2, 3, 8), DType::F32, &Device::Cpu)?;
    let wrong_mask = Tensor::ones((2, 4), DType::F32, &Device::Cpu)?;
    let err = enc
        .forward(&x, Some(&wrong_mask), &ForwardCtx::eval())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("TransformerEncoder: mask must be (B, T) = (2, 3), got [2, 4]")
    );
    let emb = TransformerEmbeddingConfig::new(5, 8).init(vb.pp("emb"))?;
    let ids = Tensor::new(&[[1u32, 5]], &Device::Cpu)?;
    let err = emb
        .forward(&ids, None, 0, &ForwardCtx::eval())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("TransformerEmbedding: input_ids must lie in 0..5, found values in 1..=5")
    );
    Ok(())
}

#[test]
fn a_longer_sequence_than_the_position_table_is_an_error() -> TestResult {
    let params = Parameters::new();
    let vb = params.var_builder(DType::F32, &Device::Cpu);
    let mut cfg = TransformerEmbeddingConfig::new(5, 8);
    cfg.max_sequence_length = 4;
    let emb = cfg.init(vb)?;
    let ids = Tensor::zeros((1, 3), DType::U32, &Device::Cpu)?;
    assert!(emb.forward(&ids, None, 1, &ForwardCtx::eval()).is_ok());
    assert!(emb.forward(&ids, None, 2, &ForwardCtx::eval()).is_err());
    let h = emb.forward(&ids, None, 0, &ForwardCtx::eval())?;
    // LayerNorm right after the sum: each position has mean 0 and variance 1.
    let mean = h.mean_keepdim(D::Minus1)?.abs()?.flatten_all()?.max(0)?;
    assert!(mean.to_scalar::<f32>()? < 1e-5);
    Ok(())
}

#[test]
fn a_tied_embedding_shares_the_table_and_checks_its_shape() -> TestResult {
    let params = Parameters::new();
    let vb = seeded_var_builder(params.varmap(), 3, DType::F32, &Device::Cpu);
    let cfg = TransformerEmbeddingConfig::new(10, 8);
    let enc = cfg.init(vb.pp("enc"))?;
    let dec = cfg.init_tied(enc.token_embedding(), vb.pp("dec"))?;
    assert_eq!(dec.token_embedding().id(), enc.token_embedding().id());
    // No table of its own was made; its LayerNorm is its own.
    let names: Vec<String> = params.named_vars().into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.starts_with("dec.token_embedding")));
    assert!(names.iter().any(|n| n == "dec.layer_norm.weight"));
    let wrong = Tensor::zeros((10, 4), DType::F32, &Device::Cpu)?;
    assert!(matches!(
        cfg.init_tied(&wrong, vb.pp("bad")),
        Err(Error::Shape { .. })
    ));
    Ok(())
}

#[test]
fn the_step_decoder_gives_the_full_forward_log_probabilities() -> TestResult {
    use nemo_core::decoding::StepDecoder;
    use nemo_core::nn::TransformerStepDecoder;

    let spec = Spec::small(false);
    let (_, m) = model(spec, 11)?;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let batch = copy_batch(&mut rng, 3, 4, 4, spec.vocab as u32)?;
    let eval = ForwardCtx::eval();
    let enc = m.encode(&batch.src, &batch.src_mask, &eval)?;
    let ones = Tensor::ones((3, 4), DType::U8, &Device::Cpu)?;
    let full = m.decode(&enc, &batch.src_mask, &batch.tgt_in, &ones, &eval)?;
    let table = m.tgt_emb.token_embedding();
    let bias = Tensor::randn(0f32, 1.0, spec.vocab, &Device::Cpu)?;
    let expected = log_softmax(&full.broadcast_matmul(&table.t()?)?.broadcast_add(&bias)?)?;
    let step = TransformerStepDecoder::new(&m.tgt_emb, &m.decoder, table, Some(&bias))?;
    let mut cache = m.decoder.start(&enc, Some(&batch.src_mask))?;
    let ids: Vec<Vec<u32>> = batch.tgt_in.to_vec2()?;
    for t in 0..4 {
        let prev: Vec<u32> = ids.iter().map(|r| r[t]).collect();
        let out = step.step(&prev, &cache)?;
        let want = expected.narrow(1, t, 1)?.squeeze(1)?;
        assert!(max_abs_diff(&out.log_probs, &want)? < 1e-4, "step {t}");
        cache = out.state;
    }
    // Beams keep, reorder and repeat rows.
    let picked = step.select(&cache, &[2, 2, 0])?;
    assert_eq!((picked.batch_size(), picked.len()), (3, 4));
    // Sizes that do not fit are named.
    let short_bias = Tensor::zeros(spec.vocab - 1, DType::F32, &Device::Cpu)?;
    let err = TransformerStepDecoder::new(&m.tgt_emb, &m.decoder, table, Some(&short_bias));
    assert!(matches!(err, Err(Error::Shape { .. })));
    Ok(())
}
