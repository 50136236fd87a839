// The decoder's hidden states into the loss, skipping the log-softmax (`forward`).
#[path = "common/nmt.rs"]
mod common;
use nemo::nlp::losses::PaddedSmoothedCrossEntropyLossNmInputs;
use nemo::nlp::modules::*;

fn main() -> nemo::Result<()> {
    let nmt = common::nmt()?;
    let batch = nmt.batch()?;
    let src = nmt.encoder.forward(TransformerEncoderNmInputs {
        input_ids: &batch.src_ids,
        input_mask_src: &batch.src_mask,
    })?;
    let tgt = nmt.decoder.forward(TransformerDecoderNmInputs {
        input_ids_tgt: &batch.tgt_ids,
        hidden_states_src: &src.hidden_states,
        input_mask_src: &batch.src_mask,
        input_mask_tgt: &batch.tgt_mask,
    })?;
    let _ = nmt.loss.forward(PaddedSmoothedCrossEntropyLossNmInputs {
        log_probs: &tgt.hidden_states,
        target_ids: &batch.labels,
    })?;
    Ok(())
}
