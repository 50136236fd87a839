//! Training losses of the ASR collection.
//!
//! - [`ctc`]: the Connectionist Temporal Classification loss (NeMo `CTCLoss`), computed in log space
//!   with an exact alpha-beta backward pass registered with candle's autograd.

pub mod ctc;

pub use ctc::{
    CtcLoss, CtcLossConfig, CtcLossInputs, CtcLossOutputs, CtcOptions, CtcReduction, ctc_loss,
};
