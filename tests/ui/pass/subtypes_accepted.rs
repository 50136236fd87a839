// A more specific element type feeds a general port; `void` and `Any` accept anything.
use nemo::prelude::*;

#[neural_module(
    inputs(x: (B, Any, T) Spectrogram, extra: (B, T) Void?),
    outputs(y: (B, D, T) Channel),
)]
struct Smooth;

impl Forward for Smooth {
    fn forward_tensors(&self, x: SmoothInputTensors, _ctx: &ForwardCtx) -> nemo::Result<SmoothOutputTensors> {
        Ok(SmoothOutputTensors { y: x.x })
    }
}

#[neural_module(inputs(anything: (B, D, T) Void), outputs(same: (B, D, T) Void))]
struct Identity;

impl Forward for Identity {
    fn forward_tensors(&self, x: IdentityInputTensors, _ctx: &ForwardCtx) -> nemo::Result<IdentityOutputTensors> {
        Ok(IdentityOutputTensors { same: x.anything })
    }
}

fn main() -> nemo::Result<()> {
    let mel: NTensor<(B, D, T), MelSpectrogram> =
        NTensor::new(candle_core::Tensor::zeros((2, 64, 10), candle_core::DType::F32, &candle_core::Device::Cpu)?)?;
    let y = Smooth.forward(SmoothInputs { x: &mel, extra: None })?;
    let z = Identity.forward(IdentityInputs { anything: y.y })?;
    assert_eq!(z.same.dims(), &[2, 64, 10]);
    let general: NTensor<(B, D, T), Spectrogram> = mel.upcast();
    let _ = Identity.forward(IdentityInputs { anything: general })?;
    Ok(())
}
