// The source token ids into the decoder's `hidden_states_src` port, which reads the encoder's states (`forward`).
#[path = "common/nmt.rs"]
mod common;
use nemo::nlp::modules::*;

fn main() -> nemo::Result<()> {
    let nmt = common::nmt()?;
    let batch = nmt.batch()?;
    let _ = nmt.decoder.forward(TransformerDecoderNmInputs {
        input_ids_tgt: &batch.tgt_ids,
        hidden_states_src: &batch.src_ids,
        input_mask_src: &batch.src_mask,
        input_mask_tgt: &batch.tgt_mask,
    })?;
    Ok(())
}
