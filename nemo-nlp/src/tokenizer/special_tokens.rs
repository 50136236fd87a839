//! The four special tokens every tokenizer of the collection has, at fixed ids.
//!
//! The ids and spellings are YouTokenToMe's, the BPE library NeMo 0.x's translation recipe
//! trained its tokenizers with (`YouTokenToMeTokenizer`): `<PAD>` 0, `<UNK>` 1, `<BOS>` 2,
//! `<EOS>` 3. Padding is 0 so that a zero-initialised id tensor is all padding. Training puts
//! them first; loading checks they are still there, so a model's embedding rows for them never
//! move.

/// Pads sequences of a batch to one length.
pub const PAD: &str = "<PAD>";
/// Stands for text the vocabulary cannot spell (never produced by byte-level BPE, kept for
/// tokenizers loaded from elsewhere).
pub const UNK: &str = "<UNK>";
/// Begins every sequence the data layer makes.
pub const BOS: &str = "<BOS>";
/// Ends every sequence the data layer makes.
pub const EOS: &str = "<EOS>";

/// Id of [`PAD`].
pub const PAD_ID: u32 = 0;
/// Id of [`UNK`].
pub const UNK_ID: u32 = 1;
/// Id of [`BOS`].
pub const BOS_ID: u32 = 2;
/// Id of [`EOS`].
pub const EOS_ID: u32 = 3;

/// The special tokens in id order.
pub const SPECIAL_TOKENS: [&str; 4] = [PAD, UNK, BOS, EOS];
