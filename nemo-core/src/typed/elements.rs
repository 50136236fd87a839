//! NeMo's element types (`nemo/core/neural_types/elements.py`) as compile-time markers.
//!
//! Each is declared with [`#[element_type]`](crate::element_type), which also registers its
//! runtime [`ElementInfo`](crate::types::ElementInfo). The tree (child: parent) is NeMo's; the
//! canonical names drop NeMo's `Type` suffix, which the parser accepts as an alias.

use crate::element_type;

/// The root type: every element type is a kind of `Void`, and a `void` input accepts anything.
#[element_type(root, alias = "VoidType")]
pub struct Void;

/// The runtime description of [`Void`].
pub fn void_info() -> &'static crate::types::ElementInfo {
    <Void as crate::typed::Element>::info()
}

/// Values along a channel (feature) axis.
#[element_type(parent = Void, alias = "ChannelType")]
pub struct Channel;
/// Embedded text, e.g. word embeddings.
#[element_type(parent = Channel, alias = "EmbeddedTextType")]
pub struct EmbeddedText;
/// A learned encoding of the input.
#[element_type(parent = Channel, alias = "EncodedRepresentationType")]
pub struct EncodedRepresentation;
/// A learned encoding of audio, e.g. a Jasper encoder's output.
#[element_type(parent = EncodedRepresentation, alias = "AcousticEncodedRepresentationType")]
pub struct AcousticEncodedRepresentation;
/// A spectrogram.
#[element_type(parent = Channel, alias = "SpectrogramType")]
pub struct Spectrogram;
/// A mel-scale spectrogram.
#[element_type(parent = Spectrogram, alias = "MelSpectrogramType")]
pub struct MelSpectrogram;
/// Mel-frequency cepstral coefficients.
#[element_type(parent = Spectrogram, alias = "MFCCSpectrogramType")]
pub struct MFCCSpectrogram;

/// Unnormalized scores.
#[element_type(parent = Void, alias = "LogitsType")]
pub struct Logits;
/// Probabilities.
#[element_type(parent = Void, alias = "ProbsType")]
pub struct Probs;
/// Log-probabilities.
#[element_type(parent = Void, alias = "LogprobsType")]
pub struct Logprobs;
/// Lengths of the sequences of a batch.
#[element_type(parent = Void, alias = "LengthsType")]
pub struct Lengths;
/// A loss value.
#[element_type(parent = Void, alias = "LossType")]
pub struct Loss;

/// Labels, e.g. character or token ids of a transcript.
#[element_type(parent = Void, alias = "LabelsType")]
pub struct Labels;
/// Hypothesized labels.
#[element_type(parent = Labels, alias = "HypothesisType")]
pub struct Hypothesis;
/// Predicted labels.
#[element_type(parent = Labels, alias = "PredictionsType")]
pub struct Predictions;
/// Predicted real values.
#[element_type(parent = Predictions, alias = "RegressionValuesType")]
pub struct RegressionValues;
/// Predicted categories.
#[element_type(parent = Predictions, alias = "CategoricalValuesType")]
pub struct CategoricalValues;
/// A mask.
#[element_type(parent = Predictions, alias = "MaskType")]
pub struct Mask;

/// Audio samples at a sampling frequency `freq` (Hz).
#[element_type(parent = Void, alias = "AudioSignalType", params(freq))]
pub struct AudioSignal;
/// Video frames at `fps` frames per second.
#[element_type(parent = Void, alias = "VideoSignalType", params(fps))]
pub struct VideoSignal;
/// Indices.
#[element_type(parent = Void, alias = "IndexType")]
pub struct Index;
/// Targets of a supervised task.
#[element_type(parent = Void, alias = "TargetType")]
pub struct Target;
/// Class targets.
#[element_type(parent = Target, alias = "ClassificationTargetType")]
pub struct ClassificationTarget;

/// Image pixel values.
#[element_type(parent = Void, alias = "ImageValueType")]
pub struct ImageValue;
/// Normalized pixel values.
#[element_type(parent = ImageValue, alias = "NormalizedImageValueType")]
pub struct NormalizedImageValue;
/// Image features.
#[element_type(parent = ImageValue, alias = "ImageFeatureValueType")]
pub struct ImageFeatureValue;

/// Strings.
#[element_type(parent = Void)]
pub struct StringType;
/// String labels.
#[element_type(parent = StringType, alias = "StringLabelType")]
pub struct StringLabel;
/// Booleans.
#[element_type(parent = Void)]
pub struct BoolType;
/// Floating-point scalars.
#[element_type(parent = Void)]
pub struct FloatType;
/// Integers.
#[element_type(parent = Void)]
pub struct IntType;
/// Token ids.
#[element_type(parent = IntType, alias = "TokenIndexType")]
pub struct TokenIndex;
/// A length as an integer.
#[element_type(parent = IntType, alias = "LengthType")]
pub struct Length;

/// Samples of a probability distribution.
#[element_type(parent = Void, alias = "ProbabilityDistributionSamplesType")]
pub struct ProbabilityDistributionSamples;
/// Samples of a normal distribution.
#[element_type(parent = ProbabilityDistributionSamples, alias = "NormalDistributionSamplesType")]
pub struct NormalDistributionSamples;
/// An alignment between two sequences.
#[element_type(parent = Void, alias = "SequenceToSequenceAlignmentType")]
pub struct SequenceToSequenceAlignment;
/// The mean of a normal distribution.
#[element_type(parent = Void, alias = "NormalDistributionMeanType")]
pub struct NormalDistributionMean;
/// The log-variance of a normal distribution.
#[element_type(parent = Void, alias = "NormalDistributionLogVarianceType")]
pub struct NormalDistributionLogVariance;
/// Token durations.
#[element_type(parent = Void, alias = "TokenDurationType")]
pub struct TokenDuration;
/// Log token durations.
#[element_type(parent = Void, alias = "TokenLogDurationType")]
pub struct TokenLogDuration;
/// A log-determinant (flows).
#[element_type(parent = Void, alias = "LogDeterminantType")]
pub struct LogDeterminant;
