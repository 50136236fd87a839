// An encoder output (AcousticEncodedRepresentation) is not a spectrogram: INCOMPATIBLE.
#[path = "../common/encoder.rs"]
mod common;
use common::*;
use nemo::prelude::{AcousticEncodedRepresentation, Lengths, B, D, T};

fn main() {
    let encoder = JasperEncoder { feat_in: 64 };
    let encoded = typed::<(B, D, T), AcousticEncodedRepresentation>();
    let length = typed::<(B,), Lengths>();
    let _ = encoder.forward(JasperEncoderInputs { audio_signal: encoded, length });
}
