//! Recurrent layers for [`DecoderRnn`](super::DecoderRnn): a stack of GRU or LSTM layers with
//! PyTorch's gate order and parameter names (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`,
//! `bias_hh_l0`), written with differentiable candle ops.
//!
//! Shapes: [`Rnn::forward_seq`] maps inputs `(B, T, D = input_size)` to outputs
//! `(B, T, D = hidden_size)` (the last layer's hidden states); [`Rnn::step`] maps one step
//! `(B, D = input_size)` to `(B, D = hidden_size)`. Both carry an [`RnnState`] of `(B, H)` tensors
//! per layer.
//!
//! GRU (PyTorch's `nn.GRU`): `r = σ(W_ir x + b_ir + W_hr h + b_hr)`,
//! `z = σ(W_iz x + b_iz + W_hz h + b_hz)`, `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`,
//! `h' = (1 − z) ⊙ n + z ⊙ h`. LSTM (`nn.LSTM`): gates `i, f, g, o` in that order,
//! `c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)`, `h' = σ(o) ⊙ tanh(c')`.
//!
//! The input projections of all time steps are one matrix product per layer; only the recurrent
//! product runs step by step. `σ(x)` is computed as `(tanh(x / 2) + 1) / 2`, which has a backward
//! in candle on every dtype.

