//! The `#[neural_module]` macro end to end: typed calls, runtime maps, the runtime fallback and
//! the dynamic path.

use candle_core::{DType, Device, Tensor};
use nemo::check::{Problem, disable_checks, disable_semantic_checks};
use nemo::prelude::*;
use nemo::types::{Comparison, NeuralType};
use nemo::{Error, Result};

/// A stand-in encoder: a fixed projection from `feat_in` to `feat_out` features.
#[neural_module(
    inputs(
        audio_signal: (B, D = feat_in, T) MelSpectrogram,
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

impl Encoder {
    fn new(feat_in: usize, feat_out: usize) -> Result<Self> {
        let weight = Tensor::ones((feat_out, feat_in), DType::F32, &Device::Cpu)?;
        Ok(Encoder {
            feat_in,
            feat_out,
            weight,
        })
    }
}

impl Forward for Encoder {
    fn forward_tensors(
        &self,
        x: EncoderInputTensors,
        _ctx: &ForwardCtx,
    ) -> Result<EncoderOutputTensors> {
        let outputs = self.weight.broadcast_matmul(&x.audio_signal)?;
        Ok(EncoderOutputTensors {
            outputs,
            encoded_lengths: x.length,
        })
    }
}

/// Produces audio with a sampling rate set from its configuration.
#[neural_module(
    kind = data_layer,
    outputs(
        audio_signal: (B, T) AudioSignal{freq = sample_rate},
        a_sig_length: (B) Lengths,
    ),
)]
struct Audio {
    sample_rate: u32,
}

/// A mel front end that insists on its sampling rate.
#[neural_module(
    inputs(
        input_signal: (B, T) AudioSignal{freq = sample_rate},
        length: (B) Lengths,
    ),
    outputs(
        processed_signal: (B, D = features, T) MelSpectrogram,
        processed_length: (B) Lengths,
    ),
)]
struct Mel {
    sample_rate: u32,
    features: usize,
}

impl Forward for Mel {
    fn forward_tensors(&self, x: MelInputTensors, _ctx: &ForwardCtx) -> Result<MelOutputTensors> {
        let (b, t) = x.input_signal.dims2()?;
        let frames = t / 160 + 1;
        let processed_signal = Tensor::zeros(
            (b, self.features, frames),
            DType::F32,
            x.input_signal.device(),
        )?;
        Ok(MelOutputTensors {
            processed_signal,
            processed_length: x.length,
        })
    }
}

/// Mean of its input: a loss.
#[neural_module(
    kind = loss,
    inputs(x: (B, D, T) Channel, mask: (B) Lengths?),
    outputs(loss: Loss),
)]
struct MeanLoss;

impl Forward for MeanLoss {
    fn forward_tensors(
        &self,
        x: MeanLossInputTensors,
        _ctx: &ForwardCtx,
    ) -> Result<MeanLossOutputTensors> {
        Ok(MeanLossOutputTensors {
            loss: x.x.mean_all()?,
        })
    }
}

/// Mean of its input, computed and returned in f32 whatever the input's dtype: a mixed-precision
/// loss (f16 activations in, f32 loss out).
#[neural_module(
    kind = loss,
    inputs(x: (B, D, T) Channel, mask: (B) Lengths?),
    outputs(loss: Loss),
)]
struct F32MeanLoss;

impl Forward for F32MeanLoss {
    fn forward_tensors(
        &self,
        x: F32MeanLossInputTensors,
        _ctx: &ForwardCtx,
    ) -> Result<F32MeanLossOutputTensors> {
        Ok(F32MeanLossOutputTensors {
            loss: x.x.to_dtype(DType::F32)?.mean_all()?,
        })
    }
}

fn cpu() -> Device {
    Device::Cpu
}

type MelAndLengths = (NTensor<(B, D, T), MelSpectrogram>, NTensor<(B,), Lengths>);

fn mel_input(b: usize, d: usize, t: usize) -> Result<MelAndLengths> {
    let x = NTensor::new(Tensor::zeros((b, d, t), DType::F32, &cpu())?)?;
    let l = NTensor::new(Tensor::zeros(b, DType::U32, &cpu())?)?;
    Ok((x, l))
}

