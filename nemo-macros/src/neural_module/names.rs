//! The built-in axis labels and element names the macro resolves without imports.

/// Axis spellings → marker names in `nemo_core::typed::axes`.
pub(crate) fn builtin_axis(label: &str) -> Option<&'static str> {
    Some(match label {
        "B" | "N" | "batch" => "B",
        "T" | "time" => "T",
        "D" | "dimension" => "D",
        "C" | "channel" => "C",
        "W" | "width" => "W",
        "H" | "height" => "H",
        "Any" | "any" => "Any",
        "Seq" | "seq" | "sequence" => "Seq",
        "FlowGroup" | "flowgroup" => "FlowGroup",
        "Singleton" | "singleton" | "S" => "Singleton",
        _ => return None,
    })
}

/// The labels listed in "unknown axis" errors.
pub(crate) const AXIS_LABELS: &str = "B, T, D, C, W, H, Any, Seq, FlowGroup, Singleton";

/// NeMo's element types (canonical names); `<Name>Type` spellings map to them too.
const ELEMENTS: &[&str] = &[
    "Void",
    "Channel",
    "EmbeddedText",
    "EncodedRepresentation",
    "AcousticEncodedRepresentation",
    "Spectrogram",
    "MelSpectrogram",
    "MFCCSpectrogram",
    "Logits",
    "Probs",
    "Logprobs",
    "Lengths",
    "Loss",
    "Labels",
    "Hypothesis",
    "Predictions",
    "RegressionValues",
    "CategoricalValues",
    "Mask",
    "AudioSignal",
    "VideoSignal",
    "Index",
    "Target",
    "ClassificationTarget",
    "ImageValue",
    "NormalizedImageValue",
    "ImageFeatureValue",
    "StringType",
    "StringLabel",
    "BoolType",
    "FloatType",
    "IntType",
    "TokenIndex",
    "Length",
    "ProbabilityDistributionSamples",
    "NormalDistributionSamples",
    "SequenceToSequenceAlignment",
    "NormalDistributionMean",
    "NormalDistributionLogVariance",
    "TokenDuration",
    "TokenLogDuration",
    "LogDeterminant",
];

/// A built-in element name (or its NeMo `...Type` spelling) → the canonical marker name.
pub(crate) fn builtin_element(name: &str) -> Option<&'static str> {
    if let Some(hit) = ELEMENTS.iter().find(|e| **e == name) {
        return Some(hit);
    }
    let stem = name.strip_suffix("Type")?;
    ELEMENTS.iter().find(|e| **e == stem).copied()
}
