//! The ASR data pipeline: NeMo manifests, WAV decoding and resampling, the character label set,
//! and the `AudioToTextDataLayer` that turns them into padded batches.
//!
//! - [`manifest`]: JSON-lines manifests (`audio_filepath`, `duration`, `text`, `offset`).
//! - [`audio`]: WAV to mono `f32` at a target rate ([`AudioSegment`], [`resample`]).
//! - [`vocabulary`]: [`Vocabulary`], [`normalize_transcript`], text <-> ids.
//! - [`audio_to_text`]: [`AudioToTextDataset`], [`AudioToTextDataLayer`] and its batches
//!   `audio_signal (B, T)`, `a_sig_length (B)`, `transcripts (B, S)`, `transcript_length (B)`.

pub mod audio;
pub mod audio_to_text;
mod audio_to_text_config;
mod audio_to_text_dataset;
pub mod manifest;
pub mod vocabulary;

pub use audio::{AudioSegment, WavInfo, WavSampleFormat, resample, wav_info};
pub use audio_to_text::{
    AudioToTextBatch, AudioToTextDataLayer, AudioToTextDataLayerConfig,
    AudioToTextDataLayerHandles, AudioToTextDataLayerOutputTensors, AudioToTextDataLayerOutputs,
    AudioToTextDataset, AudioToTextEpoch, AudioToTextSample, DatasetSummary, OnBadSample, collate,
    ctc_min_steps,
};
pub use manifest::{Manifest, ManifestEntry};
pub use vocabulary::{ENGLISH_LABELS, UnknownChar, Vocabulary, normalize_transcript};