#[test]
fn typed_call_returns_typed_outputs() -> Result<()> {
    let enc = Encoder::new(64, 32)?;
    let (x, l) = mel_input(2, 64, 50)?;
    let out = enc.forward(EncoderInputs {
        audio_signal: &x,
        length: &l,
    })?;
    assert_eq!(out.outputs.dims(), &[2, 32, 50]);
    assert_eq!(
        out.outputs.neural_type().to_string(),
        "(B, D, T) AcousticEncodedRepresentation"
    );
    // A subtype feeds a supertype port: the encoder output into a `Channel` loss.
    let loss = MeanLoss.forward(MeanLossInputs {
        x: &out.outputs,
        mask: None,
    })?;
    assert_eq!(loss.loss.neural_type().to_string(), "Loss");
    Ok(())
}

#[test]
fn runtime_types_come_from_the_declaration_and_configuration() -> Result<()> {
    let enc = Encoder::new(64, 32)?;
    let inputs = enc.input_types();
    assert_eq!(inputs.names(), ["audio_signal", "length"]);
    assert_eq!(
        inputs.to_string(),
        "audio_signal: (B, D:64, T) MelSpectrogram, length: (B) Lengths"
    );
    assert_eq!(
        enc.output_types().to_string(),
        "outputs: (B, D:32, T) AcousticEncodedRepresentation, encoded_lengths: (B) Lengths"
    );
    let mel = Mel {
        sample_rate: 16000,
        features: 64,
    };
    assert_eq!(
        mel.input_types()
            .get("input_signal")
            .map(ToString::to_string)
            .as_deref(),
        Some("(B, T) AudioSignal{freq=16000}")
    );
    assert_eq!(
        MeanLoss
            .input_types()
            .get("mask")
            .map(NeuralType::is_optional),
        Some(true)
    );
    assert_eq!(<MeanLoss as NeuralModule>::KIND, nemo::ModuleKind::Loss);
    Ok(())
}

fn type_error(r: Result<impl std::fmt::Debug>) -> Box<nemo::check::TypeError> {
    match r {
        Err(Error::Type(e)) => e,
        other => panic!("expected a type error, got {other:?}"),
    }
}

