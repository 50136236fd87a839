//! NovoGrad, as NeMo's `Novograd` (`nemo/core/optim/novograd.py`): Adam-like momentum with a
//! per-tensor ("layer-wise") second moment ([Ginsburg et al., 2019](https://arxiv.org/abs/1905.11286)).
//!
//! Per parameter tensor `p` with gradient `g`, learning rate `lr`:
//!
//! ```text
//! n     = ||g||^2                                   (one scalar per tensor)
//! v     = n                            if v == 0    (first update: initialised with the norm)
//!       = beta2 * v + (1 - beta2) * n  otherwise
//! v_max = max(v_max, v)                             (amsgrad only; used instead of v)
//! d     = g / (sqrt(v) + eps)
//! d     = d + weight_decay * p                      (decay added to the normalized gradient)
//! d     = d * (1 - beta1)                           (grad_averaging only)
//! m     = beta1 * m + d
//! p     = p - lr * m
//! ```
//!
//! There is no bias correction. State per parameter: `exp_avg` (m, the parameter's shape),
//! `exp_avg_sq` (v, a scalar) and, with amsgrad, `max_exp_avg_sq` (a scalar). NeMo's optional
//! layer-wise update clipping (`luc`) is not implemented.
//!
//! Reference: NeMo at commit `a09a33f5e2eec648ab80e199a165010e4082b179`,
//! `nemo/core/optim/novograd.py`, `Novograd.step`.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::driver::{Driver, UpdateRule, lost_buffers};
use super::fused::{par_update, sum_squares};
use super::state::{SlotShape, Slots};
use super::{check_non_negative, check_range};
use crate::Result;

/// Options of [`Novograd`] (NeMo's `NovogradParams` and `Novograd.__init__` defaults, the
/// values QuartzNet trains with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NovogradConfig {
    /// Decay of the first moment and of the per-tensor second moment, each in `[0, 1)`.
    /// Default `[0.95, 0.98]`.
    pub betas: [f64; 2],
    /// Added to the denominator `sqrt(v)`. Default 1e-8.
    pub eps: f64,
    /// Added to the normalized gradient as `weight_decay * p`. Default 0.
    pub weight_decay: f64,
    /// Multiply the normalized gradient by `1 - beta1` before the momentum. Default false.
    pub grad_averaging: bool,
    /// Normalize by the running maximum of the second moment. Default false.
    pub amsgrad: bool,
}

impl Default for NovogradConfig {
    fn default() -> Self {
        Self {
            betas: [0.95, 0.98],
            eps: 1e-8,
            weight_decay: 0.0,
            grad_averaging: false,
            amsgrad: false,
        }
    }
}

/// NovoGrad (see the module doc).
pub type Novograd = Driver<NovogradConfig>;

impl UpdateRule for NovogradConfig {
    const NAME: &'static str = "novograd";

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for betas outside `[0, 1)` or a negative or
    /// non-finite eps or weight decay.
    fn validate(&self) -> Result<()> {
        for beta in self.betas {
            check_range("optim.betas", beta, 0.0, 1.0)?;
        }
        check_non_negative("optim.eps", self.eps)?;
        check_non_negative("optim.weight_decay", self.weight_decay)
    }

    /// `exp_avg` (the parameter's shape), `exp_avg_sq` and, with amsgrad, `max_exp_avg_sq`
    /// (scalars).
    fn slots(&self) -> Slots {
        let mut slots = vec![
            ("exp_avg", SlotShape::LikeParam),
            ("exp_avg_sq", SlotShape::Scalar),
        ];
        if self.amsgrad {
            slots.push(("max_exp_avg_sq", SlotShape::Scalar));
        }
        slots
    }

    /// Two passes: the squared norm, then the update.
    fn update_in_place(
        &self,
        p: &mut [f32],
        g: &[f32],
        buffers: &mut [&mut [f32]],
        _t: u64,
        lr: f64,
    ) -> Result<()> {
        let [b1, b2] = self.betas.map(|b| b as f32);
        let [c1, c2] = self.betas.map(|b| (1.0 - b) as f32);
        let (lr, eps, wd) = (lr as f32, self.eps as f32, self.weight_decay as f32);
        let averaging = self.grad_averaging;
        let lost = || lost_buffers(Self::NAME);
        let (m, v, v_max) = match buffers {
            [m, v] => (m, v, None),
            [m, v, v_max] => (m, v, Some(v_max)),
            _ => return Err(lost()),
        };
        let v = v.first_mut().ok_or_else(lost)?;
        let v_max = match v_max {
            Some(vm) => Some(vm.first_mut().ok_or_else(lost)?),
            None => None,
        };
        let norm = sum_squares(g) as f32; // ||g||^2
        *v = if *v == 0.0 { norm } else { *v * b2 + c2 * norm };
        let v_hat = match v_max {
            Some(vm) => {
                *vm = vm.max(*v);
                *vm
            }
            None => *v,
        };
        let denom = v_hat.sqrt() + eps;
        par_update([p, &mut **m], [g], |[p, m], [g]| {
            for ((p, m), &g) in p.iter_mut().zip(m.iter_mut()).zip(g) {
                let mut d = g / denom;
                if wd != 0.0 {
                    d += wd * *p;
                }
                if averaging {
                    d *= c1;
                }
                *m = *m * b1 + d;
                *p -= lr * *m;
            }
        })
    }

    /// The second moment stays on the device (no host synchronisation): the `v == 0` test of
    /// NeMo is a `where_cond`.
    fn update_tensors(
        &self,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Tensor],
        _t: u64,
        lr: f64,
    ) -> Result<Tensor> {
        let [beta1, beta2] = self.betas;
        let (m, v, mut v_max) = match &mut *buffers {
            [m, v] => (m, v, None),
            [m, v, v_max] => (m, v, Some(v_max)),
            _ => return Err(lost_buffers(Self::NAME)),
        };
        let norm = grad.sqr()?.sum_all()?; // ()
        let blended = (v.affine(beta2, 0.0)? + norm.affine(1.0 - beta2, 0.0)?)?;
        *v = v.eq(0f32)?.where_cond(&norm, &blended)?;
        if let Some(vm) = v_max.as_deref_mut() {
            *vm = vm.maximum(&*v)?;
        }
        let denom = v_max
            .as_deref()
            .unwrap_or(v)
            .sqrt()?
            .affine(1.0, self.eps)?;
        let mut d = grad.broadcast_div(&denom)?;
        if self.weight_decay != 0.0 {
            d = (d + param.affine(self.weight_decay, 0.0)?)?;
        }
        if self.grad_averaging {
            d = d.affine(1.0 - beta1, 0.0)?;
        }
        *m = (m.affine(beta1, 0.0)? + d)?;
        Ok((param - m.affine(lr, 0.0)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::{TestResult, check_paths_agree};

    #[test]
    fn fused_cpu_kernel_matches_tensor_ops() -> TestResult {
        for c in [
            NovogradConfig::default(),
            NovogradConfig {
                betas: [0.8, 0.5],
                weight_decay: 0.001,
                grad_averaging: true,
                ..NovogradConfig::default()
            },
            NovogradConfig {
                betas: [0.9, 0.7],
                weight_decay: 0.01,
                amsgrad: true,
                ..NovogradConfig::default()
            },
        ] {
            check_paths_agree(&c)?;
        }
        Ok(())
    }
}
