// Element types and axis kinds declared in a downstream crate: ports, subtyping, and the runtime
// parser all know them.
use nemo::prelude::*;
use nemo::types::{Comparison, NeuralType};

/// A spectrogram on the Bark scale.
#[element_type(parent = Spectrogram, alias = "BarkSpectrogramType")]
pub struct BarkSpectrogram;

/// A Bark spectrogram normalized to loudness units.
#[element_type(parent = BarkSpectrogram)]
pub struct LoudnessBark;

nemo::axis_kind! {
    /// Critical bands.
    pub Band = "band"
}

#[neural_module(inputs(x: (B, crate::Band, T) BarkSpectrogram), outputs(y: (B, D, T) Spectrogram))]
struct BarkToSpec;

impl Forward for BarkToSpec {
    fn forward_tensors(&self, x: BarkToSpecInputTensors, _ctx: &ForwardCtx) -> nemo::Result<BarkToSpecOutputTensors> {
        Ok(BarkToSpecOutputTensors { y: x.x })
    }
}

fn main() -> nemo::Result<()> {
    let loud: NTensor<(B, Band, T), LoudnessBark> =
        NTensor::new(candle_core::Tensor::zeros((1, 24, 5), candle_core::DType::F32, &candle_core::Device::Cpu)?)?;
    let out = BarkToSpec.forward(BarkToSpecInputs { x: &loud })?;
    assert_eq!(out.y.dims(), &[1, 24, 5]);
    let t: NeuralType = "(B, band, T) LoudnessBark".parse()?;
    let port: NeuralType = "(B, band, T) BarkSpectrogramType".parse()?;
    assert_eq!(t.compare(&port), Comparison::Less);
    assert_eq!(port.compare(&t), Comparison::Greater);
    assert_eq!(BarkToSpec.input_types().to_string(), "x: (B, band, T) BarkSpectrogram");
    Ok(())
}