#[test]
fn runtime_size_from_configuration_is_checked() -> Result<()> {
    let enc = Encoder::new(64, 32)?;
    let (x, l) = mel_input(2, 80, 50)?;
    let e = type_error(enc.forward(EncoderInputs {
        audio_signal: &x,
        length: &l,
    }));
    assert_eq!(e.port, "audio_signal");
    assert!(
        matches!(
            e.problem,
            Problem::Size {
                axis: 1,
                expected: 64,
                found: 80,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("`Encoder` input `audio_signal`: axis 1 (D) has size 80, expected 64 (from the module's `feat_in`)"), "{msg}");
    assert!(
        msg.contains("port type: (B, D:64, T) MelSpectrogram"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn symbolic_batch_binds_across_ports() -> Result<()> {
    let enc = Encoder::new(64, 32)?;
    let (x, _) = mel_input(2, 64, 50)?;
    let (_, l3) = mel_input(3, 64, 50)?;
    let e = type_error(enc.forward(EncoderInputs {
        audio_signal: &x,
        length: &l3,
    }));
    assert_eq!(e.port, "length");
    assert_eq!(e.bindings, vec![("B".to_string(), 2)]);
    assert!(
        e.to_string()
            .contains("symbol `B` bound by port `audio_signal`"),
        "{e}"
    );
    Ok(())
}

#[test]
fn element_parameters_are_checked_and_can_be_disabled() -> Result<()> {
    let audio = Audio { sample_rate: 8000 };
    let batch = audio.wrap_outputs(AudioOutputTensors {
        audio_signal: Tensor::zeros((2, 1600), DType::F32, &cpu())?,
        a_sig_length: Tensor::zeros(2, DType::U32, &cpu())?,
    })?;
    assert_eq!(
        batch.audio_signal.neural_type().to_string(),
        "(B, T) AudioSignal{freq=8000}"
    );
    let mel = Mel {
        sample_rate: 16000,
        features: 64,
    };
    let call = |m: &Mel| {
        m.forward(MelInputs {
            input_signal: &batch.audio_signal,
            length: &batch.a_sig_length,
        })
    };
    let e = type_error(call(&mel));
    assert!(
        matches!(&e.problem, Problem::Param { key, expected, found } if key == "freq" && *expected == 16000.0 && *found == 8000.0),
        "{e}"
    );
    {
        let _semantic_off = disable_semantic_checks();
        call(&mel)?;
        {
            let _all_off = disable_checks();
            call(&mel)?;
        }
        // The inner guard restored the state before it: semantic checks still off.
        call(&mel)?;
    }
    assert!(call(&mel).is_err());
    Ok(())
}

#[test]
fn dtype_and_device_must_agree() -> Result<()> {
    let enc = Encoder::new(4, 4)?;
    let x =
        NTensor::<(B, D, T), MelSpectrogram>::new(Tensor::zeros((1, 4, 3), DType::F64, &cpu())?)?;
    let l = NTensor::<(B,), Lengths>::new(Tensor::zeros(1, DType::U32, &cpu())?)?;
    // The encoder's weight is f32, so candle itself refuses; the check is on the ports of one call:
    let loss_in =
        NTensor::<(B, D, T), Channel>::new(Tensor::zeros((1, 4, 3), DType::F16, &cpu())?)?;
    let _ = (enc, x, l);
    let e = type_error(MeanLoss.forward(MeanLossInputs {
        x: &loss_in,
        mask: Some(NTensor::new(Tensor::zeros(1, DType::F32, &cpu())?)?),
    }));
    assert!(matches!(e.problem, Problem::DType { .. }), "{e}");
    // Outputs agree among themselves but may differ from the inputs: an f32 loss of f16
    // activations (mixed precision) is accepted.
    let loss = F32MeanLoss.forward(F32MeanLossInputs {
        x: &loss_in,
        mask: None,
    })?;
    assert_eq!(loss.loss.tensor().dtype(), DType::F32);
    Ok(())
}

#[test]
fn wrong_rank_at_wrap_time() -> Result<()> {
    let r = NTensor::<(B, D, T), MelSpectrogram>::new(Tensor::zeros((2, 3), DType::F32, &cpu())?);
    let e = type_error(r);
    assert!(matches!(
        e.problem,
        Problem::Rank {
            expected: 3,
            found: 2
        }
    ));
    Ok(())
}

#[test]
fn dynamic_path_checks_named_tensors() -> Result<()> {
    let enc = Encoder::new(64, 32)?;
    let mut named = nemo::module::NamedTensors::new();
    named.insert(
        "audio_signal".into(),
        Tensor::zeros((2, 64, 10), DType::F32, &cpu())?,
    );
    let e = type_error(enc.forward_dyn(named.clone(), &ForwardCtx::eval()));
    assert!(
        matches!(e.problem, Problem::Missing) && e.port == "length",
        "{e}"
    );
    named.insert("length".into(), Tensor::zeros(2, DType::U32, &cpu())?);
    named.insert("lenght".into(), Tensor::zeros(2, DType::U32, &cpu())?);
    let e = type_error(enc.forward_dyn(named.clone(), &ForwardCtx::eval()));
    assert!(
        matches!(&e.problem, Problem::Unknown { known } if known == &["audio_signal", "length"]),
        "{e}"
    );
    named.remove("lenght");
    let out = enc.forward_dyn(named, &ForwardCtx::eval())?;
    assert_eq!(out["outputs"].dims(), &[2, 32, 10]);
    Ok(())
}

#[test]
fn dynamic_calls_in_a_graph_check_connections_before_compute() -> Result<()> {
    use nemo::dag::Graph;
    let g = Graph::new();
    let audio = g.input("audio", "(B, T) AudioSignal{freq=8000}".parse()?)?;
    let audio_len = g.input("audio_len", "(B) Lengths".parse()?)?;
    let mel = std::sync::Arc::new(Mel {
        sample_rate: 16000,
        features: 64,
    });
    let e = type_error(g.call_dyn_as(
        "mel",
        mel.clone(),
        &[
            ("input_signal", audio.clone()),
            ("length", audio_len.clone()),
        ],
    ));
    assert!(
        matches!(
            e.problem,
            Problem::Connection {
                comparison: Comparison::SameTypeIncompatibleParams,
                ..
            }
        ),
        "{e}"
    );
    let audio16 = g.input("audio16", "(B, T) AudioSignal{freq=16000}".parse()?)?;
    let m = g.call_dyn_as(
        "mel",
        mel,
        &[("input_signal", audio16), ("length", audio_len)],
    )?;
    let encoder = std::sync::Arc::new(Encoder::new(80, 32)?);
    let e = type_error(g.call_dyn(
        encoder.clone(),
        &[
            ("audio_signal", m.get("processed_signal")?),
            ("length", m.get("processed_length")?),
        ],
    ));
    assert!(
        matches!(
            e.problem,
            Problem::Connection {
                comparison: Comparison::DimIncompatible,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("cannot connect `mel.processed_signal` of type `(B, D:64, T) MelSpectrogram`"),
        "{msg}"
    );
    let e = type_error(g.call_dyn(encoder, &[("lengths", m.get("processed_length")?)]));
    assert!(matches!(e.problem, Problem::Unknown { .. }), "{e}");
    Ok(())
}
