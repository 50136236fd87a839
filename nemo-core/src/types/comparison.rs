//! The result of connecting an output port to an input port (NeMo's `NeuralTypeComparisonResult`).

use std::fmt;

/// How an output port's type relates to the type of the input port it is connected to.
///
/// Read `output.compare(&input)` as "this output connected to that input": the paper's Table 1
/// holds literally (a `(B, Channel)` output into a `(B, Spectrogram)` input is
/// [`Comparison::Greater`]). NeMo's code compares the other way round
/// (`expected.compare(found)`); the variants mean the same, seen from the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// The types are the same. Compatible.
    Same,
    /// The output is a more specific kind of the input (a `MelSpectrogram` into a `Spectrogram`
    /// port). Compatible.
    Less,
    /// The output is a more general kind of the input (a `Spectrogram` into a `MelSpectrogram`
    /// port). Incompatible: nothing guarantees the output is what the input needs.
    Greater,
    /// Same axes and compatible elements, but a fixed size differs (or the output's size is
    /// unknown where the input fixes one).
    DimIncompatible,
    /// The same axes in another order; a permute makes the connection valid.
    TransposeSame,
    /// The ports nest lists (container axes) to different depths.
    ContainerSizeMismatch,
    /// Nothing relates the two types.
    Incompatible,
    /// The same element type with a parameter set to different values (e.g. `AudioSignal` at
    /// 16 kHz into an 8 kHz port).
    SameTypeIncompatibleParams,
}

impl Comparison {
    /// Whether data may flow over this connection: [`Comparison::Same`] or [`Comparison::Less`].
    pub fn is_compatible(self) -> bool {
        matches!(self, Comparison::Same | Comparison::Less)
    }

    /// NeMo's name for the result, e.g. `DIM_INCOMPATIBLE`.
    pub fn nemo_name(self) -> &'static str {
        match self {
            Comparison::Same => "SAME",
            Comparison::Less => "LESS",
            Comparison::Greater => "GREATER",
            Comparison::DimIncompatible => "DIM_INCOMPATIBLE",
            Comparison::TransposeSame => "TRANSPOSE_SAME",
            Comparison::ContainerSizeMismatch => "CONTAINER_SIZE_MISMATCH",
            Comparison::Incompatible => "INCOMPATIBLE",
            Comparison::SameTypeIncompatibleParams => "SAME_TYPE_INCOMPATIBLE_PARAMS",
        }
    }

    /// A sentence saying what the result means for the connection.
    pub fn explain(self) -> &'static str {
        match self {
            Comparison::Same => "the types are the same",
            Comparison::Less => "the output is a more specific kind of the input",
            Comparison::Greater => "the output is a more general kind than the input accepts",
            Comparison::DimIncompatible => "a fixed dimension size differs",
            Comparison::TransposeSame => {
                "the axes are the same but in another order; permute the output"
            }
            Comparison::ContainerSizeMismatch => "the list nesting depth differs",
            Comparison::Incompatible => "the types are unrelated",
            Comparison::SameTypeIncompatibleParams => {
                "the element type is the same but a parameter differs"
            }
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.nemo_name())
    }
}
