// Reducing or concatenating along an axis the value does not have.
use nemo::prelude::{MelSpectrogram, NTensor, B, D, H, T, W};

fn wire(x: NTensor<(B, D, T), MelSpectrogram>) {
    let _ = x.sum_over::<W>();
    let _ = NTensor::cat::<H>(&[&x, &x]);
}

fn main() {}