use candle_core::Tensor;
use candle_nn::{Linear, Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which recurrent cell (NeMo's `rnn_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RnnType {
    /// Gated recurrent unit (3 gates), NeMo's default.
    #[default]
    Gru,
    /// Long short-term memory (4 gates, a cell state).
    Lstm,
}

impl RnnType {
    /// Gates per cell: 3 for GRU, 4 for LSTM.
    pub fn gates(self) -> usize {
        match self {
            RnnType::Gru => 3,
            RnnType::Lstm => 4,
        }
    }
}

/// The recurrent state: per layer a hidden state `(B, H)`, and for LSTM a cell state `(B, H)`.
#[derive(Debug, Clone)]
pub struct RnnState {
    /// Hidden states, one per layer.
    pub h: Vec<Tensor>,
    /// Cell states, one per layer (LSTM only; empty for GRU).
    pub c: Vec<Tensor>,
}

impl RnnState {
    /// Keeps rows `rows` (a `(K)` u32 index tensor) of every state tensor: beam reordering.
    pub fn index_select(&self, rows: &Tensor) -> Result<RnnState> {
        let pick = |v: &[Tensor]| -> Result<Vec<Tensor>> {
            v.iter()
                .map(|t| Ok(t.index_select(rows, 0)?))
                .collect::<Result<_>>()
        };
        Ok(RnnState {
            h: pick(&self.h)?,
            c: pick(&self.c)?,
        })
    }
}

/// One layer's input and recurrent projections, `x W_ih^T + b_ih` and `h W_hh^T + b_hh`, with
/// all gates stacked (`(G·H, in)` and `(G·H, H)` weights).
#[derive(Debug, Clone)]
struct RnnLayer {
    ih: Linear,
    hh: Linear,
}

/// A stack of GRU or LSTM layers, batch-first.
#[derive(Debug, Clone)]
pub struct Rnn {
    kind: RnnType,
    input_size: usize,
    hidden_size: usize,
    layers: Vec<RnnLayer>,
}

/// `σ(x)` with a backward on every dtype.
pub(crate) fn sigmoid(x: &Tensor) -> Result<Tensor> {
    Ok(((x * 0.5)?.tanh()? + 1.0)?.affine(0.5, 0.0)?)
}

impl Rnn {
    /// Builds `num_layers` layers; weights and biases `U(±1/sqrt(hidden_size))` as PyTorch's.
    pub fn new(
        kind: RnnType,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        if hidden_size == 0 || input_size == 0 || num_layers == 0 {
            return Err(Error::Config {
                key: "decoder".into(),
                msg: format!(
                    "rnn sizes must be positive: input {input_size}, hidden {hidden_size}, layers {num_layers}"
                ),
            });
        }
        let g = kind.gates() * hidden_size;
        let bound = 1.0 / (hidden_size as f64).sqrt();
        let init = candle_nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let mut layers = Vec::with_capacity(num_layers);
        for l in 0..num_layers {
            let inp = if l == 0 { input_size } else { hidden_size };
            // Created in PyTorch's order (the random init draws in this order).
            let w_ih = vb.get_with_hints((g, inp), &format!("weight_ih_l{l}"), init)?;
            let w_hh = vb.get_with_hints((g, hidden_size), &format!("weight_hh_l{l}"), init)?;
            let b_ih = vb.get_with_hints(g, &format!("bias_ih_l{l}"), init)?;
            let b_hh = vb.get_with_hints(g, &format!("bias_hh_l{l}"), init)?;
            layers.push(RnnLayer {
                ih: Linear::new(w_ih, Some(b_ih)),
                hh: Linear::new(w_hh, Some(b_hh)),
            });
        }
        Ok(Rnn {
            kind,
            input_size,
            hidden_size,
            layers,
        })
    }

    /// The cell type.
    pub fn kind(&self) -> RnnType {
        self.kind
    }

    /// Hidden units per layer.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// The number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// A zero state for a batch of `batch` rows, in the weights' dtype and device.
    pub fn zero_state(&self, batch: usize) -> Result<RnnState> {
        let Some(first) = self.layers.first() else {
            return Err(Error::Shape {
                op: "Rnn",
                msg: "no layers".into(),
            });
        };
        let z = Tensor::zeros(
            (batch, self.hidden_size),
            first.hh.weight().dtype(),
            first.hh.weight().device(),
        )?;
        let n = self.layers.len();
        Ok(RnnState {
            h: vec![z.clone(); n],
            c: if self.kind == RnnType::Lstm {
                vec![z; n]
            } else {
                Vec::new()
            },
        })
    }

    /// One cell update from the input projection `xp = x W_ih^T + b_ih` `(B, G·H)`.
    fn cell(
        &self,
        layer: &RnnLayer,
        xp: &Tensor,
        h: &Tensor,
        c: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let hs = self.hidden_size;
        let hp = layer.hh.forward(h)?;
        match self.kind {
            RnnType::Gru => {
                let rz = sigmoid(&(xp.narrow(1, 0, 2 * hs)? + hp.narrow(1, 0, 2 * hs)?)?)?;
                let r = rz.narrow(1, 0, hs)?;
                let z = rz.narrow(1, hs, hs)?;
                let n = (xp.narrow(1, 2 * hs, hs)? + (r * hp.narrow(1, 2 * hs, hs)?)?)?.tanh()?;
                // h' = n + z ⊙ (h − n)
                let h_new = (&n + (z * (h - &n)?)?)?;
                Ok((h_new, None))
            }
            RnnType::Lstm => {
                let c = c.ok_or_else(|| Error::Shape {
                    op: "Rnn",
                    msg: "an LSTM step needs a cell state".into(),
                })?;
                let gates = (xp + hp)?;
                let ifg = sigmoid(&gates.narrow(1, 0, 2 * hs)?)?;
                let i = ifg.narrow(1, 0, hs)?;
                let f = ifg.narrow(1, hs, hs)?;
                let g = gates.narrow(1, 2 * hs, hs)?.tanh()?;
                let o = sigmoid(&gates.narrow(1, 3 * hs, hs)?)?;
                let c_new = ((f * c)? + (i * g)?)?;
                let h_new = (o * c_new.tanh()?)?;
                Ok((h_new, Some(c_new)))
            }
        }
    }

    fn check_input(&self, x: &Tensor, rank: usize) -> Result<()> {
        let dims = x.dims();
        if dims.len() != rank || dims.last() != Some(&self.input_size) {
            return Err(Error::Shape {
                op: "Rnn",
                msg: format!(
                    "expected input of rank {rank} with last dim {}, got {:?}",
                    self.input_size, dims
                ),
            });
        }
        Ok(())
    }

    /// Runs the stack over a sequence `(B, T, input_size)` from `state` (zeros when `None`);
    /// returns the last layer's outputs `(B, T, hidden_size)` and the final state.
    /// `between_layers` is applied to each layer's output before the next layer (dropout).
    pub fn forward_seq(
        &self,
        x: &Tensor,
        state: Option<RnnState>,
        between_layers: &mut dyn FnMut(Tensor) -> Result<Tensor>,
    ) -> Result<(Tensor, RnnState)> {
        self.check_input(x, 3)?;
        let (b, t, _) = x.dims3()?;
        let mut state = match state {
            Some(s) => s,
            None => self.zero_state(b)?,
        };
        let mut input = x.clone();
        let n = self.layers.len();
        for (l, layer) in self.layers.iter().enumerate() {
            let xp = layer.ih.forward(&input)?; // (B, T, G·H)
            let mut h = state.h.get(l).cloned().ok_or_else(|| missing(l))?;
            let mut c = state.c.get(l).cloned();
            let mut outs = Vec::with_capacity(t);
            for s in 0..t {
                let xs = xp.narrow(1, s, 1)?.squeeze(1)?;
                let (h_new, c_new) = self.cell(layer, &xs, &h, c.as_ref())?;
                outs.push(h_new.clone());
                h = h_new;
                c = c_new;
            }
            if let Some(slot) = state.h.get_mut(l) {
                *slot = h;
            }
            if let (Some(slot), Some(c)) = (state.c.get_mut(l), c) {
                *slot = c;
            }
            input = Tensor::stack(&outs, 1)?;
            if l + 1 < n {
                input = between_layers(input)?;
            }
        }
        Ok((input, state))
    }

    /// One time step: input `(B, input_size)` → the last layer's output `(B, hidden_size)` and
    /// the new state.
    pub fn step(&self, x: &Tensor, state: &RnnState) -> Result<(Tensor, RnnState)> {
        self.step_with(x, state, &mut Ok)
    }

    /// [`step`](Self::step) with `between_layers` applied to each layer's output before the
    /// next layer (dropout in training, as [`forward_seq`](Self::forward_seq)); the state keeps
    /// the outputs before it.
    pub fn step_with(
        &self,
        x: &Tensor,
        state: &RnnState,
        between_layers: &mut dyn FnMut(Tensor) -> Result<Tensor>,
    ) -> Result<(Tensor, RnnState)> {
        self.check_input(x, 2)?;
        let n = self.layers.len();
        let mut input = x.clone();
        let mut new = RnnState {
            h: Vec::with_capacity(self.layers.len()),
            c: Vec::new(),
        };
        for (l, layer) in self.layers.iter().enumerate() {
            let xp = layer.ih.forward(&input)?;
            let h = state.h.get(l).ok_or_else(|| missing(l))?;
            let (h_new, c_new) = self.cell(layer, &xp, h, state.c.get(l))?;
            new.h.push(h_new.clone());
            new.c.extend(c_new);
            input = if l + 1 < n {
                between_layers(h_new)?
            } else {
                h_new
            };
        }
        Ok((input, new))
    }
}

fn missing(layer: usize) -> Error {
    Error::Shape {
        op: "Rnn",
        msg: format!("the state has no hidden state for layer {layer}"),
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    #[test]
    fn sigmoid_matches_its_definition() -> Result<()> {
        let x = Tensor::new(&[-30.0f64, -2.0, 0.0, 0.5, 7.0], &Device::Cpu)?;
        let got: Vec<f64> = sigmoid(&x)?.to_vec1()?;
        for (g, v) in got.iter().zip([-30.0f64, -2.0, 0.0, 0.5, 7.0]) {
            assert!((g - 1.0 / (1.0 + (-v).exp())).abs() < 1e-12);
        }
        Ok(())
    }
}
