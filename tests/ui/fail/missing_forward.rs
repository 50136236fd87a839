// Ports declared, but no `Forward` implementation to compute them.
use nemo::prelude::{AudioSignal, NTensor, neural_module, B, T};

#[neural_module(inputs(x: (B, T) AudioSignal), outputs(y: (B, T) AudioSignal))]
struct Gain;

fn wire(x: NTensor<(B, T), AudioSignal>) {
    let _ = Gain.forward(GainInputs { x });
}

fn main() {}
