//! Element types the NLP collection adds to NeMo's tree.
//!
//! NeMo 0.11 types the translation data layer's `src_ids` as `ChannelType` and `tgt_ids` and
//! `labels` as `LabelsType`. A channel is not a token id, and in NeMo's tree `MaskType` is a kind
//! of `LabelsType` (through `PredictionsType`), so a mask passes wherever `LabelsType` ids are
//! expected. [`TokenIds`] is a kind of [`Labels`] — every port that takes NeMo's labels still
//! takes token ids — but neither a [`Mask`] nor a `Channel`: a port typed `TokenIds` refuses a
//! mask, and a `Mask` port refuses ids, when the program is compiled.
//!
//! ```
//! use nemo_core::types::{Comparison, NeuralType};
//! # fn main() -> nemo_core::Result<()> {
//! let _ = nemo_nlp::element_types::TokenIds; // registers the type with the parser
//! let ids: NeuralType = "(B, T) TokenIds".parse()?;
//! let labels: NeuralType = "(B, T) Labels".parse()?;
//! let mask: NeuralType = "(B, T) Mask".parse()?;
//! assert_eq!(ids.compare(&labels), Comparison::Less); // ids go where labels are taken
//! assert_eq!(mask.compare(&ids), Comparison::Incompatible); // a mask does not go where ids are
//! assert_eq!(ids.compare(&mask), Comparison::Incompatible);
//! # Ok(())
//! # }
//! ```
//!
//! The two masks of a translation batch differ too: [`SourceMask`] and [`TargetMask`] are kinds
//! of `Mask` but not of each other (NeMo 0.11: both `ChannelType`), so the source mask wired
//! into the decoder's `input_mask_tgt` fails at build, not when the lengths happen to differ.
//!
//! [`Mask`]: nemo_core::typed::elements::Mask

use nemo_core::element_type;
use nemo_core::typed::elements::{Labels, Mask};

/// Ids of tokens in a vocabulary: `src_ids`, `tgt_ids` and `labels` of the translation data
/// layer. A kind of [`Labels`], not of `Mask`.
#[element_type(parent = Labels, alias = "TokenIdsType")]
pub struct TokenIds;

/// The mask of the source side of a translation batch (`src_mask`, the encoder's and decoder's
/// `input_mask_src`). A kind of `Mask`, not of [`TargetMask`].
#[element_type(parent = Mask, alias = "SourceMaskType")]
pub struct SourceMask;

/// The mask of the target side of a translation batch (`tgt_mask`, the decoder's
/// `input_mask_tgt`). A kind of `Mask`, not of [`SourceMask`].
#[element_type(parent = Mask, alias = "TargetMaskType")]
pub struct TargetMask;
