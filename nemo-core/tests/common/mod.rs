//! What the neural-type test files share: element types and axis kinds declared outside
//! `nemo-core` (as a user crate would), and small helpers.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use nemo_core::Error;
use nemo_core::typed::elements::{Spectrogram, Void};
use nemo_core::types::{ElementInfo, NeuralType};

pub type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

nemo_core::axis_kind! {
    /// Bark bands: an axis kind declared outside `nemo-core`.
    pub BarkBand = "bark"
}

nemo_core::axis_kind! {
    /// Images of a detection batch (NeMo's `AxisKind2.Image` in `test_struct`).
    pub Image = "image"
}

/// A Bark-scale spectrogram: an element type declared outside `nemo-core`.
#[nemo_core::element_type(parent = Spectrogram, alias = "BarkSpectrogramType")]
pub struct BarkSpectrogram;

/// A loudness-weighted Bark spectrogram at a loudness level `phon`: the second level of a
/// user-declared chain, with a parameter.
#[nemo_core::element_type(parent = BarkSpectrogram, params(phon))]
pub struct LoudBark;

/// A bounding box from a detection model (NeMo's `test_struct`).
#[nemo_core::element_type(parent = Void)]
pub struct BoundingBox;

/// A bounding box with a field missing (NeMo's `test_struct`): unrelated to [`BoundingBox`].
#[nemo_core::element_type(parent = Void)]
pub struct BadBoundingBox;

/// Parses the textual form of a neural type.
pub fn ty(text: &str) -> Result<NeuralType, Error> {
    text.parse()
}

/// The registered element type `name`.
pub fn info(name: &str) -> Result<&'static ElementInfo, String> {
    ElementInfo::lookup(name).ok_or_else(|| format!("element type `{name}` is not registered"))
}
