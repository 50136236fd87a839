//! Helpers of the attention-model test files: a decoder over fresh parameters, the decoder
//! configurations every test walks, and a small encoder batch.

use candle_core::{DType, Device, Tensor};
use nemo_core::nn::{AttentionMethod, DecoderRnn, DecoderRnnConfig, RnnType};
use nemo_core::params::Parameters;

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `(B)` i64 lengths as a vector.
pub fn usize_lens(lens: &Tensor) -> Res<Vec<usize>> {
    Ok(lens
        .to_vec1::<i64>()?
        .into_iter()
        .map(|l| l as usize)
        .collect())
}

pub fn decoder(
    (rnn, method, feeding): (RnnType, AttentionMethod, bool),
    dtype: DType,
    voc: usize,
    hidden: usize,
) -> Res<(DecoderRnn, Parameters)> {
    let params = Parameters::new();
    let vb = params.var_builder(dtype, &Device::Cpu);
    let mut cfg = DecoderRnnConfig::new(voc, 0, hidden);
    cfg.rnn_type = rnn;
    cfg.attention_method = method;
    cfg.in_dropout = 0.0;
    cfg.gru_dropout = 0.0;
    cfg.input_feeding = feeding;
    let dec = cfg.init(vb.pp("decoder"))?;
    Ok((dec, params))
}

/// RNN, scoring and input feeding.
pub const ALL: [(RnnType, AttentionMethod, bool); 6] = [
    (RnnType::Gru, AttentionMethod::General, false),
    (RnnType::Lstm, AttentionMethod::General, false),
    (RnnType::Gru, AttentionMethod::Dot, false),
    (RnnType::Lstm, AttentionMethod::Bahdanau, false),
    (RnnType::Gru, AttentionMethod::General, true),
    (RnnType::Lstm, AttentionMethod::Bahdanau, true),
];

pub fn enc_batch(dtype: DType, h: usize) -> Res<(Tensor, Tensor, Tensor)> {
    let dev = Device::Cpu;
    let enc = Tensor::arange(0f32, (2 * 5 * h) as f32, &dev)?
        .reshape((2, 5, h))?
        .affine(0.37, 0.0)?
        .sin()?
        .to_dtype(dtype)?;
    let lens = Tensor::new(&[5i64, 3], &dev)?;
    let targets = Tensor::new(&[[1i64, 2, 3, 4], [4, 3, 6, 6]], &dev)?;
    Ok((enc, lens, targets))
}
