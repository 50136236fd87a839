// permute_to must name the axes the value has.
use nemo::prelude::{MelSpectrogram, NTensor, B, D, H, T};

fn wire(x: NTensor<(B, T, D), MelSpectrogram>) {
    let _ = x.permute_to::<(B, D, H)>();
}

fn main() {}
