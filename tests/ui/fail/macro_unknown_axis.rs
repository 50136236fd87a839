// An axis the type system does not know, with the list of those it does.
use nemo::prelude::*;

#[neural_module(inputs(x: (B, Tim) AudioSignal), outputs(y: (B, T) AudioSignal))]
struct Gain;

fn main() {}
