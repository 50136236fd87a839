//! Typed wiring in three acts: a pipeline the compiler checked, a dimension error only the
//! runtime can see, and a graph wired from data whose bad connection is refused before any
//! computation.
//!
//! Run: `cargo run --example wiring`

use candle_core::{DType, Device, Tensor};
use std::sync::Arc;

use nemo::dag::Graph;
use nemo::prelude::*;

/// A toy front end: (B, T) audio at `sample_rate` → (B, D, T) mel frames with `features` bands.
#[neural_module(
    inputs(
        input_signal: (B, T) AudioSignal{freq = sample_rate},
        length: (B) Lengths,
    ),
    outputs(
        processed_signal: (B, D = features, T as frames) MelSpectrogram,
        processed_length: (B) Lengths,
    ),
)]
struct Frontend {
    sample_rate: u32,
    features: usize,
}

impl Forward for Frontend {
    fn forward_tensors(
        &self,
        x: FrontendInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo::Result<FrontendOutputTensors> {
        // Frame energies per 10 ms hop, repeated over the bands: enough to show the wiring.
        let (b, t) = x.input_signal.dims2()?;
        let hop = (self.sample_rate / 100) as usize;
        let frames = t / hop;
        let energy = x
            .input_signal
            .narrow(1, 0, frames * hop)?
            .reshape((b, 1, frames, hop))?
            .sqr()?
            .mean(3)?;
        let processed_signal = energy
            .broadcast_as((b, self.features, frames))?
            .contiguous()?;
        let processed_length = (x.length.to_dtype(DType::F32)? / hop as f64)?
            .floor()?
            .to_dtype(DType::U32)?;
        Ok(FrontendOutputTensors {
            processed_signal,
            processed_length,
        })
    }
}

/// A toy encoder: a 1x1 projection from `feat_in` to `feat_out` channels.
#[neural_module(
    inputs(
        audio_signal: (B, D = feat_in, T as frames) MelSpectrogram,
        length: (B) Lengths,
    ),
    outputs(
        outputs: (B, D = feat_out, T as frames) AcousticEncodedRepresentation,
        encoded_lengths: (B) Lengths,
    ),
)]
struct Encoder {
    feat_in: usize,
    feat_out: usize,
    weight: Tensor,
}

impl Forward for Encoder {
    fn forward_tensors(
        &self,
        x: EncoderInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo::Result<EncoderOutputTensors> {
        Ok(EncoderOutputTensors {
            outputs: self.weight.broadcast_matmul(&x.audio_signal)?,
            encoded_lengths: x.length,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let frontend = Frontend {
        sample_rate: 16_000,
        features: 64,
    };
    let encoder = Encoder {
        feat_in: 64,
        feat_out: 128,
        weight: Tensor::randn(0f32, 0.1, (128, 64), &dev)?,
    };

    println!("1. Typed wiring, checked by the compiler");
    println!("   Frontend  in:  {}", frontend.input_types());
    println!("             out: {}", frontend.output_types());
    println!("   Encoder   in:  {}", encoder.input_types());
    let audio: NTensor<(B, T), AudioSignal> =
        NTensor::new(Tensor::randn(0f32, 1., (2, 16_000), &dev)?)?.with_param("freq", 16_000.0)?;
    let length: NTensor<(B,), Lengths> = NTensor::new(Tensor::new(&[16_000u32, 12_000], &dev)?)?;
    let mel = frontend.forward(FrontendInputs {
        input_signal: &audio,
        length: &length,
    })?;
    let enc = encoder.forward(EncoderInputs {
        audio_signal: &mel.processed_signal,
        length: &mel.processed_length,
    })?;
    println!("   encoded: {:?}", enc.outputs);
    // Swapping the two would not compile:
    //   encoder.forward(EncoderInputs { audio_signal: &enc.outputs, .. })
    //   error[E0277]: port `audio_signal` of `Encoder` expects `MelSpectrogram`, found `AcousticEncodedRepresentation`

    println!(
        "\n2. A dimension only the runtime can see (an 80-band encoder after a 64-band front end)"
    );
    let wide = Encoder {
        feat_in: 80,
        feat_out: 128,
        weight: Tensor::randn(0f32, 0.1, (128, 80), &dev)?,
    };
    match wide.forward(EncoderInputs {
        audio_signal: &mel.processed_signal,
        length: &mel.processed_length,
    }) {
        Ok(_) => anyhow::bail!("expected a dimension error"),
        Err(e) => println!("   error: {}", e.to_string().replace('\n', "\n   ")),
    }

    println!("\n3. A graph wired from data: the bad connection is refused before any computation");
    let graph = Graph::new();
    let audio = graph.input("audio", "(B, T) AudioSignal{freq=8000}".parse()?)?;
    let audio_length = graph.input("audio_length", "(B) Lengths".parse()?)?;
    let frontend = Arc::new(Frontend {
        sample_rate: 16_000,
        features: 64,
    });
    match graph.call_dyn_as(
        "frontend",
        frontend,
        &[("input_signal", audio), ("length", audio_length)],
    ) {
        Ok(_) => anyhow::bail!("expected a wiring error"),
        Err(e) => println!("   error: {}", e.to_string().replace('\n', "\n   ")),
    }
    Ok(())
}
