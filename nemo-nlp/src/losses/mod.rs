//! Losses of the NLP collection.
//!
//! - [`padded_smoothed_cross_entropy_loss`]: NeMo's label-smoothed translation loss
//!   ([`PaddedSmoothedCrossEntropyLossNm`]), padding left out.

pub mod padded_smoothed_cross_entropy_loss;

pub use padded_smoothed_cross_entropy_loss::{
    PaddedSmoothedCrossEntropyLossNm, PaddedSmoothedCrossEntropyLossNmConfig,
    PaddedSmoothedCrossEntropyLossNmInputs, PaddedSmoothedCrossEntropyLossNmOutputs,
};
