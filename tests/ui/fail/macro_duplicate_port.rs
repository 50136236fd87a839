// Two input ports with the same name.
use nemo::prelude::*;

#[neural_module(inputs(x: (B, T) AudioSignal, x: (B) Lengths), outputs(y: (B, T) AudioSignal))]
struct Gain;

fn main() {}
