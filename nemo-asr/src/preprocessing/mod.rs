//! Audio preprocessing of the ASR collection: NeMo's mel preprocessor and spectrogram
//! augmentation.
//!
//! - [`mel`]: [`AudioToMelSpectrogramPreprocessor`], audio `(B, T)` to normalized log-mel
//!   features `(B, D, T')` with frame counts `(B)`;
//! - [`mel_filters`]: the Slaney mel filterbank `(D, n_fft / 2 + 1)` as librosa builds it;
//! - [`spectrogram_augmentation`]: [`SpectrogramAugmentation`] (SpecAugment and Cutout), time/frequency
//!   stripes and Cutout rectangles on `(B, D, T)` inside each row's valid length.

pub mod mel;
mod mel_config;
pub mod mel_filters;
mod normalize;
pub mod spectrogram_augmentation;

pub use mel::{
    AudioToMelSpectrogramPreprocessor, AudioToMelSpectrogramPreprocessorConfig,
    AudioToMelSpectrogramPreprocessorInputs, AudioToMelSpectrogramPreprocessorOutputs,
    LogZeroGuardName, LogZeroGuardType, LogZeroGuardValue, Normalize, WindowType,
};
pub use mel_filters::{MelFilterbank, MelNorm, hz_to_mel, mel_to_hz};
pub use spectrogram_augmentation::{
    RowMasks, SpectrogramAugmentation, SpectrogramAugmentationConfig,
    SpectrogramAugmentationInputs, SpectrogramAugmentationOutputs, TimeWidth,
};
