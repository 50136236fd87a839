//! [`vars_without_gradient`] and [`assert_all_vars_receive_gradients`]: run backward of a loss
//! and find the trainable variables whose gradient is missing, all zero or not finite.

use std::fmt;

use candle_core::Tensor;

use crate::params::Parameters;
use crate::{Error, Result};

/// Why a variable is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradientProblem {
    /// The backward pass did not reach the variable.
    Missing,
    /// The gradient exists but every element is zero.
    AllZero,
    /// The gradient holds NaN or infinite values.
    NotFinite,
}

impl fmt::Display for GradientProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GradientProblem::Missing => "no gradient",
            GradientProblem::AllZero => "all-zero gradient",
            GradientProblem::NotFinite => "non-finite gradient",
        })
    }
}

/// A trainable variable with a bad gradient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradientReport {
    /// The parameter's name in the store, e.g. `encoder.fc1.weight`.
    pub name: String,
    /// What is wrong.
    pub problem: GradientProblem,
}

/// Runs `loss.backward()` and returns every trainable variable of `params` whose gradient is
/// missing, all zero or not finite, sorted by name (empty when all is well).
///
/// # Errors
/// Candle errors from the backward pass or from reading the gradients.
pub fn vars_without_gradient(loss: &Tensor, params: &Parameters) -> Result<Vec<GradientReport>> {
    let grads = loss.backward()?;
    let mut out = Vec::new();
    for (name, var) in params.trainable_vars() {
        let problem = match grads.get(var.as_tensor()) {
            None => Some(GradientProblem::Missing),
            Some(g) => {
                let g = g.to_dtype(candle_core::DType::F64)?.flatten_all()?;
                let finite = g.to_vec1::<f64>()?.iter().all(|v| v.is_finite());
                if !finite {
                    Some(GradientProblem::NotFinite)
                } else if g.abs()?.max(0)?.to_scalar::<f64>()? == 0.0 {
                    Some(GradientProblem::AllZero)
                } else {
                    None
                }
            }
        };
        if let Some(problem) = problem {
            out.push(GradientReport { name, problem });
        }
    }
    Ok(out)
}

/// [`vars_without_gradient`] as an assertion: `Ok(())` when every trainable variable gets a
/// non-zero, finite gradient.
///
/// # Errors
/// [`Error::Optimizer`] naming each offending variable and its problem, e.g.
/// "trainable variables without a usable gradient: `enc.norm.weight` (no gradient)".
pub fn assert_all_vars_receive_gradients(loss: &Tensor, params: &Parameters) -> Result<()> {
    let bad = vars_without_gradient(loss, params)?;
    if bad.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = bad
        .iter()
        .map(|r| format!("`{}` ({})", r.name, r.problem))
        .collect();
    Err(Error::Optimizer {
        msg: format!(
            "trainable variables without a usable gradient: {} (a fused op without backward upstream, or an unused parameter)",
            list.join(", ")
        ),
    })
}
