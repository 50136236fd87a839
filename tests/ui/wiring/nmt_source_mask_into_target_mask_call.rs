// The source mask into the decoder's `input_mask_tgt` port (`call`): both are masks, of different sides.
#[path = "common/nmt.rs"]
mod common;
use nemo::nlp::modules::*;

fn main() -> nemo::Result<()> {
    let nmt = common::nmt()?;
    let batch = nmt.data.call(&nmt.graph)?;
    let src = nmt.encoder.call(TransformerEncoderNmInputs {
        input_ids: &batch.src_ids,
        input_mask_src: &batch.src_mask,
    })?;
    let _ = nmt.decoder.call(TransformerDecoderNmInputs {
        input_ids_tgt: &batch.tgt_ids,
        hidden_states_src: &src.hidden_states,
        input_mask_src: &batch.src_mask,
        input_mask_tgt: &batch.src_mask,
    })?;
    Ok(())
}
