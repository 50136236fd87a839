// The fix the transposition error suggests compiles, and axis operations change the type.
#[path = "../common/encoder.rs"]
mod common;
use common::*;
use nemo::prelude::*;

fn main() -> nemo::Result<()> {
    let dev = candle_core::Device::Cpu;
    let btd: NTensor<(B, T, D), MelSpectrogram> =
        NTensor::new(candle_core::Tensor::zeros((2, 10, 64), candle_core::DType::F32, &dev)?)?;
    let length: NTensor<(B,), Lengths> =
        NTensor::new(candle_core::Tensor::zeros(2, candle_core::DType::U32, &dev)?)?;
    let bdt = btd.permute_to::<(B, D, T)>()?;
    let out = JasperEncoder { feat_in: 64 }.forward(JasperEncoderInputs { audio_signal: &bdt, length })?;
    let pooled: NTensor<(B, D), AcousticEncodedRepresentation> = out.outputs.mean_over::<T>()?;
    assert_eq!(pooled.dims(), &[2, 64]);
    let longer = NTensor::cat::<T>(&[&bdt, &bdt])?;
    assert_eq!(longer.dim::<T>(), 20);
    Ok(())
}
