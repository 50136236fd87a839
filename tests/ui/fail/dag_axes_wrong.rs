// A lazy call with the wrong axes: a (B, T) handle into a (B, D, T) port is refused by the
// compiler, with the message of the eager call.
#[path = "../common/encoder.rs"]
mod common;
use common::*;
use nemo::core::dag::Handle;
use nemo::prelude::{Lengths, MelSpectrogram, B, T};
use std::sync::Arc;

fn handle<A, E>() -> Handle<A, E> {
    unimplemented!("only the types matter in UI tests")
}

fn main() {
    let encoder = Arc::new(JasperEncoder { feat_in: 64 });
    let mel = handle::<(B, T), MelSpectrogram>();
    let length = handle::<(B,), Lengths>();
    let _ = encoder.call(JasperEncoderInputs { audio_signal: &mel, length: &length });
}
