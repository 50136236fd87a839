// (B, T, D) into a (B, D, T) port: TRANSPOSE_SAME is not a connection; the error suggests the fix.
#[path = "../common/encoder.rs"]
mod common;
use common::*;
use nemo::prelude::{Lengths, MelSpectrogram, B, D, T};

fn main() {
    let encoder = JasperEncoder { feat_in: 64 };
    let mel = typed::<(B, T, D), MelSpectrogram>();
    let length = typed::<(B,), Lengths>();
    let _ = encoder.forward(JasperEncoderInputs { audio_signal: mel, length });
}
