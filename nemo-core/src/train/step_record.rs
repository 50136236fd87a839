//! [`StepRecord`]: one line of a run's `metrics.jsonl`, written by the trainer and read back by
//! the curves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of the metrics JSONL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The update index (0-based).
    pub step: u64,
    /// The mean micro-batch loss of the update (the non-finite value itself when one was; JSON
    /// writes it as `null`, read back as NaN).
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f64,
    /// The learning rate used.
    pub lr: f64,
    /// The gradient norm before clipping, when clipping is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// Evaluation metrics, on the steps that evaluated.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub eval: BTreeMap<String, f64>,
    /// Whether the update was skipped (a non-finite loss or gradient; an overflow in f16).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub skipped: bool,
    /// The loss scale this step used, in f16 mode (see [`GradScaler`](super::GradScaler)).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub loss_scale: Option<f64>,
}

/// Reads an `f64` written by serde_json, where NaN and infinities become `null`, as NaN.
pub(crate) fn nan_if_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}
