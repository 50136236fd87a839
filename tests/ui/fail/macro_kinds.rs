// Module-kind rules: a data layer has no inputs, a loss one scalar output, a kind must exist.
use nemo::prelude::*;

#[neural_module(kind = data_layer, inputs(x: (B, T) AudioSignal), outputs(y: (B, T) AudioSignal))]
struct Reader;

#[neural_module(kind = loss, inputs(x: (B, T) Logprobs), outputs(loss: (B) Loss))]
struct PerSampleLoss;

#[neural_module(kind = layer, inputs(x: (B, T) Logprobs), outputs(y: (B, T) Logprobs))]
struct Layer;

#[neural_module(inputs(x: (B, T) Logprobs))]
struct NoOutputs;

fn main() {}
