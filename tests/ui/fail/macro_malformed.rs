// Malformed port declarations: every problem is reported in one build, each at its token.
use nemo::prelude::*;

#[neural_module(
    inputs(x (B, T) AudioSignal, length: (B), z: () Lengths),
    outputs(y: (B, T:abc) AudioSignal),
    colour = blue,
)]
struct Gain;

fn main() {}
