// A (B, T) value into a (B, D, T) port: wrong rank.
#[path = "../common/encoder.rs"]
mod common;
use common::*;
use nemo::prelude::{Lengths, MelSpectrogram, B, T};

fn main() {
    let encoder = JasperEncoder { feat_in: 64 };
    let mel = typed::<(B, T), MelSpectrogram>();
    let length = typed::<(B,), Lengths>();
    let _ = encoder.forward(JasperEncoderInputs { audio_signal: mel, length });
}
