// A mandatory input port left unconnected.
#[path = "../common/encoder.rs"]
mod common;
use common::*;
use nemo::prelude::{MelSpectrogram, B, D, T};

fn main() {
    let encoder = JasperEncoder { feat_in: 64 };
    let mel = typed::<(B, D, T), MelSpectrogram>();
    let _ = encoder.forward(JasperEncoderInputs { audio_signal: mel });
}
