//! `CTCLossNM`: the CTC loss as a typed loss module (NeMo 0.x's name), over
//! [`crate::losses::ctc_loss`].
//!
//! Ports: `log_probs (B, T, D) Logprobs`, `targets (B, T) Labels`, `input_length (B) Lengths`,
//! `target_length (B) Lengths` → `loss Loss`.

use nemo_core::{Forward, ForwardCtx, neural_module};

use crate::losses::{CtcLoss, CtcLossConfig};

/// The CTC loss module; the blank is the last class.
#[neural_module(
    kind = loss,
    inputs(
        log_probs: (B, T, D = num_classes) Logprobs,
        targets: (B, T) Labels,
        input_length: (B) Lengths,
        target_length: (B) Lengths,
    ),
    outputs(loss: Loss),
)]
#[derive(Debug, Clone)]
pub struct CTCLossNM {
    num_classes: usize,
    loss: CtcLoss,
}

impl CTCLossNM {
    /// A CTC loss over `num_classes` outputs (labels + blank).
    pub fn new(num_classes: usize, config: CtcLossConfig) -> Self {
        CTCLossNM {
            num_classes,
            loss: CtcLoss::new(config),
        }
    }
}

impl Forward for CTCLossNM {
    fn forward_tensors(
        &self,
        x: CTCLossNMInputTensors,
        _ctx: &ForwardCtx,
    ) -> nemo_core::Result<CTCLossNMOutputTensors> {
        let loss =
            self.loss
                .forward(&x.log_probs, &x.targets, &x.input_length, &x.target_length)?;
        Ok(CTCLossNMOutputTensors { loss })
    }
}
