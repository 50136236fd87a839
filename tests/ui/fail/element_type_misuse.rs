// Element types are unit structs with a parent.
use nemo::prelude::*;

#[element_type]
pub struct Orphan;

#[element_type(parent = Spectrogram)]
pub struct WithFields {
    bins: usize,
}

#[element_type(parent = Spectrogram, colour = "blue")]
pub struct Coloured;

fn main() {}
