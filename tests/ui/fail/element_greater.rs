// A general Spectrogram into a MelSpectrogram port: GREATER, nothing says it is mel-scaled.
#[path = "../common/encoder.rs"]
mod common;
use common::*;
use nemo::prelude::{Lengths, Spectrogram, B, D, T};

fn main() {
    let encoder = JasperEncoder { feat_in: 64 };
    let spec = typed::<(B, D, T), Spectrogram>();
    let length = typed::<(B,), Lengths>();
    let _ = encoder.forward(JasperEncoderInputs { audio_signal: spec, length });
}
