// A lazy call with the wrong element type: an encoder output handle (AcousticEncodedRepresentation)
// into a MelSpectrogram port is refused by the compiler, with the message of the eager call.
#[path = "../common/encoder.rs"]
mod common;
use common::*;
use nemo::core::dag::Handle;
use nemo::prelude::{AcousticEncodedRepresentation, Lengths, B, D, T};
use std::sync::Arc;

fn handle<A, E>() -> Handle<A, E> {
    unimplemented!("only the types matter in UI tests")
}

fn main() {
    let encoder = Arc::new(JasperEncoder { feat_in: 64 });
    let encoded = handle::<(B, D, T), AcousticEncodedRepresentation>();
    let length = handle::<(B,), Lengths>();
    let _ = encoder.call(JasperEncoderInputs { audio_signal: &encoded, length: &length });
}
