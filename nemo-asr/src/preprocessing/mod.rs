//! Audio preprocessing of the ASR collection: NeMo's mel preprocessor and spectrogram
//! augmentation.
//!
//! - [`mel`]: [`AudioToMelSpectrogramPreprocessor`], audio `(B, T)` to normalized log-mel
//!   features `(B, D, T')` with frame counts `(B)`;
//! - [`mel_filters`]: the Slaney mel filterbank `(D, n_fft / 2 + 1)` as librosa builds it;
//! - [`spec_augment`]: [`SpecAugment`] (NeMo's `SpectrogramAugmentation`), time/frequency
//!   stripes and Cutout rectangles on `(B, D, T)` inside each row's valid length.

pub mod mel;
pub mod mel_filters;
pub mod spec_augment;

pub use mel::{
    AudioToMelSpectrogramPreprocessor, AudioToMelSpectrogramPreprocessorConfig,
    AudioToMelSpectrogramPreprocessorInputs, AudioToMelSpectrogramPreprocessorOutputs,
    LogZeroGuardName, LogZeroGuardType, LogZeroGuardValue, Normalize, WindowType,
};
pub use mel_filters::{MelFilterbank, MelNorm, hz_to_mel, mel_to_hz};
pub use spec_augment::{RowMasks, SpecAugment, SpecAugmentConfig, TimeWidth};
