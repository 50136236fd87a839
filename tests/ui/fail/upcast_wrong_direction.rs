// A Spectrogram cannot be seen as a MelSpectrogram.
use nemo::prelude::{MelSpectrogram, NTensor, Spectrogram, B, D, T};

fn wire(x: NTensor<(B, D, T), Spectrogram>) {
    let _ = x.upcast::<MelSpectrogram>();
}

fn main() {}
