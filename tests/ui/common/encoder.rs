// A small encoder shared by the UI cases: (B, D, T) MelSpectrogram in, encoded representation out.
use nemo::prelude::{Element, Forward, ForwardCtx, NTensor, neural_module};

#[neural_module(
    inputs(
        audio_signal: (B, D = feat_in, T) MelSpectrogram,
        length: (B) Lengths,
    ),
    outputs(
        outputs: (B, D, T) AcousticEncodedRepresentation,
        encoded_lengths: (B) Lengths,
    ),
)]
pub struct JasperEncoder {
    pub feat_in: usize,
}

impl Forward for JasperEncoder {
    fn forward_tensors(&self, x: JasperEncoderInputTensors, _ctx: &ForwardCtx) -> nemo::Result<JasperEncoderOutputTensors> {
        Ok(JasperEncoderOutputTensors { outputs: x.audio_signal, encoded_lengths: x.length })
    }
}

pub fn typed<A: nemo::typed::Axes, E: Element>() -> NTensor<A, E> {
    unimplemented!("only the types matter in UI tests")
}
