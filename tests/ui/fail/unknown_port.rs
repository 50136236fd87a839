// A port name the module does not have.
#[path = "../common/encoder.rs"]
mod common;
use common::*;
use nemo::prelude::{Lengths, MelSpectrogram, B, D, T};

fn main() {
    let encoder = JasperEncoder { feat_in: 64 };
    let mel = typed::<(B, D, T), MelSpectrogram>();
    let length = typed::<(B,), Lengths>();
    let _ = encoder.forward(JasperEncoderInputs { audio: mel, length });
}
